"""Text to vectors: one Embedder protocol, onnxruntime and sentence-transformers behind it."""

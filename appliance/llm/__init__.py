"""The language model: engine seam, llama.cpp backend, GGUF files, prompt text handling."""

"""The watched folder: extractors per file type, chunking, the ingest pipeline."""

"""Answers from the documents: hybrid retrieval (vectors + BM25) and, later, answer assembly."""

"""Persistence: the SQLite database and the conversation store."""

"""The chat use case: conversations and answers, on top of the engine and the store."""

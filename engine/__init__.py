"""Model size vs test-time compute: the engine (no UI imports here)."""

"""Training the shipped ladder and verifiers (``python -m engine.train ...``)."""

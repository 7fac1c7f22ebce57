"""Deterministic Temporal workflows (no I/O, clocks or randomness: see the house rules)."""

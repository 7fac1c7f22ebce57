"""Thin Temporal activity classes over proctor's services (built once in the worker)."""

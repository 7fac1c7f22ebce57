"""Proctor's processes: the Temporal worker and the embedded development stack."""

"""Postgres-backed services other than the audit log (agents, nonces, trust)."""

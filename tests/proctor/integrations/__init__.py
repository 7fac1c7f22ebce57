"""Tests of the framework adapters (proctor.integrations)."""

"""The ledger's fixtures (a fresh database per test, its `AuditLog`), as the audit tests have."""

from tests.proctor.audit.conftest import audit, dsn

__all__ = ["audit", "dsn"]

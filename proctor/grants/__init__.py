"""Standing grants: what approvers' votes may grant beyond one request, and when a stored
grant covers a new one. `scope` is pure and deterministic (the workflow uses it)."""

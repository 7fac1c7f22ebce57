"""Postgres-backed services: every SQL statement of the application lives in these modules
(connecting and migrating aside, in `proctor.db`); the rest of the code calls their methods."""

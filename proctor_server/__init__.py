"""The governance side's import name. The design's top-level folders workflows/, activities/ and
worker/ stay where they are and are linked here, so they install and import as
proctor_server.workflows, proctor_server.activities and proctor_server.worker: an installed
Proctor claims no generic top-level names (`worker`, `workflows`, `activities`) in
site-packages, where they would collide with other projects'. Ruff bans the bare names (TID251),
so no module is ever imported twice under two names."""

#!/bin/sh
# Runs once, on an empty data directory. Temporal's databases (temporal, temporal_visibility)
# are created and migrated by the temporal-schema job; Proctor's schema by `proctor db migrate`.
# The workers' login role gets its password from the environment (deploy/postgres.env), never
# from a committed file; `proctor db migrate --app-login proctor_worker` grants it proctor_app.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v worker_password="$PROCTOR_WORKER_PASSWORD" <<'SQL'
CREATE DATABASE proctor;
CREATE ROLE proctor_worker LOGIN PASSWORD :'worker_password';
SQL

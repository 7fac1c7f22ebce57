-- Proctor's own database beside Temporal's (Temporal's auto-setup creates its own).
CREATE DATABASE proctor;
-- The workers' login role; `proctor db migrate --app-login proctor_worker` grants it proctor_app.
CREATE ROLE proctor_worker LOGIN PASSWORD 'change-me-too';

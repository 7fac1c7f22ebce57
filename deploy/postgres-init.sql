-- Proctor's own database beside Temporal's (Temporal's auto-setup creates its own).
CREATE DATABASE proctor;

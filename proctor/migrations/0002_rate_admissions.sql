-- Rate limits: one row per admitted request, counted per agent over sliding windows.
CREATE TABLE rate_admissions (
    agent_id     TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    action       TEXT NOT NULL,
    escalated    BOOLEAN NOT NULL,
    admitted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, request_id)
);
CREATE INDEX rate_admissions_recent ON rate_admissions (agent_id, admitted_at);

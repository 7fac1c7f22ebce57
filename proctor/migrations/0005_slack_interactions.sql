-- Slack interactions already handled: a replayed or retried payload (same trigger id) is
-- acknowledged and dropped, whichever approvals-app replica receives it.
CREATE TABLE slack_interactions (
    interaction_key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX slack_interactions_received_at ON slack_interactions (received_at);

GRANT SELECT, INSERT, DELETE ON slack_interactions TO proctor_app;

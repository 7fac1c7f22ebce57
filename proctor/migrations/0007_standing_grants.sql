-- Standing grants (issue 17.4): an approval that also covers the same agent and action, under
-- the same rule, for a while. The signed request and votes are kept verbatim (json, not jsonb:
-- the bytes the signatures cover are re-verified on every use); the other columns index them.
CREATE TABLE standing_grants (
    grant_id      TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL,
    action        TEXT NOT NULL,
    rule_id       TEXT NOT NULL,
    policy_file   TEXT,
    made_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    condition     TEXT,           -- the scope's `when` (CEL)
    max_uses      INT CHECK (max_uses >= 1),
    uses          INT NOT NULL DEFAULT 0
                  CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    made_by       TEXT[] NOT NULL,
    workflow_id   TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    request       JSON NOT NULL,
    votes         JSON NOT NULL,
    audit_seq     BIGINT NOT NULL, -- the grant_made row
    revoked_at    TIMESTAMPTZ,
    revoked_by    TEXT,
    revoke_reason TEXT,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);

-- The request path: the live grants of one agent and action, soonest to expire first.
CREATE INDEX standing_grants_live ON standing_grants (agent_id, action, expires_at, grant_id)
    WHERE revoked_at IS NULL;

-- One row per workflow run a grant allowed: a retried judgement of the same run counts once.
CREATE TABLE grant_uses (
    grant_id    TEXT NOT NULL REFERENCES standing_grants (grant_id),
    workflow_id TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    used_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    audit_seq   BIGINT NOT NULL, -- the grant_used row
    PRIMARY KEY (grant_id, workflow_id, run_id)
);

GRANT SELECT, INSERT, UPDATE ON standing_grants TO proctor_app;
GRANT SELECT, INSERT ON grant_uses TO proctor_app;

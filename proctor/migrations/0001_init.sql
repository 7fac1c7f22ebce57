-- Proctor schema v1: agents, the hash-chained audit log, request nonces.

CREATE TABLE agents (
    agent_id        TEXT PRIMARY KEY,
    display_name    TEXT NOT NULL,
    role            TEXT NOT NULL,
    owner           TEXT NOT NULL,
    public_key_pem  TEXT NOT NULL,
    key_algorithm   TEXT NOT NULL CHECK (key_algorithm IN ('rsa-2048', 'ed25519')),
    trust_score     DOUBLE PRECISION NOT NULL DEFAULT 100
                    CHECK (trust_score >= 0 AND trust_score <= 100),
    status          TEXT NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'suspended', 'revoked')),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- seq is assigned by the application under the chain lock (gapless); the primary key is the
-- second line of defence against a fork.
CREATE TABLE audit_log (
    seq              BIGINT PRIMARY KEY CHECK (seq >= 1),
    recorded_at      TIMESTAMPTZ NOT NULL,
    idempotency_key  TEXT NOT NULL UNIQUE,
    workflow_id      TEXT,
    event_type       TEXT NOT NULL,
    agent_id         TEXT,
    action           TEXT,
    actor            TEXT,
    payload          TEXT NOT NULL,  -- the exact RFC 8785 canonical JSON that was hashed
    prev_hash        TEXT NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash             TEXT NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_workflow_idx ON audit_log (workflow_id, seq);
CREATE INDEX audit_log_agent_idx ON audit_log (agent_id, seq);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- One row per (agent, nonce): a replayed request is refused even from another worker.
CREATE TABLE request_nonces (
    agent_id    TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, nonce)
);

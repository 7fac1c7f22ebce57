-- The audit ledger beyond the chain: signed checkpoints, prune tombstones, legal holds,
-- per-subject keys for erasure, and the least-privilege role the application runs as.

-- A signed statement "the chain's row `seq` has hash `hash`". The signing key is not in the
-- database; a copy of each checkpoint also goes to a sink outside it.
CREATE TABLE audit_checkpoints (
    seq         BIGINT PRIMARY KEY CHECK (seq >= 1),
    hash        TEXT NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    key_id      TEXT NOT NULL,
    body        TEXT NOT NULL,   -- the canonical JSON that was signed
    signature   TEXT NOT NULL,   -- base64 Ed25519 signature over body
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Pruning removes a prefix of the chain up to a checkpoint; the signed tombstone says what
-- was there (how many rows, the last hash), so what remains still verifies from it.
CREATE TABLE audit_tombstones (
    upto_seq    BIGINT PRIMARY KEY CHECK (upto_seq >= 1),
    hash        TEXT NOT NULL CHECK (hash ~ '^[0-9a-f]{64}$'),
    key_id      TEXT NOT NULL,
    body        TEXT NOT NULL,
    signature   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TRIGGER audit_checkpoints_no_update_delete BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_tombstones_no_update_delete BEFORE UPDATE OR DELETE ON audit_tombstones
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_tombstones_no_truncate BEFORE TRUNCATE ON audit_tombstones
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

CREATE TABLE audit_legal_holds (
    hold_id      BIGSERIAL PRIMARY KEY,
    reason       TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    placed_by    TEXT NOT NULL,
    placed_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    released_by  TEXT,
    released_at  TIMESTAMPTZ
);

-- One data key per data subject (AES-256-GCM, wrapped by the worker's key-encryption key).
-- Deleting the row is the erasure: the audit rows keep their ciphertext and still verify.
CREATE TABLE audit_subject_keys (
    subject_ref  TEXT PRIMARY KEY,  -- HMAC of the subject id, never the id itself
    wrapped_key  BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Prune: the only way rows leave audit_log. It deletes a prefix covered by a tombstone,
-- refuses while a legal hold is active, and runs as the table owner.
CREATE FUNCTION audit_log_refuse_change_unless_pruning() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('proctor.pruning_upto', true) IS NOT NULL
       AND current_setting('proctor.pruning_upto', true) <> ''
       AND OLD.seq <= current_setting('proctor.pruning_upto', true)::bigint
       AND EXISTS (SELECT 1 FROM audit_tombstones WHERE upto_seq >= OLD.seq) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER audit_log_no_update_delete ON audit_log;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change_unless_pruning();

CREATE FUNCTION proctor_prune_audit(upto BIGINT) RETURNS BIGINT
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    removed BIGINT;
BEGIN
    IF EXISTS (SELECT 1 FROM audit_legal_holds WHERE released_at IS NULL) THEN
        RAISE EXCEPTION 'a legal hold is active: pruning refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM audit_tombstones WHERE upto_seq = upto) THEN
        RAISE EXCEPTION 'no tombstone at seq %: pruning refused', upto
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM set_config('proctor.pruning_upto', upto::text, true);
    DELETE FROM audit_log WHERE seq <= upto;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('proctor.pruning_upto', '', true);
    RETURN removed;
END $$;

-- Roles: the application appends and reads; it can neither rewrite nor prune the ledger.
-- Roles are cluster-wide, so creating them tolerates another database having done it first.
DO $$
BEGIN
    BEGIN
        CREATE ROLE proctor_app NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE proctor_admin NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
END $$;

GRANT USAGE ON SCHEMA public TO proctor_app, proctor_admin;
GRANT SELECT, INSERT ON audit_log, audit_checkpoints, audit_tombstones TO proctor_app;
GRANT SELECT ON schema_migrations, audit_legal_holds TO proctor_app;
GRANT SELECT, INSERT ON audit_subject_keys TO proctor_app;
GRANT SELECT, INSERT, UPDATE ON agents TO proctor_app;
GRANT SELECT, INSERT, DELETE ON request_nonces, rate_admissions TO proctor_app;
GRANT proctor_app TO proctor_admin;
GRANT SELECT, INSERT, UPDATE ON audit_legal_holds TO proctor_admin;
GRANT USAGE ON SEQUENCE audit_legal_holds_hold_id_seq TO proctor_admin;
GRANT DELETE ON audit_subject_keys TO proctor_admin;
REVOKE ALL ON FUNCTION proctor_prune_audit(BIGINT) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION proctor_prune_audit(BIGINT) TO proctor_admin;

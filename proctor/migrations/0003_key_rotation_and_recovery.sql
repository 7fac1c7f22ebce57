-- Key rotation with a grace period, and trust recovery (autonomy blocked until the score
-- climbs back to the policy's recovery threshold).
ALTER TABLE agents
    ADD COLUMN previous_public_key_pem TEXT,
    ADD COLUMN previous_key_algorithm TEXT
        CHECK (previous_key_algorithm IN ('rsa-2048', 'ed25519')),
    ADD COLUMN previous_key_valid_until TIMESTAMPTZ,
    ADD COLUMN autonomy_blocked BOOLEAN NOT NULL DEFAULT false;

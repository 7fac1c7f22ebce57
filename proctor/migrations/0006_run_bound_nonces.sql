-- A nonce belongs to exactly one workflow run: a second run of the same workflow id (started
-- again after the first closed) or any other workflow is refused, and nothing executes.
-- The request's digest tells a byte-identical copy (someone replaying a genuine request:
-- never charged to the agent) from a new request reusing a nonce (the agent's own doing).
ALTER TABLE request_nonces ADD COLUMN run_id TEXT;
ALTER TABLE request_nonces ADD COLUMN request_digest TEXT;

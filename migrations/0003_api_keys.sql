-- agentry schema v3: API keys for agents and users.
--
-- A key is `agk_<id>_<secret>`: the id finds the row, the secret (256 bits,
-- shown once at creation) is stored only as its SHA-256 and compared in
-- constant time.

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,                  -- 16 lower-case hex characters
    agent_id     TEXT REFERENCES agents(id) ON DELETE CASCADE,
    user_id      TEXT REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL DEFAULT '',
    secret_hash  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER,
    CHECK ((agent_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX api_keys_agent ON api_keys(agent_id);
CREATE INDEX api_keys_user ON api_keys(user_id);

-- agentry schema v15: private_key_jwt client authentication (RFC 7523).

-- The public keys an agent signs its client assertions with (a JWK Set).
CREATE TABLE agent_jwks (
    agent_id   TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    jwks       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Assertion ids already used: each assertion is good once. Kept until the
-- assertion would have expired.
CREATE TABLE client_assertion_jtis (
    jti        TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX client_assertion_jtis_expires ON client_assertion_jtis(expires_at);

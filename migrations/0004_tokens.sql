-- agentry schema v4: JWT signing keys, revoked tokens, quarantine cut-off.

-- Ed25519 signing keys. The private seed is stored encrypted (AES-256-GCM
-- under a key derived from the master key, the kid as associated data).
-- A retired key no longer signs but stays in the JWKS until every token it
-- signed has expired (publish_until).
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    alg           TEXT NOT NULL DEFAULT 'EdDSA',
    public_key    TEXT NOT NULL,                 -- base64url of the 32-byte key (JWK "x")
    private_key   TEXT NOT NULL,                 -- base64 of nonce || ciphertext || tag
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER
);

-- Revoked access tokens (RFC 7009), kept until they would have expired.
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens(expires_at);

-- Tokens of an agent issued before this time are void (quarantine).
ALTER TABLE agents ADD COLUMN tokens_not_before INTEGER;

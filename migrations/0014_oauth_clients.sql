-- agentry schema v14: OAuth clients, consents, authorization codes and
-- refresh tokens (agentry as the authorization server of MCP clients).

-- Clients that sign users in. `id` is the client_id: opaque for clients
-- an admin or dynamic registration made, the https URL for a client ID
-- metadata document. A confidential client's secret is stored as its
-- SHA-256 (it is 256 random bits: fast to check, useless to a reader).
CREATE TABLE oauth_clients (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    registration    TEXT NOT NULL,        -- admin | metadata_document | dynamic
    auth_method     TEXT NOT NULL,        -- none | client_secret_basic | client_secret_post
    secret_hash     TEXT,
    redirect_uris   TEXT NOT NULL,        -- JSON array
    client_uri      TEXT,
    registered_from TEXT,                 -- the address a dynamic registration came from
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    CHECK ((auth_method = 'none') = (secret_hash IS NULL))
);

-- What a user allowed a client: remembered per user, client, resource and
-- scope set until revoked (revoking deletes the row, its codes and its
-- refresh tokens).
CREATE TABLE oauth_grants (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id    TEXT NOT NULL REFERENCES oauth_clients(id) ON DELETE CASCADE,
    resource     TEXT NOT NULL,
    scope        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    UNIQUE (user_id, client_id, resource, scope)
);

-- Authorization codes (stored hashed): single use, short-lived. A redeemed
-- code keeps what it issued so that a second use can revoke it.
CREATE TABLE oauth_codes (
    code_hash         TEXT PRIMARY KEY,
    grant_id          TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    redirect_uri      TEXT NOT NULL,
    code_challenge    TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    used_at           INTEGER,
    family_id         TEXT,
    access_jti        TEXT,
    access_expires_at INTEGER
);
CREATE INDEX oauth_codes_expires ON oauth_codes(expires_at);

-- Refresh tokens (stored hashed), in families: each use replaces the token
-- with a new one of the same family; a replaced token used again revokes
-- the family.
CREATE TABLE oauth_refresh_tokens (
    token_hash        TEXT PRIMARY KEY,
    family_id         TEXT NOT NULL,
    grant_id          TEXT NOT NULL REFERENCES oauth_grants(id) ON DELETE CASCADE,
    scope             TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    family_created_at INTEGER NOT NULL,
    rotated_at        INTEGER,
    revoked_at        INTEGER
);
CREATE INDEX oauth_refresh_family ON oauth_refresh_tokens(family_id);
CREATE INDEX oauth_refresh_grant ON oauth_refresh_tokens(grant_id);

-- agentry schema v1: principals, roles, sessions.
-- Times are INTEGER milliseconds since the Unix epoch (UTC).
-- Ids are opaque TEXT (UUIDv7, so they sort by creation time).

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name        TEXT NOT NULL DEFAULT '',
    email               TEXT,
    password_hash       TEXT NOT NULL,          -- argon2id PHC string, never the password
    enabled             INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    locked_until        INTEGER,                -- set by the brute-force lockout
    password_changed_at INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

-- One row per failed password login, for the sliding lockout window.
CREATE TABLE login_failures (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    failed_at INTEGER NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(user_id, failed_at);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    agent_type  TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Browser sessions. The cookie carries a 256-bit random token; only its
-- SHA-256 is stored, so a database leak does not leak live sessions.
CREATE TABLE sessions (
    token_hash   TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,              -- absolute lifetime
    source_ip    TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expires ON sessions(expires_at);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    system      INTEGER NOT NULL DEFAULT 0 CHECK (system IN (0, 1)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE role_permissions (
    role    TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE ON UPDATE CASCADE,
    pattern TEXT NOT NULL,
    PRIMARY KEY (role, pattern)
);

CREATE TABLE role_inherits (
    role   TEXT NOT NULL REFERENCES roles(name) ON DELETE CASCADE ON UPDATE CASCADE,
    parent TEXT NOT NULL REFERENCES roles(name) ON DELETE RESTRICT ON UPDATE CASCADE,
    PRIMARY KEY (role, parent),
    CHECK (role <> parent)
);

-- A role bound to exactly one user or one agent, optionally scoped to
-- resources of one type whose id matches a glob.
CREATE TABLE role_assignments (
    id               TEXT PRIMARY KEY,
    role             TEXT NOT NULL REFERENCES roles(name) ON DELETE RESTRICT ON UPDATE CASCADE,
    user_id          TEXT REFERENCES users(id) ON DELETE CASCADE,
    agent_id         TEXT REFERENCES agents(id) ON DELETE CASCADE,
    scope_type       TEXT,
    scope_pattern    TEXT,
    created_at       INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (agent_id IS NULL)),
    CHECK ((scope_type IS NULL) = (scope_pattern IS NULL))
);
CREATE INDEX role_assignments_user ON role_assignments(user_id);
CREATE INDEX role_assignments_agent ON role_assignments(agent_id);
CREATE UNIQUE INDEX role_assignments_unique ON role_assignments(
    role, COALESCE(user_id, ''), COALESCE(agent_id, ''), COALESCE(scope_type, ''), COALESCE(scope_pattern, '')
);

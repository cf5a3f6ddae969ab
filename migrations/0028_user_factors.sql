-- agentry schema v28: second factors and single sign-on (SPEC §16).
--
-- A factor's secret (a TOTP key, a passkey's public credential and
-- counter) is sealed under the keyring (classification "restricted",
-- bound to the factor's id); it counts once confirmed (TOTP: with a first
-- code). The last TOTP step accepted is kept so that each code works once.
-- A passkey's credential id is kept in the clear (it is public: the
-- browser sends it) so that a password-less sign-in finds its user.
CREATE TABLE user_factors (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('totp', 'passkey')),
    label         TEXT NOT NULL,
    secret        TEXT NOT NULL,              -- sealed package (JSON)
    credential_id TEXT,                       -- passkey: base64url credential id
    confirmed_at  INTEGER,                    -- NULL while enrolment is pending
    last_step     INTEGER,                    -- TOTP: the last step accepted
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX user_factors_user ON user_factors(user_id);
CREATE UNIQUE INDEX user_factors_credential ON user_factors(credential_id)
    WHERE credential_id IS NOT NULL;

-- Recovery codes: ten per user, each usable once, only their SHA-256 kept
-- (they are 60 random bits, so a fast hash is enough).
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- A session is full, or a sign-in half done: the password was right and a
-- second factor is still to be given ('second_factor'), or the user must
-- enrol one before anything else ('enrol'). Half-done sessions live minutes.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full'
    CHECK (stage IN ('full', 'second_factor', 'enrol'));

-- Users signed in through an OpenID Connect provider are matched by the
-- provider's subject, never by name or email.
ALTER TABLE users ADD COLUMN oidc_subject TEXT;
CREATE UNIQUE INDEX users_oidc_subject ON users(oidc_subject) WHERE oidc_subject IS NOT NULL;

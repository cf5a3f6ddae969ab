-- agentry schema v28: users' second factors (SPEC §16). A TOTP factor's
-- secret is sealed under the keyring (classification "restricted", bound
-- to the factor's id); it counts once confirmed with a first code. The
-- last step accepted is kept so that each code works once.
CREATE TABLE user_factors (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('totp', 'passkey')),
    label        TEXT NOT NULL,
    secret       TEXT NOT NULL,              -- sealed package (JSON)
    confirmed_at INTEGER,                    -- NULL while enrolment is pending
    last_step    INTEGER,                    -- TOTP: the last step accepted
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX user_factors_user ON user_factors(user_id);

-- agentry schema v5: the encryption service's key rings.
--
-- Each classification has versions of a 256-bit data key. Keys are stored
-- wrapped: AES-256-GCM under a key derived from the master key, with the
-- key id and version as associated data, so a wrapped key cannot be moved
-- to another row. Encryption uses the newest version; decryption any
-- version at or above min_decryption_version.

CREATE TABLE key_rings (
    classification         TEXT PRIMARY KEY,
    min_decryption_version INTEGER NOT NULL DEFAULT 1,
    -- Decrypting needs crypto:decrypt:<classification>; crypto:decrypt alone is not enough.
    requires_specific      INTEGER NOT NULL DEFAULT 0 CHECK (requires_specific IN (0, 1)),
    created_at             INTEGER NOT NULL
);

CREATE TABLE data_keys (
    key_id         TEXT PRIMARY KEY,
    classification TEXT NOT NULL REFERENCES key_rings(classification) ON DELETE RESTRICT,
    version        INTEGER NOT NULL,
    wrapped        TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (classification, version)
);

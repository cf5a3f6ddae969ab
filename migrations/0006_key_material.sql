-- agentry schema v6: the appliance's own keys, the master key check value,
-- encryption counts and scheduled rotation of key rings.

-- Keys the appliance needs across master key rotations (the audit chain
-- MAC key, the CSRF token key), sealed under a key derived from the master
-- key with the row name as associated data; and `master-key-check`, a
-- one-way value derived from the master key, so that starting with another
-- master key is refused with a clear error instead of failing later.
CREATE TABLE key_material (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Encryptions reserved under each data key version, persisted ahead of use
-- in blocks (a crash can only over-count), so a version is rotated before
-- it reaches 2^32 encryptions.
ALTER TABLE data_keys ADD COLUMN encryptions INTEGER NOT NULL DEFAULT 0;

-- Days between scheduled rotations of a classification: NULL follows
-- `encryption.rotation_days` from the configuration, 0 never rotates.
ALTER TABLE key_rings ADD COLUMN rotation_days INTEGER CHECK (rotation_days IS NULL OR rotation_days >= 0);

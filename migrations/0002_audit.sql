-- agentry schema v2: the tamper-evident audit log.
--
-- Each record's `hash` is HMAC-SHA256 (key derived from the master key) over
-- its canonical content and `prev_hash`, the previous record's hash. Records
-- are only ever appended by the audit writer; retention deletes the oldest
-- ones after moving the checkpoint past them, so the chain still verifies.

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY,            -- 1, 2, 3, ... without gaps
    at          INTEGER NOT NULL,               -- ms since the epoch
    actor_type  TEXT NOT NULL,                  -- user | agent | system | anonymous
    actor_id    TEXT,
    actor_name  TEXT,
    action      TEXT NOT NULL,                  -- e.g. auth.login, user.create
    target_type TEXT,
    target_id   TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied', 'error')),
    reason      TEXT,
    source_ip   TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    details     TEXT NOT NULL DEFAULT '{}',     -- JSON object, never a secret
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_actor ON audit_log(actor_id);
CREATE INDEX audit_log_action ON audit_log(action);
-- No index on target_id on purpose: target ids are high-cardinality, and an
-- index on them halves append throughput (every batch dirties a page per
-- record). Target searches walk the log newest-first instead.

-- Where the retained chain starts: the seq and hash of the newest pruned
-- record, MAC'd so that it cannot be moved to hide deleted records.
CREATE TABLE audit_checkpoint (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    mac        TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

-- Guard rails against bugs (not against an attacker with the file, which
-- the keyed chain is for): no record is ever changed, and only records at
-- or before the checkpoint may be deleted.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > COALESCE((SELECT seq FROM audit_checkpoint WHERE id = 1), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit records are deleted only by retention, behind the checkpoint');
END;

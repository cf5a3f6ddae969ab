-- agentry schema v29: human approval of risky calls (SPEC §18).
--
-- A rule says which gateway calls (server, tool glob) or decision-API
-- checks (permission) wait for a person holding approver_role. Its version
-- grows with every change: an approval is bound to the version it was
-- asked under.
CREATE TABLE approval_rules (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    server            TEXT NOT NULL,          -- an MCP server's name, or '*'
    tools             TEXT NOT NULL,          -- a glob of tool names
    permission        TEXT,                   -- decision-API checks of it, if set
    approver_role     TEXT NOT NULL,
    timeout_seconds   INTEGER NOT NULL,
    channels          TEXT NOT NULL DEFAULT '[]',  -- JSON list of channel names
    escalation_policy TEXT,
    version           INTEGER NOT NULL DEFAULT 1,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- A request for approval: bound to who asks, where, which tool, the digest
-- of the exact arguments (RFC 8785 canonical JSON, SHA-256) and the rule
-- version; the arguments themselves are sealed (shown to approvers only).
-- Used once: an approved request becomes 'used' when its call goes ahead.
CREATE TABLE approvals (
    id               TEXT PRIMARY KEY,
    rule_id          TEXT NOT NULL REFERENCES approval_rules(id) ON DELETE CASCADE,
    rule_version     INTEGER NOT NULL,
    principal_type   TEXT NOT NULL CHECK (principal_type IN ('user', 'agent')),
    principal_id     TEXT NOT NULL,
    client_id        TEXT,
    server           TEXT NOT NULL,
    tool             TEXT NOT NULL,
    arguments        TEXT NOT NULL,           -- sealed package (JSON)
    arguments_digest TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'expired', 'used')),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    decided_at       INTEGER,
    decided_by_type  TEXT,
    decided_by_id    TEXT,
    reason           TEXT,
    used_at          INTEGER
);
CREATE INDEX approvals_open ON approvals(state, expires_at);
CREATE INDEX approvals_binding ON approvals(principal_id, server, tool, arguments_digest);
CREATE INDEX approvals_by_time ON approvals(created_at);

-- An approval request notifies its rule's channels through the outbox:
-- notifications gain the kind 'approval' and the request they tell of.
-- (SQLite cannot change a CHECK in place: the table is rebuilt.)
CREATE TABLE notifications_v29 (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT REFERENCES alerts (id) ON DELETE SET NULL,
    approval_id     TEXT REFERENCES approvals (id) ON DELETE SET NULL,
    channel_id      TEXT,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('firing', 'resolved', 'acknowledged', 'test', 'approval')),
    message         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
INSERT INTO notifications_v29 (id, alert_id, channel_id, channel, kind, message, status, attempts,
                               next_attempt_at, last_error, created_at, delivered_at)
    SELECT id, alert_id, channel_id, channel, kind, message, status, attempts,
           next_attempt_at, last_error, created_at, delivered_at
    FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_v29 RENAME TO notifications;
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_by_alert ON notifications (alert_id);
CREATE INDEX notifications_by_time ON notifications (created_at);
CREATE INDEX notifications_by_approval ON notifications (approval_id);

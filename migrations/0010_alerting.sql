-- agentry schema v10: alerting and notification (SPEC §8).
--
-- Rules, escalation policies and channels are configuration; alerts, their
-- events and notifications are history. Alert rows outlive their rule (no
-- foreign key), so a deleted rule's past stays browsable.

CREATE TABLE alert_rules (
    name              TEXT PRIMARY KEY,
    expression        TEXT NOT NULL,
    severity          TEXT NOT NULL CHECK (severity IN ('critical', 'major', 'minor', 'warning', 'info')),
    channels          TEXT NOT NULL,            -- JSON array of channel names
    escalation_policy TEXT,                     -- policy name, or NULL: notify `channels` once
    labels            TEXT NOT NULL,            -- JSON object
    annotations       TEXT NOT NULL,            -- JSON object, may hold {{ $labels.x }} / {{ $value }}
    enabled           INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

-- Steps are JSON: [{"after_seconds": 0, "channels": ["@rule"], "quarantine_agent": false}];
-- "@rule" stands for the channels of the rule that fired.
CREATE TABLE escalation_policies (
    name           TEXT PRIMARY KEY,
    description    TEXT NOT NULL,
    steps          TEXT NOT NULL,
    repeat_seconds INTEGER,                     -- NULL: no repeat after the last step
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- `settings` is the part of a channel's settings that is not secret;
-- `secrets` is an envelope package (classification `restricted`, context
-- `channel:<id>`) of the rest: SMTP password, Slack URL, PagerDuty routing
-- key, webhook signing secret.
CREATE TABLE channels (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    type       TEXT NOT NULL CHECK (type IN ('email', 'slack', 'pagerduty', 'webhook')),
    settings   TEXT NOT NULL,
    secrets    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE alerts (
    id               TEXT PRIMARY KEY,
    rule             TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    labels           TEXT NOT NULL,
    annotations      TEXT NOT NULL,
    severity         TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved', 'inactive')),
    value            TEXT,
    active_since     INTEGER NOT NULL,          -- since when the condition holds
    fired_at         INTEGER,
    resolved_at      INTEGER,
    last_eval_at     INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    acknowledged_by  TEXT,
    escalation_step  INTEGER NOT NULL DEFAULT 0, -- index of the next step to run
    next_notify_at   INTEGER,                   -- when that step (or a repeat) is due
    suppressed_by    TEXT,                      -- 'silence:<id>' or 'inhibited:<alert id>' while muted
    updated_at       INTEGER NOT NULL
);
CREATE UNIQUE INDEX alerts_open ON alerts (rule, fingerprint) WHERE state IN ('pending', 'firing');
CREATE INDEX alerts_by_state ON alerts (state, updated_at);
CREATE INDEX alerts_by_time ON alerts (updated_at);

CREATE TABLE alert_events (
    id       INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at       INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX alert_events_by_alert ON alert_events (alert_id, id);

CREATE TABLE silences (
    id         TEXT PRIMARY KEY,
    matchers   TEXT NOT NULL,                   -- JSON [{"name", "op", "value"}]
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expired_at INTEGER                          -- set when ended early by hand
);
CREATE INDEX silences_by_end ON silences (ends_at);

-- The outbox and the notification log in one table: a row is written in
-- the same transaction as the alert change that causes it, before any
-- attempt; its id is the idempotency key receivers see.
CREATE TABLE notifications (
    id              TEXT PRIMARY KEY,
    alert_id        TEXT REFERENCES alerts (id) ON DELETE SET NULL,
    channel_id      TEXT,
    channel         TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('firing', 'resolved', 'acknowledged', 'test')),
    message         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_by_alert ON notifications (alert_id);
CREATE INDEX notifications_by_time ON notifications (created_at);

-- Seeds (SPEC §8).
INSERT INTO escalation_policies (name, description, steps, repeat_seconds, created_at, updated_at) VALUES
 ('immediate', 'All of the rule''s channels at once; repeat every 5 minutes until acknowledged',
  '[{"after_seconds":0,"channels":["@rule"],"quarantine_agent":false}]', 300,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000),
 ('standard', 'The rule''s channels at once; page PagerDuty after 15 minutes unacknowledged; repeat hourly',
  '[{"after_seconds":0,"channels":["@rule"],"quarantine_agent":false},{"after_seconds":900,"channels":["pagerduty"],"quarantine_agent":false}]', 3600,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

INSERT INTO alert_rules (name, expression, severity, channels, escalation_policy, labels, annotations, enabled, created_at, updated_at) VALUES
 ('agent_down', 'agent_health == ''unhealthy'' for 2 minutes', 'critical', '["slack","email","pagerduty"]', 'immediate', '{}',
  '{"summary":"Agent {{ $labels.agent }} instance {{ $labels.instance }} is unhealthy","description":"Health checks of {{ $labels.agent }}/{{ $labels.instance }} have failed for 2 minutes."}', 1,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000),
 ('high_error_rate', 'error_rate > 5% for 5 minutes', 'major', '["slack","email"]', 'standard', '{}',
  '{"summary":"Error rate of {{ $labels.agent }} is {{ $value }}","description":"The error rate has been above 5% for 5 minutes."}', 1,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000),
 ('workflow_failure', 'workflow_success_rate < 90% for 10 minutes', 'major', '["slack","email"]', 'standard', '{}',
  '{"summary":"Workflow {{ $labels.workflow }} succeeds only {{ $value }} of the time","description":"The workflow success rate has been below 90% for 10 minutes."}', 1,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000),
 ('resource_exhaustion', 'cpu_utilization > 90% or memory_utilization > 95% for 3 minutes', 'major', '["slack","email"]', 'standard', '{}',
  '{"summary":"{{ $labels.agent }} is running out of CPU or memory ({{ $value }})","description":"CPU above 90% or memory above 95% for 3 minutes."}', 1,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000),
 ('security_breach', 'failed_auth_attempts > 10 in 1 minute', 'critical', '["slack","email","pagerduty","security_team"]', 'immediate', '{}',
  '{"summary":"{{ $value }} failed authentication attempts in the last minute","description":"Possible brute-force attack: more than 10 failed logins or token requests within one minute."}', 1,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

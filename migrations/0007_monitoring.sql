-- agentry schema v7: agent instances and their health checks.
--
-- An instance is an endpoint of an agent: `http` instances are polled,
-- `heartbeat` instances call in. The checker is the only writer of the
-- state columns; it keeps the streaks in memory and persists them with
-- each batch of results, so a restart resumes where it stopped.

CREATE TABLE instances (
    id                  TEXT PRIMARY KEY,
    agent_id            TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('http', 'heartbeat')),
    url                 TEXT,
    interval_seconds    INTEGER NOT NULL CHECK (interval_seconds >= 5),
    timeout_ms          INTEGER NOT NULL,
    expected_status     TEXT NOT NULL DEFAULT '200-399',
    body_contains       TEXT,
    failure_threshold   INTEGER NOT NULL DEFAULT 3,
    success_threshold   INTEGER NOT NULL DEFAULT 2,
    degraded_latency_ms INTEGER,
    enabled             INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    state               TEXT NOT NULL DEFAULT 'unknown'
                        CHECK (state IN ('unknown', 'healthy', 'degraded', 'unhealthy')),
    state_since         INTEGER,
    -- Consecutive results of each kind, for the thresholds.
    fail_streak         INTEGER NOT NULL DEFAULT 0,
    ok_streak           INTEGER NOT NULL DEFAULT 0,
    slow_streak         INTEGER NOT NULL DEFAULT 0,
    fast_streak         INTEGER NOT NULL DEFAULT 0,
    last_check_at       INTEGER,
    last_latency_ms     INTEGER,
    last_error          TEXT,
    last_heartbeat_at   INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (agent_id, name)
);
CREATE INDEX instances_agent ON instances(agent_id);

-- Every check's result (raw, kept for monitoring.raw_retention_hours).
CREATE TABLE check_results (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,       -- when the check started, ms
    ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
    status_code INTEGER,
    latency_ms  INTEGER,
    error       TEXT
);
CREATE INDEX check_results_instance_at ON check_results(instance_id, at);
CREATE INDEX check_results_at ON check_results(at);

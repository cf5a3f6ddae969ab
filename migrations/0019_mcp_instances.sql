-- agentry schema v19: instances of kind `mcp` (an MCP endpoint probed with
-- initialize + ping), and instances owned by a proxied MCP server rather
-- than an agent (the one each proxied server gets automatically).
--
-- SQLite cannot change a CHECK constraint in place, so `instances` is
-- rebuilt, and with it the two tables that reference it (their references
-- follow the rename of the new table; dropping the old parent first would
-- cascade-delete their rows).

CREATE TABLE instances_v19 (
    id                  TEXT PRIMARY KEY,
    agent_id            TEXT REFERENCES agents(id) ON DELETE CASCADE,
    mcp_server_id       TEXT REFERENCES mcp_servers(id) ON DELETE CASCADE,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL CHECK (kind IN ('http', 'heartbeat', 'mcp')),
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
    -- Exactly one owner.
    CHECK ((agent_id IS NULL) <> (mcp_server_id IS NULL)),
    UNIQUE (agent_id, name),
    UNIQUE (mcp_server_id)
);
INSERT INTO instances_v19 (id, agent_id, mcp_server_id, name, kind, url, interval_seconds, timeout_ms,
    expected_status, body_contains, failure_threshold, success_threshold, degraded_latency_ms, enabled,
    state, state_since, fail_streak, ok_streak, slow_streak, fast_streak, last_check_at, last_latency_ms,
    last_error, last_heartbeat_at, created_at, updated_at)
SELECT id, agent_id, NULL, name, kind, url, interval_seconds, timeout_ms,
    expected_status, body_contains, failure_threshold, success_threshold, degraded_latency_ms, enabled,
    state, state_since, fail_streak, ok_streak, slow_streak, fast_streak, last_check_at, last_latency_ms,
    last_error, last_heartbeat_at, created_at, updated_at
FROM instances;

CREATE TABLE check_results_v19 (
    instance_id TEXT NOT NULL REFERENCES instances_v19(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    ok          INTEGER NOT NULL CHECK (ok IN (0, 1)),
    status_code INTEGER,
    latency_ms  INTEGER,
    error       TEXT
);
INSERT INTO check_results_v19 SELECT instance_id, at, ok, status_code, latency_ms, error FROM check_results;

CREATE TABLE check_rollups_v19 (
    instance_id TEXT NOT NULL REFERENCES instances_v19(id) ON DELETE CASCADE,
    bucket_ms   INTEGER NOT NULL CHECK (bucket_ms IN (60000, 3600000)),
    start       INTEGER NOT NULL,
    checks      INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    p50_ms      INTEGER,
    p95_ms      INTEGER,
    PRIMARY KEY (instance_id, bucket_ms, start)
) WITHOUT ROWID;
INSERT INTO check_rollups_v19 SELECT instance_id, bucket_ms, start, checks, failures, p50_ms, p95_ms
FROM check_rollups;

DROP TABLE check_results;
DROP TABLE check_rollups;
DROP TABLE instances;
ALTER TABLE instances_v19 RENAME TO instances;
ALTER TABLE check_results_v19 RENAME TO check_results;
ALTER TABLE check_rollups_v19 RENAME TO check_rollups;

CREATE INDEX instances_agent ON instances(agent_id);
CREATE INDEX check_results_instance_at ON check_results(instance_id, at);
CREATE INDEX check_results_at ON check_results(at);
CREATE INDEX check_rollups_age ON check_rollups(bucket_ms, start);

-- Every proxied server gets its probe (new ones get it when registered).
INSERT INTO instances (id, agent_id, mcp_server_id, name, kind, url, interval_seconds, timeout_ms,
    enabled, created_at, updated_at)
SELECT lower(hex(randomblob(16))), NULL, id, name, 'mcp', upstream_url, 30, 5000,
    enabled, updated_at, updated_at
FROM mcp_servers WHERE upstream_url IS NOT NULL;

-- agentry schema v9: downsampled health check history.
--
-- Raw results older than monitoring.raw_retention_hours are folded into
-- one row per instance and minute; minute rows older than
-- monitoring.minute_rollup_days into one row per hour; hour rows are kept
-- for monitoring.hour_rollup_days. `checks` always adds up to the number
-- of results folded in.

CREATE TABLE check_rollups (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    bucket_ms   INTEGER NOT NULL CHECK (bucket_ms IN (60000, 3600000)),
    start       INTEGER NOT NULL,
    checks      INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    p50_ms      INTEGER,
    p95_ms      INTEGER,
    PRIMARY KEY (instance_id, bucket_ms, start)
) WITHOUT ROWID;
CREATE INDEX check_rollups_age ON check_rollups(bucket_ms, start);

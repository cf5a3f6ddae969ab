-- agentry schema v8: metrics reported by agents and measured by agentry.
--
-- A series is a metric name, a label set (canonical JSON, keys sorted) and
-- who reported it (a principal id, or `agentry` for its own figures).
-- Samples are keyed by series and time, so a re-sent sample replaces
-- itself instead of piling up.

CREATE TABLE metric_series (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    labels     TEXT NOT NULL,
    reporter   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (name, reporter, labels)
);

CREATE TABLE metric_samples (
    series_id INTEGER NOT NULL REFERENCES metric_series(id) ON DELETE CASCADE,
    at        INTEGER NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (series_id, at)
) WITHOUT ROWID;

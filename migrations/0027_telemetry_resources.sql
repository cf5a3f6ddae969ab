-- agentry schema v27: an OTLP resource (service.name, telemetry.sdk.*,
-- host.*, process.*: often several hundred bytes) is stored once and
-- referenced by its spans and log records, instead of with each of them.
-- Rows stored before keep their own copy (resource_id NULL).
CREATE TABLE telemetry_resources (
    id         INTEGER PRIMARY KEY,
    digest     BLOB NOT NULL UNIQUE,      -- SHA-256 of the attributes' JSON
    attributes TEXT NOT NULL,             -- JSON object
    last_seen  INTEGER NOT NULL           -- ms; dropped with retention
);
ALTER TABLE spans ADD COLUMN resource_id INTEGER;
ALTER TABLE logs ADD COLUMN resource_id INTEGER;

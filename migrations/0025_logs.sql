-- agentry schema v25: log records received over OTLP (SPEC §15) with a word
-- index on their bodies; spans marked where a trace enters the store (the
-- trace list shows those); and what the telemetry store weighs per minute
-- of receipt, so the byte budget is kept without summing every row.

CREATE TABLE logs (
    id            INTEGER PRIMARY KEY,        -- order of receipt
    time_ns       INTEGER NOT NULL,           -- the record's time, else when observed
    severity      INTEGER NOT NULL,           -- OTLP SeverityNumber, 0-24
    severity_text TEXT NOT NULL,
    body          TEXT NOT NULL,              -- a string body as sent; others as JSON
    attributes    TEXT NOT NULL,              -- JSON object
    resource      TEXT NOT NULL,              -- JSON object
    service       TEXT NOT NULL,              -- resource service.name, or ''
    scope         TEXT NOT NULL,
    trace_id      TEXT,                       -- 32 lowercase hex digits
    span_id       TEXT,                       -- 16 lowercase hex digits
    dropped_attributes INTEGER NOT NULL,
    sender        TEXT NOT NULL,              -- the credential's principal id
    received_at   INTEGER NOT NULL,           -- ms
    bytes         INTEGER NOT NULL
);
CREATE INDEX logs_time ON logs(time_ns);
CREATE INDEX logs_service_time ON logs(service, time_ns);
CREATE INDEX logs_trace ON logs(trace_id) WHERE trace_id IS NOT NULL;
CREATE INDEX logs_received ON logs(received_at);

-- Words of the bodies (external content: the text is stored once, in logs).
CREATE VIRTUAL TABLE logs_text USING fts5(body, content='logs', content_rowid='id');
CREATE TRIGGER logs_text_add AFTER INSERT ON logs BEGIN
    INSERT INTO logs_text(rowid, body) VALUES (new.id, new.body);
END;
CREATE TRIGGER logs_text_drop AFTER DELETE ON logs BEGIN
    INSERT INTO logs_text(logs_text, rowid, body) VALUES ('delete', old.id, old.body);
END;

-- A span "enters" the store when its parent is not one of its spans to
-- expect: it has none, or the parent is remote (another process's, as a
-- gateway continuing a caller's traceparent). The trace list reads these.
ALTER TABLE spans ADD COLUMN entry INTEGER NOT NULL DEFAULT 0;
UPDATE spans SET entry = 1 WHERE parent_span_id IS NULL;
DROP INDEX spans_start;
DROP INDEX spans_service_name;
CREATE INDEX spans_entries ON spans(start_ns) WHERE entry = 1;
CREATE INDEX spans_entries_by_service ON spans(service, start_ns) WHERE entry = 1;

CREATE TABLE telemetry_usage (
    minute INTEGER PRIMARY KEY,               -- received_at / 60000
    bytes  INTEGER NOT NULL
);
INSERT INTO telemetry_usage (minute, bytes)
SELECT received_at / 60000, SUM(bytes) FROM spans GROUP BY received_at / 60000;

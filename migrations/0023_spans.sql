-- agentry schema v23: spans received over OTLP (SPEC §15), one row each,
-- bounded by telemetry.retention_hours and telemetry.max_bytes (oldest
-- received first). A span sent again (an exporter's retry) is kept once.

CREATE TABLE spans (
    trace_id       TEXT NOT NULL,              -- 32 lowercase hex digits
    span_id        TEXT NOT NULL,              -- 16 lowercase hex digits
    parent_span_id TEXT,
    service        TEXT NOT NULL,              -- resource service.name, or ''
    name           TEXT NOT NULL,
    kind           INTEGER NOT NULL,           -- OTLP SpanKind
    start_ns       INTEGER NOT NULL,
    end_ns         INTEGER NOT NULL,
    status         INTEGER NOT NULL,           -- 0 unset, 1 ok, 2 error
    status_message TEXT NOT NULL,
    attributes     TEXT NOT NULL,              -- JSON object
    events         TEXT NOT NULL,              -- JSON array
    resource       TEXT NOT NULL,              -- JSON object
    scope          TEXT NOT NULL,
    dropped_attributes INTEGER NOT NULL,
    sender         TEXT NOT NULL,              -- the credential's principal id
    received_at    INTEGER NOT NULL,           -- ms
    bytes          INTEGER NOT NULL,           -- what the row costs, roughly
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX spans_start ON spans(start_ns);
CREATE INDEX spans_service_name ON spans(service, name, start_ns);
CREATE INDEX spans_received ON spans(received_at);

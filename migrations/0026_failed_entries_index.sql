-- agentry schema v26: the failed traces, newest first, for the trace list
-- filtered by status=error (what an on-call engineer opens first). With
-- three statuses an index on (status, start_ns) looks unselective to the
-- planner, which then walks every entry; this index holds the failed ones
-- only, in the order the list reads them.
CREATE INDEX spans_failed_entries ON spans(start_ns) WHERE entry = 1 AND status = 2;

-- agentry schema v22: the audit page's activity chart counts records per
-- hour and outcome; this index answers that from the index alone.
CREATE INDEX audit_log_at_outcome ON audit_log(at, outcome);

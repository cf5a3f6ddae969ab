-- agentry schema v11: failed authentications by time.
--
-- The dashboard, /metrics and the failed_auth_attempts alert metric count
-- failures in the last minutes. Through the action index that read every
-- sign-in and token record ever kept (0.3 s per dashboard view after
-- 158,000 token issuances); this partial index holds failures only, so the
-- count reads a handful of entries however long the log is, and appends of
-- successful records do not touch it.
CREATE INDEX audit_log_failures_at ON audit_log(at) WHERE outcome = 'failure';

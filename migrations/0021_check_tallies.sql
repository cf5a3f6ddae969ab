-- agentry schema v21: checks and failures per instance and hour, kept as
-- results arrive, so a list of every monitor can show each one's last
-- 24 hours and uptimes with one read (the tiers of check_results and
-- check_rollups hold the same counts, but recent hours only as raw rows:
-- 2,880 a day for a monitor checked every 30 s).
--
-- A trigger counts each result as it is written, whatever writes it; the
-- downsampling job folding raw results into rollups does not touch the
-- tallies, and drops those older than monitoring.hour_rollup_days.

CREATE TABLE check_tallies (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    hour        INTEGER NOT NULL,
    checks      INTEGER NOT NULL,
    failures    INTEGER NOT NULL,
    PRIMARY KEY (instance_id, hour)
) WITHOUT ROWID;
CREATE INDEX check_tallies_hour ON check_tallies(hour, instance_id, checks, failures);

CREATE TRIGGER check_results_tally AFTER INSERT ON check_results
BEGIN
    INSERT INTO check_tallies (instance_id, hour, checks, failures)
    VALUES (NEW.instance_id, NEW.at - NEW.at % 3600000, 1, CASE WHEN NEW.ok THEN 0 ELSE 1 END)
    ON CONFLICT (instance_id, hour) DO UPDATE SET
        checks = checks + 1,
        failures = failures + excluded.failures;
END;

-- What is already stored, from every tier: raw results, minute and hour
-- rollups (a given check is in exactly one of them).
INSERT INTO check_tallies (instance_id, hour, checks, failures)
SELECT instance_id, hour, SUM(checks), SUM(failures) FROM (
    SELECT instance_id, at - at % 3600000 AS hour, 1 AS checks, CASE WHEN ok THEN 0 ELSE 1 END AS failures
    FROM check_results
    UNION ALL
    SELECT instance_id, start - start % 3600000, checks, failures FROM check_rollups
)
GROUP BY instance_id, hour;

-- agentry schema v24: the agent_service system role sends traces and logs
-- (telemetry:write), as it reports metrics. A fresh install gets it from
-- the seed; an existing one here, when the role is still the system one.
INSERT OR IGNORE INTO role_permissions (role, pattern)
SELECT name, 'telemetry:write' FROM roles WHERE name = 'agent_service' AND system = 1;

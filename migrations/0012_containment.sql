-- agentry schema v12: containment that holds everywhere.

-- Agent names are unique ignoring case, as user names are (`SVC-AGENT`
-- beside `svc-agent` reads as one agent in logs and pages). Databases made
-- before this rule may hold names that differ only in case: every such
-- agent but the oldest is renamed to `<name>-<last 12 characters of its
-- id>` so the index can be built; the rename keeps the id, keys, roles and
-- audit history, and an admin can pick a better name afterwards.
UPDATE agents
   SET name = substr(name, 1, 51) || '-' || substr(id, -12)
 WHERE EXISTS (
       SELECT 1 FROM agents older
        WHERE lower(older.name) = lower(agents.name)
          AND (older.created_at < agents.created_at
               OR (older.created_at = agents.created_at AND older.id < agents.id)));
CREATE UNIQUE INDEX agents_name_nocase ON agents(name COLLATE NOCASE);

-- When the agent was quarantined (cleared when it is enabled again), so a
-- decision about it can say why it is refused.
ALTER TABLE agents ADD COLUMN quarantined_at INTEGER;

-- Tokens of a user issued before this time are void: set when the user is
-- disabled, and kept when the user is enabled again (agents have had the
-- same column since v4).
ALTER TABLE users ADD COLUMN tokens_not_before INTEGER;

-- agentry schema v13: MCP servers as registered resources.

-- An MCP server agentry issues tokens for. `uri` is the canonical resource
-- URI clients use (the `aud` of its tokens); it is NULL for a server that
-- agentry proxies (`upstream_url` set), whose URI is agentry's own
-- `{public_url}/mcp/{name}` and follows the configured public URL.
CREATE TABLE mcp_servers (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    uri              TEXT,
    upstream_url     TEXT,
    agent_id         TEXT REFERENCES agents(id) ON DELETE SET NULL,
    description      TEXT NOT NULL DEFAULT '',
    scopes_supported TEXT NOT NULL DEFAULT '[]',   -- JSON array of permission patterns
    enabled          INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    CHECK ((uri IS NULL) <> (upstream_url IS NULL))
);
CREATE UNIQUE INDEX mcp_servers_name ON mcp_servers(name COLLATE NOCASE);
CREATE UNIQUE INDEX mcp_servers_uri ON mcp_servers(uri) WHERE uri IS NOT NULL;

-- agentry schema v17: the gateway's settings of a proxied MCP server.

-- Calls per minute one principal may make to the server (NULL: no limit).
ALTER TABLE mcp_servers ADD COLUMN calls_per_minute INTEGER;
-- Per-tool settings, a JSON object: tool name -> {permission,
-- record_arguments, classification, calls_per_minute}.
ALTER TABLE mcp_servers ADD COLUMN tools TEXT NOT NULL DEFAULT '{}';
-- Headers sent to the upstream (a static credential), as an envelope
-- package of the `restricted` classification; NULL: none. Their names are
-- kept apart, in clear, for display.
ALTER TABLE mcp_servers ADD COLUMN upstream_headers TEXT;
ALTER TABLE mcp_servers ADD COLUMN upstream_header_names TEXT NOT NULL DEFAULT '[]';

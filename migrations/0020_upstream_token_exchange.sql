-- agentry schema v20: a proxied MCP server's upstream credential may be a
-- token exchanged (RFC 8693) per caller for this resource URI, instead of
-- (or beside) static headers. NULL: no exchange.
ALTER TABLE mcp_servers ADD COLUMN upstream_token_exchange TEXT;

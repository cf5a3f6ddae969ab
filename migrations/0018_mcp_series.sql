-- agentry schema v18: the gateway's alert series and an example rule.
--
-- The mcp_tool_* series are computed from the tool-call records of the
-- audit log over a recent window: an index by action and time keeps that
-- read to the window's records.
CREATE INDEX audit_log_action_at ON audit_log(action, at);

-- An example, disabled: enable it (or copy it) once the gateway carries
-- traffic worth alerting on.
INSERT INTO alert_rules (name, expression, severity, channels, escalation_policy, labels, annotations, enabled, created_at, updated_at) VALUES
 ('mcp_tool_errors', 'mcp_tool_error_rate > 5% for 5 minutes', 'major', '["slack","email"]', 'standard', '{}',
  '{"summary":"Tool {{ $labels.tool }} of MCP server {{ $labels.server }} fails {{ $value }} of its calls","description":"More than 5% of the calls to this tool through the gateway have ended in an error (tool error, JSON-RPC error or upstream failure) for 5 minutes."}', 0,
  CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);

//! `[telemetry]`: what the OTLP receiver takes, and how much it keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::check::{invalid, within};
use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Spans and log records older than this are dropped (1-8760 hours).
    pub retention_hours: u32,
    /// The stored spans and log records are kept under this many bytes,
    /// oldest dropped first (1 MiB - 1 TiB).
    pub max_bytes: u64,
    /// Largest OTLP request body as sent (65536-268435456 bytes); 413 beyond.
    pub max_body_bytes: usize,
    /// Largest OTLP request body once decompressed (65536-1073741824
    /// bytes, at least `max_body_bytes`); 413 beyond.
    pub max_decompressed_bytes: usize,
    /// Spans, log records or data points in one request (1-100000); a
    /// request with more is refused whole (413).
    pub max_items: usize,
    /// Attributes kept per span, event or log record (1-1024); the rest are
    /// dropped and counted in `dropped_attributes_count`.
    pub max_attributes: usize,
    /// Longest attribute value kept, in bytes (256-1048576); longer ones
    /// are truncated at a character boundary.
    pub max_attribute_value_bytes: usize,
    /// An OTLP/HTTP receiver (an OpenTelemetry Collector) that everything
    /// received is re-exported to, as protobuf at `<url>/v1/traces`,
    /// `/v1/logs` and `/v1/metrics`; empty: none.
    pub forward_otlp_url: String,
    /// Headers sent with every re-export (an API key of the receiver).
    pub forward_headers: BTreeMap<String, String>,
    /// Re-exports waiting (or being retried) are kept under this many
    /// bytes, the oldest dropped first (1 MiB - 1 GiB).
    pub forward_queue_bytes: usize,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            retention_hours: 72,
            max_bytes: 1024 * 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_items: 10_000,
            max_attributes: 128,
            max_attribute_value_bytes: 16 * 1024,
            forward_otlp_url: String::new(),
            forward_headers: BTreeMap::new(),
            forward_queue_bytes: 64 * 1024 * 1024,
        }
    }
}

impl TelemetryConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        within("telemetry.retention_hours", self.retention_hours, 1..=8760)?;
        within(
            "telemetry.max_bytes",
            self.max_bytes,
            1024 * 1024..=1024 * 1024 * 1024 * 1024,
        )?;
        within(
            "telemetry.max_body_bytes",
            self.max_body_bytes,
            65_536..=268_435_456,
        )?;
        within(
            "telemetry.max_decompressed_bytes",
            self.max_decompressed_bytes,
            self.max_body_bytes.max(65_536)..=1_073_741_824,
        )?;
        within("telemetry.max_items", self.max_items, 1..=100_000)?;
        within("telemetry.max_attributes", self.max_attributes, 1..=1024)?;
        within(
            "telemetry.max_attribute_value_bytes",
            self.max_attribute_value_bytes,
            256..=1_048_576,
        )?;
        within(
            "telemetry.forward_queue_bytes",
            self.forward_queue_bytes,
            1024 * 1024..=1024 * 1024 * 1024,
        )?;
        if !self.forward_otlp_url.is_empty() {
            crate::net::validate_url(&self.forward_otlp_url)
                .map_err(|e| invalid("telemetry.forward_otlp_url", e))?;
        }
        if self.forward_headers.len() > 32 {
            return Err(invalid("telemetry.forward_headers", "at most 32 headers"));
        }
        for (name, value) in &self.forward_headers {
            let ok_name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok();
            let ok_value = reqwest::header::HeaderValue::from_str(value).is_ok();
            if !ok_name || !ok_value || value.len() > 8192 {
                return Err(invalid(
                    "telemetry.forward_headers",
                    format!("{name:?} is not a valid header name, or its value is not a valid header value"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarding_settings_are_checked_and_named() {
        let ok = TelemetryConfig {
            forward_otlp_url: "http://127.0.0.1:4318".into(),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        for (url, headers) in [
            ("ftp://collector", vec![]),
            ("http://user:pw@collector:4318", vec![]),
            ("http://collector:4318", vec![("bad name", "v")]),
            ("http://collector:4318", vec![("X-Key", "line\nbreak")]),
        ] {
            let c = TelemetryConfig {
                forward_otlp_url: url.into(),
                forward_headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            };
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("telemetry.forward"), "{url}: {e}");
        }
    }
}

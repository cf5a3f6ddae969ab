//! `[telemetry]`: what the OTLP receiver takes, and how much it keeps.

use serde::{Deserialize, Serialize};

use super::check::within;
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
        )
    }
}

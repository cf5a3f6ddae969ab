//! Traces (and, to come, logs) received over OTLP/HTTP (SPEC §15): decoding
//! with the OpenTelemetry project's generated types, limits, and the store.

pub mod attributes;
pub mod traces;

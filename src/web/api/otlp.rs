//! The OTLP/HTTP receiver (SPEC §15): `POST /v1/traces`, `/v1/logs` and
//! `/v1/metrics` as the OpenTelemetry SDK exporters and the Collector send
//! them: protobuf or JSON, optionally gzip-compressed, from a credential
//! holding `telemetry:write`.
//! The answer is OTLP's: 200 with a partial success naming what was
//! refused, or a 4xx for a request that cannot be read at all.

use std::io::Read;

use actix_web::http::{header, StatusCode};
use actix_web::{post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::config::TelemetryConfig;
use crate::rbac::Permission;
use crate::telemetry::{self, attributes::Bounds, forward::Signal, Window};
use crate::web::auth::Caller;
use crate::web::problem::ApiError;
use crate::web::state::{self, WebState};

/// How a request's body is written, and so its answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

fn encoding_of(req: &HttpRequest) -> Result<Encoding, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let base = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "OTLP/HTTP takes application/x-protobuf or application/json",
        )),
    }
}

fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request {what} more than {limit} bytes"),
    )
}

/// The body as sent (at most `max_body_bytes`), then decompressed (at
/// most `max_decompressed_bytes`) when it says gzip.
async fn body_of(
    req: &HttpRequest,
    mut payload: web::Payload,
    st: &WebState,
) -> Result<Vec<u8>, ApiError> {
    let limits = &st.config.telemetry;
    let mut raw = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("bad_body", e.to_string()))?;
        if raw.len() + chunk.len() > limits.max_body_bytes {
            return Err(too_large("body is", limits.max_body_bytes));
        }
        raw.extend_from_slice(&chunk);
    }
    let coding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" => {
            let cap = limits.max_decompressed_bytes;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(raw.as_slice())
                .take(cap as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::bad_request("bad_body", format!("not gzip: {e}")))?;
            if out.len() > cap {
                return Err(too_large("body decompresses to", cap));
            }
            Ok(out)
        }
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_encoding",
            format!("Content-Encoding {other} is not accepted: send gzip or nothing"),
        )),
    }
}

/// An OTLP answer in the request's encoding. Without a partial success
/// the JSON answer is `{}`, not a null field.
fn answer<M: Message + serde::Serialize>(enc: Encoding, resp: &M, partial: bool) -> HttpResponse {
    match enc {
        Encoding::Protobuf => HttpResponse::Ok()
            .content_type("application/x-protobuf")
            .body(resp.encode_to_vec()),
        Encoding::Json if partial => HttpResponse::Ok().json(resp),
        Encoding::Json => HttpResponse::Ok().json(serde_json::json!({})),
    }
}

/// What a signal's export and its items are called in messages.
fn names(signal: Signal) -> (&'static str, &'static str) {
    match signal {
        Signal::Traces => ("trace export", "spans"),
        Signal::Logs => ("log export", "log records"),
        Signal::Metrics => ("metric export", "data points"),
    }
}

/// The export of `signal` in a request: the caller checked for
/// `telemetry:write`, the body read within the limits and decoded, its
/// items (`count`) within the limit, and handed to the forwarder as it
/// came (a protobuf body as is, without encoding it again).
async fn export_of<T>(
    req: &HttpRequest,
    caller: &Caller,
    payload: web::Payload,
    signal: Signal,
    count: fn(&T) -> usize,
) -> Result<(Encoding, T), ApiError>
where
    T: Message + Default + serde::de::DeserializeOwned,
{
    let (what, items) = names(signal);
    let st = state::of(req);
    caller
        .require(&st, Permission::TelemetryWrite.as_str())
        .await?;
    let enc = encoding_of(req)?;
    let body = body_of(req, payload, &st).await?;
    let export = match enc {
        Encoding::Protobuf => T::decode(body.as_slice())
            .map_err(|e| ApiError::bad_request("bad_body", format!("not an OTLP {what}: {e}")))?,
        Encoding::Json => {
            // An object: serde would also read a struct from an array of
            // its fields, which OTLP/JSON never is.
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request("bad_body", format!("not JSON: {e}")))?;
            if !v.is_object() {
                return Err(ApiError::bad_request(
                    "bad_body",
                    format!("an OTLP/JSON {what} is an object"),
                ));
            }
            serde_json::from_value(v).map_err(|e| {
                ApiError::bad_request("bad_body", format!("not an OTLP {what}: {e}"))
            })?
        }
    };
    within_items(count(&export), items, &st.config.telemetry)?;
    st.telemetry.forward(signal, || match enc {
        Encoding::Protobuf => body,
        Encoding::Json => export.encode_to_vec(),
    });
    Ok((enc, export))
}

/// 413 when a request holds more than the configured items.
fn within_items(n: usize, items: &str, limits: &TelemetryConfig) -> Result<(), ApiError> {
    if n > limits.max_items {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("{n} {items} in one request; at most {}", limits.max_items),
        ));
    }
    Ok(())
}

fn bounds(limits: &TelemetryConfig) -> Bounds {
    Bounds {
        max_attributes: limits.max_attributes,
        max_value_bytes: limits.max_attribute_value_bytes,
    }
}

/// OTLP/HTTP trace export (needs `telemetry:write`).
#[utoipa::path(operation_id = "otlp.traces", tag = "telemetry",
    request_body(content = Object, content_type = "application/json",
        description = "An OTLP ExportTraceServiceRequest in its JSON form; the protobuf form is taken as application/x-protobuf. Either may be sent with Content-Encoding: gzip"),
    responses(
        (status = 200, description = "ExportTraceServiceResponse, in the request's encoding; partial_success names what was refused"),
        (status = 400, body = crate::web::problem::Problem, description = "Not an OTLP trace export"),
        (status = 401, description = "No or an invalid credential"),
        (status = 403, body = crate::web::problem::Problem, description = "The credential lacks telemetry:write"),
        (status = 413, body = crate::web::problem::Problem, description = "Body, decompressed body or item count over the limits"),
        (status = 415, body = crate::web::problem::Problem, description = "Neither protobuf nor JSON, or an encoding other than gzip"),
    ))]
#[post("/v1/traces")]
pub async fn traces(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (enc, export): (_, ExportTraceServiceRequest) = export_of(
        &req,
        &caller,
        payload,
        Signal::Traces,
        telemetry::traces::count,
    )
    .await?;
    let st = state::of(&req);
    let limits = &st.config.telemetry;
    let window = Window::at(crate::db::now_ms(), limits.retention_hours);
    let decoded = telemetry::traces::decode(&export, bounds(limits), window);
    let stats = &st.telemetry.stats;
    stats.received(
        "traces",
        decoded.spans.len() as u64,
        decoded.refused.count as u64,
    );
    st.telemetry
        .spans(&caller.principal.id, decoded.spans)
        .await?;
    let r = decoded.refused;
    let partial = r.count > 0;
    let resp = ExportTraceServiceResponse {
        partial_success: partial.then_some(ExportTracePartialSuccess {
            rejected_spans: r.count,
            error_message: r.message,
        }),
    };
    Ok(answer(enc, &resp, partial))
}

/// OTLP/HTTP log export (needs `telemetry:write`).
#[utoipa::path(operation_id = "otlp.logs", tag = "telemetry",
    request_body(content = Object, content_type = "application/json",
        description = "An OTLP ExportLogsServiceRequest in its JSON form; the protobuf form is taken as application/x-protobuf. Either may be sent with Content-Encoding: gzip"),
    responses(
        (status = 200, description = "ExportLogsServiceResponse, in the request's encoding; partial_success names what was refused"),
        (status = 400, body = crate::web::problem::Problem, description = "Not an OTLP log export"),
        (status = 401, description = "No or an invalid credential"),
        (status = 403, body = crate::web::problem::Problem, description = "The credential lacks telemetry:write"),
        (status = 413, body = crate::web::problem::Problem, description = "Body, decompressed body or item count over the limits"),
        (status = 415, body = crate::web::problem::Problem, description = "Neither protobuf nor JSON, or an encoding other than gzip"),
    ))]
#[post("/v1/logs")]
pub async fn logs(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (enc, export): (_, ExportLogsServiceRequest) =
        export_of(&req, &caller, payload, Signal::Logs, telemetry::logs::count).await?;
    let st = state::of(&req);
    let limits = &st.config.telemetry;
    let window = Window::at(crate::db::now_ms(), limits.retention_hours);
    let decoded = telemetry::logs::decode(&export, bounds(limits), window);
    let stats = &st.telemetry.stats;
    stats.received(
        "logs",
        decoded.records.len() as u64,
        decoded.refused.count as u64,
    );
    st.telemetry
        .logs(&caller.principal.id, decoded.records)
        .await?;
    let r = decoded.refused;
    let partial = r.count > 0;
    let resp = ExportLogsServiceResponse {
        partial_success: partial.then_some(ExportLogsPartialSuccess {
            rejected_log_records: r.count,
            error_message: r.message,
        }),
    };
    Ok(answer(enc, &resp, partial))
}

/// OTLP/HTTP metric export (needs `telemetry:write`): the data points land
/// in the metric store as the caller's reports.
#[utoipa::path(operation_id = "otlp.metrics", tag = "telemetry",
    request_body(content = Object, content_type = "application/json",
        description = "An OTLP ExportMetricsServiceRequest in its JSON form; the protobuf form is taken as application/x-protobuf. Either may be sent with Content-Encoding: gzip"),
    responses(
        (status = 200, description = "ExportMetricsServiceResponse, in the request's encoding; partial_success names what was refused"),
        (status = 400, body = crate::web::problem::Problem, description = "Not an OTLP metric export"),
        (status = 401, description = "No or an invalid credential"),
        (status = 403, body = crate::web::problem::Problem, description = "The credential lacks telemetry:write"),
        (status = 413, body = crate::web::problem::Problem, description = "Body, decompressed body or item count over the limits"),
        (status = 415, body = crate::web::problem::Problem, description = "Neither protobuf nor JSON, or an encoding other than gzip"),
    ))]
#[post("/v1/metrics")]
pub async fn metrics(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (enc, export): (_, ExportMetricsServiceRequest) = export_of(
        &req,
        &caller,
        payload,
        Signal::Metrics,
        telemetry::metrics::count,
    )
    .await?;
    let st = state::of(&req);
    let retention = st.config.monitoring.metrics_retention_days;
    let (samples, points) = telemetry::metrics::samples(&export);
    let mut refused = telemetry::Refused::default();
    let mut valid = Vec::with_capacity(samples.len());
    for s in samples {
        match crate::monitor::metrics::problem(&s, retention) {
            Some(why) => refused.add(&format!("{}: {why}", s.name)),
            None => valid.push(s),
        }
    }
    for chunk in valid.chunks(crate::monitor::metrics::MAX_BATCH) {
        st.metrics
            .ingest(&caller.principal.id, chunk.to_vec(), retention)
            .await?;
    }
    // A histogram point is two samples; never report more points refused
    // than were sent.
    let rejected = refused.count.min(points as i64);
    st.telemetry.stats.received(
        "metrics",
        (points as i64 - rejected) as u64,
        rejected as u64,
    );
    let partial = rejected > 0;
    let resp = ExportMetricsServiceResponse {
        partial_success: partial.then_some(ExportMetricsPartialSuccess {
            rejected_data_points: rejected,
            error_message: refused.message,
        }),
    };
    Ok(answer(enc, &resp, partial))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(crate::web::needs::needs(Permission::TelemetryWrite, traces))
        .service(crate::web::needs::needs(Permission::TelemetryWrite, logs))
        .service(crate::web::needs::needs(
            Permission::TelemetryWrite,
            metrics,
        ));
}

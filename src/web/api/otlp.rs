//! The OTLP/HTTP receiver (SPEC §15): `POST /v1/traces` as the
//! OpenTelemetry SDK exporters and the Collector send it: protobuf or JSON,
//! optionally gzip-compressed, from a credential holding `telemetry:write`.
//! The answer is OTLP's: 200 with a partial success naming what was
//! refused, or a 4xx for a request that cannot be read at all.

use std::io::Read;

use actix_web::http::{header, StatusCode};
use actix_web::{post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::rbac::Permission;
use crate::telemetry::attributes::Bounds;
use crate::telemetry::traces as trace_export;
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

fn answer(enc: Encoding, rejected: i64, message: String) -> HttpResponse {
    let partial = (rejected > 0 || !message.is_empty()).then_some(ExportTracePartialSuccess {
        rejected_spans: rejected,
        error_message: message,
    });
    let resp = ExportTraceServiceResponse {
        partial_success: partial,
    };
    match enc {
        Encoding::Protobuf => HttpResponse::Ok()
            .content_type("application/x-protobuf")
            .body(resp.encode_to_vec()),
        // Without a partial success the answer is `{}`, not a null field.
        Encoding::Json => match resp.partial_success {
            None => HttpResponse::Ok().json(serde_json::json!({})),
            Some(_) => HttpResponse::Ok().json(&resp),
        },
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
    let st = state::of(&req);
    caller
        .require(&st, Permission::TelemetryWrite.as_str())
        .await?;
    let enc = encoding_of(&req)?;
    let body = body_of(&req, payload, &st).await?;
    let export: ExportTraceServiceRequest = match enc {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body.as_slice()).map_err(|e| {
            ApiError::bad_request("bad_body", format!("not an OTLP trace export: {e}"))
        })?,
        Encoding::Json => {
            // An object: serde would also read a struct from an array of
            // its fields, which OTLP/JSON never is.
            let v: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request("bad_body", format!("not JSON: {e}")))?;
            if !v.is_object() {
                return Err(ApiError::bad_request(
                    "bad_body",
                    "an OTLP/JSON trace export is an object",
                ));
            }
            serde_json::from_value(v).map_err(|e| {
                ApiError::bad_request("bad_body", format!("not an OTLP trace export: {e}"))
            })?
        }
    };
    let limits = &st.config.telemetry;
    let n = trace_export::count(&export);
    if n > limits.max_items {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_items",
            format!("{n} spans in one request; at most {}", limits.max_items),
        ));
    }
    let now = crate::db::now_ms();
    let now_ns = now.saturating_mul(1_000_000);
    let oldest_ns = now_ns - i64::from(limits.retention_hours) * 3_600_000_000_000;
    let bounds = Bounds {
        max_attributes: limits.max_attributes,
        max_value_bytes: limits.max_attribute_value_bytes,
    };
    let decoded = trace_export::decode(&export, bounds, now_ns, oldest_ns);
    let sender = caller.principal.id.clone();
    let spans = decoded.spans;
    st.db
        .write(move |c| crate::db::spans::insert(c, &spans, &sender, now))
        .await?;
    Ok(answer(enc, decoded.rejected, decoded.message))
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(crate::web::needs::needs(Permission::TelemetryWrite, traces));
}

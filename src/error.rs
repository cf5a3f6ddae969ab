//! The domain error type. Domain modules return [`Error`]; the web layer
//! maps it to problem+json or an error page in exactly one place
//! (`web::problem`), and the CLI prints it.
//!
//! Messages of the variants other than [`Error::Internal`] are safe to show
//! to the caller; internal causes are logged, never returned.

use std::collections::BTreeMap;

/// Per-field validation messages, keyed by field name (JSON pointer-ish:
/// `name`, `scope.resource_pattern`).
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input failed validation; `fields` says which and why.
    #[error("{message}")]
    Validation {
        message: String,
        fields: FieldErrors,
    },
    #[error("{0} not found")]
    NotFound(String),
    /// Well-formed input refused for a reason with its own stable code
    /// (e.g. `decryption_failed`, `key_version_retired`).
    #[error("{message}")]
    Rejected { code: &'static str, message: String },
    #[error("{0}")]
    Conflict(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A dependency (database, disk) cannot serve right now; retry later.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Error {
        let message = message.into();
        let mut fields = FieldErrors::new();
        fields.insert(field.to_string(), message.clone());
        Error::Validation {
            message: format!("{field}: {message}"),
            fields,
        }
    }

    pub fn fields(fields: FieldErrors) -> Error {
        let message = fields
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join("; ");
        Error::Validation { message, fields }
    }

    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Internal(e.into())
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &e {
            // A writer held the lock past busy_timeout: transient, not a bug.
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
            {
                Error::Unavailable("database is busy".into())
            }
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => {
                Error::Unavailable("disk is full".into())
            }
            _ => Error::Internal(Box::new(e)),
        }
    }
}

impl From<r2d2::Error> for Error {
    fn from(e: r2d2::Error) -> Self {
        Error::Unavailable(format!("database pool: {e}"))
    }
}

//! API key views and the create body, shared by agents' and users' keys.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::identity::api_keys::{ApiKeyRow, NewKey, PREFIX};
use crate::timefmt::rfc3339;

#[derive(Serialize, ToSchema)]
pub struct ApiKeyView {
    /// The key id (the public part of `agk_<id>_<secret>`).
    pub id: String,
    /// `agk_<id>`: how the key starts, to recognise it.
    pub prefix: String,
    pub name: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked: bool,
    pub revoked_at: Option<String>,
}

impl From<ApiKeyRow> for ApiKeyView {
    fn from(k: ApiKeyRow) -> Self {
        ApiKeyView {
            prefix: format!("{PREFIX}{}", k.id),
            id: k.id,
            name: k.name,
            created_at: rfc3339(k.created_at),
            expires_at: k.expires_at.map(rfc3339),
            last_used_at: k.last_used_at.map(rfc3339),
            revoked: k.revoked_at.is_some(),
            revoked_at: k.revoked_at.map(rfc3339),
        }
    }
}

/// A new key: the only response that ever contains the secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedKey {
    /// The full key, `agk_<id>_<secret>`. Shown once; store it now.
    pub key: String,
    #[serde(flatten)]
    pub info: ApiKeyView,
}

impl From<NewKey> for CreatedKey {
    fn from(k: NewKey) -> Self {
        CreatedKey {
            key: k.key.to_string(),
            info: k.row.into(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ci-runner", "expires_in_days": 90}))]
pub struct CreateKey {
    #[serde(default)]
    #[schema(max_length = 128)]
    pub name: String,
    /// Lifetime in days; defaults to (and may not exceed) the configured
    /// maximum.
    #[schema(minimum = 1)]
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<ApiKeyView>,
}

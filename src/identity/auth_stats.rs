//! Authentication figures for the dashboard and, later, the
//! `failed_auth_attempts` alerting metric. They are read from the audit
//! trail, which records every failure, so they survive restarts and agree
//! with what the audit log shows.

use serde::Serialize;

use crate::audit::store as audit;
use crate::db::{self, users, Db};
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct AuthStats {
    pub failed_last_minute: i64,
    pub failed_last_15_minutes: i64,
    pub locked_accounts: i64,
}

pub async fn current(db: &Db) -> Result<AuthStats> {
    let now = db::now_ms();
    db.read(move |c| {
        Ok(AuthStats {
            failed_last_minute: audit::count_failed_auth(c, now - 60_000)?,
            failed_last_15_minutes: audit::count_failed_auth(c, now - 15 * 60_000)?,
            locked_accounts: users::count_locked(c, now)?,
        })
    })
    .await
}

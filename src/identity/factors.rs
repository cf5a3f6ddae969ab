//! Users' second factors (SPEC §16): TOTP enrolment (a pending factor
//! until confirmed with a first code), the check at sign-in (each code
//! once), removal. A factor's secret is sealed under the keyring, bound to
//! the factor's id. Every step is audited.

use crate::audit::{Audit, Context, Outcome};
use crate::db::factors::{self, FactorKind, FactorRow};
use crate::db::{self, Db};
use crate::encryption::keyring::KeyRing;
use crate::error::{Error, Result};

use super::totp::{new_secret, Totp};

/// What the keyring seals a factor's secret under.
pub const CLASSIFICATION: &str = "restricted";
/// The name apps show the account under.
pub const ISSUER: &str = "agentry";
/// An enrolment not confirmed within this long is dropped.
pub const PENDING_MS: i64 = 15 * 60_000;
/// Longest label.
pub const MAX_LABEL: usize = 64;

fn context(factor_id: &str) -> String {
    format!("user_factor:{factor_id}")
}

/// What the enrolment page shows once: the app address (as a QR code) and
/// the secret to type in by hand.
pub struct Enrolment {
    pub factor_id: String,
    pub uri: String,
    pub secret_base32: String,
}

/// The services a factor operation needs.
pub struct Factors<'a> {
    pub db: &'a Db,
    pub audit: &'a Audit,
    pub keyring: &'a KeyRing,
}

impl Factors<'_> {
    async fn totp_of(&self, row: &FactorRow, username: &str) -> Result<Totp> {
        let secret: String = self
            .keyring
            .open_json(self.db, self.audit, &row.secret, &context(&row.id))
            .await?;
        let bytes = hex::decode(secret).map_err(Error::internal)?;
        Totp::new(&bytes, ISSUER, username)
    }

    /// Starts a TOTP enrolment for `user_id` (named `username` in apps).
    pub async fn start_totp(
        &self,
        ctx: &Context,
        user_id: &str,
        username: &str,
        label: &str,
    ) -> Result<Enrolment> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > MAX_LABEL {
            return Err(Error::field(
                "label",
                format!("name the device in 1 to {MAX_LABEL} characters"),
            ));
        }
        let id = db::new_id();
        let secret = zeroize::Zeroizing::new(new_secret());
        let totp = Totp::new(secret.as_ref(), ISSUER, username)?;
        let sealed = self
            .keyring
            .seal_json(
                self.db,
                self.audit,
                CLASSIFICATION,
                &hex::encode(secret.as_ref()),
                &context(&id),
            )
            .await?;
        let now = db::now_ms();
        let row = FactorRow {
            id: id.clone(),
            user_id: user_id.to_string(),
            kind: FactorKind::Totp,
            credential_id: None,
            label: label.to_string(),
            secret: sealed,
            confirmed_at: None,
            last_step: None,
            created_at: now,
            last_used_at: None,
        };
        let event = ctx
            .event("auth.factor_enrol", Outcome::Success)
            .target("user", user_id)
            .detail("factor_id", &id)
            .detail("kind", "totp")
            .detail("label", label);
        self.audit
            .apply_uncached(event, move |c| {
                factors::prune_pending(c, now - PENDING_MS)?;
                factors::insert(c, &row)
            })
            .await?;
        Ok(Enrolment {
            factor_id: id,
            uri: totp.uri()?,
            secret_base32: totp.secret_base32(),
        })
    }

    /// A pending TOTP enrolment again (its page, after a wrong first code).
    pub async fn pending_totp(
        &self,
        user_id: &str,
        username: &str,
        factor_id: &str,
    ) -> Result<Enrolment> {
        let row = self.pending(user_id, factor_id).await?;
        let totp = self.totp_of(&row, username).await?;
        Ok(Enrolment {
            factor_id: row.id,
            uri: totp.uri()?,
            secret_base32: totp.secret_base32(),
        })
    }

    async fn pending(&self, user_id: &str, factor_id: &str) -> Result<FactorRow> {
        let (uid, fid) = (user_id.to_string(), factor_id.to_string());
        let cutoff = db::now_ms() - PENDING_MS;
        self.db
            .read(move |c| factors::get(c, &uid, &fid))
            .await?
            .filter(|f| {
                f.confirmed_at.is_none() && f.kind == FactorKind::Totp && f.created_at >= cutoff
            })
            .ok_or_else(|| {
                Error::NotFound("no enrolment under way with this id (they last 15 minutes)".into())
            })
    }

    /// Confirms a pending TOTP enrolment with a first code.
    pub async fn confirm_totp(
        &self,
        ctx: &Context,
        user_id: &str,
        username: &str,
        factor_id: &str,
        code: &str,
    ) -> Result<()> {
        let row = self.pending(user_id, factor_id).await?;
        let totp = self.totp_of(&row, username).await?;
        let event = |outcome| {
            ctx.event("auth.factor_confirm", outcome)
                .target("user", user_id)
                .detail("factor_id", factor_id)
        };
        let Some(step) = totp.verify(code, unix_secs(), None) else {
            self.audit
                .record(event(Outcome::Failure).reason("wrong code"))
                .await?;
            return Err(Error::field(
                "code",
                "that is not the code the app shows now; check the phone's clock and try the next one",
            ));
        };
        let id = row.id.clone();
        let confirmed = self
            .audit
            .apply_uncached(event(Outcome::Success), move |c| {
                factors::confirm(c, &id, step as i64, db::now_ms())
            })
            .await?;
        if !confirmed {
            return Err(Error::Conflict("this factor is already confirmed".into()));
        }
        Ok(())
    }

    /// Whether the user has a confirmed factor (and so a second step at
    /// sign-in).
    pub async fn any_confirmed(&self, user_id: &str) -> Result<bool> {
        let uid = user_id.to_string();
        Ok(self
            .db
            .read(move |c| factors::of_user(c, &uid))
            .await?
            .iter()
            .any(|f| f.confirmed_at.is_some()))
    }

    /// Checks a sign-in code against the user's confirmed TOTP factors;
    /// the step it matched is used up. The caller counts a `false` toward
    /// lockout.
    pub async fn check_totp(
        &self,
        ctx: &Context,
        user_id: &str,
        username: &str,
        code: &str,
    ) -> Result<bool> {
        let uid = user_id.to_string();
        let rows = self.db.read(move |c| factors::of_user(c, &uid)).await?;
        let now = unix_secs();
        for row in rows
            .iter()
            .filter(|f| f.kind == FactorKind::Totp && f.confirmed_at.is_some())
        {
            let totp = self.totp_of(row, username).await?;
            let used = row.last_step.map(|s| s as u64);
            if let Some(step) = totp.verify(code, now, used) {
                let id = row.id.clone();
                let event = ctx
                    .event("auth.second_factor", Outcome::Success)
                    .target("user", user_id)
                    .detail("factor_id", &row.id);
                // Two sign-ins racing with one code: the update decides.
                let won = self
                    .audit
                    .apply_uncached(event, move |c| {
                        factors::use_step(c, &id, step as i64, db::now_ms())
                    })
                    .await?;
                if won {
                    return Ok(true);
                }
            }
        }
        self.audit
            .record(
                ctx.event("auth.second_factor", Outcome::Failure)
                    .target("user", user_id)
                    .reason("wrong or used code"),
            )
            .await?;
        Ok(false)
    }

    /// A user's confirmed factors, oldest first (pending enrolments are
    /// left out).
    pub async fn of_user(&self, user_id: &str) -> Result<Vec<FactorRow>> {
        let uid = user_id.to_string();
        let mut rows = self.db.read(move |c| factors::of_user(c, &uid)).await?;
        rows.retain(|f| f.confirmed_at.is_some());
        Ok(rows)
    }

    /// Clears every factor and recovery code of a user and ends their
    /// sessions (an administrator's reset after a lost device); returns
    /// how many factors went.
    pub async fn reset(&self, ctx: &Context, user_id: &str) -> Result<usize> {
        let uid = user_id.to_string();
        let event = ctx
            .event("auth.factor_reset", Outcome::Success)
            .target(crate::identity::PrincipalKind::User.as_str(), user_id);
        self.audit
            .apply_uncached(event, move |c| {
                if crate::db::users::by_id(c, &uid)?.is_none() {
                    return Err(Error::NotFound(format!("user {uid}")));
                }
                crate::db::recovery_codes::delete_all(c, &uid)?;
                crate::db::sessions::delete_for_user(c, &uid)?;
                factors::delete_all(c, &uid)
            })
            .await
    }

    /// Removes one of the user's factors.
    pub async fn remove(&self, ctx: &Context, user_id: &str, factor_id: &str) -> Result<()> {
        let (uid, fid) = (user_id.to_string(), factor_id.to_string());
        let event = ctx
            .event("auth.factor_remove", Outcome::Success)
            .target("user", user_id)
            .detail("factor_id", factor_id);
        let gone = self
            .audit
            .apply_uncached(event, move |c| factors::delete(c, &uid, &fid))
            .await?;
        if !gone {
            return Err(Error::NotFound(format!("no factor {factor_id}")));
        }
        Ok(())
    }
}

fn unix_secs() -> u64 {
    (db::now_ms().max(0) / 1000) as u64
}

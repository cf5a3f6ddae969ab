//! Passkeys (WebAuthn through `webauthn-rs`, SPEC §16): registered from
//! the account's enrolment page, used as the second step after a
//! password, or to sign in without one. The relying party is the host of
//! `public_url`; without a host name there (an IP address or no
//! `public_url`) browsers refuse WebAuthn, and passkeys say so.
//!
//! A ceremony's server state (the challenge) stays in memory for five
//! minutes and is taken once: a restart only costs a sign-in under way
//! its retry. A passkey (public key and counter) is sealed under the
//! keyring like a TOTP secret; its credential id is kept in the clear to
//! find the user of a password-less sign-in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use webauthn_rs::prelude::{
    CredentialID, DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use super::factors::{Factors, CLASSIFICATION, MAX_LABEL};
use crate::audit::{Context, Outcome};
use crate::crypto::random;
use crate::db::factors::{self as repo, FactorKind, FactorRow};
use crate::db::{self, users::UserRow};
use crate::error::{Error, Result};

/// How long a ceremony may take.
const CEREMONY_TTL: Duration = Duration::from_secs(300);
/// Ceremonies under way at most (beyond this, new ones are refused).
const MAX_CEREMONIES: usize = 10_000;

enum Ceremony {
    Register {
        user_id: String,
        label: String,
        state: PasskeyRegistration,
    },
    SecondFactor {
        user_id: String,
        state: PasskeyAuthentication,
    },
    SignIn {
        state: DiscoverableAuthentication,
    },
}

/// The relying party and the ceremonies under way.
pub struct Passkeys {
    webauthn: std::result::Result<Webauthn, String>,
    ceremonies: Mutex<HashMap<String, (Instant, Ceremony)>>,
}

/// What the browser is handed to start a ceremony: an id to send back
/// and the WebAuthn options (`publicKey`) as JSON.
pub struct Started {
    pub ceremony: String,
    pub options: serde_json::Value,
}

fn context(factor_id: &str) -> String {
    format!("user_factor:{factor_id}")
}

/// The WebAuthn user handle of a user: its id (a UUID), or a name-based
/// UUID of it.
fn handle(user_id: &str) -> Uuid {
    use sha2::Digest;
    Uuid::parse_str(user_id).unwrap_or_else(|_| {
        let digest = sha2::Sha256::digest(user_id.as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::from_bytes(bytes)
    })
}

fn credential_key(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| Error::field("credential", format!("not a WebAuthn credential: {e}")))
}

impl Passkeys {
    /// The relying party for `public_url` (its host is the RP id, the URL
    /// the one origin allowed).
    pub fn new(public_url: &str) -> Passkeys {
        let webauthn = Url::parse(public_url)
            .map_err(|e| e.to_string())
            .and_then(|url| {
                let host = match url.host() {
                    Some(url::Host::Domain(d)) => d.to_string(),
                    _ => {
                        return Err(format!(
                            "Passkeys need public_url to name the host by a domain name \
                             (browsers refuse WebAuthn on an IP address); it is {public_url}"
                        ))
                    }
                };
                WebauthnBuilder::new(&host, &url)
                    .and_then(|b| b.rp_name("agentry").build())
                    .map_err(|e| format!("passkeys: {e}"))
            });
        Passkeys {
            webauthn,
            ceremonies: Mutex::new(HashMap::new()),
        }
    }

    /// Why passkeys cannot be used here, if they cannot.
    pub fn unavailable(&self) -> Option<&str> {
        self.webauthn.as_ref().err().map(String::as_str)
    }

    fn rp(&self) -> Result<&Webauthn> {
        self.webauthn.as_ref().map_err(|why| Error::Rejected {
            code: "passkeys_unavailable",
            message: why.clone(),
        })
    }

    fn begin(&self, ceremony: Ceremony) -> Result<String> {
        let id = random::token();
        let mut all = self.ceremonies.lock().expect("ceremonies lock");
        let now = Instant::now();
        all.retain(|_, (at, _)| now.duration_since(*at) < CEREMONY_TTL);
        if all.len() >= MAX_CEREMONIES {
            return Err(Error::Unavailable(
                "too many passkey ceremonies under way; try again in a minute".into(),
            ));
        }
        all.insert(id.clone(), (now, ceremony));
        Ok(id)
    }

    /// Keeps `ceremony` and hands the browser its id and `options`.
    fn started(&self, ceremony: Ceremony, options: &impl serde::Serialize) -> Result<Started> {
        let options = serde_json::to_value(options).map_err(Error::internal)?;
        Ok(Started {
            ceremony: self.begin(ceremony)?,
            options,
        })
    }

    /// Takes a ceremony once; expired or unknown ones are not found.
    fn take(&self, id: &str) -> Result<Ceremony> {
        let mut all = self.ceremonies.lock().expect("ceremonies lock");
        match all.remove(id) {
            Some((at, c)) if at.elapsed() < CEREMONY_TTL => Ok(c),
            _ => Err(Error::field(
                "ceremony",
                "this passkey request expired or was used; start again",
            )),
        }
    }

    async fn passkeys_of(
        &self,
        f: &Factors<'_>,
        user_id: &str,
    ) -> Result<Vec<(FactorRow, Passkey)>> {
        let mut out = Vec::new();
        for row in f.of_user(user_id).await? {
            if row.kind == FactorKind::Passkey {
                let pk: Passkey = f
                    .keyring
                    .open_json(f.db, f.audit, &row.secret, &context(&row.id))
                    .await?;
                out.push((row, pk));
            }
        }
        Ok(out)
    }

    /// Starts registering a passkey for `user`.
    pub async fn start_registration(
        &self,
        f: &Factors<'_>,
        user: &UserRow,
        label: &str,
    ) -> Result<Started> {
        let rp = self.rp()?;
        let label = label.trim();
        if label.is_empty() || label.chars().count() > MAX_LABEL {
            return Err(Error::field(
                "label",
                format!("name the passkey in 1 to {MAX_LABEL} characters"),
            ));
        }
        let exclude: Vec<CredentialID> = f
            .of_user(&user.id)
            .await?
            .iter()
            .filter_map(|r| r.credential_id.as_deref())
            .filter_map(|c| URL_SAFE_NO_PAD.decode(c).ok())
            .map(CredentialID::from)
            .collect();
        let (ccr, state) = rp
            .start_passkey_registration(
                handle(&user.id),
                &user.username,
                if user.display_name.is_empty() {
                    &user.username
                } else {
                    &user.display_name
                },
                Some(exclude),
            )
            .map_err(|e| Error::internal(format!("passkey registration: {e}")))?;
        let mut options = serde_json::to_value(&ccr.public_key).map_err(Error::internal)?;
        // A discoverable credential, so that it also signs in without a
        // password (the server's state does not depend on this).
        if let Some(sel) = options
            .get_mut("authenticatorSelection")
            .and_then(|v| v.as_object_mut())
        {
            sel.insert("residentKey".into(), "required".into());
            sel.insert("requireResidentKey".into(), true.into());
        }
        let ceremony = self.begin(Ceremony::Register {
            user_id: user.id.clone(),
            label: label.to_string(),
            state,
        })?;
        Ok(Started { ceremony, options })
    }

    /// Finishes a registration: the passkey is stored (sealed) as a
    /// confirmed factor, audited.
    pub async fn finish_registration(
        &self,
        f: &Factors<'_>,
        ctx: &Context,
        user: &UserRow,
        ceremony: &str,
        credential: &str,
    ) -> Result<()> {
        let rp = self.rp()?;
        let Ceremony::Register {
            user_id,
            label,
            state,
        } = self.take(ceremony)?
        else {
            return Err(Error::field("ceremony", "not a passkey registration"));
        };
        if user_id != user.id {
            return Err(Error::field(
                "ceremony",
                "not this user's passkey registration",
            ));
        }
        let reg: RegisterPublicKeyCredential = parse(credential)?;
        let event = |outcome| {
            ctx.event("auth.factor_enrol", outcome)
                .target(crate::identity::PrincipalKind::User.as_str(), &user.id)
                .detail("kind", FactorKind::Passkey.as_str())
                .detail("label", &label)
        };
        let passkey = match rp.finish_passkey_registration(&reg, &state) {
            Ok(p) => p,
            Err(e) => {
                f.audit
                    .record(event(Outcome::Failure).reason(format!("passkey refused: {e}")))
                    .await?;
                return Err(Error::field(
                    "credential",
                    format!("the passkey was refused: {e}"),
                ));
            }
        };
        let id = db::new_id();
        let sealed = f
            .keyring
            .seal_json(f.db, f.audit, CLASSIFICATION, &passkey, &context(&id))
            .await?;
        let now = db::now_ms();
        let row = FactorRow {
            id: id.clone(),
            user_id: user.id.clone(),
            kind: FactorKind::Passkey,
            label: label.clone(),
            secret: sealed,
            credential_id: Some(credential_key(passkey.cred_id().as_ref())),
            confirmed_at: Some(now),
            last_step: None,
            created_at: now,
            last_used_at: None,
        };
        f.audit
            .apply_uncached(event(Outcome::Success).detail("factor_id", &id), move |c| {
                let key = row.credential_id.as_deref().unwrap_or_default();
                if repo::by_credential(c, key)?.is_some() {
                    return Err(Error::Conflict(
                        "this passkey is already registered to an account".into(),
                    ));
                }
                repo::insert(c, &row)
            })
            .await
    }

    /// Starts the second step for a user with passkeys.
    pub async fn start_second_factor(&self, f: &Factors<'_>, user: &UserRow) -> Result<Started> {
        let rp = self.rp()?;
        let keys: Vec<Passkey> = self
            .passkeys_of(f, &user.id)
            .await?
            .into_iter()
            .map(|(_, k)| k)
            .collect();
        if keys.is_empty() {
            return Err(Error::NotFound("no passkey for this account".into()));
        }
        let (rcr, state) = rp
            .start_passkey_authentication(&keys)
            .map_err(|e| Error::internal(format!("passkey authentication: {e}")))?;
        let ceremony = Ceremony::SecondFactor {
            user_id: user.id.clone(),
            state,
        };
        self.started(ceremony, &rcr.public_key)
    }

    /// Checks the second step; a refusal is audited and `false` (the
    /// caller counts it toward lockout).
    pub async fn finish_second_factor(
        &self,
        f: &Factors<'_>,
        ctx: &Context,
        user: &UserRow,
        ceremony: &str,
        credential: &str,
    ) -> Result<bool> {
        let rp = self.rp()?;
        let state = match self.take(ceremony)? {
            Ceremony::SecondFactor { user_id, state } if user_id == user.id => state,
            _ => {
                return Err(Error::field(
                    "ceremony",
                    "not this sign-in's passkey request",
                ))
            }
        };
        let cred: PublicKeyCredential = parse(credential)?;
        let keys = self.passkeys_of(f, &user.id).await?;
        match rp.finish_passkey_authentication(&cred, &state) {
            Ok(result) => {
                self.used(f, ctx, user, &keys, &result, "auth.second_factor")
                    .await?;
                Ok(true)
            }
            Err(e) => {
                f.audit
                    .record(
                        ctx.event("auth.second_factor", Outcome::Failure)
                            .target(crate::identity::PrincipalKind::User.as_str(), &user.id)
                            .detail("method", "passkey")
                            .reason(format!("passkey refused: {e}")),
                    )
                    .await?;
                Ok(false)
            }
        }
    }

    /// Starts a password-less sign-in (any discoverable passkey).
    pub fn start_sign_in(&self) -> Result<Started> {
        let rp = self.rp()?;
        let (rcr, state) = rp
            .start_discoverable_authentication()
            .map_err(|e| Error::internal(format!("passkey sign-in: {e}")))?;
        self.started(Ceremony::SignIn { state }, &rcr.public_key)
    }

    /// Finishes a password-less sign-in: the user whose passkey signed,
    /// or why not (for the audit trail; the user id when one was named).
    pub async fn finish_sign_in(
        &self,
        f: &Factors<'_>,
        ctx: &Context,
        ceremony: &str,
        credential: &str,
    ) -> Result<std::result::Result<UserRow, (String, Option<String>)>> {
        let rp = self.rp()?;
        let Ceremony::SignIn { state } = self.take(ceremony)? else {
            return Err(Error::field("ceremony", "not a passkey sign-in"));
        };
        let cred: PublicKeyCredential = parse(credential)?;
        let (uuid, cred_id) = match rp.identify_discoverable_authentication(&cred) {
            Ok(found) => found,
            Err(e) => return Ok(Err((format!("unidentified passkey: {e}"), None))),
        };
        let key = credential_key(cred_id);
        let found =
            f.db.read(move |c| {
                let Some(row) = repo::by_credential(c, &key)? else {
                    return Ok(None);
                };
                Ok(db::users::by_id(c, &row.user_id)?.map(|u| (row, u)))
            })
            .await?;
        let Some((row, user)) = found.filter(|(_, u)| handle(&u.id) == uuid) else {
            return Ok(Err(("unknown passkey".into(), None)));
        };
        let passkey: Passkey = f
            .keyring
            .open_json(f.db, f.audit, &row.secret, &context(&row.id))
            .await?;
        let discoverable: DiscoverableKey = (&passkey).into();
        match rp.finish_discoverable_authentication(&cred, state, &[discoverable]) {
            Ok(result) => {
                let keys = vec![(row, passkey)];
                self.used(f, ctx, &user, &keys, &result, "auth.passkey")
                    .await?;
                Ok(Ok(user))
            }
            Err(e) => Ok(Err((format!("passkey refused: {e}"), Some(user.id)))),
        }
    }

    /// Records a passkey's use: its counter and backup state, resealed
    /// when they moved, and the audit record.
    async fn used(
        &self,
        f: &Factors<'_>,
        ctx: &Context,
        user: &UserRow,
        keys: &[(FactorRow, Passkey)],
        result: &webauthn_rs::prelude::AuthenticationResult,
        action: &str,
    ) -> Result<()> {
        let Some((row, key)) = keys.iter().find(|(_, k)| k.cred_id() == result.cred_id()) else {
            return Err(Error::internal("a verified passkey is not the user's"));
        };
        let mut key = key.clone();
        let resealed = match key.update_credential(result) {
            Some(true) => Some(
                f.keyring
                    .seal_json(f.db, f.audit, CLASSIFICATION, &key, &context(&row.id))
                    .await?,
            ),
            _ => None,
        };
        let id = row.id.clone();
        let event = ctx
            .event(action, Outcome::Success)
            .target(crate::identity::PrincipalKind::User.as_str(), &user.id)
            .detail("method", "passkey")
            .detail("factor_id", &row.id);
        f.audit
            .apply_uncached(event, move |c| {
                let now = db::now_ms();
                match &resealed {
                    Some(s) => repo::reseal(c, &id, s, now).map(|_| ()),
                    None => repo::used(c, &id, now),
                }
            })
            .await
    }
}

//! Encryption keys page: key rings with their versions and use counts,
//! rotation, minimum decryption version, rotation period, new
//! classifications, and an encrypt/decrypt test form for admins.

use super::filters;
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::error::UiError;
use super::forms::{checked, FormErrors};
use super::layout::Layout;
use super::{render, see_other};
use crate::encryption::envelope::Package;
use crate::encryption::keyring::{NewRing, RingView};
use crate::error::Error;
use crate::rbac::Permission;
use crate::web::api::crypto::{decrypt_one, encrypt_one, finish, DecryptRequest, EncryptRequest};
use crate::web::auth::SessionUser;
use crate::web::state;

const MANAGE: &str = Permission::KeyManage.as_str();

#[derive(Default, Deserialize)]
pub struct KeysForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    classification: String,
    requires_specific: Option<String>,
    #[serde(default)]
    rotation_days: String,
    #[serde(default)]
    min_decryption_version: String,
    /// Test form: `encrypt` or `decrypt`.
    #[serde(default)]
    op: String,
    #[serde(default)]
    data: String,
    #[serde(default)]
    package: String,
    #[serde(default)]
    context: String,
}

/// Which form a message belongs to.
#[derive(Default, PartialEq)]
enum Target {
    #[default]
    None,
    Create,
    Ring(String),
    Test,
}

#[derive(Template)]
#[template(path = "encryption_keys.html")]
struct Page {
    layout: Layout,
    rings: Vec<RingView>,
    default_rotation_days: u32,
    form: KeysForm,
    errors: FormErrors,
    /// For the forms that did not fail.
    no_errors: FormErrors,
    target: Target,
    /// The test form's output (a package, or decrypted data), pretty JSON.
    test_output: Option<String>,
}

impl Page {
    fn days_text(&self, r: &RingView) -> String {
        r.rotation_days.map(|d| d.to_string()).unwrap_or_default()
    }

    fn errors_for(&self, target: &str) -> bool {
        match &self.target {
            Target::Create => target == "create",
            Target::Ring(c) => target == c,
            Target::Test => target == "test",
            Target::None => false,
        }
    }
}

async fn page(
    req: &HttpRequest,
    user: &SessionUser,
    form: KeysForm,
    errors: FormErrors,
    target: Target,
    test_output: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, UiError> {
    let st = state::of(req);
    user.caller().require(&st, MANAGE).await?;
    let rings = st.keyring.rings(&st.db, &st.audit).await?;
    render(
        status,
        &Page {
            layout: Layout::for_session("Encryption keys", user, "encryption-keys"),
            rings,
            default_rotation_days: st.config.encryption.rotation_days,
            form,
            errors,
            no_errors: FormErrors::default(),
            target,
            test_output,
        },
    )
}

#[get("/encryption-keys")]
pub async fn list(req: HttpRequest, user: SessionUser) -> Result<HttpResponse, UiError> {
    let (form, errors) = (KeysForm::default(), FormErrors::default());
    page(
        &req,
        &user,
        form,
        errors,
        Target::None,
        None,
        StatusCode::OK,
    )
    .await
}

/// Indented JSON for reading.
fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_string())
}

/// An empty field means "the configured default".
fn parse_days(text: &str) -> Result<Option<i64>, Error> {
    match text.trim() {
        "" => Ok(None),
        t => t
            .parse()
            .map(Some)
            .map_err(|_| Error::field("rotation_days", "must be a whole number of days, or empty")),
    }
}

async fn form_failed(
    req: &HttpRequest,
    user: &SessionUser,
    form: KeysForm,
    target: Target,
    e: Error,
) -> Result<HttpResponse, UiError> {
    let errors = FormErrors::from_error(e)?;
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    page(req, user, form, errors, target, None, status).await
}

#[post("/encryption-keys")]
pub async fn create(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<KeysForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let result = match parse_days(&form.rotation_days) {
        Ok(rotation_days) => {
            let ring = NewRing {
                classification: form.classification.trim().to_string(),
                requires_specific_permission: checked(&form.requires_specific),
                rotation_days,
            };
            st.keyring.create(&st.audit, &user.ctx, ring).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other("/encryption-keys")),
        Err(e) => form_failed(&req, &user, form, Target::Create, e).await,
    }
}

#[post("/encryption-keys/{classification}/rotate")]
pub async fn rotate(
    req: HttpRequest,
    user: SessionUser,
    classification: web::Path<String>,
    form: web::Form<KeysForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    st.keyring
        .rotate(&st.audit, &user.ctx, &classification, "requested")
        .await?;
    Ok(see_other("/encryption-keys"))
}

#[post("/encryption-keys/{classification}")]
pub async fn update(
    req: HttpRequest,
    user: SessionUser,
    classification: web::Path<String>,
    form: web::Form<KeysForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let class = classification.into_inner();
    let parsed = form
        .min_decryption_version
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::field("min_decryption_version", "must be a version number"))
        .and_then(|min| parse_days(&form.rotation_days).map(|d| (min, d)));
    let result = match parsed {
        Ok((min, days)) => {
            st.keyring
                .update(&st.db, &st.audit, &user.ctx, &class, Some(min), Some(days))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(see_other("/encryption-keys")),
        Err(e) => form_failed(&req, &user, form, Target::Ring(class), e).await,
    }
}

/// Runs the test form: the same operation, checks and audit records as
/// the API, so what works here works for an agent with the same grants.
#[post("/encryption-keys/test")]
pub async fn test(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<KeysForm>,
) -> Result<HttpResponse, UiError> {
    let st = user.authorize_form(&req, &form.csrf_token, MANAGE).await?;
    let form = form.into_inner();
    let caller = user.caller();
    let context = Some(form.context.clone()).filter(|c| !c.is_empty());
    let output = match form.op.as_str() {
        "encrypt" => match serde_json::from_str::<Box<serde_json::value::RawValue>>(&form.data) {
            Err(e) => Err(Error::field("data", format!("is not JSON: {e}"))),
            Ok(data) => {
                caller
                    .require(&st, Permission::CryptoEncrypt.as_str())
                    .await?;
                let b = EncryptRequest {
                    data,
                    classification: form.classification.clone(),
                    context,
                };
                let out = finish(&st, encrypt_one(&st, &caller, b).await).await;
                Ok(out.map(|p| serde_json::to_string_pretty(&p).unwrap_or_default()))
            }
        },
        "decrypt" => match serde_json::from_str::<Package>(&form.package) {
            Err(e) => Err(Error::field("package", format!("is not a package: {e}"))),
            Ok(package) => {
                let b = DecryptRequest { package, context };
                let out = finish(&st, decrypt_one(&st, &caller, b).await).await;
                Ok(out.map(|d| pretty(d.data.get())))
            }
        },
        _ => Err(Error::field("op", "must be encrypt or decrypt")),
    };
    let status = StatusCode::OK;
    match output {
        Ok(Ok(text)) => {
            let errors = FormErrors::default();
            page(&req, &user, form, errors, Target::Test, Some(text), status).await
        }
        // A refusal of the operation (bad package, wrong context) is the
        // test's answer, shown in the form.
        Ok(Err(e)) => {
            let errors = FormErrors {
                form: Some(format!("{}: {}", e.code, e.detail)),
                ..FormErrors::default()
            };
            let status = e.status;
            page(&req, &user, form, errors, Target::Test, None, status).await
        }
        Err(e) => form_failed(&req, &user, form, Target::Test, e).await,
    }
}

/// Registers this page's routes, literal paths before parameterised ones.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(test)
        .service(rotate)
        .service(update);
}

//! The signed-in user's own page (`/account`): password, second factors,
//! recovery codes, connected apps. And enrolment of a second factor
//! (`/account/second-factor`), which also serves a sign-in that must
//! enrol before anything else (SPEC §16).

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::error::UiError;
use super::forms::FormErrors;
use super::layout::Layout;
use super::login::{local_path, LoginQuery};
use super::{filters, render, see_other};
use crate::db::factors::FactorRow;
use crate::identity::factors::Enrolment;
use crate::identity::sessions::Stage;
use crate::identity::{recovery, signin, users};
use crate::web::auth::{unfinished_path, AnySession, SessionUser};
use crate::web::state::{self, WebState};

#[derive(Template)]
#[template(path = "account/index.html")]
struct AccountPage {
    layout: Layout,
    username: String,
    factors: Vec<FactorRow>,
    codes_left: i64,
    required: bool,
    errors: FormErrors,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    done: Option<String>,
}

async fn account_page(
    st: &WebState,
    user: &SessionUser,
    status: StatusCode,
    errors: FormErrors,
    notice: Option<&'static str>,
) -> Result<HttpResponse, UiError> {
    let id = &user.session.user.id;
    let page = AccountPage {
        layout: Layout::for_session("Your account", user, "account"),
        username: user.session.user.username.clone(),
        factors: st.factors().of_user(id).await?,
        codes_left: recovery::left(&st.db, id).await?,
        required: signin::must_have_factor(&st.db, &st.config.login.require_second_factor, id)
            .await?,
        errors,
        notice,
    };
    render(status, &page)
}

#[get("/account")]
pub async fn show(
    req: HttpRequest,
    user: SessionUser,
    q: web::Query<AccountQuery>,
) -> Result<HttpResponse, UiError> {
    let notice = match q.done.as_deref() {
        Some("password") => Some("Password changed. Your other sessions were signed out."),
        Some("removed") => Some("Factor removed."),
        _ => None,
    };
    account_page(
        &state::of(&req),
        &user,
        StatusCode::OK,
        FormErrors::default(),
        notice,
    )
    .await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
    #[serde(default)]
    csrf_token: String,
}

/// Changes the user's own password (the current one must verify); their
/// other sessions end.
#[post("/account/password")]
pub async fn change_password(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    let mut form = form.into_inner();
    let result = if form.password != form.password_again {
        Err(crate::error::Error::field(
            "password_again",
            "the two new passwords differ",
        ))
    } else {
        users::set_password(
            &st.audit,
            &st.hasher,
            &user.ctx,
            &user.session.user,
            Zeroizing::new(std::mem::take(&mut form.password)),
            Some(Zeroizing::new(std::mem::take(&mut form.current_password))),
            Some(user.session.id_hash.clone()),
        )
        .await
    };
    match result {
        Ok(()) => Ok(see_other("/account?done=password")),
        Err(e) => {
            let errors = FormErrors::from_error(e)?;
            account_page(&st, &user, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

/// Removes one of the user's factors; the last one of a user whose role
/// requires a factor stays.
#[post("/account/factors/{id}/remove")]
pub async fn remove_factor(
    req: HttpRequest,
    user: SessionUser,
    id: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    let uid = &user.session.user.id;
    let factors = st.factors();
    let mine = factors.of_user(uid).await?;
    let required =
        signin::must_have_factor(&st.db, &st.config.login.require_second_factor, uid).await?;
    if required && mine.len() == 1 && mine[0].id == *id {
        let errors = FormErrors {
            form: Some(
                "Your role requires a second factor: add another before removing this one.".into(),
            ),
            ..FormErrors::default()
        };
        return account_page(&st, &user, StatusCode::CONFLICT, errors, None).await;
    }
    factors.remove(&user.ctx, uid, &id).await?;
    Ok(see_other("/account?done=removed"))
}

#[derive(Template)]
#[template(path = "account/recovery_codes.html")]
struct CodesPage {
    layout: Layout,
    codes: Vec<Zeroizing<String>>,
    /// Where "Continue" goes.
    next: String,
}

/// New recovery codes, replacing the old ones, shown once.
#[post("/account/recovery-codes")]
pub async fn new_codes(
    req: HttpRequest,
    user: SessionUser,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    let st = state::of(&req);
    if st
        .factors()
        .of_user(&user.session.user.id)
        .await?
        .is_empty()
    {
        return Err(crate::error::Error::Conflict(
            "recovery codes stand in for a second factor: add one first".into(),
        )
        .into());
    }
    let codes = recovery::issue(&st.audit, &user.ctx, &user.session.user.id).await?;
    let page = CodesPage {
        layout: Layout::for_session("Recovery codes", &user, "account"),
        codes,
        next: "/account".into(),
    };
    render(StatusCode::OK, &page)
}

// ---- enrolment -------------------------------------------------------

#[derive(Template)]
#[template(path = "account/enrol.html")]
struct EnrolPage {
    layout: Layout,
    /// A sign-in that must enrol before going on.
    forced: bool,
    next: Option<String>,
    label: String,
    errors: FormErrors,
    /// Step two: the QR code and the secret, with the confirm form.
    totp: Option<TotpStep>,
    /// Why passkeys cannot be added here, if they cannot.
    passkeys_unavailable: Option<String>,
}

struct TotpStep {
    factor_id: String,
    qr_svg: String,
    secret: String,
}

/// The layout for an enrolment page: a full session gets its navigation,
/// a forced enrolment a bare page (nothing else is reachable).
fn enrol_layout(user: &AnySession, title: &str) -> Layout {
    match user.session.stage {
        Stage::Full => Layout::new(
            title,
            Some(user.session.user.username.clone()),
            user.csrf.clone(),
            "account",
        ),
        _ => Layout::new(title, None, user.csrf.clone(), "login"),
    }
}

/// Refuses a session that is at the second-factor step (it must give
/// its factor, not add one).
pub fn enrolling(user: &AnySession) -> Result<(), UiError> {
    match user.session.stage {
        Stage::SecondFactor => Err(UiError::SignInUnfinished(
            unfinished_path(Stage::SecondFactor).unwrap_or("/login"),
        )),
        _ => Ok(()),
    }
}

fn enrol_page(
    st: &WebState,
    user: &AnySession,
    status: StatusCode,
    next: Option<String>,
    label: String,
    errors: FormErrors,
    totp: Option<TotpStep>,
) -> Result<HttpResponse, UiError> {
    let page = EnrolPage {
        passkeys_unavailable: st.passkeys.unavailable().map(str::to_string),
        layout: enrol_layout(user, "Add a second factor"),
        forced: user.session.stage == Stage::Enrol,
        next,
        label,
        errors,
        totp,
    };
    render(status, &page)
}

#[get("/account/second-factor")]
pub async fn enrol(
    req: HttpRequest,
    user: AnySession,
    q: web::Query<LoginQuery>,
) -> Result<HttpResponse, UiError> {
    enrolling(&user)?;
    let next = q.into_inner().next.filter(|n| local_path(n).is_some());
    let st = state::of(&req);
    enrol_page(
        &st,
        &user,
        StatusCode::OK,
        next,
        "Phone".into(),
        FormErrors::default(),
        None,
    )
}

#[derive(Deserialize)]
pub struct StartForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

fn totp_step(e: Enrolment, username: &str) -> Result<TotpStep, UiError> {
    Ok(TotpStep {
        qr_svg: super::qr::svg(
            &e.uri,
            &format!("QR code to add {username} at agentry to an authenticator app"),
        )?,
        factor_id: e.factor_id,
        // In fours, as apps show and accept it.
        secret: e
            .secret_base32
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// Starts an authenticator-app enrolment: the page shows its QR code and
/// secret once, with the form for the first code.
#[post("/account/second-factor/totp")]
pub async fn start_totp(
    req: HttpRequest,
    user: AnySession,
    form: web::Form<StartForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    enrolling(&user)?;
    let st = state::of(&req);
    let next = local_path(&form.next).map(str::to_string);
    let label: String = form.label.chars().take(256).collect();
    let u = &user.session.user;
    match st
        .factors()
        .start_totp(&user.ctx, &u.id, &u.username, &label)
        .await
    {
        Ok(e) => {
            let step = totp_step(e, &u.username)?;
            enrol_page(
                &st,
                &user,
                StatusCode::OK,
                next,
                label,
                FormErrors::default(),
                Some(step),
            )
        }
        Err(e) => {
            let errors = FormErrors::from_error(e)?;
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            enrol_page(&st, &user, status, next, label, errors, None)
        }
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    next: String,
}

/// Confirms an enrolment with the app's first code. The user's first
/// factor comes with recovery codes (shown once); a forced enrolment's
/// sign-in becomes full here.
#[post("/account/second-factor/totp/{id}/confirm")]
pub async fn confirm_totp(
    req: HttpRequest,
    user: AnySession,
    id: web::Path<String>,
    form: web::Form<ConfirmForm>,
) -> Result<HttpResponse, UiError> {
    user.check_csrf(&req, &form.csrf_token)?;
    enrolling(&user)?;
    let st = state::of(&req);
    let next = local_path(&form.next).map(str::to_string);
    let u = &user.session.user;
    let code: String = form.code.chars().take(64).collect();
    let factors = st.factors();
    if let Err(e) = factors
        .confirm_totp(&user.ctx, &u.id, &u.username, &id, &code)
        .await
    {
        let errors = FormErrors::from_error(e)?;
        let step = totp_step(
            factors.pending_totp(&u.id, &u.username, &id).await?,
            &u.username,
        )?;
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return enrol_page(&st, &user, status, next, String::new(), errors, Some(step));
    }
    enrolled(&st, &user, "password+totp", next).await
}

/// After a factor is confirmed: recovery codes with the first factor, and
/// a forced enrolment's sign-in made full (a new session cookie).
pub async fn enrolled(
    st: &WebState,
    user: &AnySession,
    method: &str,
    next: Option<String>,
) -> Result<HttpResponse, UiError> {
    let uid = &user.session.user.id;
    let forced = user.session.stage == Stage::Enrol;
    let first = recovery::left(&st.db, uid).await? == 0;
    let codes = if first || forced {
        recovery::issue(&st.audit, &user.ctx, uid).await?
    } else {
        Vec::new()
    };
    let to = if forced {
        next.unwrap_or_else(|| "/".into())
    } else {
        "/account".into()
    };
    let mut res = if codes.is_empty() {
        see_other(&to)
    } else {
        let page = CodesPage {
            layout: enrol_layout(user, "Recovery codes"),
            codes,
            next: to.clone(),
        };
        render(StatusCode::OK, &page)?
    };
    if forced {
        let signed = super::second_factor::finish(st, user, method, Some(&to)).await?;
        for c in signed.cookies() {
            res.add_cookie(&c)
                .map_err(|e| UiError::Internal(crate::error::Error::internal(e)))?;
        }
    }
    Ok(res)
}

/// Registers this page's routes.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(show)
        .service(change_password)
        .service(remove_factor)
        .service(new_codes)
        .service(enrol)
        .service(start_totp)
        .service(confirm_totp);
}

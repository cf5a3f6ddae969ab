//! The one place cookies are built: HttpOnly, SameSite=Strict, Path=/, and
//! Secure with the `__Host-` prefix whenever the appliance is served over
//! TLS or configured as behind a TLS proxy.

use actix_web::cookie::{time::Duration, Cookie, SameSite};
use actix_web::HttpRequest;

pub const SESSION: &str = "agentry_session";
pub const LOGIN_NONCE: &str = "agentry_login";
/// Binds a single sign-on under way to the browser that started it.
pub const OIDC_STATE: &str = "agentry_oidc";

#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
}

impl CookiePolicy {
    pub fn name(&self, base: &str) -> String {
        if self.secure {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// A cookie with the given lifetime (`None`: a browser-session cookie).
    pub fn build(&self, base: &str, value: String, max_age: Option<Duration>) -> Cookie<'static> {
        let mut c = Cookie::build(self.name(base), value)
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
            .finish();
        if let Some(age) = max_age {
            c.set_max_age(age);
        }
        c
    }

    /// As [`Self::build`] but `SameSite=Lax`: sent on the top-level
    /// navigation back from a sign-on provider (a cross-site redirect),
    /// which a Strict cookie is not. Only for the sign-on state.
    pub fn build_lax(&self, base: &str, value: String, max_age: Duration) -> Cookie<'static> {
        let mut c = self.build(base, value, Some(max_age));
        c.set_same_site(SameSite::Lax);
        c
    }

    /// A cookie that makes the browser delete `base`.
    pub fn removal(&self, base: &str) -> Cookie<'static> {
        let mut c = self.build(base, String::new(), None);
        c.make_removal();
        c
    }

    pub fn read(&self, req: &HttpRequest, base: &str) -> Option<String> {
        req.cookie(&self.name(base)).map(|c| c.value().to_string())
    }
}

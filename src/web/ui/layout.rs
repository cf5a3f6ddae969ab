//! Data every page's base layout needs.

use super::super::assets::VERSION;

pub struct Layout {
    pub title: String,
    /// The signed-in user's name; `None` on the login page.
    pub user: Option<String>,
    /// The CSRF token for this page's forms and the `csrf-token` meta tag.
    pub csrf: String,
    /// Navigation entry to highlight.
    pub active: &'static str,
    pub version: &'static str,
    pub nav: crate::web::auth::Nav,
}

impl Layout {
    pub fn new(
        title: impl Into<String>,
        user: Option<String>,
        csrf: String,
        active: &'static str,
    ) -> Layout {
        Layout {
            title: title.into(),
            user,
            csrf,
            active,
            version: VERSION,
            nav: Default::default(),
        }
    }

    pub fn for_session(
        title: impl Into<String>,
        s: &crate::web::auth::SessionUser,
        active: &'static str,
    ) -> Layout {
        let mut layout = Layout::new(
            title,
            Some(s.session.user.username.clone()),
            s.csrf.clone(),
            active,
        );
        layout.nav = s.nav;
        layout
    }
}

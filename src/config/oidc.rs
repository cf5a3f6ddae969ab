//! `[oidc]`: single sign-on for people through an external OpenID Connect
//! provider (SPEC §16). Off while `issuer` is empty.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{invalid, ConfigError};

/// A secret in the configuration: read from the file or the environment,
/// never printed (`check-config` shows `"(set)"`).
#[derive(Clone, Default)]
pub struct ConfigSecret(Option<SecretString>);

impl ConfigSecret {
    pub fn expose(&self) -> Option<&str> {
        self.0
            .as_ref()
            .map(|s| s.expose_secret())
            .filter(|s| !s.is_empty())
    }
}

impl std::fmt::Debug for ConfigSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.expose().is_some() {
            "(set)"
        } else {
            "(unset)"
        })
    }
}

impl Serialize for ConfigSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if self.expose().is_some() { "(set)" } else { "" })
    }
}

impl<'de> Deserialize<'de> for ConfigSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ConfigSecret(Some(SecretString::from(s))))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    /// The provider's issuer URL (its discovery document is
    /// `{issuer}/.well-known/openid-configuration`); empty: no single
    /// sign-on. https, or http on a loopback host.
    pub issuer: String,
    /// agentry's client id at the provider.
    pub client_id: String,
    /// Its client secret (sent with HTTP Basic to the token endpoint).
    pub client_secret: ConfigSecret,
    /// Scopes asked for; must include `openid`.
    pub scopes: Vec<String>,
    /// The button says "Sign in with {display_name}".
    pub display_name: String,
    /// The ID token claim holding the user's groups or roles at the
    /// provider (a string or a list of strings), e.g. `groups`; empty: no
    /// mapping.
    pub role_claim: String,
    /// Claim value → agentry roles. The roles named here are managed by
    /// sign-on: at every sign-in the user's unscoped assignments of them
    /// are set to what the claim maps to; other roles are left alone.
    pub role_mapping: BTreeMap<String, Vec<String>>,
    /// Create a user at first sign-in (named by `preferred_username`);
    /// false: only users already linked to their subject sign in.
    pub auto_create_users: bool,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer: String::new(),
            client_id: String::new(),
            client_secret: ConfigSecret::default(),
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            display_name: "single sign-on".into(),
            role_claim: String::new(),
            role_mapping: BTreeMap::new(),
            auto_create_users: false,
        }
    }
}

impl OidcConfig {
    pub fn enabled(&self) -> bool {
        !self.issuer.is_empty()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled() {
            return Ok(());
        }
        let url = url::Url::parse(&self.issuer)
            .map_err(|e| invalid("oidc.issuer", format!("not a URL: {e}")))?;
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        };
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(invalid(
                "oidc.issuer",
                "must be https (http only on a loopback host, for testing)",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err(invalid("oidc.issuer", "no query, fragment or credentials"));
        }
        if self.client_id.trim().is_empty() || self.client_id.len() > 512 {
            return Err(invalid(
                "oidc.client_id",
                "required with oidc.issuer (1-512 bytes)",
            ));
        }
        if self.client_secret.expose().is_none() {
            return Err(invalid(
                "oidc.client_secret",
                "required with oidc.issuer (or AGENTRY_OIDC__CLIENT_SECRET)",
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(invalid("oidc.scopes", "must include \"openid\""));
        }
        if let Some(bad) = self
            .scopes
            .iter()
            .find(|s| s.is_empty() || s.len() > 128 || !s.chars().all(|c| c.is_ascii_graphic()))
        {
            return Err(invalid("oidc.scopes", format!("{bad:?} is not a scope")));
        }
        let shown = self.display_name.chars().count();
        if !(1..=64).contains(&shown) {
            return Err(invalid("oidc.display_name", "1 to 64 characters"));
        }
        if !self.role_mapping.is_empty() && self.role_claim.is_empty() {
            return Err(invalid(
                "oidc.role_claim",
                "required with oidc.role_mapping",
            ));
        }
        if let Some(bad) = self
            .role_mapping
            .values()
            .flatten()
            .find(|r| !crate::names::is_lower_snake(r))
        {
            return Err(invalid(
                "oidc.role_mapping",
                format!("{bad:?} is not a role name (lower_snake_case)"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on() -> OidcConfig {
        OidcConfig {
            issuer: "https://id.example.com/realms/x".into(),
            client_id: "agentry".into(),
            client_secret: ConfigSecret(Some(SecretString::from("s3cret"))),
            ..OidcConfig::default()
        }
    }

    #[test]
    fn settings_are_checked_and_the_secret_never_printed() {
        assert!(OidcConfig::default().validate().is_ok(), "off");
        assert!(on().validate().is_ok());
        let mut c = on();
        c.issuer = "http://id.example.com".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("oidc.issuer"));
        c.issuer = "http://127.0.0.1:9000".into();
        assert!(c.validate().is_ok(), "http on loopback");
        let mut c = on();
        c.client_secret = ConfigSecret::default();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("oidc.client_secret"));
        let mut c = on();
        c.scopes = vec!["profile".into()];
        assert!(c.validate().unwrap_err().to_string().contains("openid"));
        let mut c = on();
        c.role_mapping
            .insert("admins".into(), vec!["system_admin".into()]);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("oidc.role_claim"));
        c.role_claim = "groups".into();
        assert!(c.validate().is_ok());
        c.role_mapping.insert("x".into(), vec!["Not A Role".into()]);
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("oidc.role_mapping"));
        let shown = toml::to_string(&on()).unwrap();
        assert!(
            !shown.contains("s3cret") && shown.contains("(set)"),
            "{shown}"
        );
        assert!(!format!("{:?}", on()).contains("s3cret"));
    }
}

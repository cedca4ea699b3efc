//! Contiv's `/api/v1/auth_proxy/ldap_configuration/`: the one LDAP directory logins fall
//! back to (admins only). `PUT` sets the whole configuration, `PATCH` changes the fields it
//! carries, `DELETE` removes it (LDAP logins stop; sessions already open go on until they
//! end). Stored at `/contiv/auth/ldap`; the service account's password is kept there (the
//! store holds every secret, the token signing key too) and never shown: replies leave it out.
//!
//! Validation follows Contiv's and names the field: `server`, `port`, `base_dn`,
//! `service_account_dn` and `service_account_password` are required; without `start_tls` the
//! TLS fields are cleared; with it, `insecure_skip_verify` clears `tls_cert_issued_to`, and
//! without either the certificate must be issued to `server`, which must then be a name.

use super::caller::{Caller, Need};
use super::state::LdapConfiguration;
use crate::error::ApiError;
use crate::keys;
use crate::master::{Master, Plan};
use fabric_store::Txn;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

const WHAT: &str = "ldap_configuration";
const MAX_DN_LEN: usize = 1024;
const MAX_PASSWORD_LEN: usize = 1024;
const MAX_HOST_LEN: usize = 253;

/// Contiv's body for `PUT` and `PATCH`: on `PATCH` an absent field is left as it is.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct LdapConfigurationRequest {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub base_dn: Option<String>,
    #[serde(default)]
    pub service_account_dn: Option<String>,
    #[serde(default)]
    pub service_account_password: Option<String>,
    #[serde(default)]
    pub start_tls: Option<bool>,
    #[serde(default)]
    pub insecure_skip_verify: Option<bool>,
    #[serde(default)]
    pub tls_cert_issued_to: Option<String>,
}

/// Contiv's shape as shown: never the service account's password.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct LdapConfigurationView {
    pub server: String,
    pub port: u16,
    pub base_dn: String,
    pub service_account_dn: String,
    pub start_tls: bool,
    pub insecure_skip_verify: bool,
    pub tls_cert_issued_to: String,
}

impl From<&LdapConfiguration> for LdapConfigurationView {
    fn from(c: &LdapConfiguration) -> Self {
        LdapConfigurationView {
            server: c.server.clone(),
            port: c.port,
            base_dn: c.base_dn.clone(),
            service_account_dn: c.service_account_dn.clone(),
            start_tls: c.start_tls,
            insecure_skip_verify: c.insecure_skip_verify,
            tls_cert_issued_to: c.tls_cert_issued_to.clone(),
        }
    }
}

fn bad(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::bad_request(Some(WHAT.into()), Some(field), reason)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(500, None, None, e.to_string())
}

/// A host name (letters, digits, `-`, `_`, `.`) or an IP address.
fn check_host(field: &str, host: &str) -> Result<(), ApiError> {
    let name_ok = !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        });
    if name_ok || host.parse::<IpAddr>().is_ok() {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("'{host}' is not a host name or an IP address (no scheme, no port)"),
        ))
    }
}

/// A non-empty distinguished name: `attr=value` parts separated by commas.
fn check_dn(field: &str, dn: &str) -> Result<(), ApiError> {
    if dn.trim().is_empty() {
        return Err(bad(field, "is required"));
    }
    if dn.len() > MAX_DN_LEN || !dn.contains('=') || dn.chars().any(char::is_control) {
        return Err(bad(
            field,
            format!("is not a distinguished name like 'dc=example,dc=org' (at most {MAX_DN_LEN} characters)"),
        ));
    }
    Ok(())
}

/// Checks a whole configuration and applies Contiv's TLS rules to it.
pub fn validate(mut c: LdapConfiguration) -> Result<LdapConfiguration, ApiError> {
    c.server = c.server.trim().to_string();
    if c.server.is_empty() {
        return Err(bad("server", "is required"));
    }
    check_host("server", &c.server)?;
    if c.port == 0 {
        return Err(bad("port", "is required: 1-65535 (389 for LDAP)"));
    }
    check_dn("base_dn", &c.base_dn)?;
    check_dn("service_account_dn", &c.service_account_dn)?;
    if c.service_account_password.is_empty() {
        return Err(bad("service_account_password", "is required"));
    }
    if c.service_account_password.len() > MAX_PASSWORD_LEN {
        return Err(bad(
            "service_account_password",
            format!("is longer than {MAX_PASSWORD_LEN} characters"),
        ));
    }
    c.tls_cert_issued_to = c.tls_cert_issued_to.trim().to_string();
    if !c.start_tls {
        c.insecure_skip_verify = false;
        c.tls_cert_issued_to.clear();
    } else if c.insecure_skip_verify {
        c.tls_cert_issued_to.clear();
    } else if c.tls_cert_issued_to.is_empty() {
        if c.server.parse::<IpAddr>().is_ok() {
            return Err(bad(
                "tls_cert_issued_to",
                "the server is an IP address: name the host its certificate is issued to, \
                 or set insecure_skip_verify",
            ));
        }
        c.tls_cert_issued_to = c.server.clone();
    } else {
        check_host("tls_cert_issued_to", &c.tls_cert_issued_to)?;
    }
    Ok(c)
}

impl LdapConfigurationRequest {
    /// The fields this request carries, over `base`.
    fn over(self, base: LdapConfiguration) -> LdapConfiguration {
        LdapConfiguration {
            server: self.server.unwrap_or(base.server),
            port: self.port.unwrap_or(base.port),
            base_dn: self.base_dn.unwrap_or(base.base_dn),
            service_account_dn: self.service_account_dn.unwrap_or(base.service_account_dn),
            // Contiv's PATCH keeps the password when the request's is empty.
            service_account_password: self
                .service_account_password
                .filter(|p| !p.is_empty())
                .unwrap_or(base.service_account_password),
            start_tls: self.start_tls.unwrap_or(base.start_tls),
            insecure_skip_verify: self
                .insecure_skip_verify
                .unwrap_or(base.insecure_skip_verify),
            tls_cert_issued_to: self.tls_cert_issued_to.unwrap_or(base.tls_cert_issued_to),
        }
    }
}

impl Master {
    pub fn get_ldap_configuration(
        &self,
        caller: &Caller,
    ) -> Result<LdapConfigurationView, ApiError> {
        let cache = self.cache();
        caller.require(&cache, Need::Admin, WHAT)?;
        cache
            .auth
            .ldap
            .as_ref()
            .map(Into::into)
            .ok_or_else(|| ApiError::not_found(WHAT.into()))
    }

    /// `PUT`: the whole configuration, created or replaced.
    pub async fn put_ldap_configuration(
        &self,
        caller: &Caller,
        req: LdapConfigurationRequest,
    ) -> Result<LdapConfigurationView, ApiError> {
        caller.require(&self.cache(), Need::Admin, WHAT)?;
        let config = validate(req.over(LdapConfiguration::default()))?;
        self.store_ldap_configuration(caller, move |_| Ok(config.clone()))
            .await
    }

    /// `PATCH`: the fields given, over the stored configuration (404 when there is none).
    pub async fn patch_ldap_configuration(
        &self,
        caller: &Caller,
        req: LdapConfigurationRequest,
    ) -> Result<LdapConfigurationView, ApiError> {
        caller.require(&self.cache(), Need::Admin, WHAT)?;
        self.store_ldap_configuration(caller, move |old| {
            let old = old.ok_or_else(|| ApiError::not_found(WHAT.into()))?;
            validate(req.clone().over(old.clone()))
        })
        .await
    }

    async fn store_ldap_configuration(
        &self,
        caller: &Caller,
        make: impl Fn(Option<&LdapConfiguration>) -> Result<LdapConfiguration, ApiError>,
    ) -> Result<LdapConfigurationView, ApiError> {
        let key = keys::LDAP_CONFIG.to_string();
        let (view, _) = self
            .commit(WHAT, |cache| {
                let mut txn = Txn::new();
                txn.compares
                    .extend(caller.require(cache, Need::Admin, WHAT)?);
                let config = make(cache.auth.ldap.as_ref())?;
                let value = serde_json::to_vec(&config).map_err(internal)?;
                Ok(Plan {
                    txn: txn
                        .when_mod_revision(key.clone(), cache.mod_revision(&key))
                        .put(key.clone(), value),
                    result: LdapConfigurationView::from(&config),
                })
            })
            .await?;
        tracing::info!(by = %caller.name, server = %view.server, "LDAP configuration set");
        Ok(view)
    }

    pub async fn delete_ldap_configuration(&self, caller: &Caller) -> Result<(), ApiError> {
        let key = keys::LDAP_CONFIG.to_string();
        self.commit(WHAT, |cache| {
            let mut txn = Txn::new();
            txn.compares
                .extend(caller.require(cache, Need::Admin, WHAT)?);
            if cache.auth.ldap.is_none() {
                return Err(ApiError::not_found(WHAT.into()));
            }
            Ok(Plan {
                txn: txn
                    .when_mod_revision(key.clone(), cache.mod_revision(&key))
                    .delete(key.clone()),
                result: (),
            })
        })
        .await?;
        tracing::info!(by = %caller.name, "LDAP configuration removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LdapConfiguration {
        LdapConfiguration {
            server: "ldap.example.org".into(),
            port: 389,
            base_dn: "dc=example,dc=org".into(),
            service_account_dn: "cn=svc,dc=example,dc=org".into(),
            service_account_password: "secret".into(),
            ..Default::default()
        }
    }

    type Change = Box<dyn Fn(&mut LdapConfiguration)>;

    fn field_of(r: Result<LdapConfiguration, ApiError>) -> Option<String> {
        r.err().and_then(|e| e.field)
    }

    #[test]
    fn validation_names_the_field() {
        assert!(validate(sample()).is_ok());
        let cases: Vec<(&str, Change)> = vec![
            ("server", Box::new(|c| c.server.clear())),
            ("server", Box::new(|c| c.server = "ldap://x:389".into())),
            ("port", Box::new(|c| c.port = 0)),
            ("base_dn", Box::new(|c| c.base_dn = " ".into())),
            ("base_dn", Box::new(|c| c.base_dn = "example".into())),
            (
                "service_account_dn",
                Box::new(|c| c.service_account_dn.clear()),
            ),
            (
                "service_account_password",
                Box::new(|c| c.service_account_password.clear()),
            ),
            (
                "tls_cert_issued_to",
                Box::new(|c| {
                    c.server = "10.0.0.1".into();
                    c.start_tls = true;
                }),
            ),
        ];
        for (field, change) in cases {
            let mut c = sample();
            change(&mut c);
            assert_eq!(field_of(validate(c)).as_deref(), Some(field));
        }
    }

    #[test]
    fn contiv_tls_rules() {
        let c = validate(LdapConfiguration {
            insecure_skip_verify: true,
            tls_cert_issued_to: "x".into(),
            ..sample()
        })
        .expect("valid");
        assert!(!c.insecure_skip_verify && c.tls_cert_issued_to.is_empty());
        let c = validate(LdapConfiguration {
            start_tls: true,
            ..sample()
        })
        .expect("valid");
        assert_eq!(c.tls_cert_issued_to, "ldap.example.org");
        let c = validate(LdapConfiguration {
            start_tls: true,
            insecure_skip_verify: true,
            tls_cert_issued_to: "x".into(),
            ..sample()
        })
        .expect("valid");
        assert!(c.tls_cert_issued_to.is_empty());
    }
}

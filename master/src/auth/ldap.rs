//! LDAP logins (Contiv's `ldap_configuration`): not built yet; every LDAP login is refused.

use super::state::LdapConfiguration;

/// An LDAP user found and bound: their DN and the groups they belong to.
#[derive(Debug, Clone)]
pub struct LdapUser {
    pub dn: String,
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("LDAP logins are not supported yet")]
    Unsupported,
}

pub async fn authenticate(
    _config: &LdapConfiguration,
    _username: &str,
    _password: &str,
) -> Result<LdapUser, LdapError> {
    Err(LdapError::Unsupported)
}

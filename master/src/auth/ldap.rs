//! LDAP logins (Contiv's `ldap_configuration`; its auth_proxy did the same against Active
//! Directory). One login is one connection:
//!
//! 1. connect to `server:port` (StartTLS through rustls when `start_tls`), bind as the
//!    service account;
//! 2. search `base_dn`'s subtree for `(|(sAMAccountName=<name>)(uid=<name>))`: Active
//!    Directory names its users by `sAMAccountName` (what Contiv searched), OpenLDAP and most
//!    other directories by `uid`; exactly one entry must match;
//! 3. bind as that entry's DN with the password (this is the check);
//! 4. bind as the service account again and collect the groups: the entry's `memberOf`
//!    values (Active Directory, or OpenLDAP's memberof overlay), and every entry under
//!    `base_dn` whose `member` or `uniqueMember` is the user's DN (groupOfNames,
//!    groupOfUniqueNames); then the same for those groups, so nested groups count (as in
//!    Contiv), up to [`MAX_DEPTH`] levels and [`MAX_GROUPS`] groups.
//!
//! The principals of the session are the group DNs and the user's own DN, in the form
//! [`normalize_dn`] gives. Nothing of the user is kept besides the session: group changes in
//! the directory apply at the user's next login.
//!
//! No such user, several users of that name and a wrong password are the same
//! [`LdapError::Denied`]; when no single user matched, a bind with the password to a DN
//! that does not exist stands in for the user's bind, so each takes the same round trips to
//! the server. The caller bounds the whole login with a timeout (a server that accepts the
//! connection and never answers must not hang logins), after which the connection is
//! dropped.

use super::state::LdapConfiguration;
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, StdStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

/// Nesting levels of groups followed.
pub const MAX_DEPTH: usize = 8;
/// Groups collected for one user; beyond, the rest are ignored (and logged).
pub const MAX_GROUPS: usize = 256;
/// DNs per group search (each gives two filter terms).
const DNS_PER_SEARCH: usize = 32;
/// LDAP's result code for a wrong password or an unknown DN in a bind.
const INVALID_CREDENTIALS: u32 = 49;
/// LDAP's result code when a search found more entries than asked for.
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// An LDAP user found and bound: their DN and the groups they belong to (DNs as the server
/// wrote them).
#[derive(Debug, Clone)]
pub struct LdapUser {
    pub dn: String,
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    /// No such user, more than one, or a wrong password: told apart only in the log.
    #[error("invalid username or password ({0})")]
    Denied(&'static str),
    #[error("cannot reach the LDAP server {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("StartTLS with the LDAP server {server} failed: {reason}")]
    Tls { server: String, reason: String },
    #[error(
        "the LDAP server refused the service account (ldap_configuration's \
         service_account_dn and service_account_password): {0}"
    )]
    ServiceAccount(String),
    #[error("LDAP {op} failed: {reason}")]
    Protocol { op: &'static str, reason: String },
}

impl LdapError {
    /// Whether the server is out of reach (as opposed to answering wrongly).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, LdapError::Unreachable { .. })
    }
}

fn protocol(op: &'static str) -> impl Fn(ldap3::LdapError) -> LdapError {
    move |e| LdapError::Protocol {
        op,
        reason: e.to_string(),
    }
}

/// Verifies `username`'s `password` against the directory `config` names; the caller bounds
/// it with a timeout.
pub async fn authenticate(
    config: &LdapConfiguration,
    username: &str,
    password: &str,
) -> Result<LdapUser, LdapError> {
    // An empty password would make the user's bind an anonymous one, which servers accept.
    if username.is_empty() || password.is_empty() {
        return Err(LdapError::Denied("empty username or password"));
    }
    let mut ldap = connect(config).await?;
    let result = login(&mut ldap, config, username, password).await;
    // Politeness only: the connection ends when `ldap` is dropped either way.
    let _ = ldap.unbind().await;
    result
}

async fn login(
    ldap: &mut Ldap,
    config: &LdapConfiguration,
    username: &str,
    password: &str,
) -> Result<LdapUser, LdapError> {
    service_bind(ldap, config).await?;
    let name = ldap_escape(username);
    let filter = format!("(|(sAMAccountName={name})(uid={name}))");
    // Two are enough to know the name is ambiguous.
    let ldap3::SearchResult(entries, result) = ldap
        .with_search_options(ldap3::SearchOptions::new().sizelimit(2))
        .search(&config.base_dn, Scope::Subtree, &filter, vec!["memberOf"])
        .await
        .map_err(protocol("search for the user"))?;
    if result.rc != 0 && result.rc != SIZE_LIMIT_EXCEEDED {
        return Err(LdapError::Protocol {
            op: "search for the user",
            reason: result.to_string(),
        });
    }
    let users: Vec<SearchEntry> = entries
        .into_iter()
        .filter(|e| !e.is_ref())
        .map(SearchEntry::construct)
        .collect();
    let [user] = users.as_slice() else {
        // The same bind a real user gets, to a DN no entry has, so that "no such user" takes
        // as long as "wrong password".
        let nobody = format!("uid=netmaster-no-such-user,{}", config.base_dn);
        let _ = ldap.simple_bind(&nobody, password).await;
        return Err(LdapError::Denied(if users.is_empty() {
            "no such LDAP user"
        } else {
            "several LDAP users have this name"
        }));
    };
    let bound = ldap
        .simple_bind(&user.dn, password)
        .await
        .map_err(protocol("bind as the user"))?;
    match bound.rc {
        0 => {}
        INVALID_CREDENTIALS => return Err(LdapError::Denied("wrong LDAP password")),
        _ => {
            return Err(LdapError::Protocol {
                op: "bind as the user",
                reason: bound.to_string(),
            })
        }
    }
    // Groups are read with the service account's rights, not the user's.
    service_bind(ldap, config).await?;
    let groups = groups_of(ldap, config, user).await?;
    Ok(LdapUser {
        dn: user.dn.clone(),
        groups,
    })
}

async fn service_bind(ldap: &mut Ldap, config: &LdapConfiguration) -> Result<(), LdapError> {
    let result = ldap
        .simple_bind(&config.service_account_dn, &config.service_account_password)
        .await
        .map_err(protocol("bind as the service account"))?;
    if result.rc == 0 {
        Ok(())
    } else {
        Err(LdapError::ServiceAccount(result.to_string()))
    }
}

/// `memberOf` values, case-insensitively by attribute name.
fn member_of(entry: &SearchEntry) -> impl Iterator<Item = &String> {
    entry
        .attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
        .flat_map(|(_, v)| v.iter())
}

/// The user's groups, nested ones included, breadth first.
async fn groups_of(
    ldap: &mut Ldap,
    config: &LdapConfiguration,
    user: &SearchEntry,
) -> Result<Vec<String>, LdapError> {
    let mut seen: HashSet<String> = HashSet::from([normalize_dn(&user.dn)]);
    let mut groups: Vec<String> = Vec::new();
    let mut add = |dn: &String, next: &mut Vec<String>| {
        if groups.len() < MAX_GROUPS && seen.insert(normalize_dn(dn)) {
            groups.push(dn.clone());
            next.push(dn.clone());
        }
    };
    let mut frontier = vec![user.dn.clone()];
    let mut next = Vec::new();
    for dn in member_of(user) {
        add(dn, &mut next);
    }
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        for chunk in frontier.chunks(DNS_PER_SEARCH) {
            let terms: String = chunk
                .iter()
                .map(|dn| {
                    let dn = ldap_escape(dn.as_str());
                    format!("(member={dn})(uniqueMember={dn})")
                })
                .collect();
            let ldap3::SearchResult(entries, result) = ldap
                .search(
                    &config.base_dn,
                    Scope::Subtree,
                    &format!("(|{terms})"),
                    vec!["memberOf"],
                )
                .await
                .map_err(protocol("search for groups"))?;
            if result.rc != 0 && result.rc != SIZE_LIMIT_EXCEEDED {
                return Err(LdapError::Protocol {
                    op: "search for groups",
                    reason: result.to_string(),
                });
            }
            for entry in entries.into_iter().filter(|e| !e.is_ref()) {
                let entry = SearchEntry::construct(entry);
                add(&entry.dn, &mut next);
                for dn in member_of(&entry) {
                    add(dn, &mut next);
                }
            }
        }
        frontier = std::mem::take(&mut next);
    }
    if groups.len() >= MAX_GROUPS {
        tracing::warn!(
            user = %user.dn,
            "LDAP user in more than {MAX_GROUPS} groups; the rest are ignored"
        );
    }
    Ok(groups)
}

/// A DN in the one form principals are compared in: lower case, no spaces around the `,`,
/// `=` and `+` separators or at the ends (escaped characters kept as they are). LDAP compares
/// the names of groups and users without case; so, with this, does an authorization.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut spaces = 0;
    let mut after_separator = true;
    let mut chars = dn.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            ',' | '=' | '+' => {
                spaces = 0;
                out.push(c);
                after_separator = true;
            }
            ' ' => {
                if !after_separator {
                    spaces += 1;
                }
            }
            _ => {
                out.extend(std::iter::repeat_n(' ', spaces));
                spaces = 0;
                after_separator = false;
                out.extend(c.to_lowercase());
                if c == '\\' {
                    if let Some(escaped) = chars.next() {
                        out.extend(escaped.to_lowercase());
                    }
                }
            }
        }
    }
    out
}

/// Connects to the server (and upgrades with StartTLS when configured). The TCP connection
/// goes to `server`; the certificate is checked against `tls_cert_issued_to` (or `server`).
async fn connect(config: &LdapConfiguration) -> Result<Ldap, LdapError> {
    let server = format!("{}:{}", config.server, config.port);
    let unreachable = |reason: String| LdapError::Unreachable {
        server: server.clone(),
        reason,
    };
    let tcp = tokio::net::TcpStream::connect((config.server.as_str(), config.port))
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "setting TCP_NODELAY on the LDAP connection");
    }
    let tcp = tcp.into_std().map_err(|e| unreachable(e.to_string()))?;
    let mut settings = LdapConnSettings::new().set_std_stream(StdStream::Tcp(tcp));
    let name = if config.tls_cert_issued_to.is_empty() {
        config.server.as_str()
    } else {
        config.tls_cert_issued_to.as_str()
    };
    if config.start_tls {
        settings = settings.set_starttls(true).set_config(tls_config(config)?);
    }
    // The URL names the host the certificate must be issued to; the stream is already open.
    let host = if name.contains(':') {
        format!("[{name}]")
    } else {
        name.to_string()
    };
    let url = format!("ldap://{host}:{}", config.port);
    let (conn, ldap) = LdapConnAsync::with_settings(settings, &url)
        .await
        .map_err(|e| {
            if config.start_tls {
                LdapError::Tls {
                    server: server.clone(),
                    reason: e.to_string(),
                }
            } else {
                unreachable(e.to_string())
            }
        })?;
    tokio::spawn(async move {
        if let Err(error) = conn.drive().await {
            tracing::debug!(%error, "LDAP connection ended");
        }
    });
    Ok(ldap)
}

#[allow(deprecated)] // rustls 0.23.48 deprecates ring; see src/tls.rs for why it is used.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted roots, loaded once.
fn system_roots() -> Arc<rustls::RootCertStore> {
    static ROOTS: OnceLock<Arc<rustls::RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "loading the system's trusted certificates");
            }
            let mut roots = rustls::RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "trusted roots for LDAP StartTLS");
            Arc::new(roots)
        })
        .clone()
}

/// TLS 1.2/1.3; the server's certificate checked against the system's roots, or not at all
/// with `insecure_skip_verify` (the handshake's signatures are still verified).
fn tls_config(config: &LdapConfiguration) -> Result<Arc<rustls::ClientConfig>, LdapError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| LdapError::Tls {
            server: config.server.clone(),
            reason: e.to_string(),
        })?;
    let tls = if config.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(system_roots())
            .with_no_client_auth()
    };
    Ok(Arc::new(tls))
}

/// `insecure_skip_verify`: any certificate is taken, for any name.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_dn;

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normalize_dn(" CN=NetOps , OU=Groups,dc=Example, dc=org "),
            "cn=netops,ou=groups,dc=example,dc=org"
        );
        assert_eq!(
            normalize_dn("cn=Net  Ops,dc=org"),
            "cn=net  ops,dc=org",
            "inner spaces stay"
        );
        assert_eq!(normalize_dn(r"cn=a\, b,dc=org"), r"cn=a\, b,dc=org");
        assert_eq!(normalize_dn("cn=a+uid=B,dc=org"), "cn=a+uid=b,dc=org");
    }
}

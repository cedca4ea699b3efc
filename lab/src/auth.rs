//! The lab's side of the master's authentication and TLS (issue 18). A lab's netmaster runs
//! with `--auth on` and TLS (its self-signed certificate in `<data-dir>/tls/cert.pem`); lab
//! writes the first admin's password and the agents' bootstrap secret (random, mode 0600) into
//! the run directory of the lab's first netmaster node, logs in as `admin` once the master
//! answers and keeps the token in a file beside them (0600). Commands run in the master node
//! (`exec` lines, `lab exec`) get it as `NETCTL_TOKEN`, logged in again when it is near its
//! end; the benches and the agents' tests read the same files.
//!
//! Files, in `<run>/<lab>/<first netmaster node>/`: `admin-password`, `agent-secret`,
//! `admin-token`; the certificate is `netmaster/tls/cert.pem` there.

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::LabError;

/// The first administrator the master creates.
pub const ADMIN: &str = "admin";
/// Contiv's header for the token.
pub const AUTH_HEADER: &str = "X-Auth-Token";
/// The environment variable netctl reads its token from.
pub const TOKEN_ENV: &str = "NETCTL_TOKEN";
/// A token with less than this left is replaced before a command gets it.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
/// How long the login at deploy keeps trying while the master finishes starting.
const LOGIN_DEADLINE: Duration = Duration::from_secs(20);

pub fn admin_password_file(master_run_dir: &Path) -> PathBuf {
    master_run_dir.join("admin-password")
}

pub fn agent_secret_file(master_run_dir: &Path) -> PathBuf {
    master_run_dir.join("agent-secret")
}

pub fn token_file(master_run_dir: &Path) -> PathBuf {
    master_run_dir.join("admin-token")
}

/// The master's `--data-dir`.
pub fn data_dir(master_run_dir: &Path) -> PathBuf {
    master_run_dir.join("netmaster")
}

/// The master's self-signed certificate, made at its first start.
pub fn cacert(master_run_dir: &Path) -> PathBuf {
    data_dir(master_run_dir).join("tls").join("cert.pem")
}

/// How commands of a node log in to the lab's master: recorded with the node (state file) and
/// with its `exec` lines, never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterLogin {
    /// `https://<mgmt-ip>:9999`.
    pub url: String,
    /// The certificate to trust (None: plain HTTP).
    pub cacert: Option<PathBuf>,
    pub password_file: PathBuf,
    pub token_file: PathBuf,
}

impl MasterLogin {
    /// The login of a master whose files are in `master_run_dir`.
    pub fn of(url: String, master_run_dir: &Path) -> MasterLogin {
        let https = url.starts_with("https://");
        MasterLogin {
            url,
            cacert: https.then(|| cacert(master_run_dir)),
            password_file: admin_password_file(master_run_dir),
            token_file: token_file(master_run_dir),
        }
    }
}

/// Writes `path` with 32 random bytes in hex and mode 0600, unless it exists (several masters
/// of one lab share the first one's files).
pub fn write_secret(path: &Path) -> Result<(), LabError> {
    if path.exists() {
        return Ok(());
    }
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| LabError::io("cannot read", "/dev/urandom", e))?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &format!("{hex}\n"))
}

/// Writes a file readable by its owner only: created 0600 under a temporary name, then renamed
/// over `path`, so no reader sees it half-written or with wider permissions.
pub fn write_private(path: &Path, contents: &str) -> Result<(), LabError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(contents.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(LabError::io("cannot write", path, e));
    }
    Ok(())
}

/// A secret file's first line, as the master reads it.
pub fn read_secret(path: &Path) -> Result<String, LabError> {
    let text = std::fs::read_to_string(path).map_err(|e| LabError::io("cannot read", path, e))?;
    Ok(text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end()
        .to_string())
}

/// An HTTP client for the master: TLS trusting only `cacert` (for an `https://` master), no
/// redirects (a token must not go elsewhere), 4xx/5xx as answers rather than errors.
pub fn http_agent(cacert: Option<&Path>, timeout: Duration) -> Result<ureq::Agent, LabError> {
    use ureq::tls::{PemItem, RootCerts, TlsConfig};
    let tls = match cacert {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| LabError::io("cannot read", path, e))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(LabError::Usage(format!(
                    "{}: no PEM certificate in the file",
                    path.display()
                )));
            }
            TlsConfig::builder()
                .root_certs(RootCerts::new_with_certs(&certs))
                .build()
        }
        None => TlsConfig::default(),
    };
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .max_redirects_will_error(false)
        .tls_config(tls)
        .build()
        .new_agent())
}

/// `POST /api/v1/auth_proxy/login/` → the token.
pub fn login(
    agent: &ureq::Agent,
    url: &str,
    username: &str,
    password: &str,
) -> Result<String, LabError> {
    let endpoint = format!("{url}/api/v1/auth_proxy/login/");
    let body = serde_json::json!({"username": username, "password": password}).to_string();
    let failed = |status: String, stderr: String| LabError::Command {
        command: format!("POST {endpoint} (login as {username})"),
        status,
        stderr,
    };
    let mut resp = agent
        .post(&endpoint)
        .header("Content-Type", "application/json")
        .send(body.as_bytes())
        .map_err(|e| failed("no answer".into(), e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    if status != 200 {
        return Err(failed(status.to_string(), text));
    }
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["token"].as_str().map(String::from))
        .ok_or_else(|| failed(status.to_string(), "the answer has no token".into()))
}

/// Runs `f` on a thread that entered network namespace `netns` (sockets it opens live there).
pub fn in_netns<T: Send>(netns: &str, f: impl FnOnce() -> T + Send) -> Result<T, LabError> {
    let path = crate::netns::netns_path(netns);
    let ns = File::open(&path).map_err(|e| LabError::io("cannot open namespace", &path, e))?;
    std::thread::scope(|s| {
        s.spawn(|| -> Result<T, LabError> {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                LabError::io("cannot enter namespace", &path, std::io::Error::from(e))
            })?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(LabError::Usage(format!("a thread in {netns} panicked"))))
    })
}

/// Logs in as admin from namespace `netns` (the master's address is on the management
/// network) and keeps the token in its file; retried while the master finishes starting.
pub fn login_in(netns: &str, login_info: &MasterLogin) -> Result<String, LabError> {
    let password = read_secret(&login_info.password_file)?;
    let agent = http_agent(login_info.cacert.as_deref(), Duration::from_secs(10))?;
    let deadline = std::time::Instant::now() + LOGIN_DEADLINE;
    let token = in_netns(netns, || loop {
        match login(&agent, &login_info.url, ADMIN, &password) {
            Err(LabError::Command { status, .. })
                if status == "no answer" && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(250));
            }
            other => return other,
        }
    })??;
    write_private(&login_info.token_file, &format!("{token}\n"))?;
    Ok(token)
}

/// `exp` of a JWT (Unix seconds), read without checking the signature (only the master can).
fn expiry(token: &str) -> Option<u64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<serde_json::Value>(&claims).ok()?["exp"].as_u64()
}

fn fresh(token: &str) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    expiry(token).is_some_and(|exp| exp > now + TOKEN_MARGIN.as_secs())
}

/// The admin token for a command: the file's, unless it is missing or within minutes of its
/// end (a user's token lives an hour; labs live longer), then a new login.
pub fn token(netns: &str, login_info: &MasterLogin) -> Result<String, LabError> {
    if let Ok(saved) = read_secret(&login_info.token_file) {
        if fresh(&saved) {
            return Ok(saved);
        }
    }
    login_in(netns, login_info)
}

/// What a client of a master needs: its URL, the certificate to trust (an `https://` master)
/// and the token to send (None: a master with authentication off).
#[derive(Clone)]
pub struct Access {
    pub url: String,
    pub cacert: Option<PathBuf>,
    pub token: Option<String>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("url", &self.url)
            .field("cacert", &self.cacert)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Access {
    /// A deployed lab's master as admin, from namespace `netns` (the token file's token, or a
    /// new login).
    pub fn admin(netns: &str, login_info: &MasterLogin) -> Result<Access, LabError> {
        Ok(Access {
            url: login_info.url.clone(),
            cacert: login_info.cacert.clone(),
            token: Some(token(netns, login_info)?),
        })
    }

    /// A keep-alive HTTP/1.1 client of the master (see [`http_agent`]).
    pub fn agent(&self, timeout: Duration) -> Result<ureq::Agent, LabError> {
        http_agent(self.cacert.as_deref(), timeout)
    }

    /// A request to `path` (below the URL) with the token, if any.
    pub fn request(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), ureq::Error> {
        let url = format!("{}{path}", self.url);
        let mut builder = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            builder = builder.header(AUTH_HEADER, token);
        }
        let mut resp = match body {
            Some(body) => {
                let req = builder
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .map_err(ureq::Error::from)?;
                agent.run(req)?
            }
            None => agent.run(builder.body(()).map_err(ureq::Error::from)?)?,
        };
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        Ok((status, text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn secrets_are_random_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_secret(&a).unwrap();
        write_secret(&b).unwrap();
        let first = read_secret(&a).unwrap();
        assert_eq!(first.len(), 64);
        assert_ne!(first, read_secret(&b).unwrap());
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        write_secret(&a).unwrap();
        assert_eq!(
            read_secret(&a).unwrap(),
            first,
            "an existing secret is kept"
        );
    }

    #[test]
    fn a_token_near_its_end_is_not_fresh() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let jwt = |exp: u64| {
            let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!(r#"{{"exp":{exp}}}"#));
            format!("h.{claims}.s")
        };
        assert!(fresh(&jwt(now + 3600)));
        assert!(!fresh(&jwt(now + 60)));
        assert!(!fresh("opaque"));
    }
}

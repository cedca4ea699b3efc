//! TLS for the REST port: the server's certificate and the rustls configuration.
//!
//! The certificate comes from `--tls-cert`/`--tls-key` (PEM), or is a self-signed one that the
//! master makes on its first start into `<data-dir>/tls/` and reuses afterwards, so the default
//! deployment is encrypted without any set-up: clients pin it by its SHA-256 fingerprint (logged
//! and printed at start) or trust the file `cert.pem`. Only TLS 1.2 and 1.3 are offered, with
//! rustls's `ring` provider (no C toolchain beyond what `ring` itself needs, unlike aws-lc), and
//! ALPN offers `h2` and `http/1.1`, so HTTP/2 keeps working over TLS.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The self-signed certificate's files under the data directory.
pub const TLS_DIR: &str = "tls";
pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";
/// The names the self-signed certificate was made for, one a line: compared at start with the
/// names wanted now, so that a name added later (`--api-hostname`) is reported, not silently
/// unserved.
pub const NAMES_FILE: &str = "names";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no usable PEM {what} in it ({detail})")]
    Pem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A certificate chain with its private key, and where it came from.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// The file holding the chain (what a client passes as `--cacert` for a self-signed one).
    pub cert_path: PathBuf,
    /// True when this start generated it.
    pub generated: bool,
    /// Wanted names the reused self-signed certificate was not made for.
    pub missing_names: Vec<String>,
}

impl Identity {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let cert_pem = std::fs::read(cert).map_err(io_error(cert))?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Pem {
                path: cert.to_path_buf(),
                what: "certificate",
                detail: e.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Pem {
                path: cert.to_path_buf(),
                what: "certificate",
                detail: "no CERTIFICATE section".into(),
            });
        }
        let key_pem = std::fs::read(key).map_err(io_error(key))?;
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
            path: key.to_path_buf(),
            what: "private key",
            detail: e.to_string(),
        })?;
        Ok(Identity {
            chain,
            key: key_der,
            cert_path: cert.to_path_buf(),
            generated: false,
            missing_names: Vec::new(),
        })
    }

    /// The self-signed certificate in `<data_dir>/tls/`: reused when there, else generated for
    /// `names` (DNS names and IP literals). The key file is written with mode 0600 and the
    /// certificate last, so a crash part-way leaves no certificate without its key.
    pub fn self_signed(data_dir: &Path, names: &[String]) -> Result<Identity, TlsError> {
        let dir = data_dir.join(TLS_DIR);
        let cert_path = dir.join(CERT_FILE);
        let key_path = dir.join(KEY_FILE);
        if cert_path.exists() {
            let mut identity = Identity::load(&cert_path, &key_path)?;
            let made_for = std::fs::read_to_string(dir.join(NAMES_FILE)).unwrap_or_default();
            let made_for: Vec<&str> = made_for.lines().collect();
            identity.missing_names = names
                .iter()
                .filter(|n| !made_for.contains(&n.as_str()))
                .cloned()
                .collect();
            return Ok(identity);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_error(&dir))?;
        let mut params = rcgen::CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "netmaster (self-signed)");
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        write_new(&dir, KEY_FILE, key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&dir, NAMES_FILE, names.join("\n").as_bytes(), 0o644)?;
        write_new(&dir, CERT_FILE, cert.pem().as_bytes(), 0o644)?;
        Ok(Identity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            cert_path,
            generated: true,
            missing_names: Vec::new(),
        })
    }

    /// SHA-256 of the leaf certificate's DER, as `AB:CD:...` (what `openssl x509 -fingerprint
    /// -sha256` prints).
    pub fn fingerprint(&self) -> String {
        self.chain
            .first()
            .map_or_else(String::new, |c| fingerprint(c))
    }

    /// The rustls server configuration: TLS 1.3 and 1.2 only, ALPN `h2` then `http/1.1`.
    pub fn server_config(self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        // rustls 0.23.48 deprecates the ring provider for lacking post-quantum key exchange
        // (that needs aws-lc-rs, whose C build this project avoids); its X25519 and P-256/P-384
        // key exchanges are what TLS 1.2/1.3 clients offer today.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(self.chain, self.key)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// SHA-256 of a certificate's DER, colon-separated upper-case hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Writes `name` in `dir` through a temporary file, fsynced and renamed into place, created
/// with `mode` (so the key is never readable by others, not even for a moment).
fn write_new(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    file.write_all(bytes).map_err(io_error(&tmp))?;
    file.sync_all().map_err(io_error(&tmp))?;
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(io_error(&path))
}

/// The names a self-signed certificate is made for: localhost and the loopback addresses, the
/// listen address unless it is unspecified (0.0.0.0, ::), the machine's host name and the
/// `--api-hostname` names, without repeats.
pub fn self_signed_names(listen_host: &str, hostname: Option<&str>, api: &[String]) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let listen_host = listen_host.trim_start_matches('[').trim_end_matches(']');
    let unspecified = listen_host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !listen_host.is_empty() && !unspecified {
        names.push(listen_host.to_string());
    }
    names.extend(hostname.map(str::to_string));
    names.extend(api.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| seen.insert(n.to_ascii_lowercase()));
    names
}

/// The machine's host name, when it is a usable DNS name.
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    crate::listen::valid_dns_name(name).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_skip_unspecified_listen_addresses_and_repeats() {
        let api = vec!["master.example".to_string(), "LOCALHOST".to_string()];
        assert_eq!(
            self_signed_names("0.0.0.0", Some("node1"), &api),
            ["localhost", "127.0.0.1", "::1", "node1", "master.example"]
        );
        assert_eq!(
            self_signed_names("[::]", None, &[]),
            ["localhost", "127.0.0.1", "::1"]
        );
        assert_eq!(
            self_signed_names("10.0.0.5", None, &[]),
            ["localhost", "127.0.0.1", "::1", "10.0.0.5"]
        );
    }

    #[test]
    fn a_generated_certificate_is_reused_and_its_key_is_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let first = Identity::self_signed(dir.path(), &names).expect("generated");
        assert!(first.generated);
        let key = dir.path().join(TLS_DIR).join(KEY_FILE);
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).expect("key file").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let wanted = vec!["localhost".to_string(), "new.example".to_string()];
        let again = Identity::self_signed(dir.path(), &wanted).expect("reused");
        assert!(!again.generated);
        assert_eq!(again.fingerprint(), first.fingerprint());
        assert_eq!(again.missing_names, ["new.example"]);
        assert_eq!(first.fingerprint().len(), 32 * 3 - 1);
        again.server_config().expect("a usable configuration");
    }
}

//! TLS for etcd connections: the CA certificate that verifies etcd's server certificate, and a
//! client certificate with its key for mutual TLS, read from PEM files. Every file is read and
//! checked before connecting, so a bad one is named with the reason (missing, unreadable, not
//! PEM, not a certificate) instead of surfacing as a failed handshake.

use std::path::{Path, PathBuf};

use etcd_client::{Identity, TlsOptions};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::StoreError;

/// TLS settings for `https://` etcd endpoints. All empty (the default) with `https://`
/// endpoints: the system's trusted roots verify etcd, and no client certificate is sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdTls {
    /// PEM file with the CA certificate(s) that verify etcd's server certificate; only these
    /// are trusted then (not the system's roots).
    pub ca_cert: Option<PathBuf>,
    /// PEM file with the client certificate (chain) for mutual TLS; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM file with the client certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<PathBuf>,
}

const CA: &str = "CA certificate";
const CERT: &str = "client certificate";
const KEY: &str = "client key";

impl EtcdTls {
    /// No file given.
    pub fn is_empty(&self) -> bool {
        self.ca_cert.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// Whether `endpoints` are to be reached over TLS: any `https://` endpoint, or any TLS file
    /// given. A plain `http://` endpoint next to those is refused (a secret store is not to be
    /// reached in the clear by accident).
    pub(crate) fn applies_to(&self, endpoints: &[String]) -> Result<bool, StoreError> {
        let https = endpoints.iter().find(|e| e.starts_with("https://"));
        let http = endpoints.iter().find(|e| e.starts_with("http://"));
        match (https, http) {
            (Some(https), Some(http)) => Err(StoreError::EtcdTls(format!(
                "endpoints mix https:// ({https}) and plain http:// ({http}); use https:// for all"
            ))),
            (None, Some(http)) if !self.is_empty() => Err(StoreError::EtcdTls(format!(
                "TLS files are given but endpoint {http} is plain http://; use https://"
            ))),
            (https, _) => Ok(https.is_some() || !self.is_empty()),
        }
    }

    /// Reads and checks the files into the client's TLS options.
    pub(crate) fn options(&self) -> Result<TlsOptions, StoreError> {
        let mut options = TlsOptions::new();
        match &self.ca_cert {
            Some(path) => {
                let anchors = trust_anchors(path)?;
                options = options.trust_anchors(anchors);
            }
            None => options = options.with_native_roots(),
        }
        match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                let cert_pem = client_certificates(cert)?;
                let key_pem = private_key(key)?;
                options = options.identity(Identity::from_pem(cert_pem, key_pem));
            }
            (Some(cert), None) => {
                return Err(StoreError::EtcdTls(format!(
                    "the client certificate {} needs its key",
                    cert.display()
                )))
            }
            (None, Some(key)) => {
                return Err(StoreError::EtcdTls(format!(
                    "the client key {} needs its certificate",
                    key.display()
                )))
            }
            (None, None) => {}
        }
        Ok(options)
    }
}

fn file_error(what: &'static str, path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::EtcdTlsFile {
        what,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => file_error(what, path, "missing (no such file)"),
        _ => file_error(what, path, format!("unreadable: {e}")),
    })
}

/// The client certificate file's bytes after checking that its first certificate parses.
fn client_certificates(path: &Path) -> Result<Vec<u8>, StoreError> {
    let (certs, pem) = certificates_as(CERT, path)?;
    if let Some(first) = certs.first() {
        webpki::EndEntityCert::try_from(first)
            .map_err(|e| file_error(CERT, path, format!("not a valid X.509 certificate: {e}")))?;
    }
    Ok(pem)
}

/// The certificates of a PEM file (at least one), with the file's bytes.
fn certificates_as(
    what: &'static str,
    path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, Vec<u8>), StoreError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(what, path, format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(
            what,
            path,
            "not PEM: no \"BEGIN CERTIFICATE\" block in it",
        ));
    }
    Ok((certs, pem))
}

/// Each certificate of the CA file as a trust anchor; one that does not parse as an X.509
/// certificate is an error (rustls would skip it silently and then trust nothing).
fn trust_anchors(path: &Path) -> Result<Vec<rustls_pki_types::TrustAnchor<'static>>, StoreError> {
    let (certs, _) = certificates_as(CA, path)?;
    certs
        .iter()
        .enumerate()
        .map(|(i, cert)| {
            webpki::anchor_from_trusted_cert(cert)
                .map(|anchor| anchor.to_owned())
                .map_err(|e| {
                    file_error(
                        CA,
                        path,
                        format!(
                            "certificate #{} is not a valid X.509 certificate: {e}",
                            i + 1
                        ),
                    )
                })
        })
        .collect()
}

/// The PEM file's bytes after checking that it holds a private key.
fn private_key(path: &Path) -> Result<Vec<u8>, StoreError> {
    let pem = read(KEY, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        file_error(
            KEY,
            path,
            match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    "not PEM: no private key block (PKCS#8, PKCS#1 or SEC1) in it".to_string()
                }
                e => format!("not PEM: {e}"),
            },
        )
    })?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls(ca: Option<&str>, cert: Option<&str>, key: Option<&str>) -> EtcdTls {
        EtcdTls {
            ca_cert: ca.map(PathBuf::from),
            client_cert: cert.map(PathBuf::from),
            client_key: key.map(PathBuf::from),
        }
    }

    fn endpoints(list: &[&str]) -> Vec<String> {
        list.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn scheme_decides_and_mixing_is_refused() {
        let none = EtcdTls::default();
        assert!(!none
            .applies_to(&endpoints(&["http://127.0.0.1:2379"]))
            .unwrap());
        assert!(none
            .applies_to(&endpoints(&["https://127.0.0.1:2379"]))
            .unwrap());
        let ca = tls(Some("/ca.pem"), None, None);
        assert!(ca.applies_to(&endpoints(&["127.0.0.1:2379"])).unwrap());
        let error = ca
            .applies_to(&endpoints(&["http://127.0.0.1:2379"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("plain http://"), "{error}");
        let error = none
            .applies_to(&endpoints(&["https://a:2379", "http://b:2379"]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("mix"), "{error}");
    }

    #[test]
    fn file_errors_name_the_file_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate\n").unwrap();
        let bad_der = dir.path().join("bad-der.pem");
        std::fs::write(
            &bad_der,
            "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let unreadable = dir.path().to_path_buf(); // a directory: read fails, not NotFound

        let cases: Vec<(EtcdTls, &str, &Path, &str)> = vec![
            (
                tls(missing.to_str(), None, None),
                "CA certificate",
                &missing,
                "missing",
            ),
            (
                tls(garbage.to_str(), None, None),
                "CA certificate",
                &garbage,
                "not PEM",
            ),
            (
                tls(bad_der.to_str(), None, None),
                "CA certificate",
                &bad_der,
                "not a valid X.509 certificate",
            ),
            (
                tls(unreadable.to_str(), None, None),
                "CA certificate",
                &unreadable,
                "unreadable",
            ),
            (
                tls(None, garbage.to_str(), missing.to_str()),
                "client certificate",
                &garbage,
                "not PEM",
            ),
            (
                tls(None, bad_der.to_str(), garbage.to_str()),
                "client certificate",
                &bad_der,
                "not a valid X.509 certificate",
            ),
        ];
        for (settings, what, path, reason) in cases {
            let error = settings.options().unwrap_err().to_string();
            assert!(error.contains(what), "{error}");
            assert!(error.contains(&path.display().to_string()), "{error}");
            assert!(error.contains(reason), "{error}");
        }
        let error = tls(None, bad_der.to_str(), None)
            .options()
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs its key"), "{error}");
        let error = tls(None, None, garbage.to_str())
            .options()
            .unwrap_err()
            .to_string();
        assert!(error.contains("needs its certificate"), "{error}");
    }
}

//! TLS towards the master: rustls with the ring provider, TLS 1.2 and 1.3 only, HTTP/1.1 by
//! ALPN. The master's certificate is checked against `--master-cacert` (its self-signed
//! certificate, `<data-dir>/tls/cert.pem`, or the CA that signed it), else against the
//! system's roots; `--master-insecure` skips the check (with a warning at start).
//!
//! With several masters, each with its own self-signed certificate, `--master-cacert` is a PEM
//! bundle of all of them: every certificate in the file is a trust anchor, and a master's
//! certificate is accepted when any of them verifies it (rustls tries each anchor whose subject
//! matches, so self-signed certificates sharing a subject name still work).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading --master-cacert {0}: {1}")]
    Read(PathBuf, String),
    #[error("--master-cacert {0} holds no certificate")]
    Empty(PathBuf),
    #[error("no trusted root certificates on this system; give the master's with --master-cacert")]
    NoRoots,
    #[error("TLS set-up: {0}")]
    Config(String),
}

/// Whom the agent trusts for the master's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's roots.
    System,
    /// Only the certificates in this PEM file.
    CaFile(PathBuf),
    /// Anyone (`--master-insecure`).
    Anyone,
}

fn provider() -> Arc<CryptoProvider> {
    // rustls 0.23.48 deprecates the ring provider for lacking post-quantum key exchange (that
    // needs aws-lc-rs, whose C build the project avoids; the master uses ring too).
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(trust: &Trust) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match trust {
        Trust::CaFile(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsError::Read(path.clone(), e.to_string()))?;
            if certs.is_empty() {
                return Err(TlsError::Empty(path.clone()));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Read(path.clone(), e.to_string()))?;
            }
        }
        Trust::System => {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::debug!(%error, "a system root certificate store could not be read");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(TlsError::NoRoots);
            }
        }
        Trust::Anyone => {}
    }
    Ok(roots)
}

/// The client configuration for the master.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        // TLS 1.2 and 1.3: rustls implements nothing older.
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = match trust {
        Trust::Anyone => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
        _ => builder
            .with_root_certificates(roots(trust)?)
            .with_no_client_auth(),
    };
    // reqwest is built without HTTP/2 here; the master serves HTTP/1.1 over TLS.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A configuration that trusts no certificate at all: for `https://` masters learned at run
/// time when only plain ones were configured and no roots could be loaded. Refusing them is
/// safe; taking them unchecked would not be.
pub fn refuse_all_config() -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// `--master-insecure`: any certificate is taken, but the handshake's signatures are still
/// checked (the peer holds the key of the certificate it sent), so the connection is encrypted
/// to whoever answered, just not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
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
        verify_tls12_signature(
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
        verify_tls13_signature(
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

/// Is `base`'s host this machine (loopback)? Credentials may go there over plain HTTP.
pub fn is_loopback(base: &str) -> bool {
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))
        .unwrap_or(base);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for yes in [
            "http://127.0.0.1:9999",
            "http://localhost:9999/",
            "http://[::1]:9999",
            "https://127.0.0.2",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "http://172.20.20.10:9999",
            "http://master:9999",
            "http://[fe80::1]:1",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = client_config(&Trust::CaFile(path.clone())).unwrap_err();
        assert!(e.to_string().contains("ca.pem"), "{e}");
        let e = client_config(&Trust::CaFile(dir.path().join("none.pem"))).unwrap_err();
        assert!(e.to_string().contains("none.pem"), "{e}");
    }

    #[test]
    fn only_tls_1_2_and_1_3() {
        let config = client_config(&Trust::Anyone).unwrap();
        let versions: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .map(|s| s.version().version)
            .collect();
        assert!(versions.iter().all(|v| matches!(
            v,
            rustls::ProtocolVersion::TLSv1_2 | rustls::ProtocolVersion::TLSv1_3
        )));
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}

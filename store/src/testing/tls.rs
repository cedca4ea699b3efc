//! Certificates for an etcd over TLS, generated with rcgen (ECDSA P-256) as PEM files: a CA,
//! a server certificate for 127.0.0.1 and localhost, a client certificate, and a second CA
//! with its own client certificate that the etcd does not trust.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::FixtureError;
use crate::EtcdTls;

/// What etcd serves with: its certificate and key, and the CA its clients must be signed by.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
}

/// The PEM files of a TLS etcd fixture (inside the fixture's temp dir).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The CA that signed etcd's server certificate and the trusted client certificate.
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Signed by `ca_cert`, for client authentication: etcd accepts it.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA etcd knows nothing of: verifying etcd with it fails.
    pub other_ca_cert: PathBuf,
    /// Signed by `other_ca_cert`: etcd refuses it.
    pub other_client_cert: PathBuf,
    pub other_client_key: PathBuf,
}

impl TlsFiles {
    /// Generates every file into `dir` (created if missing).
    pub fn generate(dir: &Path) -> Result<Self, FixtureError> {
        std::fs::create_dir_all(dir)?;
        let write = |name: &str, pem: String| -> Result<PathBuf, FixtureError> {
            let path = dir.join(name);
            std::fs::write(&path, pem)?;
            Ok(path)
        };
        let ca = new_ca("fabric-store test CA")?;
        let other_ca = new_ca("another test CA")?;
        let (server_cert, server_key) = leaf(
            &ca,
            "etcd",
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let (client_cert, client_key) = leaf(
            &ca,
            "netmaster",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let (other_client_cert, other_client_key) = leaf(
            &other_ca,
            "netmaster",
            vec![],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(Self {
            ca_cert: write("ca.pem", ca.pem())?,
            server_cert: write("server.pem", server_cert)?,
            server_key: write("server-key.pem", server_key)?,
            client_cert: write("client.pem", client_cert)?,
            client_key: write("client-key.pem", client_key)?,
            other_ca_cert: write("other-ca.pem", other_ca.pem())?,
            other_client_cert: write("other-client.pem", other_client_cert)?,
            other_client_key: write("other-client-key.pem", other_client_key)?,
        })
    }

    pub(crate) fn server(&self) -> ServerTls {
        ServerTls {
            cert: self.server_cert.clone(),
            key: self.server_key.clone(),
            client_ca: self.ca_cert.clone(),
        }
    }

    /// What a client that etcd accepts uses: the right CA and the trusted client certificate.
    pub fn client(&self) -> EtcdTls {
        EtcdTls {
            ca_cert: Some(self.ca_cert.clone()),
            client_cert: Some(self.client_cert.clone()),
            client_key: Some(self.client_key.clone()),
        }
    }
}

fn new_ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, FixtureError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

/// A certificate signed by `issuer` and its key, both PEM.
fn leaf(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    subject_alt_names: Vec<String>,
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String), FixtureError> {
    let mut params = CertificateParams::new(subject_alt_names)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

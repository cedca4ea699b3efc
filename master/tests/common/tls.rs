//! A TLS client for tests: rustls (ring) trusting one CA file, with a chosen ALPN, and one
//! HTTP request over it through hyper's connection-level client (HTTP/1.1 or HTTP/2 by what
//! ALPN agreed).

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Bound on connecting, the handshake and the answer.
const DEADLINE: Duration = Duration::from_secs(5);

/// The certificates of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// SHA-256 of a certificate, `AB:CD:...`.
pub fn fingerprint(cert: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A TLS 1.2/1.3 client trusting only the certificates in `ca`.
pub fn client_config(ca: &Path, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certs(ca)? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    #[allow(deprecated)] // the ring provider, as the server uses (see src/tls.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Connects and completes the handshake, verifying the server as `name`.
pub async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<TlsStream<TcpStream>, String> {
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(DEADLINE, async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))
    })
    .await
    .map_err(|_| "TLS connect timed out".to_string())?
}

/// The answer to one GET over an established TLS stream: version, status, body.
pub async fn get(
    stream: TlsStream<TcpStream>,
    authority: &str,
    path: &str,
) -> Result<(Version, u16, String), String> {
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    tokio::time::timeout(DEADLINE, async {
        let io = TokioIo::new(stream);
        let response = if h2 {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("HTTP/2 handshake: {e}"))?;
            tokio::spawn(conn);
            let request = Request::get(format!("https://{authority}{path}"))
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            sender.send_request(request).await
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
            tokio::spawn(conn);
            let request = Request::get(path)
                .header("host", authority)
                .body(Empty::<Bytes>::new())
                .map_err(|e| e.to_string())?;
            sender.send_request(request).await
        }
        .map_err(|e| format!("GET {path}: {e}"))?;
        let version = response.version();
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("GET {path} body: {e}"))?
            .to_bytes();
        Ok((version, status, String::from_utf8_lossy(&body).into_owned()))
    })
    .await
    .map_err(|_| format!("GET {path} timed out"))?
}

/// Connect, GET `path` over HTTP/1.1, and answer the status.
pub async fn get_status(addr: SocketAddr, ca: &Path, path: &str) -> Result<u16, String> {
    let config = client_config(ca, &[b"http/1.1"])?;
    let stream = connect(addr, &addr.ip().to_string(), config).await?;
    let (_, status, _) = get(stream, &addr.to_string(), path).await?;
    Ok(status)
}

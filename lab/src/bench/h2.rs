//! One HTTP/2 connection to netmaster with many requests in flight: cleartext with prior
//! knowledge (h2c) to an `http://` master, or TLS with ALPN `h2` to an `https://` one (rustls,
//! ring, TLS 1.2/1.3, trusting the master's certificate); hyper's connection-level client,
//! which has no pool and so cannot open a second connection. Every request carries the token.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper::{Method, Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};

use lab::auth::{Access, AUTH_HEADER};

/// A handle on the connection; clones share it, each request is a stream of its own.
#[derive(Clone)]
pub struct H2 {
    base: String,
    token: Option<String>,
    sender: SendRequest<Full<Bytes>>,
}

/// A rustls client trusting only the certificates of `cacert`, offering only `h2`.
fn tls_config(cacert: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cacert)
        .with_context(|| format!("reading {}", cacert.display()))?
    {
        roots
            .add(cert.with_context(|| format!("reading {}", cacert.display()))?)
            .with_context(|| format!("{}: not a usable certificate", cacert.display()))?;
    }
    // rustls 0.23.48 deprecates ring for lacking post-quantum key exchange; the master uses
    // ring too (no aws-lc C build in this workspace).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

impl H2 {
    /// Connects to the master of `access` and runs the connection on the current runtime.
    pub async fn connect(access: &Access) -> Result<H2> {
        let base = access.url.as_str();
        let (https, addr) = match base.strip_prefix("https://") {
            Some(rest) => (true, rest),
            None => (false, base.trim_start_matches("http://")),
        };
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Small frames for many streams: do not let Nagle hold them for the peer's ACK.
        tcp.set_nodelay(true)?;
        let sender = if https {
            let Some(cacert) = &access.cacert else {
                bail!("{base}: no certificate to trust");
            };
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .with_context(|| format!("{host}: not a server name"))?;
            let tls = tokio_rustls::TlsConnector::from(tls_config(cacert)?)
                .connect(name, tcp)
                .await
                .with_context(|| format!("TLS handshake with {addr}"))?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                bail!("{addr} did not agree to HTTP/2 (ALPN)");
            }
            handshake(TokioIo::new(tls), addr).await?
        } else {
            handshake(TokioIo::new(tcp), addr).await?
        };
        Ok(H2 {
            base: base.to_string(),
            token: access.token.clone(),
            sender,
        })
    }

    /// One request on a new stream: the status and the body.
    pub async fn call(&self, method: Method, path: &str, body: &str) -> Result<(u16, String)> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(token) = &self.token {
            request = request.header(AUTH_HEADER, token);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .with_context(|| format!("{method} {path}"))?;
        let mut sender = self.sender.clone();
        sender
            .ready()
            .await
            .with_context(|| format!("{method} {path}: the connection is gone"))?;
        let resp = sender
            .send_request(request)
            .await
            .with_context(|| format!("{method} {path}"))?;
        if resp.version() != Version::HTTP_2 {
            bail!("{method} {path} answered over {:?}", resp.version());
        }
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{method} {path}: reading the answer"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// POST that must answer 200.
    pub async fn post(&self, path: &str, body: &str) -> Result<()> {
        self.call_ok(Method::POST, path, body).await
    }

    /// GET that must answer 200 (the body is not wanted).
    pub async fn get(&self, path: &str) -> Result<()> {
        self.call_ok(Method::GET, path, "").await
    }

    async fn call_ok(&self, method: Method, path: &str, body: &str) -> Result<()> {
        let (status, text) = self.call(method.clone(), path, body).await?;
        if status != 200 {
            bail!("{method} {path} answered {status}: {text}");
        }
        Ok(())
    }
}

/// The HTTP/2 handshake over `io`; the connection runs as a task of the current runtime.
async fn handshake<T>(io: TokioIo<T>, addr: &str) -> Result<SendRequest<Full<Bytes>>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .with_context(|| format!("HTTP/2 handshake with {addr}"))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "HTTP/2 connection to netmaster ended");
        }
    });
    Ok(sender)
}

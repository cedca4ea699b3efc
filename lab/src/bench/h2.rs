//! One HTTP/2 connection to netmaster (cleartext, prior knowledge) with many requests in flight:
//! hyper's connection-level client, which has no pool and so cannot open a second connection.

use anyhow::{bail, Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper::{Method, Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A handle on the connection; clones share it, each request is a stream of its own.
#[derive(Clone)]
pub struct H2 {
    base: String,
    sender: SendRequest<Full<Bytes>>,
}

impl H2 {
    /// Connects to `base` (`http://host:port`) and runs the connection on the current runtime.
    pub async fn connect(base: &str) -> Result<H2> {
        let addr = base.trim_start_matches("http://");
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        // Small frames for many streams: do not let Nagle hold them for the peer's ACK.
        tcp.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                .await
                .with_context(|| format!("HTTP/2 handshake with {addr}"))?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(%error, "HTTP/2 connection to netmaster ended");
            }
        });
        Ok(H2 {
            base: base.to_string(),
            sender,
        })
    }

    /// One request on a new stream: the status and the body.
    pub async fn call(&self, method: Method, path: &str, body: &str) -> Result<(u16, String)> {
        let request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/json")
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

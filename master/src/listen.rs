//! How the REST port is served: the command-line flags for TLS and the server's limits (a clap
//! `Args` struct that the binary flattens into its own), and what they turn into at start.

use crate::api::Limits;
use crate::tls::{self, Identity, TlsError};
use crate::Master;
use clap::Args;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// PEM certificate chain for the REST port's TLS (with --tls-key). Without both, a
    /// self-signed certificate is made into <data-dir>/tls/ on first start and reused.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP (HTTP/1.1 and h2c) instead of TLS: anyone on the network can read and
    /// change what is sent. For tests and trusted networks only.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub insecure_http: bool,
    /// A name clients reach this master by (repeatable): accepted in the Host header (IP
    /// addresses and localhost always are) and put into the self-signed certificate.
    #[arg(long = "api-hostname", value_name = "NAME", value_parser = parse_hostname)]
    pub api_hostnames: Vec<String>,
    /// Longest time a client may take to send a request's headers (from its first byte, or
    /// from the connection's start for its first request, TLS handshake included).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Longest time a client may take to send a request's body.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// A connection with no request in flight and nothing received for this long is closed
    /// (an open watch stream is a request in flight: it is never cut).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Connections served at once; past it a new connection is answered 503 and closed.
    #[arg(long, value_name = "N", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
}

impl ListenArgs {
    pub fn limits(&self) -> Limits {
        // The machine's own name is in the self-signed certificate, so a client that verifies
        // it by that name must not then be refused by the Host check; only whoever runs the
        // machine's resolver could point that name elsewhere, not a web page's author.
        let mut api_hostnames = self.api_hostnames.clone();
        api_hostnames.extend(tls::hostname());
        Limits {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            max_connections: self.max_connections as usize,
            api_hostnames,
        }
    }

    /// Loads or makes the certificate (unless --insecure-http) and logs how the port is served:
    /// the certificate's fingerprint at info level (also printed on stderr, where an operator
    /// starting it by hand sees it), plain HTTP at warn level.
    pub fn prepare(&self, data_dir: &Path, listen_addr: &str) -> Result<Serving, TlsError> {
        let limits = self.limits();
        if self.insecure_http {
            tracing::warn!(
                "--insecure-http: the REST API is served WITHOUT TLS; anyone on the network can \
                 read and change its traffic"
            );
            return Ok(Serving { tls: None, limits });
        }
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Identity::load(cert, key)?,
            _ => {
                let names = tls::self_signed_names(
                    host_of(listen_addr),
                    tls::hostname().as_deref(),
                    &self.api_hostnames,
                );
                Identity::self_signed(data_dir, &names)?
            }
        };
        let fingerprint = identity.fingerprint();
        let cert = identity.cert_path.display().to_string();
        if !identity.missing_names.is_empty() {
            tracing::warn!(
                missing = ?identity.missing_names, %cert,
                "the self-signed certificate was made without these names; remove its directory \
                 to make a new one (its fingerprint changes)"
            );
        }
        tracing::info!(%cert, %fingerprint, generated = identity.generated, "TLS certificate");
        eprintln!("netmaster TLS certificate {cert} SHA-256 fingerprint {fingerprint}");
        Ok(Serving {
            tls: Some(identity.server_config()?),
            limits,
        })
    }
}

/// The port's transport and limits, ready to serve.
pub struct Serving {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: Limits,
}

impl Serving {
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        master: Arc<Master>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        match self.tls {
            Some(tls) => crate::api::serve_tls(listener, master, tls, self.limits, shutdown).await,
            None => crate::api::serve_with(listener, master, self.limits, shutdown).await,
        }
    }
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match addr.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host,
        Some(_) => addr,
        None => addr,
    }
}

/// `10s`, `500ms`, `2m`, `1h`, or a bare number of seconds; more than zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 10s, 500ms or 2m"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return Err(format!("'{text}': unit must be ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err(format!("'{text}' must be more than zero"));
    }
    Ok(duration)
}

/// An `--api-hostname`: a DNS name (lower-cased, a trailing dot dropped) or an IP literal.
pub fn parse_hostname(text: &str) -> Result<String, String> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.parse::<std::net::IpAddr>().is_ok() || valid_dns_name(&name) {
        Ok(name)
    } else {
        Err(format!(
            "'{text}' is not a DNS name (labels of letters, digits and '-', 1-63 characters each)"
        ))
    }
}

/// A host name as DNS allows it: dot-separated labels of letters, digits and inner hyphens, 1-63
/// characters each, 253 in all.
pub fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn hostnames() {
        assert_eq!(
            parse_hostname("Master.Example."),
            Ok("master.example".into())
        );
        assert_eq!(parse_hostname("10.0.0.1"), Ok("10.0.0.1".into()));
        assert!(parse_hostname("bad_name").is_err());
        assert!(parse_hostname("-x.example").is_err());
        assert!(parse_hostname("").is_err());
    }

    #[test]
    fn hosts_of_listen_addresses() {
        assert_eq!(host_of("0.0.0.0:9999"), "0.0.0.0");
        assert_eq!(host_of("[::1]:9999"), "::1");
        assert_eq!(host_of("myhost:9999"), "myhost");
        assert_eq!(host_of("::1"), "::1");
    }
}

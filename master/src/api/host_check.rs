//! DNS-rebinding protection: a request's Host (or HTTP/2 `:authority`) must name this master.
//!
//! A web page can make a browser send requests to a name its author controls but resolves to
//! the master's address; the browser then treats the master's answers as that site's own. Such
//! requests carry the page's name as Host, so only names the master knows are served: IP
//! literals (v4, or `[v6]`, with or without a port), `localhost`, and the names in
//! [`Limits::api_hostnames`](super::Limits) (every `--api-hostname` and the machine's name).
//! Anything else is answered 421 Misdirected Request naming the header. A request without any
//! Host (HTTP/1.0) is served: a browser always sends one.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The configured names, lower-case and without a trailing dot.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    pub fn new(names: &[String]) -> AllowedHosts {
        AllowedHosts(Arc::new(names.iter().map(|n| normalize(n)).collect()))
    }

    /// Whether a Host value (`name`, `name:port`, `[v6]:port`) names this master.
    pub fn allows(&self, host: &str) -> bool {
        let name = if let Some(rest) = host.strip_prefix('[') {
            return match rest.split_once(']') {
                Some((v6, port)) => v6.parse::<Ipv6Addr>().is_ok() && valid_port(port),
                None => false,
            };
        } else {
            match host.rsplit_once(':') {
                Some((name, port)) if valid_port(&format!(":{port}")) => name,
                Some(_) => return false,
                None => host,
            }
        };
        if name.parse::<Ipv4Addr>().is_ok() {
            return true;
        }
        let name = normalize(name);
        name == "localhost" || self.0.contains(&name)
    }
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Nothing, or `:` and 1-5 digits.
fn valid_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => {
            !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

/// The layer: refuses a request whose Host is not one of the allowed names.
pub async fn check(State(allowed): State<AllowedHosts>, request: Request, next: Next) -> Response {
    let host = match request.headers().get(HOST) {
        Some(value) => Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        None => request.uri().authority().map(|a| a.as_str().to_string()),
    };
    match host {
        Some(host) if !allowed.allows(&host) => misdirected(&host).into_response(),
        _ => next.run(request).await,
    }
}

fn misdirected(host: &str) -> ApiError {
    let reason = format!(
        "'{host}' is not a name of this master: use its IP address, localhost, or a name given \
         to it with --api-hostname (other names are refused against DNS rebinding)"
    );
    ApiError {
        status: 421,
        message: format!("header 'Host': {reason}"),
        object: None,
        field: Some("Host".into()),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_localhost_and_configured_names_only() {
        let allowed = AllowedHosts::new(&["Master.Example.".to_string()]);
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9999",
            "10.1.2.3:1",
            "[::1]",
            "[::1]:9999",
            "[fe80::1]:80",
            "localhost",
            "LOCALHOST:9999",
            "localhost.",
            "master.example",
            "master.example.:443",
            "MASTER.EXAMPLE:9999",
        ] {
            assert!(allowed.allows(ok), "{ok} must be allowed");
        }
        for refused in [
            "evil.example",
            "evil.example:9999",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "master.example.evil",
            "::1",
            "[::1",
            "[evil]:80",
            "127.0.0.1:port",
            "127.0.0.1:123456",
            "",
            "master",
        ] {
            assert!(!allowed.allows(refused), "{refused} must be refused");
        }
    }
}

//! The agent's HTTP client of the master: IPAM (allocate/reserve/release), endpoint records, the
//! registration heartbeat, the state snapshot and the watch stream.

use async_trait::async_trait;
use fabric_actors::endpoint::{ErrorKind, StepError};
use fabric_actors::master_link::MasterApi;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::Duration;

/// How long one request may take before the master counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct MasterClient {
    base: String,
    http: reqwest::Client,
    /// Without a timeout, for the watch stream.
    stream_http: reqwest::Client,
}

fn unreachable(base: &str, e: reqwest::Error) -> StepError {
    StepError::new(
        ErrorKind::MasterUnreachable,
        format!("netmaster {base} unreachable: {e}"),
    )
}

impl MasterClient {
    pub fn new(base: &str) -> Result<MasterClient, reqwest::Error> {
        let base = base.trim_end_matches('/').to_string();
        Ok(MasterClient {
            base,
            http: reqwest::Client::builder()
                .timeout(TIMEOUT)
                .connect_timeout(Duration::from_secs(2))
                .build()?,
            stream_http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(2))
                .build()?,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request; a non-2xx answer becomes MasterRefused with the master's message, or None
    /// for a 404 when `missing_ok`.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        missing_ok: bool,
    ) -> Result<Option<Value>, StepError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| unreachable(&self.base, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| unreachable(&self.base, e))?;
        if status.as_u16() == 404 && missing_ok {
            return Ok(None);
        }
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(String::from))
                .unwrap_or(text);
            return Err(StepError::new(
                ErrorKind::MasterRefused,
                format!("netmaster refused {method} {path}: {message}"),
            ));
        }
        Ok(Some(serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub async fn allocate(
        &self,
        network: &str,
        group: &str,
        owner: &str,
    ) -> Result<Value, StepError> {
        let body = json!({"network": network, "group": group, "owner": owner});
        self.call(
            reqwest::Method::POST,
            "/api/v1/agent/allocate",
            Some(body),
            false,
        )
        .await
        .map(Option::unwrap_or_default)
    }

    /// Releases `ip` while `owner` (an endpoint id) or this host's reserve holds it.
    pub async fn release(
        &self,
        network: &str,
        ip: IpAddr,
        owner: &str,
        host: &str,
    ) -> Result<(), StepError> {
        let body = json!({"network": network, "ipAddress": ip, "owner": owner, "host": host});
        self.call(
            reqwest::Method::POST,
            "/api/v1/agent/release",
            Some(body),
            false,
        )
        .await
        .map(drop)
    }

    /// Asks the master to keep up to `count` addresses of the network (or of the group's
    /// ipPool) for this host.
    pub async fn reserve(
        &self,
        network: &str,
        group: &str,
        host: &str,
        count: u32,
    ) -> Result<Value, StepError> {
        let body = json!({"network": network, "group": group, "host": host, "count": count});
        self.call(
            reqwest::Method::POST,
            "/api/v1/agent/reserve",
            Some(body),
            false,
        )
        .await
        .map(Option::unwrap_or_default)
    }

    /// The addresses the master keeps for this host, as (network, address).
    pub async fn reservations(&self, host: &str) -> Result<Vec<(String, IpAddr)>, StepError> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/agent/hosts/{host}/reservations"),
                None,
                false,
            )
            .await?
            .unwrap_or_default();
        Ok(v["reservations"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let ip = r["ipAddress"].as_str()?.parse().ok()?;
                Some((r["network"].as_str()?.to_string(), ip))
            })
            .collect())
    }

    /// Gives back every address the master keeps for this host; returns how many.
    pub async fn unreserve_all(&self, host: &str) -> Result<u64, StepError> {
        let v = self
            .call(
                reqwest::Method::DELETE,
                &format!("/api/v1/agent/hosts/{host}/reservations"),
                None,
                false,
            )
            .await?;
        Ok(v.and_then(|v| v["released"].as_u64()).unwrap_or(0))
    }

    /// Records an endpoint whose address the master allocated to it or reserved for its host
    /// (the master refuses any other).
    pub async fn record(&self, id: &str, endpoint: Value) -> Result<(), StepError> {
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/agent/endpoints/{id}?reserved=true"),
            Some(endpoint),
            false,
        )
        .await
        .map(drop)
    }

    pub async fn unrecord(&self, id: &str) -> Result<(), StepError> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/api/v1/agent/endpoints/{id}"),
            None,
            true,
        )
        .await
        .map(drop)
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<Value>, StepError> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/endpoints/{id}/"),
            None,
            true,
        )
        .await
    }

    pub async fn endpoints(&self) -> Result<Vec<Value>, StepError> {
        let v = self
            .call(reqwest::Method::GET, "/api/v1/endpoints/", None, false)
            .await?
            .unwrap_or_default();
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// A group's 32-bit id (the master's `pktTag` of the group).
    pub async fn group_id(&self, group: &str) -> Result<u32, StepError> {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/inspect/endpointGroups/{group}/"),
                None,
                false,
            )
            .await?
            .unwrap_or_default();
        v["Oper"]["pktTag"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                StepError::new(
                    ErrorKind::MasterRefused,
                    format!("group {group} has no id yet"),
                )
            })
    }

    pub async fn get_state(&self) -> Result<Value, StepError> {
        self.call(reqwest::Method::GET, "/api/v1/state", None, false)
            .await
            .map(Option::unwrap_or_default)
    }
}

#[async_trait]
impl MasterApi for MasterClient {
    async fn heartbeat(&self, host: &str, lease: Duration) -> Result<(), String> {
        let body = json!({"leaseSecs": lease.as_secs()});
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/agent/hosts/{host}"),
            Some(body),
            false,
        )
        .await
        .map(drop)
        .map_err(|e| e.message)
    }

    async fn state(&self) -> Result<Value, String> {
        self.get_state().await.map_err(|e| e.message)
    }

    async fn watch(&self, since: u64) -> Result<BoxStream<'static, Result<Value, String>>, String> {
        let url = format!("{}/api/v1/watch?since={since}", self.base);
        let resp = self
            .stream_http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("watch: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("watch: HTTP {}", resp.status()));
        }
        let bytes = resp.bytes_stream();
        let lines = futures::stream::unfold(
            (bytes, Vec::<u8>::new()),
            |(mut bytes, mut buf)| async move {
                loop {
                    if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=pos).collect();
                        let parsed = serde_json::from_slice::<Value>(&line)
                            .map_err(|e| format!("watch line: {e}"));
                        return Some((parsed, (bytes, buf)));
                    }
                    match bytes.next().await {
                        Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
                        Some(Err(e)) => return Some((Err(format!("watch: {e}")), (bytes, buf))),
                        None => return None,
                    }
                }
            },
        );
        Ok(lines.boxed())
    }
}

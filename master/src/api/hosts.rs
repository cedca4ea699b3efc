//! Agent registration: each agent puts `/api/v1/agent/hosts/<host>` with a lease every few
//! seconds; `GET /api/v1/agent/hosts` lists the hosts with whether their lease is still live.
//! A host whose lease ran out a whole lease ago is forgotten (a host name the agent never comes
//! back with would otherwise stay listed forever).

use super::objects::parse_body;
use super::AppState;
use crate::auth::{Caller, Need};
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest lease an agent may ask for.
const MAX_LEASE_SECS: u64 = 3600;

#[derive(Debug, Default)]
pub struct Registry {
    hosts: Mutex<BTreeMap<String, (Instant, Duration)>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Heartbeat {
    lease_secs: u64,
}

/// Records the heartbeat and answers with what the agent needs to know of the fleet: the
/// fabric AS, every master's reflector and every master's URL (see `fleet`).
pub async fn heartbeat(
    State(master): State<AppState>,
    caller: Caller,
    Path(host): Path<String>,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let what = format!("agent/hosts/{host}");
    // The same rule as every other name, and as registration's.
    fabric_model::fields::name("host", &host, 256)
        .map_err(|e| ApiError::bad_request(Some(what.clone()), Some(e.field), e.reason))?;
    caller.require(&master.cache(), Need::Host(&host), &what)?;
    let value = parse_body(&what, &body)?;
    let hb: Heartbeat = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(Some(what.clone()), None, e.to_string()))?;
    if hb.lease_secs == 0 || hb.lease_secs > MAX_LEASE_SECS {
        return Err(ApiError::bad_request(
            Some(what),
            Some("leaseSecs"),
            format!("must be 1-{MAX_LEASE_SECS}"),
        ));
    }
    if let Ok(mut hosts) = master.hosts.hosts.lock() {
        let now = Instant::now();
        evict_expired(&mut hosts, now);
        hosts.insert(host.clone(), (now, Duration::from_secs(hb.lease_secs)));
    }
    if let Some(ConnectInfo(peer)) = extensions.get::<ConnectInfo<SocketAddr>>() {
        master.record_agent(&host, peer.ip()).await?;
    }
    let view = serde_json::to_value(master.fleet_view())
        .map_err(|e| ApiError::new(500, Some(what), None, e.to_string()))?;
    Ok(Json(view))
}

pub async fn list(State(master): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require(&master.cache(), Need::AnyAgent, "agent/hosts")?;
    let now = Instant::now();
    let hosts: Vec<Value> = match master.hosts.hosts.lock() {
        Ok(mut hosts) => {
            evict_expired(&mut hosts, now);
            hosts
            .iter()
            .map(|(name, (seen, lease))| {
                let age = now.duration_since(*seen);
                json!({"host": name, "alive": age < *lease, "secondsSinceHeartbeat": age.as_secs()})
            })
            .collect()
        }
        Err(_) => Vec::new(),
    };
    Ok(Json(json!(hosts)))
}

/// Forgets the hosts whose lease ran out at least one lease ago: listed as not alive for that
/// long, then gone.
fn evict_expired(hosts: &mut BTreeMap<String, (Instant, Duration)>, now: Instant) {
    hosts.retain(|_, (seen, lease)| now.duration_since(*seen) < lease.saturating_mul(2));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_registrations_are_evicted_after_one_more_lease() {
        let start = Instant::now();
        let mut hosts = BTreeMap::new();
        hosts.insert("short".to_string(), (start, Duration::from_secs(5)));
        hosts.insert("long".to_string(), (start, Duration::from_secs(60)));
        evict_expired(&mut hosts, start + Duration::from_secs(7));
        assert_eq!(
            hosts.len(),
            2,
            "expired but listed as not alive for a lease"
        );
        evict_expired(&mut hosts, start + Duration::from_secs(10));
        assert_eq!(hosts.keys().collect::<Vec<_>>(), ["long"]);
    }
}

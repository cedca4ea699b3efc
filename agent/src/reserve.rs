//! This host's address reserve as the agent runs it: addresses taken for attaches, refills
//! asked of the master in the background (their routes prepared before they are handed out),
//! and a periodic audit against the master's list. The bookkeeping itself is `crate::pool`.

use crate::master_client::MasterClient;
use crate::pool::{AddressPools, Grant, Refill, Reserved};
use actix::Addr;
use fabric_actors::routes::{Prepare, RouteActor, Unprepare};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the agent checks its reserve against the master's.
const AUDIT_EVERY: Duration = Duration::from_secs(5);

pub struct Reserve {
    host: String,
    master: MasterClient,
    routes: Addr<RouteActor>,
    pools: Mutex<AddressPools>,
}

impl Reserve {
    pub fn new(host: &str, master: MasterClient, routes: Addr<RouteActor>) -> Arc<Reserve> {
        Arc::new(Reserve {
            host: host.to_string(),
            master,
            routes,
            pools: Mutex::default(),
        })
    }

    /// An address from this host's reserve, asking the master for more in the background
    /// when it runs low.
    pub fn take(self: &Arc<Self>, network: &str, group: &str) -> Option<Reserved> {
        let (taken, refill) = match self.pools.lock() {
            Ok(mut pools) => pools.take(network, group, Instant::now()),
            Err(_) => return None,
        };
        if let Some(refill) = refill {
            let reserve = self.clone();
            tokio::spawn(async move {
                let grant = ask(&reserve.master, &reserve.host, &refill).await;
                // Routed before they are handed out, so an attach only has to announce.
                let addresses = grant.as_ref().map(|g| g.addresses.clone());
                if let Some(addresses) = addresses.filter(|a| !a.is_empty()) {
                    if let Err(error) = reserve.routes.send(Prepare(addresses)).await {
                        tracing::warn!(%error, "route actor unavailable for prepared routes");
                    }
                }
                if let Ok(mut pools) = reserve.pools.lock() {
                    pools.filled(&refill, grant, Instant::now());
                }
            });
        }
        taken
    }

    /// The master no longer keeps `network`'s addresses for us (deleted and created again):
    /// drop what is left and give back whatever it still holds.
    pub fn forget(&self, network: &str) {
        let dropped = match self.pools.lock() {
            Ok(mut pools) => pools.forget_network(network),
            Err(_) => return,
        };
        let master = self.master.clone();
        let routes = self.routes.clone();
        let (network, host) = (network.to_string(), self.host.clone());
        tokio::spawn(async move {
            if let Err(error) = routes.send(Unprepare(dropped.clone())).await {
                tracing::warn!(%error, "route actor unavailable for prepared routes");
            }
            for ip in dropped {
                if let Err(error) = master.release(&network, IpAddr::V4(ip), "", &host).await {
                    tracing::warn!(%error, %ip, "giving back a reserved address failed");
                }
            }
        });
    }

    /// Every [`AUDIT_EVERY`], drops the addresses the master no longer keeps for this host
    /// (their network was deleted, or a full pool took them back) and their prepared routes.
    pub fn audit(self: &Arc<Self>) {
        let reserve = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(AUDIT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let before = match reserve.pools.lock() {
                    Ok(pools) => pools.addresses(),
                    Err(_) => return,
                };
                if before.is_empty() {
                    continue;
                }
                let reserved = match reserve.master.reservations(&reserve.host).await {
                    Ok(list) => list
                        .into_iter()
                        .filter_map(|(network, ip)| match ip {
                            IpAddr::V4(ip) => Some((network, ip)),
                            IpAddr::V6(_) => None,
                        })
                        .collect(),
                    Err(error) => {
                        tracing::debug!(%error, "reading this host's reserve failed");
                        continue;
                    }
                };
                let dropped = match reserve.pools.lock() {
                    Ok(mut pools) => pools.drop_unreserved(&before, &reserved),
                    Err(_) => return,
                };
                if dropped.is_empty() {
                    continue;
                }
                tracing::info!(
                    dropped = dropped.len(),
                    "reserved addresses the master no longer keeps for us dropped"
                );
                if let Err(error) = reserve.routes.send(Unprepare(dropped)).await {
                    tracing::warn!(%error, "route actor unavailable for prepared routes");
                }
            }
        });
    }
}

/// Asks the master for `refill`; `None` when it failed (the next attach asks again).
async fn ask(master: &MasterClient, host: &str, refill: &Refill) -> Option<Grant> {
    let reply = master
        .reserve(&refill.network, &refill.group, host, refill.count)
        .await;
    let v = match reply {
        Ok(v) => v,
        Err(error) => {
            tracing::warn!(%error, network = %refill.network, "reserving addresses failed");
            return None;
        }
    };
    Some(Grant {
        pool_group: v["group"].as_str().unwrap_or_default().to_string(),
        prefix_len: v["prefixLen"].as_u64().and_then(|l| u8::try_from(l).ok())?,
        gateway: v["gateway"].as_str().and_then(|g| g.parse().ok()),
        addresses: v["addresses"]
            .as_array()?
            .iter()
            .filter_map(|a| a.as_str()?.parse().ok())
            .collect(),
    })
}

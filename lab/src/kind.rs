//! The node kinds `lab` can realise, and the facts about each that validation and planning need.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Linux,
    Bird,
    Frr,
    Gobgp,
    Etcd,
    Netmaster,
    Netplugin,
    Container,
}

const ALL: [Kind; 8] = [
    Kind::Linux,
    Kind::Bird,
    Kind::Frr,
    Kind::Gobgp,
    Kind::Etcd,
    Kind::Netmaster,
    Kind::Netplugin,
    Kind::Container,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Linux => "linux",
            Kind::Bird => "bird",
            Kind::Frr => "frr",
            Kind::Gobgp => "gobgp",
            Kind::Etcd => "etcd",
            Kind::Netmaster => "netmaster",
            Kind::Netplugin => "netplugin",
            Kind::Container => "container",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| k.name() == name)
    }

    /// The supported kinds, for error messages.
    pub fn names() -> String {
        ALL.map(Kind::name).join(", ")
    }

    /// Routers run from a startup-config; the other kinds do not take one.
    pub fn takes_startup_config(self) -> bool {
        matches!(self, Kind::Bird | Kind::Frr | Kind::Gobgp)
    }

    /// Where router images read their config on a Docker host: a bind to one of these paths is
    /// the portable way (valid for containerlab's `linux` kind) to give a router its config.
    pub fn config_paths_in_image(self) -> &'static [&'static str] {
        match self {
            Kind::Bird => &["/etc/bird.conf", "/etc/bird/bird.conf"],
            Kind::Frr => &["/etc/frr/frr.conf"],
            Kind::Gobgp => &["/etc/gobgp/gobgp.toml", "/etc/gobgp/gobgpd.conf"],
            _ => &[],
        }
    }

    /// Nodes start in this order so that what others depend on (the store, the master, the
    /// routers the agents peer with) is up first.
    pub fn start_rank(self) -> u8 {
        match self {
            Kind::Etcd => 0,
            Kind::Netmaster => 1,
            Kind::Bird | Kind::Frr | Kind::Gobgp => 2,
            Kind::Netplugin => 3,
            Kind::Linux => 4,
            Kind::Container => 5,
        }
    }
}

//! The topology file as written: serde types that mirror containerlab's keys, rejecting any
//! key `lab` does not know (serde names its path in the error).

use std::collections::BTreeMap;

use serde::Deserialize;

/// A YAML scalar used as a string (containerlab allows `PORT: 80` in `env` and `labels`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub(super) enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub(super) fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) name: String,
    #[serde(default)]
    pub(super) mgmt: RawMgmt,
    pub(super) topology: RawTopology,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawMgmt {
    pub(super) network: Option<String>,
    pub(super) bridge: Option<String>,
    pub(super) ipv4_subnet: Option<String>,
    pub(super) ipv4_gw: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTopology {
    #[serde(default)]
    pub(super) defaults: RawNode,
    #[serde(default)]
    pub(super) kinds: BTreeMap<String, RawNode>,
    pub(super) nodes: BTreeMap<String, RawNode>,
    #[serde(default)]
    pub(super) links: Vec<RawLink>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawNode {
    pub(super) kind: Option<String>,
    pub(super) image: Option<String>,
    pub(super) exec: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub(super) binds: Vec<String>,
    pub(super) startup_config: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, Scalar>,
    pub(super) mgmt_ipv4: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLink {
    pub(super) endpoints: Vec<String>,
}

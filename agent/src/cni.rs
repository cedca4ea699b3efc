//! CNI (spec 1.0.0, plus STATUS and GC from 1.1) as the plugin binary sees it: reading the
//! environment and the network configuration, the request forwarded to the agent, the result
//! and error JSON. Pure functions, unit-tested; the binary (`contivk8s`) only does I/O.

use fabric_actors::types::{mac_string, AttachRequest, Endpoint};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Versions whose result format we produce.
pub const SUPPORTED_VERSIONS: [&str; 2] = ["1.0.0", "1.1.0"];
/// Where the agent listens when neither the config nor the environment says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/contiv/netplugin.sock";
pub const DEFAULT_TENANT: &str = "default";
pub const DEFAULT_NETWORK: &str = "default-net";
/// Contiv's pod labels, also accepted in CNI_ARGS and the config's `args`.
pub const LABEL_TENANT: &str = "io.contiv.tenant";
pub const LABEL_NETWORK: &str = "io.contiv.network";
pub const LABEL_GROUP: &str = "io.contiv.net-group";

/// CNI's well-known error codes and ours (100+).
pub mod code {
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    pub const UNSUPPORTED_FIELD: u32 = 2;
    pub const UNKNOWN_CONTAINER: u32 = 3;
    pub const INVALID_ENV: u32 = 4;
    pub const IO_FAILURE: u32 = 5;
    pub const DECODE_FAILURE: u32 = 6;
    pub const INVALID_CONFIG: u32 = 7;
    pub const TRY_AGAIN_LATER: u32 = 11;
    pub const NOT_AVAILABLE: u32 = 50;
    /// The master refused (no free address, unknown network...).
    pub const MASTER_REFUSED: u32 = 100;
    /// The kernel or OVS refused.
    pub const DATAPLANE: u32 = 101;
    /// The agent is not running (its socket does not answer).
    pub const AGENT_UNREACHABLE: u32 = 102;
}

/// A CNI error as the spec's JSON shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("CNI error {code}: {msg}")]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>, details: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    pub fn to_json(&self, cni_version: &str) -> Value {
        let mut v = json!({"cniVersion": cni_version, "code": self.code, "msg": self.msg});
        if !self.details.is_empty() {
            v["details"] = json!(self.details);
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Add,
    Del,
    Check,
    Version,
    Status,
    Gc,
}

impl Command {
    pub fn parse(s: &str) -> Option<Command> {
        Some(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "VERSION" => Command::Version,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            _ => return None,
        })
    }
}

/// What the plugin binary sends the agent (one JSON line on the unix socket).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRequest {
    pub command: Command,
    pub cni_version: String,
    /// For ADD, DEL, CHECK.
    #[serde(default)]
    pub attach: Option<AttachRequest>,
    /// For GC: endpoint ids still in use.
    #[serde(default)]
    pub valid: Vec<String>,
}

/// The agent's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AgentReply {
    /// Success; the CNI result for ADD, nothing otherwise.
    Ok(Option<Value>),
    Error(CniError),
}

/// What the plugin read from its environment and stdin.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub request: AgentRequest,
    pub socket: String,
}

/// Parses `K=V;K2=V2` (CNI_ARGS).
pub fn parse_cni_args(args: &str) -> Result<BTreeMap<String, String>, CniError> {
    let mut map = BTreeMap::new();
    for pair in args.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                "CNI_ARGS is not K=V;K2=V2",
                format!("'{pair}' has no '='"),
            )
        })?;
        map.insert(k.to_string(), v.to_string());
    }
    Ok(map)
}

fn config_str<'a>(config: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, CniError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(CniError::new(
            code::INVALID_CONFIG,
            format!("network config field '{key}' must be a string"),
            format!("got {other}"),
        )),
    }
}

/// The CNI spec's rule for container ids (which also keeps them apart from the master's
/// `reserved:<host>` owner values).
fn valid_container_id(id: &str) -> bool {
    id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Reads the invocation: `env` looks up CNI_* variables, `stdin` is the network config.
pub fn parse_invocation(
    env: &dyn Fn(&str) -> Option<String>,
    stdin: &[u8],
) -> Result<Invocation, CniError> {
    let command = env("CNI_COMMAND")
        .ok_or_else(|| CniError::new(code::INVALID_ENV, "CNI_COMMAND is not set", ""))?;
    let command = Command::parse(&command).ok_or_else(|| {
        CniError::new(
            code::INVALID_ENV,
            format!("CNI_COMMAND '{command}' is not ADD, DEL, CHECK, VERSION, STATUS or GC"),
            "",
        )
    })?;
    let config: Value = serde_json::from_slice(stdin).map_err(|e| {
        CniError::new(
            code::DECODE_FAILURE,
            "the network configuration on stdin is not valid JSON",
            e.to_string(),
        )
    })?;
    let Value::Object(config) = config else {
        return Err(CniError::new(
            code::DECODE_FAILURE,
            "the network configuration on stdin is not a JSON object",
            "",
        ));
    };
    let cni_version = config_str(&config, "cniVersion")?.unwrap_or("").to_string();
    if command != Command::Version && !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "cniVersion '{cni_version}' is not supported (supported: {})",
                SUPPORTED_VERSIONS.join(", ")
            ),
            "",
        ));
    }
    if command != Command::Version && config_str(&config, "name")?.unwrap_or("").is_empty() {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            "the network configuration has no 'name'",
            "",
        ));
    }
    let socket = match config_str(&config, "socket")? {
        Some(s) => s.to_string(),
        None => env("CONTIV_NETPLUGIN_SOCKET").unwrap_or_else(|| DEFAULT_SOCKET.to_string()),
    };
    let mut request = AgentRequest {
        command,
        cni_version,
        attach: None,
        valid: Vec::new(),
    };
    match command {
        Command::Version | Command::Status => {}
        Command::Gc => {
            let list = config
                .get("cni.dev/valid-attachments")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in list {
                let cid = item["containerID"].as_str().unwrap_or("");
                let ifname = item["ifname"].as_str().unwrap_or("");
                if cid.is_empty() || ifname.is_empty() {
                    return Err(CniError::new(
                        code::INVALID_CONFIG,
                        "cni.dev/valid-attachments entries need containerID and ifname",
                        item.to_string(),
                    ));
                }
                request
                    .valid
                    .push(fabric_actors::types::endpoint_id(cid, ifname));
            }
        }
        Command::Add | Command::Del | Command::Check => {
            request.attach = Some(attach_request(env, &config, command)?);
        }
    }
    Ok(Invocation { request, socket })
}

fn attach_request(
    env: &dyn Fn(&str) -> Option<String>,
    config: &Map<String, Value>,
    command: Command,
) -> Result<AttachRequest, CniError> {
    let required = |name: &str| {
        env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            CniError::new(
                code::INVALID_ENV,
                format!("{name} is not set"),
                format!("{command:?} needs it"),
            )
        })
    };
    let container_id = required("CNI_CONTAINERID")?;
    if !valid_container_id(&container_id) {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_CONTAINERID '{container_id}' is not a valid container id"),
            "it must start with a letter or digit and hold only letters, digits, '_', '.' and '-'",
        ));
    }
    let if_name = required("CNI_IFNAME")?;
    if if_name.len() > 15 || if_name.contains('/') || if_name.contains(char::is_whitespace) {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!("CNI_IFNAME '{if_name}' is not a valid interface name"),
            "",
        ));
    }
    let netns = match command {
        Command::Del => env("CNI_NETNS").unwrap_or_default(),
        _ => required("CNI_NETNS")?,
    };
    let cni_args = parse_cni_args(&env("CNI_ARGS").unwrap_or_default())?;
    let args = config.get("args").and_then(Value::as_object);
    // CNI_ARGS (pod labels passed by the runtime) > config args > config fields > defaults.
    let pick = |label: &str, field: &str, default: &str| -> Result<String, CniError> {
        if let Some(v) = cni_args.get(label) {
            return Ok(v.clone());
        }
        if let Some(v) = args.and_then(|a| a.get(label)).and_then(Value::as_str) {
            return Ok(v.to_string());
        }
        Ok(config_str(config, field)?.unwrap_or(default).to_string())
    };
    let tenant = pick(LABEL_TENANT, "tenant", DEFAULT_TENANT)?;
    let network = pick(LABEL_NETWORK, "network", DEFAULT_NETWORK)?;
    let group = pick(LABEL_GROUP, "group", "")?;
    for (what, value) in [
        ("tenant", &tenant),
        ("network", &network),
        ("group", &group),
    ] {
        if value.contains(':') || value.contains('/') || value.len() > 64 {
            return Err(CniError::new(
                code::INVALID_CONFIG,
                format!("{what} '{value}' is not a valid name"),
                "",
            ));
        }
    }
    if tenant.is_empty() || network.is_empty() {
        return Err(CniError::new(
            code::INVALID_CONFIG,
            "tenant and network must not be empty",
            "",
        ));
    }
    let mtu = match config.get("mtu") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(m @ 576..=9000) => Some(m as u32),
            _ => {
                return Err(CniError::new(
                    code::INVALID_CONFIG,
                    "network config field 'mtu' must be a number 576-9000",
                    format!("got {v}"),
                ))
            }
        },
    };
    let container_name = cni_args
        .get("K8S_POD_NAME")
        .map(|name| match cni_args.get("K8S_POD_NAMESPACE") {
            Some(ns) => format!("{ns}/{name}"),
            None => name.clone(),
        })
        .unwrap_or_default();
    Ok(AttachRequest {
        container_id,
        netns,
        if_name,
        tenant,
        network,
        group,
        mtu,
        container_name,
    })
}

/// The ADD result (CNI 1.0 result schema).
pub fn add_result(cni_version: &str, ep: &Endpoint, host_mac: Option<&str>) -> Value {
    let mut host = json!({"name": ep.host_if});
    if let Some(mac) = host_mac {
        host["mac"] = json!(mac);
    }
    let mut ip = json!({"address": format!("{}/{}", ep.ip, ep.prefix_len), "interface": 1});
    let mut routes = Vec::new();
    if let Some(gw) = ep.gateway {
        ip["gateway"] = json!(gw.to_string());
        routes.push(json!({"dst": "0.0.0.0/0", "gw": gw.to_string()}));
    }
    json!({
        "cniVersion": cni_version,
        "interfaces": [
            host,
            {"name": ep.if_name, "mac": mac_string(&ep.mac), "sandbox": ep.netns},
        ],
        "ips": [ip],
        "routes": routes,
        "dns": {},
    })
}

/// The VERSION answer.
pub fn version_result(cni_version: &str) -> Value {
    let version = if cni_version.is_empty() {
        SUPPORTED_VERSIONS[SUPPORTED_VERSIONS.len() - 1]
    } else {
        cni_version
    };
    json!({"cniVersion": version, "supportedVersions": SUPPORTED_VERSIONS})
}

#[cfg(test)]
mod tests;

//! Blocking HTTP client of the netmaster's REST API (`/api/v1/<collection>/<key>/`), one
//! keep-alive connection pool for the whole command. Errors carry the server's own message.

use fabric_model::{Collection, Object};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;

/// A CLI should never hang: one request may take this long at most.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("netmaster URL '{0}' is not supported: use http://host:port")]
    Url(String),
    #[error("cannot reach the netmaster at {url}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The netmaster answered with an error; `message` is its own text.
    #[error("{message}")]
    Server { status: u16, message: String },
    #[error("unexpected answer from {url}: {reason}")]
    Decode { url: String, reason: String },
}

/// The JSON error body of the REST contract.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    message: String,
    object: String,
    field: String,
    reason: String,
}

/// A create-or-update: where it goes and what is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub collection: Collection,
    pub key: String,
    pub body: Value,
}

impl Write {
    /// The write of a model object, with its `key` field set as Contiv's client does.
    pub fn of<T: Object>(object: &T) -> Write {
        let mut object = object.clone();
        object.set_key();
        Write {
            collection: T::COLLECTION,
            key: object.key(),
            // Serialising a model type into a Value cannot fail: all its maps have string keys.
            body: serde_json::to_value(&object).unwrap_or(Value::Null),
        }
    }
}

/// Contiv's inspect answer: the configuration and the operational state.
#[derive(Debug, Serialize, Deserialize)]
pub struct Inspect<T> {
    #[serde(rename = "Config")]
    pub config: T,
    #[serde(rename = "Oper", default)]
    pub oper: Value,
}

pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(netmaster: &str) -> Result<Client, ClientError> {
        let base = netmaster.trim_end_matches('/');
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Url(netmaster.to_string()))?;
        if rest.is_empty() {
            return Err(ClientError::Url(netmaster.to_string()));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .new_agent();
        Ok(Client {
            base: base.to_string(),
            agent,
        })
    }

    pub fn list<T: Object>(&self) -> Result<Vec<T>, ClientError> {
        self.get_json(&collection_path(T::COLLECTION))
    }

    pub fn get<T: Object>(&self, key: &str) -> Result<T, ClientError> {
        self.get_json(&object_path(T::COLLECTION, key))
    }

    /// Like [`Client::get`], but an absent object is `None` rather than an error.
    pub fn get_optional<T: Object>(&self, key: &str) -> Result<Option<T>, ClientError> {
        match self.get(key) {
            Ok(object) => Ok(Some(object)),
            Err(ClientError::Server { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn inspect<T: Object>(&self, key: &str) -> Result<Inspect<T>, ClientError> {
        let path = format!(
            "/api/v1/inspect/{}/{}/",
            T::COLLECTION.rest_name(),
            encode(key)
        );
        self.get_json(&path)
    }

    pub fn post(&self, write: &Write) -> Result<Value, ClientError> {
        let url = self.url(&object_path(write.collection, &write.key));
        let body = write.body.to_string();
        let response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(&body);
        read_json(&url, response)
    }

    pub fn delete(&self, collection: Collection, key: &str) -> Result<(), ClientError> {
        let url = self.url(&object_path(collection, key));
        read_json::<Value>(&url, self.agent.delete(&url).call()).map(|_| ())
    }

    /// GET of any path of the netmaster, e.g. `/version`.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        read_json(&url, self.agent.get(&url).call())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

pub fn collection_path(collection: Collection) -> String {
    format!("/api/v1/{}/", collection.rest_name())
}

pub fn object_path(collection: Collection, key: &str) -> String {
    format!("/api/v1/{}/{}/", collection.rest_name(), encode(key))
}

/// Percent-encodes what may not appear raw in a path segment (keys keep their ':').
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@!$&'()*+,;=".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn read_json<T: DeserializeOwned>(
    url: &str,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<T, ClientError> {
    let mut response = response.map_err(|source| ClientError::Transport {
        url: url.to_string(),
        source,
    })?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| ClientError::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if !(200..300).contains(&status) {
        return Err(ClientError::Server {
            status,
            message: server_message(status, &body),
        });
    }
    serde_json::from_str(&body).map_err(|e| ClientError::Decode {
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// The human line of an error answer: its `message`, else object/field/reason, else the body.
fn server_message(status: u16, body: &str) -> String {
    let parsed: ErrorBody = serde_json::from_str(body).unwrap_or_default();
    if !parsed.message.is_empty() {
        return parsed.message;
    }
    if !parsed.field.is_empty() {
        return format!(
            "{}: field '{}': {}",
            parsed.object, parsed.field, parsed.reason
        );
    }
    let text = body.trim();
    if text.is_empty() {
        format!("netmaster answered HTTP {status}")
    } else {
        format!("netmaster answered HTTP {status}: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabric_model::Network;

    #[test]
    fn write_of_sets_key_and_collection() {
        let net = Network {
            tenant_name: "blue".into(),
            network_name: "contiv-net".into(),
            ..Network::default()
        };
        let w = Write::of(&net);
        assert_eq!(w.collection, Collection::Networks);
        assert_eq!(w.key, "blue:contiv-net");
        assert_eq!(w.body["key"], "blue:contiv-net");
        assert_eq!(w.body["networkName"], "contiv-net");
    }

    #[test]
    fn paths() {
        assert_eq!(
            object_path(Collection::Rules, "default:db-policy:1"),
            "/api/v1/rules/default:db-policy:1/"
        );
        assert_eq!(collection_path(Collection::Bgps), "/api/v1/Bgps/");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn server_messages() {
        let body = r#"{"message":"networks/blue:x: field 'subnet': bad","object":"networks/blue:x","field":"subnet","reason":"bad"}"#;
        assert_eq!(
            server_message(422, body),
            "networks/blue:x: field 'subnet': bad"
        );
        let body = r#"{"object":"networks/blue:x","field":"subnet","reason":"bad"}"#;
        assert_eq!(
            server_message(422, body),
            "networks/blue:x: field 'subnet': bad"
        );
        assert_eq!(
            server_message(500, "boom"),
            "netmaster answered HTTP 500: boom"
        );
        assert_eq!(server_message(404, ""), "netmaster answered HTTP 404");
    }

    #[test]
    fn only_http_urls() {
        assert!(Client::new("http://localhost:9999/").is_ok());
        assert!(matches!(
            Client::new("https://h:1"),
            Err(ClientError::Url(_))
        ));
        assert!(matches!(Client::new("localhost"), Err(ClientError::Url(_))));
    }
}

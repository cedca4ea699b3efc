//! `netctl version`: this client's version and the netmaster's.

use super::emit;
use crate::client::Client;
use serde::Deserialize;

/// The netmaster's `/version` answer (Contiv's `version.Info`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VersionInfo {
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "GitCommit")]
    pub git_commit: String,
    #[serde(rename = "BuildTime")]
    pub build_time: String,
}

impl VersionInfo {
    fn client() -> VersionInfo {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: option_env!("GIT_COMMIT").unwrap_or("unknown").to_string(),
            build_time: option_env!("BUILD_TIME").unwrap_or("unknown").to_string(),
        }
    }

    fn render(&self) -> String {
        format!(
            "Version: {}\nGitCommit: {}\nBuildTime: {}\n",
            self.version, self.git_commit, self.build_time
        )
    }
}

pub fn run(client: &Client) -> anyhow::Result<()> {
    let server: VersionInfo = client.get_json("/version")?;
    emit(&render(&VersionInfo::client(), &server))
}

fn render(client: &VersionInfo, server: &VersionInfo) -> String {
    format!(
        "Client Version:\n{}\nServer Version:\n{}",
        client.render(),
        server.render()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions() {
        let server: VersionInfo =
            serde_json::from_str(r#"{"Version":"1.2","GitCommit":"abc","BuildTime":"now"}"#)
                .unwrap();
        let text = render(&VersionInfo::client(), &server);
        assert!(text.starts_with("Client Version:\nVersion: 0."), "{text}");
        assert!(
            text.ends_with("\nServer Version:\nVersion: 1.2\nGitCommit: abc\nBuildTime: now\n"),
            "{text}"
        );
    }
}

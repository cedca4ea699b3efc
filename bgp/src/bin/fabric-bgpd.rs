//! fabric-bgpd: run a speaker from a JSON config, with a JSON-lines control socket.
//!
//! Config: `{"speaker": {...SpeakerConfig...}, "control_socket": "/path", "announce": [...]}`;
//! `announce` entries are originated at start (before any session comes up), which is what a
//! restarting speaker needs to re-advertise everything before End-of-RIB.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use fabric_bgp::control::{execute, PrefixRange, RouteAttrs};
use fabric_bgp::{Speaker, SpeakerConfig};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

#[derive(Parser)]
#[command(about = "The fabric's BGP speaker daemon")]
struct Args {
    /// JSON configuration file.
    #[arg(short, long)]
    config: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Announce {
    range: PrefixRange,
    #[serde(default)]
    attrs: RouteAttrs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonConfig {
    speaker: SpeakerConfig,
    control_socket: PathBuf,
    #[serde(default)]
    announce: Vec<Announce>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("reading {}", args.config.display()))?;
    let config: DaemonConfig = serde_json::from_str(&text)
        .with_context(|| format!("parsing {}", args.config.display()))?;
    let speaker = Speaker::new(config.speaker).await?;
    for a in &config.announce {
        let prefixes = a.range.prefixes()?;
        speaker.announce(prefixes, a.attrs.to_path_attrs())?;
    }
    let _ = std::fs::remove_file(&config.control_socket);
    let listener = UnixListener::bind(&config.control_socket)
        .with_context(|| format!("binding control socket {}", config.control_socket.display()))?;
    let speaker = std::sync::Arc::new(speaker);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let speaker = speaker.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = stream.into_split();
                    let mut lines = BufReader::new(rd).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let response = execute(&speaker, &line).await;
                        let Ok(mut out) = serde_json::to_vec(&response) else { return };
                        out.push(b'\n');
                        if wr.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    let _ = std::fs::remove_file(&config.control_socket);
    if let Ok(speaker) = std::sync::Arc::try_unwrap(speaker) {
        speaker.shutdown().await;
    }
    Ok(())
}

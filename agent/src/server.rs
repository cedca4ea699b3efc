//! The agent's CNI socket: one JSON request line from the plugin binary, one JSON reply line,
//! dispatched to the endpoint actor.

use crate::cni::{add_result, code, AgentReply, AgentRequest, CniError, Command};
use crate::master_client::MasterClient;
use actix::Addr;
use fabric_actors::endpoint::{
    Attach, AttachError, Check, Detach, EndpointActor, ErrorKind, Gc, StepError,
};
use std::collections::BTreeSet;
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Largest request line accepted.
const MAX_REQUEST: usize = 1 << 20;

fn step_error(e: &StepError, what: &str) -> CniError {
    let code = match e.kind {
        ErrorKind::MasterUnreachable | ErrorKind::Busy => code::TRY_AGAIN_LATER,
        ErrorKind::MasterRefused => code::MASTER_REFUSED,
        ErrorKind::Dataplane => code::DATAPLANE,
        ErrorKind::Invalid => code::INVALID_CONFIG,
    };
    CniError::new(code, format!("{what}: {}", e.message), "")
}

fn attach_error(e: &AttachError) -> CniError {
    let mut err = step_error(&e.error, &format!("attach failed at {:?}", e.step));
    if !e.undo_errors.is_empty() {
        err.details = format!("{e}");
    }
    err
}

/// Binds the socket (replacing a stale one) and serves forever.
pub async fn serve(
    path: &Path,
    endpoints: Addr<EndpointActor>,
    master: MasterClient,
) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    tracing::info!(socket = %path.display(), "CNI socket listening");
    loop {
        let (stream, _) = listener.accept().await?;
        let endpoints = endpoints.clone();
        let master = master.clone();
        actix::spawn(async move {
            if let Err(e) = connection(stream, endpoints, master).await {
                tracing::warn!(error = %e, "CNI connection");
            }
        });
    }
}

async fn connection(
    stream: UnixStream,
    endpoints: Addr<EndpointActor>,
    master: MasterClient,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64));
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let reply = match serde_json::from_str::<AgentRequest>(&line) {
        Ok(request) => handle(request, &endpoints, &master).await,
        Err(e) => AgentReply::Error(CniError::new(
            code::DECODE_FAILURE,
            "bad request to the agent",
            e.to_string(),
        )),
    };
    let mut text = serde_json::to_string(&reply).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

async fn handle(
    req: AgentRequest,
    endpoints: &Addr<EndpointActor>,
    master: &MasterClient,
) -> AgentReply {
    let started = std::time::Instant::now();
    let gone = |e: actix::MailboxError| {
        AgentReply::Error(CniError::new(
            code::TRY_AGAIN_LATER,
            "the agent is restarting",
            e.to_string(),
        ))
    };
    let reply = match (req.command, req.attach.clone()) {
        (Command::Add, Some(attach)) => match endpoints.send(Attach(attach)).await {
            Ok(Ok(ep)) => AgentReply::Ok(Some(add_result(&req.cni_version, &ep, None))),
            Ok(Err(e)) => AgentReply::Error(attach_error(&e)),
            Err(e) => gone(e),
        },
        (Command::Del, Some(attach)) => match endpoints.send(Detach(attach.endpoint_id())).await {
            Ok(Ok(())) => AgentReply::Ok(None),
            Ok(Err(e)) => AgentReply::Error(step_error(&e, "detach failed")),
            Err(e) => gone(e),
        },
        (Command::Check, Some(attach)) => match endpoints.send(Check(attach.endpoint_id())).await {
            Ok(Ok(_)) => AgentReply::Ok(None),
            Ok(Err(e)) => AgentReply::Error(step_error(&e, "check failed")),
            Err(e) => gone(e),
        },
        (Command::Gc, _) => {
            let valid: BTreeSet<String> = req.valid.iter().cloned().collect();
            match endpoints.send(Gc(valid)).await {
                Ok(Ok(n)) => {
                    tracing::info!(removed = n, "CNI GC");
                    AgentReply::Ok(None)
                }
                Ok(Err(e)) => AgentReply::Error(step_error(&e, "gc failed")),
                Err(e) => gone(e),
            }
        }
        (Command::Status, _) => match master.get_state().await {
            Ok(_) => AgentReply::Ok(None),
            Err(e) => AgentReply::Error(CniError::new(
                code::NOT_AVAILABLE,
                "the fabric is not available",
                e.message,
            )),
        },
        (Command::Version, _) => AgentReply::Ok(None),
        (command, None) => AgentReply::Error(CniError::new(
            code::INVALID_ENV,
            format!("{command:?} needs a container"),
            "",
        )),
    };
    let id = req
        .attach
        .as_ref()
        .map(|a| a.endpoint_id())
        .unwrap_or_default();
    match &reply {
        AgentReply::Ok(_) => {
            tracing::info!(command = ?req.command, endpoint = %id, ms = started.elapsed().as_millis() as u64, "CNI request done")
        }
        AgentReply::Error(e) => {
            tracing::warn!(command = ?req.command, endpoint = %id, code = e.code, error = %e.msg, "CNI request failed")
        }
    }
    reply
}

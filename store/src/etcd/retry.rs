//! Bounded retries of etcd requests across a cluster's endpoints. The client balances over all
//! endpoints but still routes some requests to a dead member ("tcp connect error"), so a request
//! is retried, a few times with a short back-off, when that is safe:
//! - reads are idempotent: retried on any `Unavailable`;
//! - writes (txns) only when the connection was never established, i.e. the request was
//!   certainly not delivered. A write that failed after being sent is NOT retried: for a
//!   create-if-absent allocation a blind retry would report "lost" for a key we actually won.

use std::future::Future;
use std::time::Duration;

use crate::error::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Safety {
    /// Reads: safe to repeat whatever happened.
    Idempotent,
    /// Writes: repeat only if the request cannot have reached etcd.
    NotDelivered,
}

const BACKOFF: Duration = Duration::from_millis(25);

pub async fn retry<T, F, Fut>(attempts: usize, safety: Safety, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, etcd_client::Error>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < attempts && retryable(&error, safety) => {
                tracing::debug!(%error, attempt, "etcd request failed, retrying");
                tokio::time::sleep(BACKOFF * attempt as u32).await;
                attempt += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

fn retryable(error: &etcd_client::Error, safety: Safety) -> bool {
    match safety {
        Safety::Idempotent => is_unavailable(error),
        Safety::NotDelivered => is_unavailable(error) && never_connected(error),
    }
}

fn is_unavailable(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::GRpcStatus(status) => status.code() == tonic::Code::Unavailable,
        etcd_client::Error::TransportError(_) => true,
        _ => false,
    }
}

/// Whether the error chain says the TCP connection could not be made (refused, unreachable,
/// or tonic's "tcp connect error"), so nothing was sent.
fn never_connected(error: &etcd_client::Error) -> bool {
    let etcd_client::Error::GRpcStatus(status) = error else {
        return false;
    };
    if status.message().contains("tcp connect error") {
        return true;
    }
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::HostUnreachable
            );
        }
        if cause.to_string().contains("tcp connect error") {
            return true;
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: tonic::Code, message: &str) -> etcd_client::Error {
        etcd_client::Error::GRpcStatus(tonic::Status::new(code, message))
    }

    #[test]
    fn connect_failures_are_retryable_for_writes() {
        let refused = status(tonic::Code::Unavailable, "tcp connect error");
        assert!(retryable(&refused, Safety::NotDelivered));
        assert!(retryable(&refused, Safety::Idempotent));
    }

    #[test]
    fn failures_after_sending_are_retryable_only_for_reads() {
        let reset = status(tonic::Code::Unavailable, "connection reset");
        assert!(retryable(&reset, Safety::Idempotent));
        assert!(!retryable(&reset, Safety::NotDelivered));
    }

    #[test]
    fn other_errors_are_never_retried() {
        let invalid = status(
            tonic::Code::InvalidArgument,
            "duplicate key given in txn request",
        );
        assert!(!retryable(&invalid, Safety::Idempotent));
        assert!(!retryable(&invalid, Safety::NotDelivered));
    }

    #[tokio::test]
    async fn gives_up_after_the_bound() {
        let mut calls = 0;
        let result: Result<(), _> = retry(3, Safety::Idempotent, || {
            calls += 1;
            async { Err(status(tonic::Code::Unavailable, "down")) }
        })
        .await;
        assert!(matches!(result, Err(StoreError::Etcd(_))));
        assert_eq!(calls, 3);
    }
}

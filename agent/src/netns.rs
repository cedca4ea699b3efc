//! Running netlink (and ioctl) work inside a network namespace: a short-lived thread enters the
//! namespace with `setns` (which affects only that thread), opens its netlink socket there and
//! runs the work on its own small runtime. The caller awaits the answer without blocking.

use std::fs::File;
use std::future::Future;

/// A failure with its context, as text (drivers turn it into their own error).
pub type NsResult<T> = Result<T, String>;

/// Runs `work` with a netlink handle opened in `netns` (a path such as /run/netns/x or
/// /proc/<pid>/ns/net; None = the agent's own namespace).
pub async fn run_in<T, F, Fut>(netns: Option<&str>, work: F) -> NsResult<T>
where
    T: Send + 'static,
    F: FnOnce(rtnetlink::Handle) -> Fut + Send + 'static,
    Fut: Future<Output = NsResult<T>>,
{
    let ns = match netns {
        Some(path) => Some(File::open(path).map_err(|e| format!("network namespace {path}: {e}"))?),
        None => None,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let result = (|| {
                if let Some(ns) = &ns {
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| format!("setns: {e}"))?;
                }
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .build()
                    .map_err(|e| format!("runtime: {e}"))?;
                runtime.block_on(async {
                    let (connection, handle, _) =
                        rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
                    tokio::spawn(connection);
                    work(handle).await
                })
            })();
            let _ = tx.send(result);
        })
        .map_err(|e| format!("thread: {e}"))?;
    rx.await
        .unwrap_or_else(|_| Err("netlink thread panicked".to_string()))
}

//! Running netlink (and ioctl) work inside a network namespace: a short-lived thread enters the
//! namespace with `setns` (which affects only that thread), opens its netlink socket there and
//! runs the work on its own small runtime. The caller awaits the answer without blocking, which
//! matters also in the agent's own namespace: the kernel runs a netlink request inside the
//! sender's `sendmsg`, and a veth delete there takes tens of milliseconds.

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
            if let Some(ns) = &ns {
                if let Err(e) = nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET) {
                    let _ = tx.send(Err(format!("setns: {e}")));
                    return;
                }
            }
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = tx.send(Err(format!("runtime: {e}")));
                    return;
                }
            };
            // Answered before the runtime is torn down: the caller should not wait for that.
            runtime.block_on(async {
                let result = match connect() {
                    Ok(handle) => work(handle).await,
                    Err(e) => Err(e),
                };
                let _ = tx.send(result);
            });
        })
        .map_err(|e| format!("thread: {e}"))?;
    rx.await
        .unwrap_or_else(|_| Err("netlink thread panicked".to_string()))
}

/// A netlink handle in the calling thread's current namespace, its connection spawned on the
/// current runtime.
fn connect() -> NsResult<rtnetlink::Handle> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Moves the calling thread into `netns` and returns a netlink handle opened there. Only for
/// work running on a [`run_in`] thread, which is this thread's alone: handles opened before
/// stay in their namespace, later sockets (ethtool's too) open in the new one.
pub fn enter(netns: &File) -> NsResult<rtnetlink::Handle> {
    nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns: {e}"))?;
    connect()
}

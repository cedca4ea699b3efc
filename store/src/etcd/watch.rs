//! etcd watches mapped onto our `WatchStream`: start at `after + 1` on the prefix; a compacted
//! start revision becomes `StoreError::Compacted`; a broken connection ends the stream with an
//! error so the caller resumes from its last seen revision.

use etcd_client::{WatchClient, WatchOptions};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::convert;
use crate::error::StoreError;
use crate::types::{Event, Revision, WatchStream};

const STREAM_BUFFER: usize = 256;

pub async fn start(
    mut client: WatchClient,
    prefix: &str,
    after: Revision,
) -> Result<WatchStream, StoreError> {
    let start_revision = convert::etcd_revision(after.saturating_add(1))?;
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(start_revision);
    let mut responses = client
        .watch(convert::range_start(prefix), Some(options))
        .await?;
    let (tx, rx) = mpsc::channel::<Result<Event, StoreError>>(STREAM_BUFFER);
    let prefix = prefix.to_string();
    tokio::spawn(async move {
        let sink = tx.clone();
        let forward = async move {
            loop {
                let response = match responses.message().await {
                    Ok(Some(response)) => response,
                    Ok(None) => {
                        return Err(StoreError::Backend(format!(
                            "etcd closed the watch on {prefix:?}"
                        )))
                    }
                    Err(error) => return Err(StoreError::Etcd(error)),
                };
                if response.compact_revision() > 0 {
                    return Err(StoreError::Compacted {
                        requested: after,
                        oldest: convert::revision(response.compact_revision()),
                    });
                }
                if response.canceled() {
                    return Err(StoreError::Backend(format!(
                        "etcd canceled the watch on {prefix:?}: {}",
                        response.cancel_reason()
                    )));
                }
                for event in response.events() {
                    if tx.send(convert::event(event)).await.is_err() {
                        return Ok(());
                    }
                }
            }
        };
        tokio::select! {
            result = forward => {
                if let Err(error) = result {
                    let _ = sink.send(Err(error)).await;
                }
            }
            _ = sink.closed() => {}
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

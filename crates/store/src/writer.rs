//! Group commit for visitor sessions: many requests' writes share one transaction, and each
//! request is answered only after the transaction holding its write has committed.
//!
//! DNI answers must be durable (a visitor told a number keeps it across `kill -9`), but one
//! transaction per request would cap the endpoint at the database's commit rate. The writer
//! drains whatever writes are queued when it becomes free, commits them together and wakes their
//! waiters: under light load a batch is one write (no added latency), under heavy load batches
//! grow and the commit cost is shared.

use crate::{SessionWrite, Store, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Largest batch committed in one transaction.
const MAX_BATCH: usize = 1024;

/// Batches smaller than this, when more than one write came at once, wait [`LINGER`] for more.
const LINGER_BELOW: usize = 32;

/// How long a small batch under load waits for company.
const LINGER: std::time::Duration = std::time::Duration::from_micros(500);

/// How many writes may wait for the writer before callers wait for room.
const QUEUE: usize = 16 * 1024;

struct Pending {
    /// The write.
    write: SessionWrite,
    /// Where to say that it committed (or failed); `None` for a write nobody waits for.
    done: Option<oneshot::Sender<Result<(), Arc<StoreError>>>>,
}

impl Pending {
    fn finish(self, outcome: Result<(), Arc<StoreError>>) {
        if let Some(done) = self.done {
            let _ = done.send(outcome);
        }
    }
}

/// A cloneable handle that queues session writes for the group-commit task.
#[derive(Clone)]
pub struct SessionWriter {
    /// The queue into the writer task.
    tx: mpsc::Sender<Pending>,
}

/// The write could not be committed.
#[derive(Debug, thiserror::Error)]
#[error("session write failed: {0}")]
pub struct WriteFailed(pub Arc<StoreError>);

impl SessionWriter {
    /// Starts the writer task on the current runtime. It ends when every handle is dropped,
    /// after committing what was queued.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Queues a write and waits until it is committed.
    pub async fn write(&self, write: SessionWrite) -> Result<(), WriteFailed> {
        let (done, committed) = oneshot::channel();
        self.tx
            .send(Pending {
                write,
                done: Some(done),
            })
            .await
            .map_err(|_| closed())?;
        committed.await.map_err(|_| closed())?.map_err(WriteFailed)
    }

    /// Queues a write for the next batch without waiting for its commit (it waits only for
    /// room in the queue). For renewals: losing one to a crash only leaves the lease ending
    /// at the time the last committed write said, and the tag renews it again.
    pub async fn queue(&self, write: SessionWrite) -> Result<(), WriteFailed> {
        self.tx
            .send(Pending { write, done: None })
            .await
            .map_err(|_| closed())
    }
}

fn closed() -> WriteFailed {
    WriteFailed(Arc::new(StoreError::Unexpected(sqlx::Error::PoolClosed)))
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Pending>) {
    let mut pending: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut pending, MAX_BATCH).await > 0 {
        // Writes arriving together mean load: give others a moment to join the commit (each
        // commit rewrites the index pages it touches, however few rows it holds). A lone write
        // under light load is committed at once.
        if pending.len() > 1 && pending.len() < LINGER_BELOW {
            tokio::time::sleep(LINGER).await;
            while pending.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => pending.push(p),
                    Err(_) => break,
                }
            }
        }
        let batch: Vec<SessionWrite> = pending.iter().map(|p| p.write.clone()).collect();
        metrics::histogram!("callopt_session_batch_size").record(batch.len() as f64);
        match store.write_sessions(&batch).await {
            Ok(()) => {
                for p in pending.drain(..) {
                    p.finish(Ok(()));
                }
            }
            // One bad write (its campaign deleted meanwhile, say) must not fail its neighbours:
            // write them one by one, so that only the bad one reports an error.
            Err(e) => {
                tracing::warn!(error = %e, writes = batch.len(), "session batch failed; writing one by one");
                for p in pending.drain(..) {
                    let outcome = store
                        .write_sessions(std::slice::from_ref(&p.write))
                        .await
                        .map_err(Arc::new);
                    if let Err(e) = &outcome {
                        tracing::error!(error = %e, "visitor session write failed");
                    }
                    p.finish(outcome);
                }
            }
        }
    }
}

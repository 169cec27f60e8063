//! Call records written in batches: the call path hands a record over and goes on; one task
//! writes whatever is queued in one transaction.
//!
//! The queue is unbounded on purpose: the call path cannot wait (the SIP core is one task), and
//! a record must not be dropped because the database is slow for a moment. A record that cannot
//! be written is retried, then written alone so that it cannot hold back the others.

use callopt_store::{CallRecord, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most records written in one transaction.
const MAX_BATCH: usize = 1024;

/// How often a failing batch is tried again before its records are written one by one.
const RETRIES: u32 = 3;

/// Least time between the starts of two transactions. Each transaction costs the database a
/// commit and the process a few thread hand-offs whatever its size; under load, waiting this
/// long gathers the records of many calls into one. A record waits at most this long more
/// than it would otherwise, and not at all when the last transaction began longer ago.
const PACE: Duration = Duration::from_millis(10);

/// Call records queued or being written, not yet in the store: 0 when the call log has caught
/// up. The call log runs at a lower priority than the router (see the store), so under load it
/// falls behind before signalling does; this is how far.
const BACKLOG: &str = "callopt_call_log_backlog";

/// A cloneable handle that queues call records for the writer task.
#[derive(Clone)]
pub struct CallWriter {
    /// The queue into the writer task.
    tx: mpsc::UnboundedSender<CallRecord>,
    /// [`BACKLOG`].
    backlog: metrics::Gauge,
}

impl CallWriter {
    /// Starts the writer task on the current runtime; it ends when every handle is dropped,
    /// after writing what was queued. The returned handle resolves then.
    pub fn spawn(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = metrics::gauge!(BACKLOG);
        (
            Self {
                tx,
                backlog: backlog.clone(),
            },
            tokio::spawn(run(store, rx, backlog)),
        )
    }

    /// Queues a record (a later record of the same call replaces it).
    pub fn write(&self, record: CallRecord) {
        // Counted before it is sent: the writer may take it off the queue at once.
        self.backlog.increment(1.0);
        if self.tx.send(record).is_err() {
            self.backlog.decrement(1.0);
            tracing::error!("call writer stopped: a call record was not written");
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<CallRecord>,
    backlog: metrics::Gauge,
) {
    let mut batch = Vec::new();
    let mut last = tokio::time::Instant::now() - PACE;
    loop {
        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
            break;
        }
        if batch.len() < MAX_BATCH {
            tokio::time::sleep_until(last + PACE).await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
        }
        last = tokio::time::Instant::now();
        metrics::histogram!("callopt_call_batch_size").record(batch.len() as f64);
        // Handed over whole: the store may write it on a thread of its own.
        let records: Arc<[CallRecord]> = std::mem::take(&mut batch).into();
        let mut written = false;
        for attempt in 0..RETRIES {
            match store.write_calls_owned(records.clone()).await {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, records = records.len(), attempt, "call batch failed");
                    tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                }
            }
        }
        if !written {
            for record in records.iter() {
                if let Err(e) = store.write_calls(std::slice::from_ref(record)).await {
                    tracing::error!(error = %e, call = record.id, "call record could not be written");
                }
            }
        }
        backlog.decrement(records.len() as f64);
    }
}

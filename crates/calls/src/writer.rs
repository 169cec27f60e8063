//! Call records written in batches: the call path hands a record over and goes on; one task
//! writes whatever is queued in one transaction.
//!
//! The queue is unbounded on purpose: the call path cannot wait (the SIP core is one task), and
//! a record must not be dropped because the database is slow for a moment. A record that cannot
//! be written is retried, then written alone so that it cannot hold back the others.

use callopt_store::{CallRecord, Store};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most records written in one transaction.
const MAX_BATCH: usize = 1024;

/// How often a failing batch is tried again before its records are written one by one.
const RETRIES: u32 = 3;

/// Least time between the starts of two transactions. Each transaction costs the database a
/// commit and the process a few thread hand-offs whatever its size; under load, waiting this
/// long gathers the records of many calls into one. A record waits at most this long more
/// than it would otherwise, and not at all when the last transaction began longer ago.
/// 100 ms was tried: the process spent 7-9% less CPU a call at 3,000 calls/s, yet in three
/// interleaved pairs of `bench/sip.sh` ladders of Callopt alone its call log fell behind at
/// 3,500-5,250 calls/s where 10 ms held up to 5,500-6,000.
const PACE: Duration = Duration::from_millis(10);

/// How long a record of a call not yet ended waits for a later record of the same call, which
/// replaces it, when the writer holds records (see [`CallWriter::spawn`]). A call that ends
/// within it (refused by its target, abandoned while ringing, a burst of short calls) is
/// written once, finished, rather than once when it starts and again when it ends, which halves
/// what the call log writes for it; a longer call's record is in the store a second after it
/// starts, and within a second of each change. What reads calls in progress while they happen
/// (the live view, routing) reads them from memory. The price: a process that dies loses the
/// records of the calls that began in its last second (which it could not have carried on
/// either), where it would have left them to be closed as interrupted.
pub const HOLD: Duration = Duration::from_secs(1);

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
    ///
    /// Records of calls not yet ended wait up to `hold` for a later record ([`HOLD`]; zero
    /// writes each at once).
    pub fn spawn(store: Arc<dyn Store>, hold: Duration) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = metrics::gauge!(BACKLOG);
        // Registered here, where the caller's recorder is current, as the gauge is.
        let batch_size = metrics::histogram!("callopt_call_batch_size");
        (
            Self {
                tx,
                backlog: backlog.clone(),
            },
            tokio::spawn(run(store, rx, backlog, batch_size, hold)),
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

/// In-progress records waiting for a later record of the same call, which replaces them.
#[derive(Default)]
struct Held {
    /// How long a record waits; zero holds none.
    hold: Duration,
    /// The latest in-progress record of each call held, by call id.
    records: HashMap<i64, CallRecord>,
    /// When each call's record is due, earliest first (a call written meanwhile is skipped).
    due: VecDeque<(Instant, i64)>,
}

impl Held {
    /// Takes `record` in: held when its call has not ended, else added to `batch` in
    /// place of the call's held record. The number of records it replaced (0 or 1).
    fn sort(&mut self, record: CallRecord, batch: &mut Vec<CallRecord>, now: Instant) -> usize {
        // Not ended: ringing, or answered and talking.
        if record.ended_at.is_none() && !self.hold.is_zero() {
            match self.records.entry(record.id) {
                Entry::Occupied(mut held) => {
                    held.insert(record);
                    1
                }
                Entry::Vacant(slot) => {
                    self.due.push_back((now + self.hold, record.id));
                    slot.insert(record);
                    0
                }
            }
        } else {
            let replaced = self.records.remove(&record.id).is_some();
            batch.push(record);
            usize::from(replaced)
        }
    }

    /// Moves the records due by `now` (all of them when `now` is `None`) to `batch`.
    fn release(&mut self, now: Option<Instant>, batch: &mut Vec<CallRecord>) {
        while let Some(&(at, id)) = self.due.front() {
            if now.is_some_and(|now| at > now) {
                break;
            }
            self.due.pop_front();
            batch.extend(self.records.remove(&id));
        }
    }

    /// When the next held record is due.
    fn next(&self) -> Option<Instant> {
        self.due.front().map(|&(at, _)| at)
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<CallRecord>,
    backlog: metrics::Gauge,
    batch_size: metrics::Histogram,
    hold: Duration,
) {
    let mut incoming = Vec::new();
    let mut batch = Vec::new();
    let mut held = Held {
        hold,
        ..Held::default()
    };
    let mut last = Instant::now() - PACE;
    let mut open = true;
    while open {
        let received = match held.next() {
            Some(due) => tokio::select! {
                n = rx.recv_many(&mut incoming, MAX_BATCH) => Some(n),
                () = tokio::time::sleep_until(due) => None,
            },
            None => Some(rx.recv_many(&mut incoming, MAX_BATCH).await),
        };
        open = received != Some(0);
        let now = Instant::now();
        let mut replaced = 0;
        for record in incoming.drain(..) {
            replaced += held.sort(record, &mut batch, now);
        }
        if open && batch.len() < MAX_BATCH {
            tokio::time::sleep_until(last + PACE).await;
            let now = Instant::now();
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(record) => replaced += held.sort(record, &mut batch, now),
                    Err(_) => break,
                }
            }
        }
        // Paced whether or not it writes: a queue of records that are all held wakes it no
        // more often than one that writes.
        last = Instant::now();
        backlog.decrement(replaced as f64);
        // Every held record goes when the queue closes: nothing comes to replace it.
        held.release(open.then(Instant::now), &mut batch);
        if batch.is_empty() {
            continue;
        }
        batch_size.record(batch.len() as f64);
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

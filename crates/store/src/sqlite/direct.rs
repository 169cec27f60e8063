//! Call records written through SQLite's own statement API on a connection of their own, by
//! a thread of their own (the call log's) at a lower priority than the router's.
//!
//! The call writer is the busiest writer under load: every call is written when it starts and
//! again when it ends, a few dozen records per batch. Through sqlx each batch builds its
//! statements' text again, copies every bound value into owned arguments and hands them to the
//! connection's thread; here two statements are prepared once and each record is bound and
//! stepped in place, which is the cost SQLite itself has and no more.

use super::sql::routing::{
    caller_country, latest_records, power_of_two_runs, reported_target, ATTEMPT_COLUMNS,
    ATTEMPT_UPSERT, CALL_COLUMNS, CALL_UPSERT, ROWS_PER_STATEMENT,
};
use crate::{AttemptRecord, CallRecord, Result, StoreError};
use callopt_domain::{AttemptOutcome, HungUpBy};
use rusqlite::{CachedStatement, Connection, OpenFlags, ToSql, TransactionBehavior};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;

/// The nice value of the call log's thread. Signalling has deadlines (a caller sends its INVITE
/// again after 500 ms without an answer) and call records do not: when the router and the call
/// log both want the CPU, the router gets about nine tenths of it and the call log the rest,
/// which is never nothing, so the queue drains and no record waits for ever.
#[cfg(target_os = "linux")]
const CALL_LOG_NICE: libc::c_int = 10;

/// The connection for call records, owned by a thread of its own (the call log's), started at
/// the first batch, after migrations have made the tables. Absent for an in-memory database,
/// which a second connection would not share.
#[derive(Clone, Default)]
pub struct CallsConnection {
    inner: Option<Arc<Shared>>,
}

struct Shared {
    path: PathBuf,
    /// The way to the thread; replaced when the thread is gone.
    thread: Mutex<Option<mpsc::Sender<Job>>>,
}

/// One batch for the call log's thread, and where its result goes.
struct Job {
    calls: Arc<[CallRecord]>,
    node: Option<i64>,
    done: oneshot::Sender<Result<()>>,
}

impl CallsConnection {
    /// A connection to the database file at `path`; none for an in-memory database.
    pub fn new(path: PathBuf, in_memory: bool) -> Self {
        Self {
            inner: (!in_memory).then(|| {
                Arc::new(Shared {
                    path,
                    thread: Mutex::new(None),
                })
            }),
        }
    }

    /// Whether call records go through this connection.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Writes the latest record of each call in `calls` in one transaction on the call log's
    /// thread, or `None` when this store has no connection of its own for them (the caller
    /// writes them through sqlx). The thread, not the caller, waits for SQLite's write lock:
    /// the async worker may be running the transaction that holds it.
    pub async fn write(&self, calls: Arc<[CallRecord]>, node: Option<i64>) -> Option<Result<()>> {
        let inner = self.inner.as_ref()?;
        let (done, result) = oneshot::channel();
        let job = Job { calls, node, done };
        let sent = {
            let mut thread = inner.thread.lock().unwrap_or_else(|p| p.into_inner());
            let job = match thread.as_ref() {
                Some(t) => t.send(job).err().map(|mpsc::SendError(job)| job),
                None => Some(job),
            };
            match job {
                None => Ok(()),
                Some(job) => start(&inner.path).and_then(|t| {
                    let sent = t.send(job).map_err(|_| gone());
                    *thread = Some(t);
                    sent
                }),
            }
        };
        Some(match sent {
            Ok(()) => result.await.unwrap_or_else(|_| Err(unexpected_io(gone()))),
            Err(e) => Err(unexpected_io(e)),
        })
    }
}

/// Starts the call log's thread; it ends when the last [`CallsConnection`] is dropped.
fn start(path: &std::path::Path) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel::<Job>();
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("callopt-call-log".into())
        .spawn(move || {
            if !yield_to_the_router() {
                tracing::debug!("the call log's thread runs at the router's priority");
            }
            let mut conn = None;
            for job in rx {
                let result = write(&mut conn, &path, &latest_records(&job.calls), job.node);
                if result.is_err() {
                    // Opened again for the retry: whatever state the failure left goes with it.
                    conn = None;
                }
                let _ = job.done.send(result.map_err(unexpected));
            }
        })?;
    Ok(tx)
}

/// Raises the calling thread's nice value to [`CALL_LOG_NICE`]; whether it could.
#[cfg(target_os = "linux")]
fn yield_to_the_router() -> bool {
    // Linux keeps a nice value per thread: this thread's alone is raised.
    // SAFETY: plain system calls on this thread's own id; no memory is passed.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, CALL_LOG_NICE) == 0
    }
}

/// Elsewhere a nice value is the whole process's: the call log keeps the router's.
#[cfg(not(target_os = "linux"))]
fn yield_to_the_router() -> bool {
    false
}

fn gone() -> std::io::Error {
    std::io::Error::other("the call log's thread stopped")
}

fn unexpected_io(e: std::io::Error) -> StoreError {
    StoreError::Unexpected(sqlx::Error::Io(e))
}

fn unexpected(e: rusqlite::Error) -> StoreError {
    StoreError::Unexpected(sqlx::Error::AnyDriverError(Box::new(e)))
}

fn open(path: &PathBuf) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The same settings as the sqlx connections (see `db::connect`); WAL mode is the file's.
    conn.busy_timeout(Duration::from_secs(10))?;
    // Both statements at every length (see `statement`) stay prepared.
    conn.set_prepared_statement_cache_capacity(2 * (ROWS_PER_STATEMENT.ilog2() as usize + 1));
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; \
         PRAGMA temp_store = memory; PRAGMA wal_autocheckpoint = 8192;",
    )?;
    Ok(conn)
}

fn write(
    conn: &mut Option<Connection>,
    path: &PathBuf,
    calls: &[&CallRecord],
    node: Option<i64>,
) -> rusqlite::Result<()> {
    let conn = match conn {
        Some(conn) => conn,
        none => none.insert(open(path)?),
    };
    // SQLite's write lock taken at the start, as `db::begin_write` does.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Many rows per statement, as the sqlx path writes them: a statement that may fire triggers
    // or update on conflict keeps a journal of its own, whatever its number of rows.
    for run in power_of_two_runs(calls) {
        let mut insert = tx.prepare_cached(statement(&CALL_SQL, run.len(), call_sql))?;
        let mut i = 0;
        for c in run {
            bind(&mut insert, &mut i, &c.id)?;
            bind(&mut insert, &mut i, &c.account.0)?;
            bind(&mut insert, &mut i, &c.campaign_id)?;
            bind(&mut insert, &mut i, &c.routing_plan_id)?;
            bind(&mut insert, &mut i, &c.tracking_number)?;
            bind(&mut insert, &mut i, &c.caller)?;
            bind(&mut insert, &mut i, &c.session_id)?;
            bind(&mut insert, &mut i, &c.channel)?;
            bind(&mut insert, &mut i, &c.external_id)?;
            bind(&mut insert, &mut i, &c.outcome.as_str())?;
            bind(&mut insert, &mut i, &c.reason)?;
            bind(&mut insert, &mut i, &c.hung_up_by.map(HungUpBy::as_str))?;
            bind(&mut insert, &mut i, &c.started_at)?;
            bind(&mut insert, &mut i, &c.answered_at)?;
            bind(&mut insert, &mut i, &c.ended_at)?;
            bind(&mut insert, &mut i, &caller_country(&c.caller))?;
            bind(&mut insert, &mut i, &node)?;
            bind(&mut insert, &mut i, &(c.attempts.len() as i64))?;
            bind(&mut insert, &mut i, &reported_target(c))?;
        }
        insert.raw_execute()?;
    }
    let attempts: Vec<(i64, &AttemptRecord)> = calls
        .iter()
        .flat_map(|c| c.attempts.iter().map(move |a| (c.id, a)))
        .collect();
    for run in power_of_two_runs(&attempts) {
        let mut insert = tx.prepare_cached(statement(&ATTEMPT_SQL, run.len(), attempt_sql))?;
        let mut i = 0;
        for (call, a) in run {
            bind(&mut insert, &mut i, call)?;
            bind(&mut insert, &mut i, &i64::from(a.seq))?;
            bind(&mut insert, &mut i, &a.target_id)?;
            bind(&mut insert, &mut i, &a.destination)?;
            bind(&mut insert, &mut i, &a.outcome.map(AttemptOutcome::as_str))?;
            bind(&mut insert, &mut i, &a.sip_status.map(i64::from))?;
            bind(&mut insert, &mut i, &a.started_at)?;
            bind(&mut insert, &mut i, &a.answered_at)?;
            bind(&mut insert, &mut i, &a.ended_at)?;
        }
        insert.raw_execute()?;
    }
    tx.commit()
}

/// Binds the next parameter (`i` counts them, from 1).
fn bind(stmt: &mut CachedStatement<'_>, i: &mut usize, value: &dyn ToSql) -> rusqlite::Result<()> {
    *i += 1;
    stmt.raw_bind_parameter(*i, value)
}

/// The text of each statement length: one per power of two up to [`ROWS_PER_STATEMENT`].
type Texts = [OnceLock<String>; ROWS_PER_STATEMENT.ilog2() as usize + 1];

static CALL_SQL: Texts = [const { OnceLock::new() }; ROWS_PER_STATEMENT.ilog2() as usize + 1];
static ATTEMPT_SQL: Texts = [const { OnceLock::new() }; ROWS_PER_STATEMENT.ilog2() as usize + 1];

/// The statement for `rows` rows (a power of two), written once.
fn statement(texts: &'static Texts, rows: usize, sql: fn(usize) -> String) -> &'static str {
    texts[rows.ilog2() as usize].get_or_init(|| sql(rows))
}

/// `rows` rows of `columns` parameters each.
fn values(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

fn call_sql(rows: usize) -> String {
    format!(
        "INSERT INTO calls ({CALL_COLUMNS}, caller_country, node_id, attempts, target_id) \
         VALUES {}{CALL_UPSERT}",
        values(rows, 19)
    )
}

fn attempt_sql(rows: usize) -> String {
    format!(
        "INSERT INTO call_attempts ({ATTEMPT_COLUMNS}) VALUES {}{ATTEMPT_UPSERT}",
        values(rows, 9)
    )
}

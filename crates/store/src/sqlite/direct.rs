//! Call records written through SQLite's own statement API on a connection of their own.
//!
//! The call writer is the busiest writer under load: every call is written when it starts and
//! again when it ends, a few dozen records per batch. Through sqlx each batch builds its
//! statements' text again, copies every bound value into owned arguments and hands them to the
//! connection's thread; here two statements are prepared once and each record is bound and
//! stepped in place, which is the cost SQLite itself has and no more.

use super::sql::routing::{
    caller_country, power_of_two_runs, reported_target, ATTEMPT_COLUMNS, ATTEMPT_UPSERT,
    CALL_COLUMNS, CALL_UPSERT, ROWS_PER_STATEMENT,
};
use crate::{AttemptRecord, CallRecord, Result, StoreError};
use callopt_domain::{AttemptOutcome, HungUpBy};
use rusqlite::{CachedStatement, Connection, OpenFlags, ToSql, TransactionBehavior};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The connection for call records, opened at the first batch (after migrations have made the
/// tables). Absent for an in-memory database, which a second connection would not share.
#[derive(Clone, Default)]
pub struct CallsConnection {
    inner: Option<Arc<Mutex<Lazy>>>,
}

struct Lazy {
    path: PathBuf,
    conn: Option<Connection>,
}

impl CallsConnection {
    /// A connection to the database file at `path`; none for an in-memory database.
    pub fn new(path: PathBuf, in_memory: bool) -> Self {
        Self {
            inner: (!in_memory).then(|| Arc::new(Mutex::new(Lazy { path, conn: None }))),
        }
    }

    /// Whether call records go through this connection.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Writes `calls` (the latest record of each, in order) in one transaction, or `None` when
    /// this store has no connection of its own for them (the caller writes them through sqlx).
    /// It blocks: the caller runs it off the async worker.
    pub fn write(&self, calls: &[&CallRecord], node: Option<i64>) -> Option<Result<()>> {
        let inner = self.inner.as_ref()?;
        let mut lazy = inner.lock().unwrap_or_else(|p| p.into_inner());
        let result = write(&mut lazy, calls, node).map_err(unexpected);
        if result.is_err() {
            // Opened again for the retry: whatever state the failure left goes with it.
            lazy.conn = None;
        }
        Some(result)
    }
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

fn write(lazy: &mut Lazy, calls: &[&CallRecord], node: Option<i64>) -> rusqlite::Result<()> {
    let conn = match &mut lazy.conn {
        Some(conn) => conn,
        none => none.insert(open(&lazy.path)?),
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

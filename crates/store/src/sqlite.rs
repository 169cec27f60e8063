//! The SQLite store: the embedded default. One file in WAL mode, migrations run at open.

// The same SQL module is compiled again in [`crate::postgres`], for the other database: on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;
pub use sql::SqlStore as SqliteStore;
mod direct;

/// What the shared SQL module needs to know of SQLite.
pub(crate) mod db {
    use crate::Result;
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    use std::str::FromStr;
    use std::time::Duration;

    pub type Db = sqlx::Sqlite;
    pub type DbPool = sqlx::SqlitePool;
    pub type DbRow = sqlx::sqlite::SqliteRow;
    pub type DbConnection = sqlx::SqliteConnection;
    pub type DbArguments<'q> = sqlx::sqlite::SqliteArguments<'q>;

    /// The connections a store holds.
    pub struct Connections {
        /// For everything but the two busiest writers.
        pub pool: DbPool,
        /// One connection for visitor-session batches: a connection's page cache is dropped
        /// whenever another connection has written, so the busiest writer keeps one.
        pub sessions: DbPool,
        /// One connection for call records, for the same reason.
        pub calls: DbPool,
        /// The call writer's connection of its own, outside sqlx (see [`super::direct`]).
        pub direct_calls: CallsConnection,
    }

    pub use super::direct::CallsConnection;

    /// Opens (creating if missing) the database at `url` (`sqlite://path?mode=rwc` or a plain
    /// path), in WAL mode with `synchronous=NORMAL`: a committed transaction survives the
    /// process being killed.
    pub async fn connect(url: &str) -> Result<Connections> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // The DNI write path touches index pages all over the sessions table: keep them in
            // memory (64 MiB page cache) rather than read them again.
            .pragma("cache_size", "-65536")
            // Statement journals of multi-row writes stay in memory.
            .pragma("temp_store", "memory")
            // Checkpoint less often: a page written many times is copied back once.
            .pragma("wal_autocheckpoint", "8192");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await?;
        let one = || SqlitePoolOptions::new().max_connections(1);
        let sessions = one().connect_with(options.clone()).await?;
        let calls = one().connect_with(options.clone()).await?;
        let file = options.get_filename();
        let in_memory = url.contains(":memory:")
            || url.contains("mode=memory")
            || file.to_string_lossy().starts_with("file:");
        Ok(Connections {
            pool,
            sessions,
            calls,
            direct_calls: CallsConnection::new(file.to_path_buf(), in_memory),
        })
    }

    /// Begins a transaction that writes: SQLite's write lock taken at the start, waiting for
    /// it (the busy timeout), rather than at its first write, where another connection's
    /// commit since its first read would fail it at once (`SQLITE_BUSY_SNAPSHOT`).
    pub async fn begin_write(pool: &DbPool) -> Result<sqlx::Transaction<'static, Db>> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Begins a transaction that claims work (due deliveries, due scans, a day to roll up),
    /// one claimer at a time: SQLite's write lock, taken at the start (`BEGIN IMMEDIATE`) so
    /// that two claimers never both read the same due rows.
    pub async fn begin_claim(pool: &DbPool, _work: i64) -> Result<sqlx::Transaction<'static, Db>> {
        Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Holds off writers of calls until the transaction ends (rolling a day up reads its calls
    /// and then clears its changes): SQLite's write lock, taken at `BEGIN IMMEDIATE`, does.
    pub async fn lock_calls(_tx: &mut DbConnection) -> Result<()> {
        Ok(())
    }

    /// The function that builds a JSON object from (key, value) arguments.
    pub const JSON_OBJECT: &str = "json_object";

    /// A stored flag (0 or 1) as a JSON boolean inside [`JSON_OBJECT`].
    pub fn json_flag(column: &str) -> String {
        format!("json(CASE WHEN {column} THEN 'true' ELSE 'false' END)")
    }

    /// A time in milliseconds since the epoch as RFC 3339 UTC text, to the second.
    pub fn utc_rfc3339(ms: &str) -> String {
        format!("strftime('%Y-%m-%dT%H:%M:%SZ', {ms} / 1000, 'unixepoch')")
    }

    /// The SQLite migrations, in order.
    pub const MIGRATIONS: &[(i64, &str, &str)] = &[
        (
            1,
            "foundation",
            include_str!("../migrations/sqlite/0001_foundation.sql"),
        ),
        (
            2,
            "routing",
            include_str!("../migrations/sqlite/0002_routing.sql"),
        ),
        (
            3,
            "carriers",
            include_str!("../migrations/sqlite/0003_carriers.sql"),
        ),
        (
            4,
            "events",
            include_str!("../migrations/sqlite/0004_events.sql"),
        ),
        (
            5,
            "report columns",
            include_str!("../migrations/sqlite/0005_report_columns.sql"),
        ),
        (
            6,
            "guard",
            include_str!("../migrations/sqlite/0006_guard.sql"),
        ),
        (
            7,
            "pool usage",
            include_str!("../migrations/sqlite/0007_pool_usage.sql"),
        ),
        (
            8,
            "session side writes",
            include_str!("../migrations/sqlite/0008_session_side_writes.sql"),
        ),
        (
            9,
            "call rollups",
            include_str!("../migrations/sqlite/0009_call_rollups.sql"),
        ),
        (
            10,
            "caller country",
            include_str!("../migrations/sqlite/0010_caller_country.sql"),
        ),
        (
            11,
            "scan url",
            include_str!("../migrations/sqlite/0011_scan_url.sql"),
        ),
        (
            12,
            "page quarantine",
            include_str!("../migrations/sqlite/0012_page_quarantine.sql"),
        ),
        (
            13,
            "scan backlog",
            include_str!("../migrations/sqlite/0013_scan_backlog.sql"),
        ),
        (
            14,
            "nodes",
            include_str!("../migrations/sqlite/0014_nodes.sql"),
        ),
        (
            15,
            "open calls",
            include_str!("../migrations/sqlite/0015_open_calls.sql"),
        ),
        (
            16,
            "call target written",
            include_str!("../migrations/sqlite/0016_call_target_written.sql"),
        ),
        (
            17,
            "call events written",
            include_str!("../migrations/sqlite/0017_call_events_written.sql"),
        ),
        (
            18,
            "unused open call index",
            include_str!("../migrations/sqlite/0018_unused_open_call_index.sql"),
        ),
    ];
}

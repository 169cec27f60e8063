//! The PostgreSQL store: for several Callopt nodes sharing one database. Selected by a
//! `postgres://` database URL; migrations run at open, as on SQLite.

// The same SQL module is compiled again in [`crate::sqlite`], for the other database: on purpose.
#[allow(clippy::duplicate_mod)]
#[path = "sql/mod.rs"]
mod sql;
pub use sql::SqlStore as PgStore;

/// What the shared SQL module needs to know of PostgreSQL.
pub(crate) mod db {
    use crate::Result;
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    use std::str::FromStr;
    use std::time::Duration;

    pub type Db = sqlx::Postgres;
    pub type DbPool = sqlx::PgPool;
    pub type DbRow = sqlx::postgres::PgRow;
    pub type DbConnection = sqlx::PgConnection;
    pub type DbArguments<'q> = sqlx::postgres::PgArguments;

    /// The connections a store holds.
    pub struct Connections {
        /// For everything but the two busiest writers.
        pub pool: DbPool,
        /// One connection for visitor-session batches, which the session writer sends one at a
        /// time.
        pub sessions: DbPool,
        /// One connection for call records, written the same way.
        pub calls: DbPool,
        /// None: call records go through `calls`.
        pub direct_calls: CallsConnection,
    }

    /// SQLite's call writer has a connection outside sqlx; PostgreSQL's writes through sqlx.
    #[derive(Clone, Default)]
    pub struct CallsConnection;

    impl CallsConnection {
        /// Never: call records are written through sqlx.
        pub fn enabled(&self) -> bool {
            false
        }

        /// Never writes (`None`): call records are written through sqlx.
        pub async fn write(
            &self,
            _calls: std::sync::Arc<[crate::CallRecord]>,
            _node: Option<i64>,
        ) -> Option<Result<()>> {
            None
        }
    }

    /// Connects to the server at `url` (`postgres://user:password@host:port/database`),
    /// creating the database when it does not exist yet, as SQLite creates its file.
    pub async fn connect(url: &str) -> Result<Connections> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10));
        let pool = match pool.clone().connect_with(options.clone()).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(NO_SUCH_DATABASE) => {
                create_database(url).await?;
                pool.connect_with(options.clone()).await?
            }
            other => other?,
        };
        let one = || PgPoolOptions::new().max_connections(1);
        let sessions = one().connect_with(options.clone()).await?;
        let calls = one().connect_with(options).await?;
        Ok(Connections {
            pool,
            sessions,
            calls,
            direct_calls: CallsConnection,
        })
    }

    /// PostgreSQL's code for a connection to a database that does not exist.
    const NO_SUCH_DATABASE: &str = "3D000";
    /// PostgreSQL's code for creating a database that exists (another node was first).
    const DATABASE_EXISTS: &str = "42P04";

    async fn create_database(url: &str) -> Result<()> {
        use sqlx::migrate::MigrateDatabase;
        match sqlx::Postgres::create_database(url).await {
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some(DATABASE_EXISTS) => Ok(()),
            other => Ok(other?),
        }
    }

    /// Begins a transaction that writes (on PostgreSQL, any transaction: rows are locked as
    /// they are written).
    pub async fn begin_write(pool: &DbPool) -> Result<sqlx::Transaction<'static, Db>> {
        Ok(pool.begin().await?)
    }

    /// Begins a transaction that claims work (due deliveries, due scans, a day to roll up),
    /// one claimer at a time across every node: a transaction-scoped advisory lock on `work`.
    /// Its statements start after the lock, so they see what the last claimer committed.
    pub async fn begin_claim(pool: &DbPool, work: i64) -> Result<sqlx::Transaction<'static, Db>> {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(work)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// Holds off writers of calls until the transaction ends (rolling a day up reads its calls
    /// and then clears its changes: a change committed in between would be cleared unrolled).
    pub async fn lock_calls(tx: &mut DbConnection) -> Result<()> {
        sqlx::query("LOCK TABLE calls IN SHARE MODE")
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// The function that builds a JSON object from (key, value) arguments.
    pub const JSON_OBJECT: &str = "json_build_object";

    /// A stored flag (a boolean) as a JSON boolean inside [`JSON_OBJECT`].
    pub fn json_flag(column: &str) -> String {
        column.to_string()
    }

    /// A time in milliseconds since the epoch as RFC 3339 UTC text, to the second.
    pub fn utc_rfc3339(ms: &str) -> String {
        format!("to_char(to_timestamp({ms} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
    }

    /// The PostgreSQL migrations, in order. Version 1 is the schema SQLite reaches through
    /// its migrations 1 to 13; from then on each change is a migration in both lists (here 2 is
    /// SQLite's 14, 3 its 15, 4 its 16, 5 its 17, 6 its 18).
    pub const MIGRATIONS: &[(i64, &str, &str)] = &[
        (
            1,
            "schema",
            include_str!("../migrations/postgres/0001_schema.sql"),
        ),
        (
            2,
            "nodes",
            include_str!("../migrations/postgres/0002_nodes.sql"),
        ),
        (
            3,
            "open calls",
            include_str!("../migrations/postgres/0003_open_calls.sql"),
        ),
        (
            4,
            "call target written",
            include_str!("../migrations/postgres/0004_call_target_written.sql"),
        ),
        (
            5,
            "call events written",
            include_str!("../migrations/postgres/0005_call_events_written.sql"),
        ),
        (
            6,
            "unused open call index",
            include_str!("../migrations/postgres/0006_unused_open_call_index.sql"),
        ),
    ];
}

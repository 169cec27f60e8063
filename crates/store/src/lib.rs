//! Callopt's storage: the [`Store`] trait every caller uses, its SQLite implementation (the
//! embedded default), migrations, and the group-commit writer for visitor sessions.
//!
//! # Layout
//! - [`guard`]: page scans, quarantines, abuse reports and the Guard's audit.
//! - [`records`]: the rows callers read and write, in domain types.
//! - [`sqlite`]: [`SqliteStore`], the embedded default (a file, WAL, migrations at open).
//! - [`webhooks`]: event webhooks, their deliveries from the outbox, and call conversions.
//! - [`writer`]: [`SessionWriter`], which batches visitor-session writes into one transaction
//!   per batch and answers each caller only once its write is committed.
//!
//! Every method that reads or changes an account's objects takes the [`AccountId`] and puts it in
//! the `WHERE` clause: there is no way to reach another account's rows through this trait.

pub mod guard;
pub mod postgres;
pub mod records;
pub mod sqlite;
pub mod webhooks;
pub mod writer;

pub use guard::*;
pub use postgres::PgStore;
pub use records::*;
pub use sqlite::SqliteStore;
pub use webhooks::*;
pub use writer::SessionWriter;

use async_trait::async_trait;
use callopt_domain::{AccountId, ApiKeyHash, RoutingPlan, Target};

/// What can go wrong in the store, classified for the callers that map it to answers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object in this account.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the field that collided.
    #[error("{0} already exists")]
    Conflict(String),
    /// A reference to another object of the account that does not exist.
    #[error("{0} does not exist in this account")]
    BadReference(String),
    /// The database failed; nothing the client can fix.
    #[error("database error: {0}")]
    Unexpected(#[from] sqlx::Error),
}

/// Short for the store's results.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A page of a listing: at most `limit` objects with ids greater than `after`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    /// The last id of the previous page (from the cursor), if any.
    pub after: Option<i64>,
    /// How many objects at most.
    pub limit: u32,
}

/// A page of objects and whether more follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The objects, in id order.
    pub items: Vec<T>,
    /// The id to continue after, when there are more.
    pub next_after: Option<i64>,
}

/// The durable store. One implementation per database; callers hold an `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates an account with one API key (given as its hash).
    async fn create_account(&self, name: &str, key: &ApiKeyHash, now: i64) -> Result<AccountId>;
    /// The account an API key belongs to.
    async fn account_by_key(&self, key: &ApiKeyHash) -> Result<Option<AccountId>>;

    /// Creates a pool.
    async fn create_pool(&self, account: AccountId, name: &str, now: i64) -> Result<PoolRecord>;
    /// One pool.
    async fn pool(&self, account: AccountId, id: i64) -> Result<PoolRecord>;
    /// A page of pools.
    async fn pools(&self, account: AccountId, page: PageRequest) -> Result<Page<PoolRecord>>;
    /// Renames a pool.
    async fn rename_pool(&self, account: AccountId, id: i64, name: &str) -> Result<PoolRecord>;
    /// Deletes a pool; its numbers stay, out of any pool.
    async fn delete_pool(&self, account: AccountId, id: i64) -> Result<()>;

    /// Adds tracking numbers in one transaction. Each row is added or reported as a conflict;
    /// the others are kept.
    async fn insert_numbers(
        &self,
        account: AccountId,
        numbers: &[NewNumber],
        now: i64,
    ) -> Result<Vec<Result<NumberRecord>>>;
    /// One tracking number.
    async fn number(&self, account: AccountId, id: i64) -> Result<NumberRecord>;
    /// A page of tracking numbers, optionally of one pool.
    async fn numbers(
        &self,
        account: AccountId,
        pool: Option<i64>,
        page: PageRequest,
    ) -> Result<Page<NumberRecord>>;
    /// Every tracking number of a pool (for loading DNI state).
    async fn pool_numbers(&self, pool: i64) -> Result<Vec<NumberRecord>>;
    /// Changes a tracking number's pool, languages or status.
    async fn update_number(
        &self,
        account: AccountId,
        id: i64,
        change: &NumberChange,
    ) -> Result<NumberRecord>;
    /// Deletes a tracking number.
    async fn delete_number(&self, account: AccountId, id: i64) -> Result<()>;

    /// Creates a campaign.
    async fn create_campaign(
        &self,
        account: AccountId,
        c: &CampaignFields,
        key: &str,
        now: i64,
    ) -> Result<CampaignRecord>;
    /// One campaign.
    async fn campaign(&self, account: AccountId, id: i64) -> Result<CampaignRecord>;
    /// A page of campaigns.
    async fn campaigns(
        &self,
        account: AccountId,
        page: PageRequest,
    ) -> Result<Page<CampaignRecord>>;
    /// Every campaign of every account (for loading DNI state at start).
    async fn all_campaigns(&self) -> Result<Vec<CampaignRecord>>;
    /// Replaces a campaign's fields.
    async fn update_campaign(
        &self,
        account: AccountId,
        id: i64,
        c: &CampaignFields,
        now: i64,
    ) -> Result<CampaignRecord>;
    /// Deletes a campaign and its sessions.
    async fn delete_campaign(&self, account: AccountId, id: i64) -> Result<()>;

    /// Adds a domain to verify.
    async fn create_domain(
        &self,
        account: AccountId,
        host: &str,
        token: &str,
        now: i64,
    ) -> Result<DomainRecord>;
    /// One domain.
    async fn domain(&self, account: AccountId, id: i64) -> Result<DomainRecord>;
    /// A page of domains.
    async fn domains(&self, account: AccountId, page: PageRequest) -> Result<Page<DomainRecord>>;
    /// Every verified domain of every account (for the DNI origin check).
    async fn all_verified_domains(&self) -> Result<Vec<DomainRecord>>;
    /// Records a successful verification.
    async fn mark_domain_verified(
        &self,
        account: AccountId,
        id: i64,
        now: i64,
    ) -> Result<DomainRecord>;
    /// Deletes a domain.
    async fn delete_domain(&self, account: AccountId, id: i64) -> Result<()>;

    /// Writes a batch of visitor-session inserts and renewals in one transaction.
    async fn write_sessions(&self, batch: &[SessionWrite]) -> Result<()>;
    /// Sessions whose lease is live at `now` (for restoring DNI state at start).
    async fn live_sessions(&self, now: i64) -> Result<Vec<SessionRecord>>;
    /// One visitor session.
    async fn session(&self, account: AccountId, id: &str) -> Result<SessionRecord>;
    /// Those of the visitor sessions `ids` that are the account's.
    async fn sessions(&self, account: AccountId, ids: &[String]) -> Result<Vec<SessionRecord>>;
    /// Records a refused DNI request.
    async fn record_refusal(&self, r: &Refusal) -> Result<()>;
    /// A page of refusals.
    async fn refusals(&self, account: AccountId, page: PageRequest) -> Result<Page<RefusalRecord>>;
    /// Creates a target.
    async fn create_target(&self, account: AccountId, t: &Target, now: i64)
        -> Result<TargetRecord>;
    /// One target.
    async fn target(&self, account: AccountId, id: i64) -> Result<TargetRecord>;
    /// A page of targets.
    async fn targets(&self, account: AccountId, page: PageRequest) -> Result<Page<TargetRecord>>;
    /// Every target of every account (for building the routing table).
    async fn all_targets(&self) -> Result<Vec<TargetRecord>>;
    /// Replaces a target's fields.
    async fn update_target(
        &self,
        account: AccountId,
        id: i64,
        t: &Target,
        now: i64,
    ) -> Result<TargetRecord>;
    /// Deletes a target (plans that name it drop it).
    async fn delete_target(&self, account: AccountId, id: i64) -> Result<()>;

    /// Creates a routing plan; its targets must belong to the account.
    async fn create_plan(
        &self,
        account: AccountId,
        p: &RoutingPlan,
        now: i64,
    ) -> Result<PlanRecord>;
    /// One routing plan.
    async fn plan(&self, account: AccountId, id: i64) -> Result<PlanRecord>;
    /// A page of routing plans.
    async fn plans(&self, account: AccountId, page: PageRequest) -> Result<Page<PlanRecord>>;
    /// Every routing plan of every account (for building the routing table).
    async fn all_plans(&self) -> Result<Vec<PlanRecord>>;
    /// Replaces a routing plan's fields.
    async fn update_plan(
        &self,
        account: AccountId,
        id: i64,
        p: &RoutingPlan,
        now: i64,
    ) -> Result<PlanRecord>;
    /// Deletes a routing plan (campaigns that use it keep no plan).
    async fn delete_plan(&self, account: AccountId, id: i64) -> Result<()>;

    /// Writes call records (new or replacing earlier records of the same calls) in one
    /// transaction.
    async fn write_calls(&self, calls: &[CallRecord]) -> Result<()>;
    /// [`Store::write_calls`] for a batch the caller gives up (the call writer's): a store
    /// that writes on a thread of its own takes it there without copying it.
    async fn write_calls_owned(&self, calls: std::sync::Arc<[CallRecord]>) -> Result<()> {
        self.write_calls(&calls).await
    }
    /// One call with its attempts.
    async fn call(&self, account: AccountId, id: i64) -> Result<CallRecord>;
    /// A page of calls matching a filter, in id (arrival) order.
    async fn calls(
        &self,
        account: AccountId,
        filter: &CallFilter,
        page: PageRequest,
    ) -> Result<Page<CallRecord>>;
    /// Registers this process as the node `name`, at `now`: a new node row with the smallest
    /// call-id slot that no other node heard from since `live_since` holds (an earlier run of
    /// the same name holds none). Calls this store writes from then on carry the node's id.
    async fn register_node(&self, name: &str, now: i64, live_since: i64) -> Result<NodeRecord>;
    /// This node is alive at `now`. False when its row is gone (another node found it unheard
    /// for a timeout and closed its calls): it must register again.
    async fn node_heartbeat(&self, now: i64) -> Result<bool>;
    /// When a node named `name` last beat, if one is registered.
    async fn node_last_beat(&self, name: &str) -> Result<Option<i64>>;
    /// Records that the account's objects changed at `now`, for the other nodes sharing the
    /// database; returns the account's new version.
    async fn note_change(&self, account: AccountId, now: i64) -> Result<i64>;
    /// The accounts whose objects changed at or after `since`, with their versions.
    async fn changes_since(&self, since: i64) -> Result<Vec<(AccountId, i64)>>;
    /// Reloads what the store keeps in memory of accounts' objects (which accounts hook
    /// `session.created`), after another node changed them.
    async fn refresh_caches(&self) -> Result<()>;
    /// Closes as interrupted at `now`, with their open attempts, the calls in progress whose
    /// node is gone: an earlier run of the node `name`, a node not heard from since
    /// `live_since`, or none recorded. Returns how many, and the targets their open attempts
    /// held. Every node calls it at start and then every few beats, so whichever notices a dead
    /// node first closes its calls.
    async fn interrupt_calls(&self, name: &str, now: i64, live_since: i64) -> Result<Interrupted>;
    /// What routing counted before now, from the calls on record (every node's): answered
    /// attempts per target since each period start, attempts per minute, and the latest
    /// answered call of each caller on plans with a duplicate-caller rule. Read at start.
    async fn routing_history(&self, query: &HistoryQuery) -> Result<History>;

    // Reports.
    /// Calls of the account aggregated as the query says.
    async fn report(&self, account: AccountId, query: &ReportQuery) -> Result<Vec<ReportRow>>;
    /// Rolls up at most `max_days` days of calls: settled days (every call started before
    /// `settled_before`, none still in progress) not rolled yet, then days whose calls changed
    /// after they were rolled. Reports are exact whatever the rollups hold.
    async fn roll_reports(&self, settled_before: i64, max_days: u32) -> Result<RollupStatus>;
    /// Raises each pool's recorded peak for its hour to the sample's, when higher.
    async fn record_pool_usage(&self, samples: &[PoolSample]) -> Result<()>;
    /// The account's pools' hourly peaks in `[from, to)`, by pool then hour; one pool or all.
    async fn pool_usage(
        &self,
        account: AccountId,
        from: i64,
        to: i64,
        pool: Option<i64>,
    ) -> Result<Vec<PoolUsageRow>>;

    // Carrier connections.
    /// Creates a carrier connection with the public `key` of its webhook URLs.
    async fn create_carrier_connection(
        &self,
        account: AccountId,
        c: &CarrierConnection,
        key: &str,
        now: i64,
    ) -> Result<CarrierConnectionRecord>;
    /// One carrier connection of the account.
    async fn carrier_connection(
        &self,
        account: AccountId,
        id: i64,
    ) -> Result<CarrierConnectionRecord>;
    /// A page of the account's carrier connections.
    async fn carrier_connections(
        &self,
        account: AccountId,
        page: PageRequest,
    ) -> Result<Page<CarrierConnectionRecord>>;
    /// The carrier connection whose webhook URLs carry `key` (any account: the webhook's
    /// signature, checked with the connection's secret, is what authenticates it).
    async fn carrier_connection_by_key(&self, key: &str) -> Result<CarrierConnectionRecord>;
    /// Replaces a carrier connection's fields.
    async fn update_carrier_connection(
        &self,
        account: AccountId,
        id: i64,
        c: &CarrierConnection,
        now: i64,
    ) -> Result<CarrierConnectionRecord>;
    /// Deletes a carrier connection.
    async fn delete_carrier_connection(&self, account: AccountId, id: i64) -> Result<()>;

    /// The server secret called `name`: stored as `fresh` the first time it is asked for, the
    /// stored value ever after (so every node and every restart share it).
    async fn server_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>>;

    // Event webhooks
    /// Creates a webhook with the secret its deliveries are signed with.
    async fn create_webhook(
        &self,
        account: AccountId,
        w: &Webhook,
        secret: &Secret,
        now: i64,
    ) -> Result<WebhookRecord>;
    /// One webhook of the account.
    async fn webhook(&self, account: AccountId, id: i64) -> Result<WebhookRecord>;
    /// A page of the account's webhooks.
    async fn webhooks(&self, account: AccountId, page: PageRequest) -> Result<Page<WebhookRecord>>;
    /// Replaces a webhook's fields (its secret stays).
    async fn update_webhook(
        &self,
        account: AccountId,
        id: i64,
        w: &Webhook,
        now: i64,
    ) -> Result<WebhookRecord>;
    /// Deletes a webhook and its deliveries.
    async fn delete_webhook(&self, account: AccountId, id: i64) -> Result<()>;
    /// A page of one webhook's deliveries, newest first.
    async fn deliveries(
        &self,
        account: AccountId,
        webhook: i64,
        page: PageRequest,
    ) -> Result<Page<DeliveryRecord>>;
    /// Claims up to `limit` pending deliveries due at `now` on enabled webhooks, of any account
    /// (the delivery worker's loader): each is not due again before `lease_until`, so a crash
    /// mid-attempt only delays it.
    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>>;
    /// Records the result of an attempt of a claimed delivery.
    async fn finish_delivery(
        &self,
        account: AccountId,
        id: i64,
        result: &DeliveryResult,
        now: i64,
    ) -> Result<()>;
    /// Records a conversion on one call of the account.
    async fn convert_call(&self, account: AccountId, id: i64, c: &Conversion) -> Result<()>;
    /// Records a conversion on the account's latest call from `caller` that started in
    /// `[from, to]`; returns that call's id (`NotFound` when there is none).
    async fn convert_latest_call(
        &self,
        account: AccountId,
        caller: &str,
        from: i64,
        to: i64,
        c: &Conversion,
    ) -> Result<i64>;
    /// The conversions of those of `calls` that have one.
    async fn conversions(
        &self,
        account: AccountId,
        calls: &[i64],
    ) -> Result<Vec<(i64, Conversion)>>;

    // Guard
    /// Records how a domain was checked at `now`: proved (`method`), or not, in which case a
    /// domain failing for longer than `grace_ms` loses its verification. Returns whether it did.
    async fn domain_checked(
        &self,
        account: AccountId,
        id: i64,
        method: Option<&str>,
        now: i64,
        grace_ms: i64,
    ) -> Result<bool>;
    /// Queues a page URL for a scan (again, when the campaign's URL was scanned before).
    async fn queue_scan(
        &self,
        account: Option<AccountId>,
        campaign_id: Option<i64>,
        url: &str,
        source: &str,
        now: i64,
    ) -> Result<i64>;
    /// The (account, campaign) pairs whose tag was used on exactly this URL, of any account
    /// (for abuse reports, which never see the answer).
    async fn scanned_pages(&self, url: &str) -> Result<Vec<(AccountId, i64)>>;
    /// Claims up to `limit` queued scans due at `now`, of any account (the scan worker's
    /// loader); a claimed scan not finished by `lease_until` is due again. Campaigns take
    /// turns (each one's oldest scan first), and a campaign that had `per_campaign_per_day`
    /// scans run or running in the last 24 hours waits, so no campaign's flood of page URLs
    /// holds up the others' scans or takes the scanner for itself.
    async fn claim_scans(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
        per_campaign_per_day: u32,
    ) -> Result<Vec<ClaimedScan>>;
    /// Records a claimed scan's verdict (and the audit step when the page has an account).
    async fn finish_scan(&self, id: i64, verdict: &ScanVerdict, now: i64) -> Result<()>;
    /// Records that a claimed scan failed; it is due again at `retry_at` unless `None`.
    async fn fail_scan(&self, id: i64, error: &str, retry_at: Option<i64>, now: i64) -> Result<()>;
    /// A page of the account's scans.
    async fn scans(&self, account: AccountId, page: PageRequest) -> Result<Page<ScanRecord>>;
    /// Marks a scan of the account not a scam, with the operator's note.
    async fn override_scan(
        &self,
        account: AccountId,
        id: i64,
        note: &str,
        now: i64,
    ) -> Result<ScanRecord>;
    /// Quarantines a campaign because of a scan; flags the calls already on numbers first
    /// shown on that page. `None` when the campaign is already quarantined.
    async fn quarantine_campaign(
        &self,
        account: AccountId,
        campaign_id: i64,
        scan_id: Option<i64>,
        reason: &str,
        now: i64,
    ) -> Result<Option<QuarantineRecord>>;
    /// Quarantines a tracking number (its status becomes `quarantined`). `None` when it
    /// already is.
    async fn quarantine_number(
        &self,
        account: AccountId,
        number_id: i64,
        reason: &str,
        now: i64,
    ) -> Result<Option<QuarantineRecord>>;
    /// Quarantines the pages of a campaign that `pattern` covers (their scan URL is it, or
    /// starts with it when it ends in `*`), at an operator's request with `note`; flags the
    /// calls already on numbers first shown on them. `None` when already quarantined.
    async fn quarantine_page(
        &self,
        account: AccountId,
        campaign_id: i64,
        pattern: &str,
        note: &str,
        now: i64,
    ) -> Result<Option<QuarantineRecord>>;
    /// The account's active page quarantines as (campaign, URL pattern).
    async fn quarantined_pages(&self, account: AccountId) -> Result<Vec<(i64, String)>>;
    /// The account's campaigns under an active quarantine.
    async fn quarantined_campaigns(&self, account: AccountId) -> Result<Vec<i64>>;
    /// A page of the account's quarantines.
    async fn quarantines(
        &self,
        account: AccountId,
        page: PageRequest,
    ) -> Result<Page<QuarantineRecord>>;
    /// One quarantine of the account.
    async fn quarantine(&self, account: AccountId, id: i64) -> Result<QuarantineRecord>;
    /// Lifts an active quarantine (a number becomes active again).
    async fn lift_quarantine(
        &self,
        account: AccountId,
        id: i64,
        note: &str,
        now: i64,
    ) -> Result<QuarantineRecord>;
    /// The tracking number with this E.164, of any account (for abuse reports).
    async fn number_owner(&self, e164: &str) -> Result<Option<(AccountId, i64)>>;
    /// Records an abuse report; returns how many distinct reporters reported its tracking
    /// number since `since` (0 when it names none).
    async fn record_abuse_report(&self, r: &NewAbuseReport, since: i64) -> Result<u32>;
    /// A page of the abuse reports about the account's numbers and pages.
    async fn abuse_reports(
        &self,
        account: AccountId,
        page: PageRequest,
    ) -> Result<Page<AbuseReportRecord>>;
    /// Writes one audit step.
    async fn audit(&self, account: AccountId, entry: &AuditEntry) -> Result<()>;
    /// A page of the account's audit.
    async fn audit_log(&self, account: AccountId, page: PageRequest) -> Result<Page<AuditEntry>>;
    /// Why a call of the account is flagged, if it is.
    async fn call_flag(&self, account: AccountId, call_id: i64) -> Result<Option<String>>;
}

/// Opens the store at a database URL: `postgres://…` (or `postgresql://…`) for PostgreSQL,
/// anything else for SQLite (a file path or `sqlite://…`). Runs pending migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    Ok(if is_postgres(url) {
        std::sync::Arc::new(PgStore::open(url).await?)
    } else {
        std::sync::Arc::new(SqliteStore::open(url).await?)
    })
}

/// Whether a database URL names PostgreSQL.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub mod testing {
    //! Scratch databases for tests. The same tests run on SQLite (by default) and on
    //! PostgreSQL, when [`POSTGRES_ENV`] names a server.

    use std::path::Path;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// The environment variable naming a PostgreSQL server for tests, as a URL with no
    /// database (`postgres://user@127.0.0.1:5432`). Each scratch database is a new database on
    /// it; without it, each is a SQLite file.
    pub const POSTGRES_ENV: &str = "CALLOPT_TEST_POSTGRES";

    /// The URL of the scratch database of `dir`, new and empty on the first call: a SQLite
    /// file in `dir`, or a new database on the server [`POSTGRES_ENV`] names (its URL kept in
    /// `dir`, so that a test reopens the same database as it would reopen the same file).
    pub fn scratch_database(dir: &Path) -> String {
        match std::env::var(POSTGRES_ENV) {
            Ok(server) if !server.is_empty() => {
                let kept = dir.join("postgres-url");
                if let Ok(url) = std::fs::read_to_string(&kept) {
                    return url;
                }
                let url = new_postgres_database(&server);
                std::fs::write(&kept, &url).expect("writing the scratch database's URL");
                url
            }
            _ => dir
                .join("callopt.db")
                .to_str()
                .expect("UTF-8 path")
                .to_string(),
        }
    }

    /// Runs one statement on the database at `url` behind the store's back, and returns its
    /// first column as an integer if it returned a row: for tests that set up what an older
    /// version or another process would have left.
    pub async fn raw(url: &str, sql: &str) -> Option<i64> {
        use sqlx::Connection;
        if super::is_postgres(url) {
            let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query_scalar(sql)
                .fetch_optional(&mut c)
                .await
                .expect(sql)
        } else {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{url}"))
                .await
                .expect("connect");
            sqlx::query_scalar(sql)
                .fetch_optional(&mut c)
                .await
                .expect(sql)
        }
    }

    /// A database name on the test server no other test uses.
    fn new_postgres_database(server: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        format!(
            "{}/callopt_test_{}_{}_{nanos}",
            server.trim_end_matches('/'),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }
}

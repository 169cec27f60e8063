//! The store on a SQL database. This module is compiled once per database, inside
//! [`crate::sqlite`] and [`crate::postgres`], each of which names its `db` types, how it
//! connects and its migrations. The SQL is written once for both: numbered `$N` parameters,
//! `ON CONFLICT` upserts, and casts where PostgreSQL's types are stricter than SQLite's.

mod carriers;
mod guard;
mod reports;
pub(crate) mod routing;
mod webhooks;

use crate::*;
use callopt_domain::{
    AssignmentMode, Attribution, Campaign, CampaignKey, DomainHost, NumberKind, NumberStatus,
    RoutingPlan, SourceRule, Target, TrackingNumber, Trigger, E164,
};
use db::*;
use serde_json::{json, Value};
use sqlx::Row;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use super::db;

/// The implementation of [`Store`] on this module's database.
#[derive(Clone)]
pub struct SqlStore {
    /// Connections to the database.
    pool: DbPool,
    /// One connection of its own for visitor-session batches: a connection's page cache is
    /// dropped whenever another connection has written, so the busiest writer keeps one.
    sessions: DbPool,
    /// One connection of its own for call records, for the same reason.
    calls: DbPool,
    /// Where call records without webhook events are written, if not through `calls`.
    direct_calls: db::CallsConnection,
    /// What a session batch writes beside its rows, known in memory.
    side: Arc<SessionSideWrites>,
    /// Accounts with an enabled webhook for a call event, reloaded with `side.hooked`: the
    /// call writer queues those events only for their calls.
    call_hooks: Arc<RwLock<HashSet<i64>>>,
    /// This process's node id once registered ([`Store::register_node`]), 0 before: the node
    /// its call records carry.
    node: Arc<std::sync::atomic::AtomicI64>,
}

/// What the session batch writes beside the sessions themselves: the `session.created` event for
/// accounts with a webhook for it, and a scan of each page URL a campaign was not seen on before.
/// Both are known in memory, so that the DNI path runs no per-row work (a trigger would) when
/// there is nothing to write; the database's unique keys stay the judge of what is new.
#[derive(Default)]
struct SessionSideWrites {
    /// Accounts with an enabled `session.created` webhook, reloaded on every webhook change.
    hooked: RwLock<HashSet<i64>>,
    /// (campaign, page URL) pairs already queued for a scan, up to [`QUEUED_PAGES_KEPT`];
    /// forgotten all at once past it (a forgotten pair costs one insert that does nothing).
    queued_pages: Mutex<QueuedPages>,
}

/// Page URLs already queued for a scan, by campaign.
#[derive(Default)]
struct QueuedPages {
    by_campaign: HashMap<i64, HashSet<String>>,
    len: usize,
}

impl QueuedPages {
    fn contains(&self, campaign: i64, url: &str) -> bool {
        self.by_campaign
            .get(&campaign)
            .is_some_and(|urls| urls.contains(url))
    }
}

/// A batch's side writes: (account, campaign, URL, first seen) to scan, sessions to announce.
#[derive(Default)]
struct SideWrites<'a> {
    pages: Vec<(i64, i64, String, i64)>,
    hooked: Vec<&'a str>,
}

/// How many (campaign, page URL) pairs the session batch remembers as already queued.
const QUEUED_PAGES_KEPT: usize = 100_000;

/// Kinds of work that claimers take one at a time ([`db::begin_claim`]), each its own lock.
#[derive(Clone, Copy)]
#[repr(i64)]
enum Claim {
    Deliveries = 0x6361_6c6c_6f70_7401,
    Scans = 0x6361_6c6c_6f70_7402,
    Rollups = 0x6361_6c6c_6f70_7403,
    Nodes = 0x6361_6c6c_6f70_7404,
}

/// The migrations of this module's database, embedded in the binary, in order.
fn migrator() -> sqlx::migrate::Migrator {
    use sqlx::migrate::{Migration, MigrationType};
    use std::borrow::Cow;
    let migrations = db::MIGRATIONS
        .iter()
        .map(|(version, name, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*name),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    sqlx::migrate::Migrator {
        migrations: Cow::Owned(migrations),
        ..sqlx::migrate::Migrator::DEFAULT
    }
}

impl SqlStore {
    /// Opens the database at `url` and runs pending migrations (see [`db::connect`]).
    pub async fn open(url: &str) -> Result<Self> {
        let db::Connections {
            pool,
            sessions,
            calls,
            direct_calls,
        } = db::connect(url).await?;
        migrator()
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unexpected(e.into()))?;
        let side = Arc::new(SessionSideWrites::default());
        *side.hooked.write().expect("lock") = webhooks::session_hook_accounts(&pool).await?;
        let call_hooks = Arc::new(RwLock::new(webhooks::call_hook_accounts(&pool).await?));
        Ok(Self {
            pool,
            sessions,
            calls,
            direct_calls,
            side,
            call_hooks,
            node: Arc::default(),
        })
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unexpected(e.into()))
    }

    /// The node call records carry: this process's, once registered.
    fn node_id(&self) -> Option<i64> {
        let node = self.node.load(std::sync::atomic::Ordering::Relaxed);
        (node != 0).then_some(node)
    }

    /// The calls among `calls` whose account has a webhook for a call event.
    fn hooked_calls(&self, calls: &[CallRecord]) -> HashSet<i64> {
        let hooks = self.call_hooks.read().expect("lock");
        if hooks.is_empty() {
            return HashSet::new();
        }
        calls
            .iter()
            .filter(|c| hooks.contains(&c.account.0))
            .map(|c| c.id)
            .collect()
    }

    async fn check_plan(&self, account: AccountId, plan: Option<i64>) -> Result<()> {
        if let Some(id) = plan {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM routing_plans WHERE id = $1 AND account_id = $2",
            )
            .bind(id)
            .bind(account.0)
            .fetch_optional(&self.pool)
            .await?;
            if found.is_none() {
                return Err(StoreError::BadReference("routing_plan_id".into()));
            }
        }
        Ok(())
    }

    async fn check_pool(&self, account: AccountId, pool: Option<i64>) -> Result<()> {
        if let Some(id) = pool {
            let found: Option<i64> =
                sqlx::query_scalar("SELECT id FROM pools WHERE id = $1 AND account_id = $2")
                    .bind(id)
                    .bind(account.0)
                    .fetch_optional(&self.pool)
                    .await?;
            if found.is_none() {
                return Err(StoreError::BadReference("pool_id".into()));
            }
        }
        Ok(())
    }
}

fn page<T>(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> Page<T> {
    let next_after = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(&id)
    } else {
        None
    };
    Page { items, next_after }
}

fn conflict(e: sqlx::Error, field: &str) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict(field.into()),
        _ => StoreError::Unexpected(e),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unexpected(sqlx::Error::Decode(
        format!("stored {what} is invalid").into(),
    ))
}

const POOL_COLUMNS: &str = "p.id, p.account_id, p.name, p.created_at, \
     (SELECT COUNT(*) FROM tracking_numbers n WHERE n.pool_id = p.id) AS size";

fn pool_row(r: DbRow) -> PoolRecord {
    PoolRecord {
        id: r.get("id"),
        account: AccountId(r.get("account_id")),
        name: r.get("name"),
        size: r.get("size"),
        created_at: r.get("created_at"),
    }
}

const NUMBER_COLUMNS: &str =
    "id, account_id, pool_id, e164, country, region, kind, languages, status, created_at";

fn number_row(r: DbRow) -> Result<NumberRecord> {
    let e164: String = r.get("e164");
    let languages: String = r.get("languages");
    Ok(NumberRecord {
        id: r.get("id"),
        account: AccountId(r.get("account_id")),
        pool_id: r.get("pool_id"),
        number: TrackingNumber {
            e164: E164::parse("e164", &e164, None).map_err(|_| corrupt("number"))?,
            country: r.get("country"),
            region: r.get("region"),
            kind: NumberKind::parse("kind", r.get("kind")).map_err(|_| corrupt("kind"))?,
            languages: split_languages(&languages),
            status: NumberStatus::parse("status", r.get("status"))
                .map_err(|_| corrupt("status"))?,
        },
        created_at: r.get("created_at"),
    })
}

fn split_languages(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

const CAMPAIGN_COLUMNS: &str = "id, account_id, key, name, default_number, swap_numbers, \
     trigger_parameter, assignment, idle_timeout_secs, domains, source_rules, pool_id, \
     routing_plan_id, created_at, updated_at";

fn campaign_json(c: &Campaign) -> (String, String, String) {
    let swap: Vec<&str> = c.swap_numbers.iter().map(E164::as_str).collect();
    let domains: Vec<&str> = c.domains.iter().map(DomainHost::as_str).collect();
    let rules: Vec<Value> = c
        .source_rules
        .iter()
        .map(|r| {
            let (kind, value) = r.kind_and_value();
            json!({"match": kind, "value": value, "number": r.number.as_str()})
        })
        .collect();
    (
        json!(swap).to_string(),
        json!(domains).to_string(),
        json!(rules).to_string(),
    )
}

fn campaign_row(r: DbRow) -> Result<CampaignRecord> {
    let strings = |col: &str| -> Result<Vec<String>> {
        serde_json::from_str(r.get::<&str, _>(col)).map_err(|_| corrupt(col))
    };
    let swap_numbers = strings("swap_numbers")?
        .iter()
        .map(|s| E164::parse("swap_numbers", s, None).map_err(|_| corrupt("swap number")))
        .collect::<Result<_>>()?;
    let domains = strings("domains")?
        .iter()
        .map(|s| DomainHost::parse("domains", s).map_err(|_| corrupt("domain")))
        .collect::<Result<_>>()?;
    let rules: Vec<Value> =
        serde_json::from_str(r.get::<&str, _>("source_rules")).map_err(|_| corrupt("rules"))?;
    let source_rules = rules
        .iter()
        .map(|v| {
            SourceRule::parse(
                "source_rules",
                v["match"].as_str().unwrap_or(""),
                v["value"].as_str(),
                v["number"].as_str().unwrap_or(""),
            )
            .map_err(|_| corrupt("source rule"))
        })
        .collect::<Result<_>>()?;
    let default: String = r.get("default_number");
    Ok(CampaignRecord {
        account: AccountId(r.get("account_id")),
        campaign: Campaign {
            id: r.get("id"),
            key: CampaignKey(r.get("key")),
            name: r.get("name"),
            default_number: E164::parse("default_number", &default, None)
                .map_err(|_| corrupt("default number"))?,
            swap_numbers,
            trigger: Trigger::parse("trigger", r.get("trigger_parameter"))
                .map_err(|_| corrupt("trigger"))?,
            assignment: AssignmentMode::parse("assignment", r.get("assignment"))
                .map_err(|_| corrupt("assignment"))?,
            idle_timeout_secs: r.get::<i64, _>("idle_timeout_secs") as u32,
            domains,
            source_rules,
            pool_id: r.get("pool_id"),
            routing_plan_id: r.get("routing_plan_id"),
        },
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    })
}

fn domain_row(r: DbRow) -> DomainRecord {
    DomainRecord {
        id: r.get("id"),
        account: AccountId(r.get("account_id")),
        host: r.get("host"),
        token: r.get("token"),
        verified_at: r.get("verified_at"),
        created_at: r.get("created_at"),
    }
}

/// Multi-row statements of at most this many rows stay prepared between batches.
const CACHED_ROWS: usize = 8;

/// Rows per multi-row statement: 23 bound columns each stays under SQLite's 32,766 variables.
const SESSION_ROWS_PER_STATEMENT: usize = 1000;

const SESSION_COLUMNS: &str = "id, account_id, campaign_id, visitor, number_id, number_e164, \
     attributed, landing_url, referrer, utm_source, utm_medium, utm_campaign, utm_term, \
     utm_content, gclid, fbclid, msclkid, country, language, user_agent, first_seen, last_seen, \
     lease_expires_at";

fn session_row(r: DbRow) -> SessionRecord {
    SessionRecord {
        id: r.get("id"),
        account: AccountId(r.get("account_id")),
        campaign_id: r.get("campaign_id"),
        visitor: r.get("visitor"),
        number_id: r.get("number_id"),
        number_e164: r.get("number_e164"),
        attributed: r.get("attributed"),
        attribution: Attribution {
            landing_url: r.get("landing_url"),
            referrer: r.get("referrer"),
            utm_source: r.get("utm_source"),
            utm_medium: r.get("utm_medium"),
            utm_campaign: r.get("utm_campaign"),
            utm_term: r.get("utm_term"),
            utm_content: r.get("utm_content"),
            gclid: r.get("gclid"),
            fbclid: r.get("fbclid"),
            msclkid: r.get("msclkid"),
            query: Vec::new(),
        },
        country: r.get("country"),
        language: r.get("language"),
        user_agent: r.get("user_agent"),
        first_seen: r.get("first_seen"),
        last_seen: r.get("last_seen"),
        lease_expires_at: r.get("lease_expires_at"),
    }
}

fn not_found_if_zero(rows: u64) -> Result<()> {
    if rows == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

impl SqlStore {
    async fn write_session_batch(&self, batch: &[SessionWrite]) -> Result<()> {
        // Two statements per batch whatever its size (each statement is a round trip to the
        // connection's thread): one multi-row INSERT, one UPDATE … FROM (VALUES …).
        let mut inserts = Vec::new();
        let mut renewals: HashMap<&str, (i64, i64)> = HashMap::new();
        for w in batch {
            match w {
                SessionWrite::Insert(s) => inserts.push(&**s),
                SessionWrite::Renew {
                    id,
                    last_seen,
                    lease_expires_at,
                } => {
                    // The last renewal of a session in the batch wins.
                    renewals.insert(id, (*last_seen, *lease_expires_at));
                }
            }
        }
        let renewals: Vec<(&str, (i64, i64))> = renewals.into_iter().collect();
        let mut side = self.side_writes(&inserts);
        let statements = inserts.len().div_ceil(SESSION_ROWS_PER_STATEMENT)
            + renewals.len().div_ceil(SESSION_ROWS_PER_STATEMENT)
            + usize::from(!side.pages.is_empty())
            + side.hooked.len().div_ceil(SESSION_ROWS_PER_STATEMENT);
        // One statement is atomic on its own: no BEGIN and COMMIT round trips for it.
        let mut conn = self.sessions.acquire().await?;
        if statements > 1 {
            sqlx::query("BEGIN").execute(&mut *conn).await?;
        }
        let mut written = self
            .write_session_rows(&mut conn, &inserts, &renewals)
            .await;
        if written.is_ok() {
            written = Self::write_side(&mut conn, &mut side).await;
        }
        if statements > 1 {
            let end = if written.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            sqlx::query(end).execute(&mut *conn).await?;
        }
        if written.is_ok() && !side.pages.is_empty() {
            let mut queued = self.side.queued_pages.lock().expect("lock");
            if queued.len + side.pages.len() > QUEUED_PAGES_KEPT {
                *queued = QueuedPages::default();
            }
            for (_, campaign, url, _) in &side.pages {
                if queued
                    .by_campaign
                    .entry(*campaign)
                    .or_default()
                    .insert(url.to_string())
                {
                    queued.len += 1;
                }
            }
        }
        written
    }

    /// The side writes of a batch's new sessions: the page URLs to queue for a scan (once per
    /// campaign and URL in the batch) and the sessions whose account hooks `session.created`.
    fn side_writes<'a>(&self, inserts: &[&'a SessionRecord]) -> SideWrites<'a> {
        let hooked = self.side.hooked.read().expect("lock");
        let queued = self.side.queued_pages.lock().expect("lock");
        let mut side = SideWrites::default();
        for s in inserts {
            let url = callopt_domain::scan_url(&s.attribution.landing_url);
            if !queued.contains(s.campaign_id, &url)
                && !side
                    .pages
                    .iter()
                    .any(|p| p.1 == s.campaign_id && p.2 == url)
            {
                side.pages
                    .push((s.account.0, s.campaign_id, url, s.first_seen));
            }
            if hooked.contains(&s.account.0) {
                side.hooked.push(s.id.as_str());
            }
        }
        side
    }

    /// Writes the side rows; pages of campaigns whose scan backlog is full are left out (and so
    /// not remembered as queued: a later visit queues them once the backlog drains).
    async fn write_side(conn: &mut DbConnection, side: &mut SideWrites<'_>) -> Result<()> {
        if !side.pages.is_empty() {
            let mut campaigns: Vec<i64> = side.pages.iter().map(|p| p.1).collect();
            campaigns.sort_unstable();
            campaigns.dedup();
            let full = guard::full_scan_backlogs(conn, &campaigns).await?;
            side.pages.retain(|p| !full.contains(&p.1));
        }
        for chunk in side.pages.chunks(SESSION_ROWS_PER_STATEMENT) {
            guard::queue_page_scans(conn, chunk).await?;
        }
        for chunk in side.hooked.chunks(SESSION_ROWS_PER_STATEMENT) {
            webhooks::queue_session_created(conn, chunk).await?;
        }
        Ok(())
    }

    /// Reloads which accounts hook `session.created` and which a call event, after a webhook
    /// changed.
    async fn reload_hooks(&self) -> Result<()> {
        let hooked = webhooks::session_hook_accounts(&self.pool).await?;
        *self.side.hooked.write().expect("lock") = hooked;
        let hooked = webhooks::call_hook_accounts(&self.pool).await?;
        *self.call_hooks.write().expect("lock") = hooked;
        Ok(())
    }

    async fn write_session_rows(
        &self,
        conn: &mut DbConnection,
        inserts: &[&SessionRecord],
        renewals: &[(&str, (i64, i64))],
    ) -> Result<()> {
        for chunk in inserts.chunks(SESSION_ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(format!(
                "INSERT INTO visitor_sessions ({SESSION_COLUMNS}) "
            ));
            q.push_values(chunk, |mut b, s| {
                let a = &s.attribution;
                b.push_bind(&s.id)
                    .push_bind(s.account.0)
                    .push_bind(s.campaign_id)
                    .push_bind(&s.visitor)
                    .push_bind(s.number_id)
                    .push_bind(&s.number_e164)
                    .push_bind(s.attributed)
                    .push_bind(&a.landing_url)
                    .push_bind(&a.referrer)
                    .push_bind(&a.utm_source)
                    .push_bind(&a.utm_medium)
                    .push_bind(&a.utm_campaign)
                    .push_bind(&a.utm_term)
                    .push_bind(&a.utm_content)
                    .push_bind(&a.gclid)
                    .push_bind(&a.fbclid)
                    .push_bind(&a.msclkid)
                    .push_bind(&s.country)
                    .push_bind(&s.language)
                    .push_bind(&s.user_agent)
                    .push_bind(s.first_seen)
                    .push_bind(s.last_seen)
                    .push_bind(s.lease_expires_at);
            });
            // Each batch size makes another statement text: keep only the small, frequent ones
            // in the statement cache.
            q.build()
                .persistent(chunk.len() <= CACHED_ROWS)
                .execute(&mut *conn)
                .await?;
        }
        for chunk in renewals.chunks(SESSION_ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "UPDATE visitor_sessions SET last_seen = v.column2, lease_expires_at = v.column3 \
                 FROM (",
            );
            q.push_values(chunk, |mut b, (id, (seen, expires))| {
                b.push_bind(*id).push_bind(*seen).push_bind(*expires);
            });
            q.push(") AS v WHERE visitor_sessions.id = v.column1");
            q.build()
                .persistent(chunk.len() <= CACHED_ROWS)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn create_account(&self, name: &str, key: &ApiKeyHash, now: i64) -> Result<AccountId> {
        let mut tx = begin_write(&self.pool).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO accounts (name, created_at) VALUES ($1, $2) RETURNING id",
        )
        .bind(name)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO api_keys (account_id, key_hash, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(&key.0)
        .bind("initial")
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| conflict(e, "api_key"))?;
        tx.commit().await?;
        Ok(AccountId(id))
    }

    async fn account_by_key(&self, key: &ApiKeyHash) -> Result<Option<AccountId>> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT account_id FROM api_keys WHERE key_hash = $1")
                .bind(&key.0)
                .fetch_optional(&self.pool)
                .await?;
        Ok(id.map(AccountId))
    }

    async fn create_pool(&self, account: AccountId, name: &str, now: i64) -> Result<PoolRecord> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO pools (account_id, name, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(account.0)
        .bind(name)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        self.pool(account, id).await
    }

    async fn pool(&self, account: AccountId, id: i64) -> Result<PoolRecord> {
        let sql =
            format!("SELECT {POOL_COLUMNS} FROM pools p WHERE p.id = $1 AND p.account_id = $2");
        sqlx::query(&sql)
            .bind(id)
            .bind(account.0)
            .fetch_optional(&self.pool)
            .await?
            .map(pool_row)
            .ok_or(StoreError::NotFound)
    }

    async fn pools(&self, account: AccountId, p: PageRequest) -> Result<Page<PoolRecord>> {
        let sql = format!(
            "SELECT {POOL_COLUMNS} FROM pools p WHERE p.account_id = $1 AND p.id > $2 \
             ORDER BY p.id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(account.0)
            .bind(p.after.unwrap_or(0))
            .bind(i64::from(p.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        Ok(page(
            rows.into_iter().map(pool_row).collect(),
            p.limit,
            |r| r.id,
        ))
    }

    async fn rename_pool(&self, account: AccountId, id: i64, name: &str) -> Result<PoolRecord> {
        let done = sqlx::query("UPDATE pools SET name = $1 WHERE id = $2 AND account_id = $3")
            .bind(name)
            .bind(id)
            .bind(account.0)
            .execute(&self.pool)
            .await?;
        not_found_if_zero(done.rows_affected())?;
        self.pool(account, id).await
    }

    async fn delete_pool(&self, account: AccountId, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM pools WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account.0)
            .execute(&self.pool)
            .await?;
        not_found_if_zero(done.rows_affected())
    }

    async fn insert_numbers(
        &self,
        account: AccountId,
        numbers: &[NewNumber],
        now: i64,
    ) -> Result<Vec<Result<NumberRecord>>> {
        let mut pools: Vec<Option<i64>> = numbers.iter().map(|n| n.pool_id).collect();
        pools.sort();
        pools.dedup();
        for p in pools {
            self.check_pool(account, p).await?;
        }
        let mut tx = begin_write(&self.pool).await?;
        let mut out = Vec::with_capacity(numbers.len());
        let sql = format!(
            "INSERT INTO tracking_numbers (account_id, pool_id, e164, country, region, kind, \
             languages, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (e164) DO NOTHING RETURNING {NUMBER_COLUMNS}"
        );
        for n in numbers {
            let t = &n.number;
            let row = sqlx::query(&sql)
                .bind(account.0)
                .bind(n.pool_id)
                .bind(t.e164.as_str())
                .bind(&t.country)
                .bind(&t.region)
                .bind(t.kind.as_str())
                .bind(t.languages.join(","))
                .bind(t.status.as_str())
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            out.push(match row {
                Some(r) => number_row(r),
                None => Err(StoreError::Conflict("e164".into())),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn number(&self, account: AccountId, id: i64) -> Result<NumberRecord> {
        let sql = format!(
            "SELECT {NUMBER_COLUMNS} FROM tracking_numbers WHERE id = $1 AND account_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(account.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        number_row(row)
    }

    async fn numbers(
        &self,
        account: AccountId,
        pool: Option<i64>,
        p: PageRequest,
    ) -> Result<Page<NumberRecord>> {
        let sql = format!(
            "SELECT {NUMBER_COLUMNS} FROM tracking_numbers WHERE account_id = $1 AND id > $2 \
             AND ($3 IS NULL OR pool_id = $4) ORDER BY id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(account.0)
            .bind(p.after.unwrap_or(0))
            .bind(pool)
            .bind(pool)
            .bind(i64::from(p.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.into_iter().map(number_row).collect::<Result<_>>()?;
        Ok(page(items, p.limit, |r| r.id))
    }

    async fn pool_numbers(&self, pool: i64) -> Result<Vec<NumberRecord>> {
        let sql =
            format!("SELECT {NUMBER_COLUMNS} FROM tracking_numbers WHERE pool_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(pool).fetch_all(&self.pool).await?;
        rows.into_iter().map(number_row).collect()
    }

    async fn update_number(
        &self,
        account: AccountId,
        id: i64,
        change: &NumberChange,
    ) -> Result<NumberRecord> {
        let current = self.number(account, id).await?;
        if let Some(pool) = change.pool_id {
            self.check_pool(account, pool).await?;
        }
        let pool_id = change.pool_id.unwrap_or(current.pool_id);
        let languages = change
            .languages
            .clone()
            .unwrap_or(current.number.languages)
            .join(",");
        let status = change.status.unwrap_or(current.number.status);
        let kind = change.kind.unwrap_or(current.number.kind);
        sqlx::query(
            "UPDATE tracking_numbers SET pool_id = $1, languages = $2, status = $3, kind = $4 \
             WHERE id = $5 AND account_id = $6",
        )
        .bind(pool_id)
        .bind(languages)
        .bind(status.as_str())
        .bind(kind.as_str())
        .bind(id)
        .bind(account.0)
        .execute(&self.pool)
        .await?;
        self.number(account, id).await
    }

    async fn delete_number(&self, account: AccountId, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM tracking_numbers WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account.0)
            .execute(&self.pool)
            .await?;
        not_found_if_zero(done.rows_affected())
    }

    async fn create_campaign(
        &self,
        account: AccountId,
        c: &CampaignFields,
        key: &str,
        now: i64,
    ) -> Result<CampaignRecord> {
        self.check_pool(account, c.pool_id).await?;
        self.check_plan(account, c.routing_plan_id).await?;
        let (swap, domains, rules) = campaign_json(c);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO campaigns (account_id, key, name, default_number, swap_numbers, \
             trigger_parameter, assignment, idle_timeout_secs, domains, source_rules, pool_id, \
             routing_plan_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(account.0)
        .bind(key)
        .bind(&c.name)
        .bind(c.default_number.as_str())
        .bind(swap)
        .bind(c.trigger.parameter())
        .bind(c.assignment.as_str())
        .bind(i64::from(c.idle_timeout_secs))
        .bind(domains)
        .bind(rules)
        .bind(c.pool_id)
        .bind(c.routing_plan_id)
        .bind(now)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "key"))?;
        self.campaign(account, id).await
    }

    async fn campaign(&self, account: AccountId, id: i64) -> Result<CampaignRecord> {
        let sql =
            format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1 AND account_id = $2");
        let row = sqlx::query(&sql)
            .bind(id)
            .bind(account.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        campaign_row(row)
    }

    async fn campaigns(&self, account: AccountId, p: PageRequest) -> Result<Page<CampaignRecord>> {
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE account_id = $1 AND id > $2 \
             ORDER BY id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(account.0)
            .bind(p.after.unwrap_or(0))
            .bind(i64::from(p.limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.into_iter().map(campaign_row).collect::<Result<_>>()?;
        Ok(page(items, p.limit, |r| r.campaign.id))
    }

    async fn all_campaigns(&self) -> Result<Vec<CampaignRecord>> {
        let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(campaign_row).collect()
    }

    async fn update_campaign(
        &self,
        account: AccountId,
        id: i64,
        c: &CampaignFields,
        now: i64,
    ) -> Result<CampaignRecord> {
        self.check_pool(account, c.pool_id).await?;
        self.check_plan(account, c.routing_plan_id).await?;
        let (swap, domains, rules) = campaign_json(c);
        let done = sqlx::query(
            "UPDATE campaigns SET name = $1, default_number = $2, swap_numbers = $3, \
             trigger_parameter = $4, assignment = $5, idle_timeout_secs = $6, domains = $7, \
             source_rules = $8, pool_id = $9, routing_plan_id = $10, updated_at = $11 \
             WHERE id = $12 AND account_id = $13",
        )
        .bind(&c.name)
        .bind(c.default_number.as_str())
        .bind(swap)
        .bind(c.trigger.parameter())
        .bind(c.assignment.as_str())
        .bind(i64::from(c.idle_timeout_secs))
        .bind(domains)
        .bind(rules)
        .bind(c.pool_id)
        .bind(c.routing_plan_id)
        .bind(now)
        .bind(id)
        .bind(account.0)
        .execute(&self.pool)
        .await?;
        not_found_if_zero(done.rows_affected())?;
        self.campaign(account, id).await
    }

    async fn delete_campaign(&self, account: AccountId, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM campaigns WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account.0)
            .execute(&self.pool)
            .await?;
        not_found_if_zero(done.rows_affected())
    }

    async fn create_domain(
        &self,
        account: AccountId,
        host: &str,
        token: &str,
        now: i64,
    ) -> Result<DomainRecord> {
        let row = sqlx::query(
            "INSERT INTO domains (account_id, host, token, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING id, account_id, host, token, verified_at, created_at",
        )
        .bind(account.0)
        .bind(host)
        .bind(token)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "host"))?;
        Ok(domain_row(row))
    }

    async fn domain(&self, account: AccountId, id: i64) -> Result<DomainRecord> {
        sqlx::query(
            "SELECT id, account_id, host, token, verified_at, created_at FROM domains \
             WHERE id = $1 AND account_id = $2",
        )
        .bind(id)
        .bind(account.0)
        .fetch_optional(&self.pool)
        .await?
        .map(domain_row)
        .ok_or(StoreError::NotFound)
    }

    async fn domains(&self, account: AccountId, p: PageRequest) -> Result<Page<DomainRecord>> {
        let rows = sqlx::query(
            "SELECT id, account_id, host, token, verified_at, created_at FROM domains \
             WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(account.0)
        .bind(p.after.unwrap_or(0))
        .bind(i64::from(p.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(page(
            rows.into_iter().map(domain_row).collect(),
            p.limit,
            |r| r.id,
        ))
    }

    async fn all_verified_domains(&self) -> Result<Vec<DomainRecord>> {
        let rows = sqlx::query(
            "SELECT id, account_id, host, token, verified_at, created_at FROM domains \
             WHERE verified_at IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(domain_row).collect())
    }

    async fn mark_domain_verified(
        &self,
        account: AccountId,
        id: i64,
        now: i64,
    ) -> Result<DomainRecord> {
        let done =
            sqlx::query("UPDATE domains SET verified_at = $1 WHERE id = $2 AND account_id = $3")
                .bind(now)
                .bind(id)
                .bind(account.0)
                .execute(&self.pool)
                .await?;
        not_found_if_zero(done.rows_affected())?;
        self.domain(account, id).await
    }

    async fn delete_domain(&self, account: AccountId, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM domains WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account.0)
            .execute(&self.pool)
            .await?;
        not_found_if_zero(done.rows_affected())
    }

    async fn write_sessions(&self, batch: &[SessionWrite]) -> Result<()> {
        self.write_session_batch(batch).await
    }

    async fn live_sessions(&self, now: i64) -> Result<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM visitor_sessions WHERE lease_expires_at > $1 \
             AND number_id IS NOT NULL ORDER BY first_seen"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(session_row).collect())
    }

    async fn session(&self, account: AccountId, id: &str) -> Result<SessionRecord> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM visitor_sessions WHERE id = $1 AND account_id = $2"
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(account.0)
            .fetch_optional(&self.pool)
            .await?
            .map(session_row)
            .ok_or(StoreError::NotFound)
    }

    async fn sessions(&self, account: AccountId, ids: &[String]) -> Result<Vec<SessionRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut q = sqlx::QueryBuilder::new(format!(
                "SELECT {SESSION_COLUMNS} FROM visitor_sessions WHERE account_id = "
            ));
            q.push_bind(account.0).push(" AND id IN (");
            let mut list = q.separated(", ");
            for id in chunk {
                list.push_bind(id);
            }
            q.push(")");
            out.extend(
                q.build()
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(session_row),
            );
        }
        Ok(out)
    }

    async fn record_refusal(&self, r: &Refusal) -> Result<()> {
        sqlx::query(
            "INSERT INTO dni_refusals (account_id, campaign_id, origin, page_url, reason, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.account.map(|a| a.0))
        .bind(r.campaign_id)
        .bind(&r.origin)
        .bind(&r.page_url)
        .bind(&r.reason)
        .bind(r.at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn refusals(&self, account: AccountId, p: PageRequest) -> Result<Page<RefusalRecord>> {
        let rows = sqlx::query(
            "SELECT id, account_id, campaign_id, origin, page_url, reason, created_at \
             FROM dni_refusals WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        )
        .bind(account.0)
        .bind(p.after.unwrap_or(0))
        .bind(i64::from(p.limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(|r| RefusalRecord {
                id: r.get("id"),
                refusal: Refusal {
                    account: r.get::<Option<i64>, _>("account_id").map(AccountId),
                    campaign_id: r.get("campaign_id"),
                    origin: r.get("origin"),
                    page_url: r.get("page_url"),
                    reason: r.get("reason"),
                    at: r.get("created_at"),
                },
            })
            .collect();
        Ok(page(items, p.limit, |r| r.id))
    }

    async fn create_target(
        &self,
        account: AccountId,
        t: &Target,
        now: i64,
    ) -> Result<TargetRecord> {
        let id = routing::create_target(&self.pool, account, t, now).await?;
        self.target(account, id).await
    }

    async fn target(&self, account: AccountId, id: i64) -> Result<TargetRecord> {
        routing::one(
            &self.pool,
            routing::TARGETS,
            account,
            id,
            routing::target_row,
        )
        .await
    }

    async fn targets(&self, account: AccountId, p: PageRequest) -> Result<Page<TargetRecord>> {
        let items = routing::page_of(
            &self.pool,
            routing::TARGETS,
            account,
            p,
            routing::target_row,
        )
        .await?;
        Ok(page(items, p.limit, |t| t.target.id))
    }

    async fn all_targets(&self) -> Result<Vec<TargetRecord>> {
        routing::all(&self.pool, routing::TARGETS, routing::target_row).await
    }

    async fn update_target(
        &self,
        account: AccountId,
        id: i64,
        t: &Target,
        now: i64,
    ) -> Result<TargetRecord> {
        routing::update_target(&self.pool, account, id, t, now).await?;
        self.target(account, id).await
    }

    async fn delete_target(&self, account: AccountId, id: i64) -> Result<()> {
        routing::delete_target(&self.pool, account, id).await
    }

    async fn create_plan(
        &self,
        account: AccountId,
        p: &RoutingPlan,
        now: i64,
    ) -> Result<PlanRecord> {
        let id = routing::create_plan(&self.pool, account, p, now).await?;
        self.plan(account, id).await
    }

    async fn plan(&self, account: AccountId, id: i64) -> Result<PlanRecord> {
        routing::one(&self.pool, routing::PLANS, account, id, routing::plan_row).await
    }

    async fn plans(&self, account: AccountId, p: PageRequest) -> Result<Page<PlanRecord>> {
        let items =
            routing::page_of(&self.pool, routing::PLANS, account, p, routing::plan_row).await?;
        Ok(page(items, p.limit, |r| r.plan.id))
    }

    async fn all_plans(&self) -> Result<Vec<PlanRecord>> {
        routing::all(&self.pool, routing::PLANS, routing::plan_row).await
    }

    async fn update_plan(
        &self,
        account: AccountId,
        id: i64,
        p: &RoutingPlan,
        now: i64,
    ) -> Result<PlanRecord> {
        routing::update_plan(&self.pool, account, id, p, now).await?;
        self.plan(account, id).await
    }

    async fn delete_plan(&self, account: AccountId, id: i64) -> Result<()> {
        let done = sqlx::query("DELETE FROM routing_plans WHERE id = $1 AND account_id = $2")
            .bind(id)
            .bind(account.0)
            .execute(&self.pool)
            .await?;
        not_found_if_zero(done.rows_affected())
    }

    async fn write_calls(&self, calls: &[CallRecord]) -> Result<()> {
        let hooked = self.hooked_calls(calls);
        if hooked.is_empty() && self.direct_calls.enabled() {
            return self.write_calls_owned(calls.into()).await;
        }
        routing::write_calls(&self.calls, calls, self.node_id(), &hooked).await
    }

    async fn write_calls_owned(&self, calls: Arc<[CallRecord]>) -> Result<()> {
        let hooked = self.hooked_calls(&calls);
        let node = self.node_id();
        if hooked.is_empty() {
            if let Some(done) = self.direct_calls.write(calls.clone(), node).await {
                return done;
            }
        }
        routing::write_calls(&self.calls, &calls, node, &hooked).await
    }

    async fn call(&self, account: AccountId, id: i64) -> Result<CallRecord> {
        let page = routing::calls(
            &self.pool,
            account,
            &CallFilter::default(),
            Some(id),
            PageRequest {
                after: None,
                limit: 1,
            },
        )
        .await?;
        page.items.into_iter().next().ok_or(StoreError::NotFound)
    }

    async fn calls(
        &self,
        account: AccountId,
        filter: &CallFilter,
        p: PageRequest,
    ) -> Result<Page<CallRecord>> {
        routing::calls(&self.pool, account, filter, None, p).await
    }

    async fn register_node(&self, name: &str, now: i64, live_since: i64) -> Result<NodeRecord> {
        let node = routing::register_node(&self.pool, name, now, live_since).await?;
        self.node
            .store(node.id, std::sync::atomic::Ordering::Relaxed);
        Ok(node)
    }

    async fn node_heartbeat(&self, now: i64) -> Result<bool> {
        let node = self.node.load(std::sync::atomic::Ordering::Relaxed);
        let done = sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = $2")
            .bind(now)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn node_last_beat(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT MAX(heartbeat_at) FROM nodes WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn note_change(&self, account: AccountId, now: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO account_changes (account_id, version, changed_at) VALUES ($1, 1, $2) \
             ON CONFLICT (account_id) DO UPDATE SET version = account_changes.version + 1, \
             changed_at = excluded.changed_at RETURNING version",
        )
        .bind(account.0)
        .bind(now)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn changes_since(&self, since: i64) -> Result<Vec<(AccountId, i64)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT account_id, version FROM account_changes WHERE changed_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(a, v)| (AccountId(a), v)).collect())
    }

    async fn refresh_caches(&self) -> Result<()> {
        self.reload_hooks().await
    }

    async fn interrupt_calls(
        &self,
        name: &str,
        now: i64,
        live_since: i64,
    ) -> Result<crate::Interrupted> {
        let node = self.node.load(std::sync::atomic::Ordering::Relaxed);
        routing::interrupt_calls(&self.pool, name, node, now, live_since).await
    }

    async fn routing_history(&self, query: &crate::HistoryQuery) -> Result<crate::History> {
        routing::routing_history(&self.pool, query).await
    }

    async fn report(&self, account: AccountId, query: &ReportQuery) -> Result<Vec<ReportRow>> {
        reports::report(&self.pool, account, query).await
    }

    async fn roll_reports(&self, settled_before: i64, max_days: u32) -> Result<RollupStatus> {
        reports::roll(&self.pool, settled_before, max_days).await
    }

    async fn record_pool_usage(&self, samples: &[PoolSample]) -> Result<()> {
        reports::record_pool_usage(&self.pool, samples).await
    }

    async fn pool_usage(
        &self,
        account: AccountId,
        from: i64,
        to: i64,
        pool: Option<i64>,
    ) -> Result<Vec<PoolUsageRow>> {
        reports::pool_usage(&self.pool, account, from, to, pool).await
    }

    async fn create_carrier_connection(
        &self,
        account: AccountId,
        c: &CarrierConnection,
        key: &str,
        now: i64,
    ) -> Result<CarrierConnectionRecord> {
        let id = carriers::create(&self.pool, account, c, key, now).await?;
        self.carrier_connection(account, id).await
    }

    async fn carrier_connection(
        &self,
        account: AccountId,
        id: i64,
    ) -> Result<CarrierConnectionRecord> {
        let table = carriers::CONNECTIONS;
        routing::one(&self.pool, table, account, id, carriers::connection_row).await
    }

    async fn carrier_connections(
        &self,
        account: AccountId,
        p: PageRequest,
    ) -> Result<Page<CarrierConnectionRecord>> {
        let table = carriers::CONNECTIONS;
        let items =
            routing::page_of(&self.pool, table, account, p, carriers::connection_row).await?;
        Ok(page(items, p.limit, |c| c.id))
    }

    async fn carrier_connection_by_key(&self, key: &str) -> Result<CarrierConnectionRecord> {
        carriers::by_key(&self.pool, key).await
    }

    async fn update_carrier_connection(
        &self,
        account: AccountId,
        id: i64,
        c: &CarrierConnection,
        now: i64,
    ) -> Result<CarrierConnectionRecord> {
        carriers::update(&self.pool, account, id, c, now).await?;
        self.carrier_connection(account, id).await
    }

    async fn delete_carrier_connection(&self, account: AccountId, id: i64) -> Result<()> {
        carriers::delete(&self.pool, account, id).await
    }

    async fn server_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        carriers::server_secret(&self.pool, name, fresh).await
    }

    async fn create_webhook(
        &self,
        account: AccountId,
        w: &Webhook,
        secret: &Secret,
        now: i64,
    ) -> Result<WebhookRecord> {
        let id = webhooks::create(&self.pool, account, w, secret, now).await?;
        self.reload_hooks().await?;
        self.webhook(account, id).await
    }

    async fn webhook(&self, account: AccountId, id: i64) -> Result<WebhookRecord> {
        routing::one(
            &self.pool,
            webhooks::WEBHOOKS,
            account,
            id,
            webhooks::webhook_row,
        )
        .await
    }

    async fn webhooks(&self, account: AccountId, p: PageRequest) -> Result<Page<WebhookRecord>> {
        let items = routing::page_of(
            &self.pool,
            webhooks::WEBHOOKS,
            account,
            p,
            webhooks::webhook_row,
        )
        .await?;
        Ok(page(items, p.limit, |w| w.id))
    }

    async fn update_webhook(
        &self,
        account: AccountId,
        id: i64,
        w: &Webhook,
        now: i64,
    ) -> Result<WebhookRecord> {
        webhooks::update(&self.pool, account, id, w, now).await?;
        self.reload_hooks().await?;
        self.webhook(account, id).await
    }

    async fn delete_webhook(&self, account: AccountId, id: i64) -> Result<()> {
        webhooks::delete(&self.pool, account, id).await?;
        self.reload_hooks().await
    }

    async fn deliveries(
        &self,
        account: AccountId,
        webhook: i64,
        p: PageRequest,
    ) -> Result<Page<DeliveryRecord>> {
        webhooks::deliveries(&self.pool, account, webhook, p).await
    }

    async fn claim_deliveries(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        webhooks::claim(&self.pool, now, lease_until, limit).await
    }

    async fn finish_delivery(
        &self,
        account: AccountId,
        id: i64,
        result: &DeliveryResult,
        now: i64,
    ) -> Result<()> {
        webhooks::finish(&self.pool, account, id, result, now).await
    }

    async fn convert_call(&self, account: AccountId, id: i64, c: &Conversion) -> Result<()> {
        webhooks::convert_call(&self.calls, account, id, c).await
    }

    async fn convert_latest_call(
        &self,
        account: AccountId,
        caller: &str,
        from: i64,
        to: i64,
        c: &Conversion,
    ) -> Result<i64> {
        webhooks::convert_latest_call(&self.calls, account, caller, (from, to), c).await
    }

    async fn conversions(
        &self,
        account: AccountId,
        calls: &[i64],
    ) -> Result<Vec<(i64, Conversion)>> {
        webhooks::conversions(&self.pool, account, calls).await
    }

    // Guard
    async fn domain_checked(
        &self,
        account: AccountId,
        id: i64,
        method: Option<&str>,
        now: i64,
        grace_ms: i64,
    ) -> Result<bool> {
        guard::domain_checked(&self.pool, account, id, method, now, grace_ms).await
    }

    async fn queue_scan(
        &self,
        account: Option<AccountId>,
        campaign_id: Option<i64>,
        url: &str,
        source: &str,
        now: i64,
    ) -> Result<i64> {
        guard::queue_scan(&self.pool, account, campaign_id, url, source, now).await
    }

    async fn scanned_pages(&self, url: &str) -> Result<Vec<(AccountId, i64)>> {
        guard::scanned_pages(&self.pool, url).await
    }

    async fn claim_scans(
        &self,
        now: i64,
        lease_until: i64,
        limit: u32,
        per_campaign_per_day: u32,
    ) -> Result<Vec<ClaimedScan>> {
        guard::claim_scans(&self.pool, now, lease_until, limit, per_campaign_per_day).await
    }

    async fn finish_scan(&self, id: i64, verdict: &ScanVerdict, now: i64) -> Result<()> {
        guard::finish_scan(&self.pool, id, verdict, now).await
    }

    async fn fail_scan(&self, id: i64, error: &str, retry_at: Option<i64>, now: i64) -> Result<()> {
        guard::fail_scan(&self.pool, id, error, retry_at, now).await
    }

    async fn scans(&self, account: AccountId, p: PageRequest) -> Result<Page<ScanRecord>> {
        guard::scans(&self.pool, account, p).await
    }

    async fn override_scan(
        &self,
        account: AccountId,
        id: i64,
        note: &str,
        now: i64,
    ) -> Result<ScanRecord> {
        guard::override_scan(&self.pool, account, id, note, now).await
    }

    async fn quarantine_campaign(
        &self,
        account: AccountId,
        campaign_id: i64,
        scan_id: Option<i64>,
        reason: &str,
        now: i64,
    ) -> Result<Option<QuarantineRecord>> {
        guard::quarantine_campaign(&self.pool, account, campaign_id, scan_id, reason, now).await
    }

    async fn quarantine_number(
        &self,
        account: AccountId,
        number_id: i64,
        reason: &str,
        now: i64,
    ) -> Result<Option<QuarantineRecord>> {
        guard::quarantine_number(&self.pool, account, number_id, reason, now).await
    }

    async fn quarantine_page(
        &self,
        account: AccountId,
        campaign_id: i64,
        pattern: &str,
        note: &str,
        now: i64,
    ) -> Result<Option<QuarantineRecord>> {
        guard::quarantine_page(&self.pool, account, campaign_id, pattern, note, now).await
    }

    async fn quarantined_pages(&self, account: AccountId) -> Result<Vec<(i64, String)>> {
        guard::quarantined_pages(&self.pool, account).await
    }

    async fn quarantined_campaigns(&self, account: AccountId) -> Result<Vec<i64>> {
        guard::quarantined_campaigns(&self.pool, account).await
    }

    async fn quarantines(
        &self,
        account: AccountId,
        p: PageRequest,
    ) -> Result<Page<QuarantineRecord>> {
        guard::quarantines(&self.pool, account, p).await
    }

    async fn quarantine(&self, account: AccountId, id: i64) -> Result<QuarantineRecord> {
        guard::quarantine(&self.pool, account, id).await
    }

    async fn lift_quarantine(
        &self,
        account: AccountId,
        id: i64,
        note: &str,
        now: i64,
    ) -> Result<QuarantineRecord> {
        guard::lift_quarantine(&self.pool, account, id, note, now).await
    }

    async fn number_owner(&self, e164: &str) -> Result<Option<(AccountId, i64)>> {
        guard::number_owner(&self.pool, e164).await
    }

    async fn record_abuse_report(&self, r: &NewAbuseReport, since: i64) -> Result<u32> {
        guard::record_abuse_report(&self.pool, r, since).await
    }

    async fn abuse_reports(
        &self,
        account: AccountId,
        p: PageRequest,
    ) -> Result<Page<AbuseReportRecord>> {
        guard::abuse_reports(&self.pool, account, p).await
    }

    async fn audit(&self, account: AccountId, entry: &AuditEntry) -> Result<()> {
        guard::audit(&self.pool, account, entry).await
    }

    async fn audit_log(&self, account: AccountId, p: PageRequest) -> Result<Page<AuditEntry>> {
        guard::audit_log(&self.pool, account, p).await
    }

    async fn call_flag(&self, account: AccountId, call_id: i64) -> Result<Option<String>> {
        guard::call_flag(&self.calls, account, call_id).await
    }
}

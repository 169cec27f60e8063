//! Dynamic number insertion, server side: the in-memory state that answers
//! `POST /v1/dni/sessions` without a database read, kept in step with the store.
//!
//! Campaigns (with the verified subset of their domains) sit in an [`ArcSwap`]ped map by key, so
//! the hot path takes no lock to find one. Each pool's lease state ([`callopt_dni::Pool`]) sits
//! behind its own mutex, held only for the assignment itself. Every change through the
//! management API calls [`Dni::refresh_account`], which rebuilds that account's entries and syncs
//! pools without dropping live leases.

use crate::problem::ApiError;
use arc_swap::ArcSwap;
use callopt_dni::{Pool, PoolNumber};
use callopt_domain::{
    AccountId, Campaign, DomainHost, NumberFormats, NumberStatus, VisitorId, E164,
};
use callopt_store::{PageRequest, SessionRecord, Store};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use utoipa::ToSchema;

/// A number printed on pages that the tag replaces, in the pieces the tag matches on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplaceDto {
    /// The number, E.164.
    pub e164: String,
    /// National significant number (digits).
    pub nsn: String,
    /// Country calling code (digits).
    pub cc: String,
}

impl ReplaceDto {
    fn of(n: &E164) -> Self {
        Self {
            e164: n.to_string(),
            nsn: n.national_significant(),
            cc: n.calling_code(),
        }
    }
}

/// A pool's lease state, with the session of each lease.
pub struct PoolState {
    /// Assignment state.
    pub pool: Pool,
    /// The session each visitor's current lease belongs to.
    pub session_of: HashMap<VisitorId, LeaseSession>,
    /// Numbers offered to the leases shared between nodes by requests under way here, with how
    /// many requests offer each: concurrent requests offer others when they can.
    pub offered: HashMap<i64, u32>,
}

/// The visitor session a lease belongs to, and how far the store knows the lease to run.
pub struct LeaseSession {
    /// Session id.
    pub id: String,
    /// The end of the lease as last written to the store.
    pub written_until: i64,
    /// Until when the leases shared between nodes hold the number for the visitor at least, as
    /// this node last renewed it there (0: not known to).
    pub shared_until: i64,
}

/// A renewal is written to the store only when it moves the stored end of the lease by at least
/// this much (ms): a visitor clicking through pages renews many times a minute, and writing each
/// renewal would make page views, not visitors, the unit of database work. Leases restored after
/// a restart get this much extra, so that no visitor loses its number early.
pub const RENEWAL_WRITE_INTERVAL_MS: i64 = 60_000;

/// Per-source visitor sessions of one campaign: visitor → (session id, end of lease).
pub type SourceSessions = Mutex<HashMap<VisitorId, (String, i64)>>;

/// A campaign as the hot path needs it.
pub struct CampaignEntry {
    /// Owner.
    pub account: AccountId,
    /// The campaign.
    pub campaign: Campaign,
    /// The campaign's domains that are verified in the account: the only pages served.
    pub verified: Vec<DomainHost>,
    /// The numbers the tag replaces (default and swap numbers), ready to serialise.
    pub replace: Arc<Vec<ReplaceDto>>,
    /// The pool's state, when the campaign has a pool.
    pub pool: Option<Arc<Mutex<PoolState>>>,
    /// Per-source sessions (used in per-source mode).
    pub source_sessions: Arc<SourceSessions>,
    /// The country of the default number: whose conventions numbers are written in when the
    /// visitor's country is unknown (the page was written for its readers).
    pub default_country: Option<String>,
    /// Whether the Guard quarantined the campaign: its numbers are not served.
    pub quarantined: bool,
    /// URL patterns of the campaign's pages under quarantine (a scan URL, or a prefix of one
    /// ending in `*`): those pages get no numbers.
    pub quarantined_pages: Vec<String>,
}

impl CampaignEntry {
    /// Whether a page on `host` may be served.
    pub fn serves(&self, host: &DomainHost) -> bool {
        self.verified.iter().any(|d| d.covers(host))
    }

    /// Whether the page at `page_url` is under a page quarantine.
    pub fn page_quarantined(&self, page_url: &str) -> bool {
        if self.quarantined_pages.is_empty() {
            return false;
        }
        let page = callopt_domain::scan_url(page_url);
        self.quarantined_pages
            .iter()
            .any(|p| match p.strip_suffix('*') {
                Some(prefix) => page.starts_with(prefix),
                None => page == *p,
            })
    }
}

/// The DNI state of the whole service.
#[derive(Default)]
pub struct Dni {
    /// Campaigns by public key.
    campaigns: ArcSwap<HashMap<String, Arc<CampaignEntry>>>,
    /// Pool states by pool id; they outlive refreshes so leases survive configuration changes.
    pools: Mutex<HashMap<i64, Arc<Mutex<PoolState>>>>,
    /// Per-source session maps by campaign id, for the same reason.
    sources: Mutex<HashMap<i64, Arc<SourceSessions>>>,
    /// Serialises refreshes so two changes cannot interleave their rebuilds.
    refreshing: tokio::sync::Mutex<()>,
    /// Written forms of the numbers served so far: formatting through the numbering plan costs
    /// more than the rest of a DNI request, so each number is formatted once.
    formats: Mutex<HashMap<E164, Arc<NumberFormats>>>,
}

fn pool_number(r: callopt_store::NumberRecord) -> Option<PoolNumber> {
    (r.number.status == NumberStatus::Active).then_some(PoolNumber {
        id: r.id,
        e164: r.number.e164,
        country: r.number.country,
        languages: r.number.languages,
    })
}

async fn all_pages<T, F, Fut>(mut f: F) -> Result<Vec<T>, callopt_store::StoreError>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: std::future::Future<Output = callopt_store::Result<callopt_store::Page<T>>>,
{
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = f(PageRequest { after, limit: 500 }).await?;
        out.extend(page.items);
        match page.next_after {
            Some(a) => after = Some(a),
            None => return Ok(out),
        }
    }
}

impl Dni {
    /// The campaign with this public key.
    pub fn campaign(&self, key: &str) -> Option<Arc<CampaignEntry>> {
        self.campaigns.load().get(key).cloned()
    }

    /// The written forms of a number, formatted on first use.
    pub fn formats(&self, number: &E164) -> Arc<NumberFormats> {
        if let Some(f) = self.formats.lock().expect("formats lock").get(number) {
            return f.clone();
        }
        let f = Arc::new(number.formats());
        self.formats
            .lock()
            .expect("formats lock")
            .insert(number.clone(), f.clone());
        f
    }

    /// Loads every account's campaigns and restores the leases that are still live.
    pub async fn load(&self, store: &Arc<dyn Store>, now: i64) -> anyhow::Result<()> {
        let mut accounts: Vec<AccountId> = store
            .all_campaigns()
            .await?
            .iter()
            .map(|c| c.account)
            .collect();
        accounts.sort();
        accounts.dedup();
        for account in accounts {
            self.refresh_account(store, account).await?;
        }
        let live = store.live_sessions(now).await?;
        let restored = live.len();
        for s in live {
            self.restore(s, now);
        }
        tracing::info!(
            campaigns = self.campaigns.load().len(),
            restored,
            "DNI state loaded"
        );
        Ok(())
    }

    fn restore(&self, s: SessionRecord, now: i64) {
        let Some(number_id) = s.number_id else { return };
        let entry = self
            .campaigns
            .load()
            .values()
            .find(|c| c.campaign.id == s.campaign_id)
            .cloned();
        let Some(pool) = entry.and_then(|e| e.pool.clone()) else {
            return;
        };
        let Ok(visitor) = VisitorId::parse("visitor", &s.visitor) else {
            return;
        };
        let mut state = pool.lock().expect("pool lock");
        state.pool.restore(
            visitor.clone(),
            number_id,
            s.first_seen,
            s.lease_expires_at + RENEWAL_WRITE_INTERVAL_MS,
            now,
        );
        if state.pool.lease_of(&visitor, now).map(|(n, _)| n) == Some(number_id) {
            let session = LeaseSession {
                id: s.id,
                written_until: s.lease_expires_at,
                shared_until: 0,
            };
            state.session_of.insert(visitor, session);
        }
    }

    /// Rebuilds one account's campaigns from the store, syncing their pools.
    pub async fn refresh_account(
        &self,
        store: &Arc<dyn Store>,
        account: AccountId,
    ) -> Result<(), ApiError> {
        let _guard = self.refreshing.lock().await;
        let unexpected = |e: callopt_store::StoreError| ApiError::Unexpected(e.into());
        let campaigns = all_pages(|p| store.campaigns(account, p))
            .await
            .map_err(unexpected)?;
        let verified: Vec<DomainHost> = all_pages(|p| store.domains(account, p))
            .await
            .map_err(unexpected)?
            .into_iter()
            .filter(|d| d.verified_at.is_some())
            .filter_map(|d| DomainHost::parse("host", &d.host).ok())
            .collect();
        let quarantined = store
            .quarantined_campaigns(account)
            .await
            .map_err(unexpected)?;
        let quarantined_pages = store.quarantined_pages(account).await.map_err(unexpected)?;
        let now = crate::now_ms();
        let mut entries = Vec::with_capacity(campaigns.len());
        for record in campaigns {
            let c = record.campaign;
            let pool = match c.pool_id {
                Some(id) => {
                    let numbers: Vec<PoolNumber> = store
                        .pool_numbers(id)
                        .await
                        .map_err(unexpected)?
                        .into_iter()
                        .filter_map(pool_number)
                        .collect();
                    Some(self.sync_pool(id, numbers, now))
                }
                None => None,
            };
            let source_sessions = self
                .sources
                .lock()
                .expect("sources lock")
                .entry(c.id)
                .or_default()
                .clone();
            let mut replace = vec![ReplaceDto::of(&c.default_number)];
            replace.extend(c.swap_numbers.iter().map(ReplaceDto::of));
            entries.push(CampaignEntry {
                account,
                verified: c
                    .domains
                    .iter()
                    .filter(|d| verified.iter().any(|v| v.covers(d)))
                    .cloned()
                    .collect(),
                replace: Arc::new(replace),
                default_country: c.default_number.country(),
                quarantined: quarantined.contains(&c.id),
                quarantined_pages: quarantined_pages
                    .iter()
                    .filter(|(campaign, _)| *campaign == c.id)
                    .map(|(_, pattern)| pattern.clone())
                    .collect(),
                pool,
                source_sessions,
                campaign: c,
            });
        }
        let mut map: HashMap<String, Arc<CampaignEntry>> = self
            .campaigns
            .load()
            .iter()
            .filter(|(_, e)| e.account != account)
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for e in entries {
            map.insert(e.campaign.key.0.clone(), Arc::new(e));
        }
        self.campaigns.store(Arc::new(map));
        Ok(())
    }

    fn sync_pool(&self, id: i64, numbers: Vec<PoolNumber>, now: i64) -> Arc<Mutex<PoolState>> {
        let mut pools = self.pools.lock().expect("pools lock");
        match pools.get(&id) {
            Some(state) => {
                let mut s = state.lock().expect("pool lock");
                s.pool.sync(numbers, now);
                let PoolState {
                    pool, session_of, ..
                } = &mut *s;
                session_of.retain(|v, _| pool.lease_of(v, now).is_some());
                drop(s);
                state.clone()
            }
            None => {
                let state = Arc::new(Mutex::new(PoolState {
                    pool: Pool::new(numbers),
                    session_of: HashMap::new(),
                    offered: HashMap::new(),
                }));
                pools.insert(id, state.clone());
                state
            }
        }
    }

    /// Records a lease a node announced in the pool's copy here.
    pub fn apply_hold(&self, hold: &callopt_calls::Hold, now: i64) {
        let pool = self
            .pools
            .lock()
            .expect("pools lock")
            .get(&hold.pool_id)
            .cloned();
        let (Some(pool), Ok(visitor)) = (pool, VisitorId::parse("visitor", &hold.visitor)) else {
            return;
        };
        let mut state = pool.lock().expect("pool lock");
        let held = state.pool.lease_of(&visitor, now);
        if held.is_some_and(|(n, until)| n == hold.number_id && until >= hold.until) {
            return;
        }
        state
            .pool
            .hold(&visitor, hold.number_id, now, hold.until, now);
    }

    /// Each pool's peak since the last call: (pool id, most numbers leased at once, pool size).
    pub fn take_peaks(&self, now: i64) -> Vec<(i64, usize, usize)> {
        let pools: Vec<(i64, Arc<Mutex<PoolState>>)> = self
            .pools
            .lock()
            .expect("pools lock")
            .iter()
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        pools
            .into_iter()
            .map(|(id, p)| {
                let (peak, size) = p.lock().expect("pool lock").pool.take_peak(now);
                (id, peak, size)
            })
            .collect()
    }

    /// Pool utilisation for the metrics: (pool id, numbers leased, pool size).
    pub fn utilisation(&self, now: i64) -> Vec<(i64, usize, usize)> {
        let pools: Vec<(i64, Arc<Mutex<PoolState>>)> = self
            .pools
            .lock()
            .expect("pools lock")
            .iter()
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        pools
            .into_iter()
            .map(|(id, p)| {
                let (used, size) = p.lock().expect("pool lock").pool.utilisation(now);
                (id, used, size)
            })
            .collect()
    }
}

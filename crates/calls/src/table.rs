//! The routing table: for every tracking number, the campaign it belongs to and the compiled
//! routing plan that routes its calls. Built from the store as a whole and swapped atomically.

use callopt_domain::{AccountId, Destination, NumberStatus, SipUri, Target};
use callopt_routing::CompiledPlan;
use callopt_store::{Store, StoreError};
use foldhash::{HashMap, HashMapExt};
use std::collections::HashSet;
use std::sync::Arc;

/// What a call on one tracking number needs to be routed.
#[derive(Clone)]
pub struct NumberRoute {
    /// The account that owns the number.
    pub account: AccountId,
    /// The campaign whose number it is.
    pub campaign_id: i64,
    /// The campaign's routing plan, when it has one.
    pub plan: Option<Arc<CompiledPlan>>,
    /// The number's languages: the call's language when no visitor session holds the number.
    pub languages: Vec<String>,
}

/// The routing table of every account.
#[derive(Default)]
pub struct Table {
    /// Tracking numbers (E.164), campaign default and source-rule numbers → route.
    pub by_number: HashMap<String, NumberRoute>,
    /// Every target by id.
    pub targets: HashMap<i64, Target>,
    /// SIP targets used by some plan: what the SIP router probes.
    pub sip_targets: Vec<(i64, SipUri)>,
}

impl Table {
    /// Builds the table from the store's loaders (every account).
    pub async fn load(store: &Arc<dyn Store>) -> Result<Self, StoreError> {
        let targets: HashMap<i64, Target> = store
            .all_targets()
            .await?
            .into_iter()
            .map(|t| (t.target.id, t.target))
            .collect();
        let mut plans: HashMap<i64, Arc<CompiledPlan>> = HashMap::new();
        let mut used: HashSet<i64> = HashSet::new();
        for record in store.all_plans().await? {
            let members: Vec<Target> = record
                .plan
                .targets
                .iter()
                .chain(record.plan.overflow_target.iter())
                .filter_map(|id| targets.get(id).cloned())
                .collect();
            used.extend(members.iter().map(|t| t.id));
            plans.insert(
                record.plan.id,
                Arc::new(CompiledPlan::new(record.plan, &members)),
            );
        }
        let mut by_number = HashMap::new();
        let mut campaigns = store.all_campaigns().await?;
        campaigns.sort_by_key(|c| c.campaign.id);
        for record in campaigns {
            let c = &record.campaign;
            let route = NumberRoute {
                account: record.account,
                campaign_id: c.id,
                plan: c.routing_plan_id.and_then(|p| plans.get(&p).cloned()),
                languages: Vec::new(),
            };
            if let Some(pool) = c.pool_id {
                for n in store.pool_numbers(pool).await? {
                    if n.number.status == NumberStatus::Released {
                        continue;
                    }
                    let mut r = route.clone();
                    r.languages = n.number.languages.clone();
                    by_number
                        .entry(n.number.e164.as_str().to_string())
                        .or_insert(r);
                }
            }
            let fixed = std::iter::once(&c.default_number)
                .chain(&c.swap_numbers)
                .chain(c.source_rules.iter().map(|r| &r.number));
            for n in fixed {
                by_number
                    .entry(n.as_str().to_string())
                    .or_insert_with(|| route.clone());
            }
        }
        let mut sip_targets: Vec<(i64, SipUri)> = used
            .iter()
            .filter_map(|id| match &targets.get(id)?.destination {
                Destination::Sip(uri) => Some((*id, uri.clone())),
                Destination::Number(_) => None,
            })
            .collect();
        sip_targets.sort_by_key(|(id, _)| *id);
        Ok(Self {
            by_number,
            targets,
            sip_targets,
        })
    }

    /// The route of a called number as it arrives in a SIP Request-URI or a carrier webhook:
    /// E.164 with or without the `+`.
    pub fn route(&self, called: &str) -> Option<&NumberRoute> {
        let digits = called.strip_prefix('+').unwrap_or(called);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut key = String::with_capacity(digits.len() + 1);
        key.push('+');
        key.push_str(digits);
        self.by_number.get(&key)
    }
}

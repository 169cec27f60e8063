//! A routing plan compiled for routing: its targets resolved and grouped into tiers by priority,
//! built once when the routing table changes so that routing a call does no sorting or lookup by
//! list scan.

use callopt_domain::{RoutingPlan, Target};
use foldhash::{HashMap, HashMapExt};

/// One tier: the targets of one priority, in ascending id order.
#[derive(Debug, Clone)]
pub(crate) struct Tier {
    /// The priority shared by the tier's targets; also the key of its round-robin cursor.
    pub priority: u32,
    /// Indexes into [`CompiledPlan::targets`], sorted by target id so that every strategy breaks
    /// ties and walks in id order.
    pub members: Vec<usize>,
}

/// A plan with its targets resolved and grouped into tiers by priority (ascending), built once
/// when the table changes.
#[derive(Debug, Clone)]
pub struct CompiledPlan {
    /// The routing plan as given.
    plan: RoutingPlan,
    /// The plan's targets (tier members and the overflow target), each once.
    pub(crate) targets: Vec<Target>,
    /// Target id → index into `targets`.
    by_id: HashMap<i64, usize>,
    /// The tiers in ascending priority: the first tier with an eligible target decides.
    pub(crate) tiers: Vec<Tier>,
    /// Index of the overflow target into `targets`, when the plan has one and it was given.
    pub(crate) overflow: Option<usize>,
    /// Per index into `targets`: whether the target belongs to a tier (the overflow target may
    /// not).
    tiered: Vec<bool>,
}

impl CompiledPlan {
    /// Compiles `plan` against the known `targets`. Targets that the plan does not name are
    /// ignored; ids of the plan that name no given target are skipped (as is a missing overflow
    /// target). Disabled targets are kept, but are never eligible.
    pub fn new(plan: RoutingPlan, targets: &[Target]) -> Self {
        let given: HashMap<i64, &Target> = targets.iter().map(|t| (t.id, t)).collect();
        let mut compiled = Self {
            plan,
            targets: Vec::new(),
            by_id: HashMap::new(),
            tiers: Vec::new(),
            overflow: None,
            tiered: Vec::new(),
        };
        let mut members: Vec<usize> = Vec::new();
        for id in compiled.plan.targets.clone() {
            if compiled.by_id.contains_key(&id) {
                continue;
            }
            if let Some(t) = given.get(&id) {
                members.push(compiled.add(t));
            }
        }
        if let Some(id) = compiled.plan.overflow_target {
            compiled.overflow = match compiled.by_id.get(&id) {
                Some(&i) => Some(i),
                None => given.get(&id).map(|t| compiled.add(t)),
            };
        }
        compiled.tiered = vec![false; compiled.targets.len()];
        for &i in &members {
            compiled.tiered[i] = true;
        }
        compiled.tiers = group_into_tiers(&compiled.targets, members);
        compiled
    }

    /// Adds a target and returns its index.
    fn add(&mut self, target: &Target) -> usize {
        let i = self.targets.len();
        self.targets.push(target.clone());
        self.by_id.insert(target.id, i);
        i
    }

    /// The routing plan.
    pub fn plan(&self) -> &RoutingPlan {
        &self.plan
    }

    /// Any target of the plan, the overflow target included.
    pub fn target(&self, id: i64) -> Option<&Target> {
        self.by_id.get(&id).map(|&i| &self.targets[i])
    }

    /// The tiers as target ids: ascending priority, each tier in ascending id order.
    pub fn tier_ids(&self) -> Vec<(u32, Vec<i64>)> {
        self.tiers
            .iter()
            .map(|t| {
                let ids = t.members.iter().map(|&i| self.targets[i].id).collect();
                (t.priority, ids)
            })
            .collect()
    }

    /// The overflow target, when the plan names one that was given.
    pub fn overflow_target(&self) -> Option<&Target> {
        self.overflow.map(|i| &self.targets[i])
    }

    /// Index of a target, for the routing code.
    pub(crate) fn index_of(&self, id: i64) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    /// Whether the target at `index` belongs to a tier (not only the overflow target).
    pub(crate) fn in_tier(&self, index: usize) -> bool {
        self.tiered[index]
    }
}

/// Sorts members by (priority, id) and cuts them into tiers.
fn group_into_tiers(targets: &[Target], mut members: Vec<usize>) -> Vec<Tier> {
    members.sort_by_key(|&i| (targets[i].priority, targets[i].id));
    let mut tiers: Vec<Tier> = Vec::new();
    for i in members {
        let priority = targets[i].priority;
        match tiers.last_mut() {
            Some(t) if t.priority == priority => t.members.push(i),
            _ => tiers.push(Tier {
                priority,
                members: vec![i],
            }),
        }
    }
    tiers
}

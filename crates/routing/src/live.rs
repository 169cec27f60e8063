//! The live state of routing (counters of every target and plan) and the routing decision that
//! reads and reserves it.
//!
//! # Why caps cannot be exceeded
//! A target's live count is `ringing + connected`. An attempt is reserved (`ringing + 1`) in the
//! same call that chooses it, so a burst of calls sees every earlier reservation. For the hourly,
//! daily and monthly caps a target is eligible only while `connected in the current period +
//! ringing < cap`: even if every ringing attempt is answered, the period's count stays within the
//! cap. [`Live::released`] does not know whether it ends a ringing attempt or a connected call; it
//! ends a connected call when there is one, so the tracked `ringing` is never below the true
//! number of ringing attempts (it may be above, which only makes routing more careful until the
//! target's connected calls end). [`Live::attempt_failed`] and [`Live::call_ended`] say which,
//! and keep the counts exact when used throughout. Whichever is used, the live count
//! (`ringing + connected`) is always exact, and `ringing` never drops below the truth: an
//! attempt or call that ends takes one from its own kind when it can, else from the other.

use crate::compiled::CompiledPlan;
use crate::counters::{Bucket, Volume};
use crate::hours::{cap_periods, cap_zone, is_open, Period};
use crate::select::{self, Candidate};
use crate::{
    CallFacts, Decision, Millis, RejectCause, DUPLICATE_CALLER_REASON, DUPLICATE_CALLER_STATUS,
};
use callopt_domain::{Caps, DuplicateAction, Filters, RoutingPlan, Strategy, Target};
use chrono_tz::Tz;
use foldhash::HashMap;
use std::collections::HashSet;

/// One hour in milliseconds.
const HOUR_MS: Millis = 3_600_000;

/// The live counters of one target, shared by every routing plan that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TargetLive {
    /// Attempts reserved and not yet answered or released (never below the true number).
    ringing: u32,
    /// Answered calls not yet released.
    connected: u32,
    /// Marked down by OPTIONS probing: never eligible while set.
    down: bool,
    /// Connected calls in the current local hour (hourly cap).
    hour: Bucket,
    /// Connected calls in the current local day (daily cap).
    day: Bucket,
    /// Connected calls in the current local month (monthly cap).
    month: Bucket,
    /// Attempts routed to it over the last hour (lowest-volume strategy).
    volume: Volume,
}

impl TargetLive {
    /// A target nothing is known about: up, no calls, nothing counted.
    const IDLE: Self = Self {
        ringing: 0,
        connected: 0,
        down: false,
        hour: Bucket::EMPTY,
        day: Bucket::EMPTY,
        month: Bucket::EMPTY,
        volume: Volume::EMPTY,
    };

    /// Calls ringing or connected on the target.
    fn live(&self) -> u32 {
        self.ringing.saturating_add(self.connected)
    }

    /// Whether one more attempt keeps every cap: live calls below the concurrency cap, and for
    /// each calendar cap the period's connected calls plus the ringing attempts below it.
    fn within_caps(&self, caps: &Caps, now: Millis) -> bool {
        let under = |cap: Option<u32>, used: u32| cap.is_none_or(|c| used < c);
        under(caps.concurrent, self.live())
            && under(
                caps.hourly,
                self.hour.count_at(now).saturating_add(self.ringing),
            )
            && under(
                caps.daily,
                self.day.count_at(now).saturating_add(self.ringing),
            )
            && under(
                caps.monthly,
                self.month.count_at(now).saturating_add(self.ringing),
            )
    }

    /// Whether forgetting the target changes nothing at `now`.
    fn is_idle(&self, now: Millis) -> bool {
        self.live() == 0
            && !self.down
            && self.hour.is_idle(now)
            && self.day.is_idle(now)
            && self.month.is_idle(now)
            && self.volume.is_idle(now)
    }
}

/// A caller's last answered call on a routing plan, for the duplicate-caller rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Remembered {
    /// The target that took the call.
    target: i64,
    /// When it was answered.
    answered_at: Millis,
    /// When [`Live::prune`] may forget it: the end of the window it was recorded with.
    forget_at: Millis,
}

/// What the counters of a target say at some instant: for dashboards, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Attempts reserved and ringing (never below the true number; see [`Live::released`]).
    pub ringing: u32,
    /// Answered calls still connected.
    pub connected: u32,
    /// Connected calls in the current local hour of the target's zone.
    pub hour: u32,
    /// Connected calls in the current local day.
    pub day: u32,
    /// Connected calls in the current local month.
    pub month: u32,
    /// Attempts routed to it in the last hour (one-minute buckets).
    pub volume: u32,
    /// Whether OPTIONS probing marked it down.
    pub down: bool,
}

/// What one node's routing tells the other nodes of a deployment, so that theirs agrees: where
/// round-robin tiers stand and which callers were answered (for the duplicate-caller rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shared {
    /// The round-robin cursor of a plan's tier now points at `target` (chosen last).
    Cursor {
        /// The plan.
        plan: i64,
        /// The tier's priority.
        priority: u32,
        /// The target chosen last.
        target: i64,
    },
    /// A caller's call on a plan with a duplicate-caller rule was answered by `target`.
    Caller {
        /// The plan.
        plan: i64,
        /// The caller (E.164).
        caller: String,
        /// The target that took the call.
        target: i64,
        /// When it was answered.
        answered_at: Millis,
        /// When the memory of it may go (the end of the rule's window).
        forget_at: Millis,
    },
}

/// The live counters of every target and plan: concurrency, cap counters, volume, round-robin
/// cursors, duplicate-caller memory, target health.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Whether the cursor moves and answered callers are kept in `outbox` for other nodes.
    sharing: bool,
    /// What the other nodes are to be told, oldest first ([`Live::take_shared`]).
    outbox: Vec<Shared>,
    /// Counters per target id; a target without an entry is idle and up.
    targets: HashMap<i64, TargetLive>,
    /// Round-robin cursors: (plan id, tier priority) → id of the target chosen last.
    cursors: HashMap<(i64, u32), i64>,
    /// Duplicate-caller memory: plan id → caller → their last answered call on the plan.
    callers: HashMap<i64, HashMap<String, Remembered>>,
    /// Reused buffer of a tier's eligible targets, so that routing does not allocate.
    scratch: Vec<Candidate>,
}

impl Live {
    /// Nothing live, every target up.
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, keep what the other nodes of a deployment are to be told
    /// ([`Live::take_shared`]).
    pub fn share(&mut self) {
        self.sharing = true;
    }

    /// What the other nodes are to be told since the last call, oldest first.
    pub fn take_shared(&mut self) -> Vec<Shared> {
        std::mem::take(&mut self.outbox)
    }

    /// Applies what another node's routing told: its cursor move, or a caller it answered (kept
    /// unless a later answer of that caller is known already).
    pub fn apply(&mut self, shared: Shared) {
        match shared {
            Shared::Cursor {
                plan,
                priority,
                target,
            } => {
                self.cursors.insert((plan, priority), target);
            }
            Shared::Caller {
                plan,
                caller,
                target,
                answered_at,
                forget_at,
            } => {
                let memory = self.callers.entry(plan).or_default();
                let later = memory
                    .get(&caller)
                    .is_some_and(|m| m.answered_at > answered_at);
                if !later {
                    let remembered = Remembered {
                        target,
                        answered_at,
                        forget_at,
                    };
                    memory.insert(caller, remembered);
                }
            }
        }
    }

    /// Chooses the next target for a call and reserves it (its live count goes up at once, so a
    /// burst cannot exceed a concurrency cap). `tried`: targets already attempted for this call
    /// (never chosen again). Deterministic given (self, args, rng state).
    pub fn route(
        &mut self,
        plan: &CompiledPlan,
        facts: &CallFacts,
        tried: &[i64],
        now_ms: Millis,
        rng: &mut impl rand::Rng,
    ) -> Decision {
        let rules = plan.plan();
        if u32::try_from(tried.len()).unwrap_or(u32::MAX) >= rules.max_attempts {
            return no_target(rules, RejectCause::AttemptsExhausted);
        }
        if let Some(decision) = self.duplicate_caller(plan, facts, tried, now_ms) {
            return decision;
        }
        if let Some(index) = self.choose_in_tiers(plan, facts, tried, now_ms, rng) {
            return self.reserve(plan, index, false, now_ms);
        }
        match plan.overflow {
            Some(index) if self.available(&plan.targets[index], tried, now_ms) => {
                self.reserve(plan, index, true, now_ms)
            }
            _ => no_target(rules, RejectCause::NoEligibleTarget),
        }
    }

    /// The reserved attempt on `target` was answered: it now counts as a connected call in the
    /// hour/day/month cap counters (calendar buckets in the target's time zone, UTC if it has no
    /// business hours) and in the duplicate-caller memory of the plan (when the plan has a
    /// duplicate-caller rule and the caller is known).
    pub fn answered(
        &mut self,
        plan: &CompiledPlan,
        target: i64,
        caller: Option<&str>,
        now_ms: Millis,
    ) {
        let zone = plan.target(target).map_or(Tz::UTC, cap_zone);
        let st = self.targets.entry(target).or_insert(TargetLive::IDLE);
        st.ringing = st.ringing.saturating_sub(1);
        st.connected = st.connected.saturating_add(1);
        st.hour.add(zone, Period::Hour, now_ms);
        st.day.add(zone, Period::Day, now_ms);
        st.month.add(zone, Period::Month, now_ms);
        let rules = plan.plan();
        if let (Some(rule), Some(caller)) = (rules.duplicate_caller, caller) {
            let remembered = Remembered {
                target,
                answered_at: now_ms,
                forget_at: now_ms.saturating_add(i64::from(rule.window_hours) * HOUR_MS),
            };
            let memory = self.callers.entry(rules.id).or_default();
            match memory.get_mut(caller) {
                Some(m) => *m = remembered,
                None => {
                    memory.insert(caller.to_string(), remembered);
                }
            }
            if self.sharing {
                self.outbox.push(Shared::Caller {
                    plan: rules.id,
                    caller: caller.to_string(),
                    target,
                    answered_at: now_ms,
                    forget_at: remembered.forget_at,
                });
            }
        }
    }

    /// Connected calls on `target` counted before this node started (the store's record, read
    /// at start): its current local hour, day and month hold at least `counts`, so that a
    /// restart does not give a target its caps again.
    pub fn restore_connected(&mut self, target: &Target, counts: [u32; 3], now_ms: Millis) {
        let [hour, day, month] = cap_periods(target, now_ms);
        let st = self.targets.entry(target.id).or_insert(TargetLive::IDLE);
        st.hour.restore(counts[0], hour, now_ms);
        st.day.restore(counts[1], day, now_ms);
        st.month.restore(counts[2], month, now_ms);
    }

    /// `n` attempts routed to `target` at `at` before this node started, for the
    /// lowest-volume strategy (counted if `at` is within the last hour).
    pub fn restore_attempts(&mut self, target: i64, at: Millis, n: u32) {
        let st = self.targets.entry(target).or_insert(TargetLive::IDLE);
        st.volume.record_many(at, n);
    }

    /// An attempt on `target` made before a restart is under way again: it counts as ringing,
    /// as [`Live::route`] would have counted it, whatever the caps say (the carrier is already
    /// ringing the target).
    pub fn attempt_resumed(&mut self, _plan: &CompiledPlan, target: i64, _now_ms: Millis) {
        let st = self.targets.entry(target).or_insert(TargetLive::IDLE);
        st.ringing = st.ringing.saturating_add(1);
    }

    /// The attempt or call on `target` ended (failed attempt, or hang-up of a connected call):
    /// live count goes down. Not knowing which, it ends a connected call when the target has
    /// one (see the module notes: caps stay safe); [`Live::attempt_failed`] and
    /// [`Live::call_ended`] say which.
    pub fn released(&mut self, target: i64, now_ms: Millis) {
        self.call_ended(target, now_ms);
    }

    /// The reserved attempt on `target` ended unanswered (busy, no answer, failure, caller gave
    /// up): its ringing count goes down.
    pub fn attempt_failed(&mut self, target: i64, _now_ms: Millis) {
        if let Some(st) = self.targets.get_mut(&target) {
            if st.ringing > 0 {
                st.ringing -= 1;
            } else {
                st.connected = st.connected.saturating_sub(1);
            }
        }
    }

    /// A connected call on `target` hung up: its connected count goes down (the cap counters of
    /// the period keep it). When an earlier [`Live::released`] already ended a connected call in
    /// place of a ringing attempt, this ends the ringing one it left behind, so the live count
    /// stays exact.
    pub fn call_ended(&mut self, target: i64, _now_ms: Millis) {
        if let Some(st) = self.targets.get_mut(&target) {
            if st.connected > 0 {
                st.connected -= 1;
            } else {
                st.ringing = st.ringing.saturating_sub(1);
            }
        }
    }

    /// Health from OPTIONS probing: a down target is never eligible.
    pub fn set_health(&mut self, target: i64, up: bool) {
        match self.targets.get_mut(&target) {
            Some(st) => st.down = !up,
            None if !up => {
                let mut st = TargetLive::IDLE;
                st.down = true;
                self.targets.insert(target, st);
            }
            None => {}
        }
    }

    /// Calls ringing or connected on `target`.
    pub fn live_calls(&self, target: i64) -> u32 {
        self.targets.get(&target).map_or(0, TargetLive::live)
    }

    /// The counters of `target` as they stand at `now_ms`.
    pub fn usage(&self, target: i64, now_ms: Millis) -> Usage {
        let st = self.state(target);
        Usage {
            ringing: st.ringing,
            connected: st.connected,
            hour: st.hour.count_at(now_ms),
            day: st.day.count_at(now_ms),
            month: st.month.count_at(now_ms),
            volume: st.volume.at(now_ms),
            down: st.down,
        }
    }

    /// Drops counters of targets no longer in any plan, expired buckets and memory (bounded
    /// memory): a known target's counters are dropped once nothing in them counts any more, a
    /// round-robin cursor once the target it points at is unknown, a duplicate-caller entry once
    /// its window has passed or its target is unknown.
    pub fn prune(&mut self, known_targets: &HashSet<i64>, now_ms: Millis) {
        self.targets
            .retain(|id, st| known_targets.contains(id) && !st.is_idle(now_ms));
        self.cursors.retain(|_, last| known_targets.contains(last));
        self.callers.retain(|_, memory| {
            memory.retain(|_, r| r.forget_at > now_ms && known_targets.contains(&r.target));
            !memory.is_empty()
        });
        self.scratch.shrink_to(64);
    }

    /// How many targets, round-robin cursors and remembered callers are held (memory checks).
    #[cfg(test)]
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        let callers = self.callers.values().map(HashMap::len).sum();
        (self.targets.len(), self.cursors.len(), callers)
    }

    /// The counters of a target (idle when it has none).
    fn state(&self, target: i64) -> &TargetLive {
        self.targets.get(&target).unwrap_or(&TargetLive::IDLE)
    }

    /// The duplicate-caller rule: a decision when it applies, `None` to route normally.
    fn duplicate_caller(
        &mut self,
        plan: &CompiledPlan,
        facts: &CallFacts,
        tried: &[i64],
        now: Millis,
    ) -> Option<Decision> {
        let rules = plan.plan();
        let rule = rules.duplicate_caller?;
        let caller = facts.caller.as_deref()?;
        let seen = *self.callers.get(&rules.id)?.get(caller)?;
        if now.saturating_sub(seen.answered_at) >= i64::from(rule.window_hours) * HOUR_MS {
            return None;
        }
        match rule.action {
            DuplicateAction::Reject => Some(Decision::Reject {
                status: DUPLICATE_CALLER_STATUS,
                reason: DUPLICATE_CALLER_REASON.to_string(),
                cause: RejectCause::DuplicateCaller,
            }),
            DuplicateAction::SameTarget if tried.is_empty() => {
                let index = plan.index_of(seen.target)?;
                let t = &plan.targets[index];
                if plan.in_tier(index) && self.eligible(&rules.filters, facts, t, tried, now) {
                    Some(self.reserve(plan, index, false, now))
                } else if plan.overflow == Some(index) && self.available(t, tried, now) {
                    Some(self.reserve(plan, index, true, now))
                } else {
                    None
                }
            }
            DuplicateAction::SameTarget => None,
        }
    }

    /// The first tier (ascending priority) with an eligible target decides, by the plan's
    /// strategy. Returns the chosen target's index in the plan.
    fn choose_in_tiers(
        &mut self,
        plan: &CompiledPlan,
        facts: &CallFacts,
        tried: &[i64],
        now: Millis,
        rng: &mut impl rand::Rng,
    ) -> Option<usize> {
        let rules = plan.plan();
        let mut candidates = std::mem::take(&mut self.scratch);
        let mut chosen = None;
        for tier in &plan.tiers {
            candidates.clear();
            for &index in &tier.members {
                let t = &plan.targets[index];
                if !self.eligible(&rules.filters, facts, t, tried, now) {
                    continue;
                }
                let st = self.state(t.id);
                candidates.push(Candidate {
                    index,
                    id: t.id,
                    weight: t.weight,
                    live: st.live(),
                    concurrent: t.caps.concurrent,
                    volume: match rules.strategy {
                        Strategy::LowestVolume => st.volume.at(now),
                        _ => 0,
                    },
                });
            }
            if candidates.is_empty() {
                continue;
            }
            let pos = match rules.strategy {
                Strategy::Weighted => select::weighted(&candidates, rng),
                Strategy::RoundRobin => {
                    let key = (rules.id, tier.priority);
                    let pos = select::round_robin(&candidates, self.cursors.get(&key).copied());
                    self.cursors.insert(key, candidates[pos].id);
                    if self.sharing {
                        self.outbox.push(Shared::Cursor {
                            plan: rules.id,
                            priority: tier.priority,
                            target: candidates[pos].id,
                        });
                    }
                    pos
                }
                Strategy::LeastBusy => select::least_busy(&candidates),
                Strategy::LowestVolume => select::lowest_volume(&candidates),
            };
            chosen = Some(candidates[pos].index);
            break;
        }
        self.scratch = candidates;
        chosen
    }

    /// Whether a tier member may take the attempt: available, and through the plan's filters.
    fn eligible(
        &self,
        filters: &Filters,
        facts: &CallFacts,
        t: &Target,
        tried: &[i64],
        now: Millis,
    ) -> bool {
        self.available(t, tried, now) && passes_filters(filters, facts, t, now)
    }

    /// Whether a target may take the attempt regardless of filters: enabled, not tried for this
    /// call, up, and within its caps (the overflow target's test).
    fn available(&self, t: &Target, tried: &[i64], now: Millis) -> bool {
        if !t.enabled || tried.contains(&t.id) {
            return false;
        }
        let st = self.state(t.id);
        !st.down && st.within_caps(&t.caps, now)
    }

    /// Reserves the chosen target and says where the attempt goes.
    fn reserve(
        &mut self,
        plan: &CompiledPlan,
        index: usize,
        overflow: bool,
        now: Millis,
    ) -> Decision {
        let t = &plan.targets[index];
        let st = self.targets.entry(t.id).or_insert(TargetLive::IDLE);
        st.ringing = st.ringing.saturating_add(1);
        st.volume.record(now);
        Decision::Target {
            target: t.id,
            ring_timeout_secs: t.ring_timeout_secs.unwrap_or(plan.plan().ring_timeout_secs),
            overflow,
        }
    }
}

/// The plan's answer when it has no target for the call.
fn no_target(rules: &RoutingPlan, cause: RejectCause) -> Decision {
    Decision::Reject {
        status: rules.no_target.status,
        reason: rules.no_target.reason.clone(),
        cause,
    }
}

/// The plan's filters that are on: open now, caller geography, language.
fn passes_filters(filters: &Filters, facts: &CallFacts, t: &Target, now: Millis) -> bool {
    (!filters.language || speaks(t, facts.language.as_deref()))
        && (!filters.geography
            || serves(
                t,
                facts.caller_country.as_deref(),
                facts.caller_area.as_deref(),
            ))
        && (!filters.open_now || is_open(t, now))
}

/// Language filter: a target without languages serves every call, a call without a language
/// goes anywhere, else the call's primary language must be one of the target's.
fn speaks(t: &Target, language: Option<&str>) -> bool {
    let Some(language) = language else {
        return true;
    };
    let primary = language.split(['-', '_']).next().unwrap_or(language);
    t.languages.is_empty() || t.languages.iter().any(|l| l.eq_ignore_ascii_case(primary))
}

/// Geography filter: a target without regions serves every caller; otherwise the caller's
/// country must be known and in one of its regions (with the area code, for area regions).
fn serves(t: &Target, country: Option<&str>, area: Option<&str>) -> bool {
    t.regions.is_empty() || country.is_some_and(|c| t.regions.iter().any(|r| r.contains(c, area)))
}

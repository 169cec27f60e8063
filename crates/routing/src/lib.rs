//! Call routing: which target of a routing plan takes the next attempt of a call, decided from
//! the plan's tiers, strategy, filters, caps and overflow; pure and deterministic, with the clock
//! and the randomness passed in.
//!
//! # Layout
//! - `compiled`: the [`CompiledPlan`]: a routing plan with its targets resolved and grouped into
//!   tiers, built once when the routing table changes.
//! - `live`: the [`Live`] counters of every target and plan and [`Live::route`], the decision.
//! - `select`: the strategies that pick one target among the eligible targets of a tier.
//! - `counters`: per-target counters: calendar buckets for the hourly, daily and monthly caps and
//!   the one-hour ring of attempts for lowest-volume routing.
//! - `hours`: business hours ([`is_open`]) and the calendar arithmetic of the target's time zone.
//! - `tests`: table-driven tests of every routing rule, with an injected clock and a seeded rng.
//! - `props`: property tests: caps never exceeded, weighted shares, round-robin fairness.
//!
//! # Choices the routing rules leave open
//! - Time is milliseconds since the Unix epoch ([`Millis`]), as everywhere else in Callopt.
//! - Least busy ranks targets by live calls over their concurrency cap; a target without a
//!   concurrency cap has unlimited capacity, so its ratio is 0. Ties (equal ratio) go to the
//!   fewest live calls, then the lowest target id.
//! - Lowest volume counts the attempts routed to a target over the last hour in one-minute
//!   buckets: the current minute and the 59 before it.
//! - [`Live::released`] does not say whether the call it ends was ringing or connected. It takes
//!   a connected call first when the target has one, so the ringing count can only be
//!   overestimated, never underestimated: caps stay safe (see `live` for the argument).
//! - The duplicate-caller memory is kept only for plans that have a duplicate-caller rule, and an
//!   entry is forgotten by [`Live::prune`] once the window it was recorded with has passed.
//! - The duplicate-caller rule applies on every attempt when it rejects, and only on the first
//!   attempt (`tried` empty) when it sends the caller to the same target. The remembered target
//!   must pass the full eligibility test of a tier member (or the overflow test, when it is the
//!   overflow target).
//! - A weight of 0 (outside the domain's range) counts as 1 in weighted selection.
//! - The hourly bucket is the local calendar hour: on the day clocks go back, the repeated hour is
//!   one bucket (two real hours), which errs on the side of the cap.
//!
//! # Additions to the routing API
//! - [`Live::attempt_failed`] and [`Live::call_ended`]: the exact forms of [`Live::released`],
//!   for callers that know whether the attempt was answered.
//! - [`Live::usage`] and [`Usage`]: a target's counters, for dashboards, metrics and tests.
//! - [`CompiledPlan::tier_ids`], [`CompiledPlan::overflow_target`], [`Decision::target`],
//!   [`CallFacts::from_caller`], and the duplicate-caller status and reason as constants.

mod compiled;
mod counters;
mod hours;
mod live;
mod select;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use compiled::CompiledPlan;
pub use hours::{cap_period_starts, cap_periods, is_open};
pub use live::{Live, Shared, Usage};

use callopt_domain::{RoutingPlan, E164};

/// Milliseconds since the Unix epoch: the only clock this crate knows, always passed in.
pub type Millis = i64;

/// What is known about a call when routing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFacts {
    /// The caller id (E.164 when the caller has one, else the raw caller id): the key of the
    /// duplicate-caller rule. `None` for anonymous callers, who are never duplicates.
    pub caller: Option<String>,
    /// The caller's ISO 3166-1 alpha-2 country (upper case), for the geography filter.
    pub caller_country: Option<String>,
    /// The caller's area code, for targets that serve only some areas of a country.
    pub caller_area: Option<String>,
    /// The language the call wants (ISO 639-1), for the language filter.
    pub language: Option<String>,
}

impl CallFacts {
    /// The facts of a call from `caller`: its country and area code are read once here (they are
    /// slow to compute), not per routing decision.
    pub fn from_caller(caller: &E164, language: Option<String>) -> Self {
        let (caller_country, caller_area) = caller.country_and_area();
        Self {
            caller: Some(caller.as_str().to_string()),
            caller_country,
            caller_area,
            language,
        }
    }

    /// The facts of a call from the caller id `raw` that `plan`'s rules read. Parsing a
    /// number is the slowest step of routing a call, so it is parsed only when the plan filters
    /// on the caller's geography or remembers callers (a duplicate-caller rule); otherwise the
    /// caller id is kept as it arrived, which nothing then reads.
    pub fn for_plan(plan: &RoutingPlan, raw: &str, language: Option<String>) -> Self {
        if plan.filters.geography || plan.duplicate_caller.is_some() {
            return Self::from_caller_id(raw, language);
        }
        Self {
            caller: (!raw.is_empty()).then(|| raw.to_string()),
            language,
            ..Self::default()
        }
    }

    /// The facts of a call from the caller id `raw` as it arrived, parsed once: an id that is no
    /// valid number is kept as it is (for the duplicate-caller rule) with no geography, and an
    /// empty one is anonymous.
    pub fn from_caller_id(raw: &str, language: Option<String>) -> Self {
        match E164::parse_with_geography("caller", raw) {
            Ok((e164, caller_country, caller_area)) => Self {
                caller: Some(e164.as_str().to_string()),
                caller_country,
                caller_area,
                language,
            },
            Err(_) => Self {
                caller: (!raw.is_empty()).then(|| raw.to_string()),
                language,
                ..Self::default()
            },
        }
    }
}

/// Where the next attempt of a call goes, or why the call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send the attempt to this target; it is already reserved in [`Live`].
    Target {
        /// The target's id.
        target: i64,
        /// How long to ring it before giving up, in seconds.
        ring_timeout_secs: u32,
        /// Whether this is the plan's overflow target, taken because no tier had an eligible
        /// target.
        overflow: bool,
    },
    /// Refuse the call with this SIP status and reason phrase.
    Reject {
        /// The SIP status code.
        status: u16,
        /// The reason phrase.
        reason: String,
        /// Why the call is refused.
        cause: RejectCause,
    },
}

impl Decision {
    /// The chosen target, if any.
    pub fn target(&self) -> Option<i64> {
        match self {
            Self::Target { target, .. } => Some(*target),
            Self::Reject { .. } => None,
        }
    }
}

/// Why a call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectCause {
    /// No target of the plan (nor its overflow target) is eligible.
    NoEligibleTarget,
    /// The call already had the plan's maximum number of attempts.
    AttemptsExhausted,
    /// The caller had an answered call on this plan within the duplicate-caller window and the
    /// plan rejects duplicates.
    DuplicateCaller,
}

/// The SIP status of a call refused as a duplicate caller.
pub const DUPLICATE_CALLER_STATUS: u16 = 603;

/// The reason phrase of a call refused as a duplicate caller.
pub const DUPLICATE_CALLER_REASON: &str = "Duplicate Caller";

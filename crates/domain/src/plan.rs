//! Routing plans: which targets a campaign's calls go to, in what order, under which rules.

use crate::ValidationError;

/// How a target is chosen among the eligible targets of one tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// At random, in proportion to the targets' weights.
    Weighted,
    /// In turn, one after the other.
    RoundRobin,
    /// The fewest live calls relative to the concurrency cap.
    LeastBusy,
    /// The fewest calls in the last hour.
    LowestVolume,
}

impl Strategy {
    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::RoundRobin => "round_robin",
            Self::LeastBusy => "least_busy",
            Self::LowestVolume => "lowest_volume",
        }
    }

    /// Parses the API spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "weighted" => Ok(Self::Weighted),
            "round_robin" => Ok(Self::RoundRobin),
            "least_busy" => Ok(Self::LeastBusy),
            "lowest_volume" => Ok(Self::LowestVolume),
            _ => Err(ValidationError::new(
                field,
                "expected \"weighted\", \"round_robin\", \"least_busy\" or \"lowest_volume\"",
            )),
        }
    }
}

/// Which filters a plan applies before choosing (caps always apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    /// Skip targets outside their business hours.
    pub open_now: bool,
    /// Skip targets whose regions do not include the caller's.
    pub geography: bool,
    /// Skip targets that do not speak the call's language.
    pub language: bool,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            open_now: true,
            geography: false,
            language: false,
        }
    }
}

/// The end of an attempt, as far as routing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The target answered.
    Answered,
    /// Busy (SIP 486 or 600, carrier `busy`).
    Busy,
    /// Rang until the ring timeout (or carrier `no-answer`).
    NoAnswer,
    /// Refused or failed (SIP 5xx, 408, 480 and other final failures, carrier `failed`).
    Failed,
    /// Could not be reached at all (no answer to the request, connection refused, marked down).
    Unreachable,
    /// The caller hung up while it rang.
    Canceled,
}

impl AttemptOutcome {
    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Failed => "failed",
            Self::Unreachable => "unreachable",
            Self::Canceled => "canceled",
        }
    }

    /// Parses the store spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "answered" => Ok(Self::Answered),
            "busy" => Ok(Self::Busy),
            "no_answer" => Ok(Self::NoAnswer),
            "failed" => Ok(Self::Failed),
            "unreachable" => Ok(Self::Unreachable),
            "canceled" => Ok(Self::Canceled),
            _ => Err(ValidationError::new(
                field,
                format!("unknown outcome {raw:?}"),
            )),
        }
    }
}

/// Which failed attempts send the call on to the next target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reroute {
    /// On busy.
    pub busy: bool,
    /// On no answer.
    pub no_answer: bool,
    /// On failure.
    pub failure: bool,
    /// On an unreachable target.
    pub unreachable: bool,
}

impl Default for Reroute {
    fn default() -> Self {
        Self {
            busy: true,
            no_answer: true,
            failure: true,
            unreachable: true,
        }
    }
}

impl Reroute {
    /// The API spelling of the outcomes that reroute.
    pub const NAMES: [&'static str; 4] = ["busy", "no_answer", "failure", "unreachable"];

    /// Parses a list of outcome names.
    pub fn parse(field: &str, raw: &[String]) -> Result<Self, ValidationError> {
        let mut r = Self {
            busy: false,
            no_answer: false,
            failure: false,
            unreachable: false,
        };
        for (i, name) in raw.iter().enumerate() {
            match name.as_str() {
                "busy" => r.busy = true,
                "no_answer" => r.no_answer = true,
                "failure" => r.failure = true,
                "unreachable" => r.unreachable = true,
                _ => {
                    return Err(ValidationError::new(
                        format!("{field}[{i}]"),
                        "expected \"busy\", \"no_answer\", \"failure\" or \"unreachable\"",
                    ))
                }
            }
        }
        Ok(r)
    }

    /// The names of the outcomes that reroute.
    pub fn names(&self) -> Vec<&'static str> {
        let flags = [self.busy, self.no_answer, self.failure, self.unreachable];
        Self::NAMES
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Whether an attempt that ended so sends the call on.
    pub fn on(&self, outcome: AttemptOutcome) -> bool {
        match outcome {
            AttemptOutcome::Busy => self.busy,
            AttemptOutcome::NoAnswer => self.no_answer,
            AttemptOutcome::Failed => self.failure,
            AttemptOutcome::Unreachable => self.unreachable,
            AttemptOutcome::Answered | AttemptOutcome::Canceled => false,
        }
    }
}

/// What a plan does with a caller who called recently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateAction {
    /// Send the call to the target that took the caller's last call, if it is eligible.
    SameTarget,
    /// Refuse the call.
    Reject,
}

impl DuplicateAction {
    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SameTarget => "same_target",
            Self::Reject => "reject",
        }
    }

    /// Parses the API spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "same_target" => Ok(Self::SameTarget),
            "reject" => Ok(Self::Reject),
            _ => Err(ValidationError::new(
                field,
                "expected \"same_target\" or \"reject\"",
            )),
        }
    }
}

/// The duplicate-caller rule: a caller seen within the window is treated by `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateCaller {
    /// How far back a previous call counts, in hours (1..=720).
    pub window_hours: u32,
    /// What to do.
    pub action: DuplicateAction,
}

/// What the caller hears when no target is eligible: a SIP status and a reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoTargetAnswer {
    /// 480 (Temporarily Unavailable) or 503 (Service Unavailable).
    pub status: u16,
    /// The reason phrase (printable ASCII, at most 100 characters).
    pub reason: String,
}

impl Default for NoTargetAnswer {
    fn default() -> Self {
        Self {
            status: 480,
            reason: "No Target Available".into(),
        }
    }
}

impl NoTargetAnswer {
    /// Checks the status and the reason phrase.
    pub fn parse(field: &str, status: u16, reason: &str) -> Result<Self, ValidationError> {
        if status != 480 && status != 503 {
            return Err(ValidationError::new(
                format!("{field}.status"),
                "expected 480 or 503",
            ));
        }
        let reason = reason.trim();
        if reason.is_empty()
            || reason.len() > 100
            || !reason.bytes().all(|b| (b' '..0x7f).contains(&b))
        {
            return Err(ValidationError::new(
                format!("{field}.reason"),
                "1 to 100 printable ASCII characters",
            ));
        }
        Ok(Self {
            status,
            reason: reason.to_string(),
        })
    }
}

/// A routing plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingPlan {
    /// Store id.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// The plan's targets; tiers come from their priorities.
    pub targets: Vec<i64>,
    /// How a tier chooses.
    pub strategy: Strategy,
    /// Which filters apply.
    pub filters: Filters,
    /// The duplicate-caller rule, if any.
    pub duplicate_caller: Option<DuplicateCaller>,
    /// Ring timeout for targets that set none, seconds.
    pub ring_timeout_secs: u32,
    /// Which outcomes send the call on.
    pub reroute: Reroute,
    /// Most targets tried for one call (1..=10), the overflow target included.
    pub max_attempts: u32,
    /// Tried when no target of the plan is eligible or all attempts failed.
    pub overflow_target: Option<i64>,
    /// The answer when nothing is eligible.
    pub no_target: NoTargetAnswer,
}

/// Bounds of a plan's attempts.
pub const MAX_ATTEMPTS_RANGE: std::ops::RangeInclusive<u32> = 1..=10;

/// Bounds of the duplicate-caller window, hours.
pub const DUPLICATE_WINDOW_RANGE: std::ops::RangeInclusive<u32> = 1..=720;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reroute_round_trips() {
        let r = Reroute::parse("reroute_on", &["busy".into(), "unreachable".into()]).unwrap();
        assert_eq!(r.names(), vec!["busy", "unreachable"]);
        assert!(r.on(AttemptOutcome::Busy));
        assert!(!r.on(AttemptOutcome::NoAnswer));
        assert!(!r.on(AttemptOutcome::Answered));
        let e = Reroute::parse("reroute_on", &["busy".into(), "x".into()]).unwrap_err();
        assert_eq!(e.field, "reroute_on[1]");
    }

    #[test]
    fn no_target_answer() {
        assert!(NoTargetAnswer::parse("n", 503, "Closed").is_ok());
        assert_eq!(
            NoTargetAnswer::parse("n", 404, "x").unwrap_err().field,
            "n.status"
        );
        assert_eq!(
            NoTargetAnswer::parse("n", 480, "bad\r\nheader")
                .unwrap_err()
                .field,
            "n.reason"
        );
    }

    #[test]
    fn spellings_round_trip() {
        for s in ["weighted", "round_robin", "least_busy", "lowest_volume"] {
            assert_eq!(Strategy::parse("s", s).unwrap().as_str(), s);
        }
        for o in [
            "answered",
            "busy",
            "no_answer",
            "failed",
            "unreachable",
            "canceled",
        ] {
            assert_eq!(AttemptOutcome::parse("o", o).unwrap().as_str(), o);
        }
    }
}

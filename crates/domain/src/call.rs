//! Calls: how an inbound call ended and who ended it.

use crate::ValidationError;

/// The final outcome of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Still ringing or connected.
    InProgress,
    /// A target answered.
    Answered,
    /// Every target tried was busy (the last attempt's outcome decides).
    Busy,
    /// The last target tried did not answer in time.
    NoAnswer,
    /// The last target tried failed or could not be reached.
    Failed,
    /// The caller hung up before a target answered.
    Abandoned,
    /// Refused before any attempt: no eligible target, unknown number, duplicate caller.
    Rejected,
    /// The service stopped while the call was in progress; found and closed at the next start.
    Interrupted,
}

impl CallOutcome {
    /// Every outcome, in the store's spelling order.
    pub const ALL: [Self; 8] = [
        Self::InProgress,
        Self::Answered,
        Self::Busy,
        Self::NoAnswer,
        Self::Failed,
        Self::Abandoned,
        Self::Rejected,
        Self::Interrupted,
    ];

    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Answered => "answered",
            Self::Busy => "busy",
            Self::NoAnswer => "no_answer",
            Self::Failed => "failed",
            Self::Abandoned => "abandoned",
            Self::Rejected => "rejected",
            Self::Interrupted => "interrupted",
        }
    }

    /// Parses the API spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|o| o.as_str()).collect();
                ValidationError::new(field, format!("expected one of {}", names.join(", ")))
            })
    }
}

/// Who ended a connected call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HungUpBy {
    /// The caller.
    Caller,
    /// The target (the call center's side).
    Target,
    /// Callopt (a failure, a shutdown, a timeout).
    System,
}

impl HungUpBy {
    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Caller => "caller",
            Self::Target => "target",
            Self::System => "system",
        }
    }

    /// Parses the store spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "caller" => Ok(Self::Caller),
            "target" => Ok(Self::Target),
            "system" => Ok(Self::System),
            _ => Err(ValidationError::new(
                field,
                "expected \"caller\", \"target\" or \"system\"",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for o in CallOutcome::ALL {
            assert_eq!(CallOutcome::parse("o", o.as_str()).unwrap(), o);
        }
        assert_eq!(
            CallOutcome::parse("outcome", "x").unwrap_err().field,
            "outcome"
        );
        for h in [HungUpBy::Caller, HungUpBy::Target, HungUpBy::System] {
            assert_eq!(HungUpBy::parse("h", h.as_str()).unwrap(), h);
        }
    }
}

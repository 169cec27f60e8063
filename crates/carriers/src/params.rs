//! A webhook's parameters and what they mean in each carrier's dialect: an incoming call, the
//! end of a dial attempt (the action request), and the end of the call (the status callback).

use crate::Carrier;

/// The name/value parameters of one webhook request (form fields, or a JSON object's string
/// and number members), in the order received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

/// A parameter a webhook must carry is missing or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {carrier} webhook has no {name} parameter")]
pub struct MissingParam {
    /// The carrier whose dialect names it.
    pub carrier: Carrier,
    /// The parameter's name.
    pub name: &'static str,
}

impl Params {
    /// Parameters from name/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Parameters of an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Self {
        Self::from_pairs(url::form_urlencoded::parse(body))
    }

    /// Adds one.
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.to_string(), value.to_string()));
    }

    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn required(&self, carrier: Carrier, name: &'static str) -> Result<&str, MissingParam> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(MissingParam { carrier, name })
    }
}

/// The parameter naming the carrier's call (the caller's leg).
pub fn call_id_name(carrier: Carrier) -> &'static str {
    match carrier {
        Carrier::Plivo => "CallUUID",
        _ => "CallSid",
    }
}

/// A phone number as a webhook gives it, in E.164 where it is one: Plivo leaves out the `+`,
/// SIP-originated calls give a `sip:` URI whose user part is the number.
pub fn normalize_number(raw: &str) -> String {
    let raw = raw.trim();
    let user = raw
        .strip_prefix("sip:")
        .or_else(|| raw.strip_prefix("sips:"))
        .map(|rest| rest.split(['@', ';']).next().unwrap_or(rest))
        .unwrap_or(raw);
    let digits = user.strip_prefix('+').unwrap_or(user);
    if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        format!("+{digits}")
    } else {
        user.to_string()
    }
}

/// A new call on a tracking number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The carrier's id of the call.
    pub call_id: String,
    /// The caller (E.164 where it is a number).
    pub from: String,
    /// The tracking number called (E.164 where it is a number).
    pub to: String,
    /// The carrier account the call belongs to, when the dialect says.
    pub account: Option<String>,
}

/// Reads an incoming call.
pub fn incoming(carrier: Carrier, p: &Params) -> Result<Incoming, MissingParam> {
    Ok(Incoming {
        call_id: p.required(carrier, call_id_name(carrier))?.to_string(),
        from: normalize_number(p.get("From").unwrap_or_default()),
        to: normalize_number(p.required(carrier, "To")?),
        account: p
            .get("AccountSid")
            .filter(|a| !a.is_empty())
            .map(str::to_string),
    })
}

/// How a dial attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialStatus {
    /// The target answered (the conversation may be over already).
    Answered,
    /// The target was busy.
    Busy,
    /// The target did not answer within the timeout.
    NoAnswer,
    /// The attempt failed (bad number, carrier error).
    Failed,
    /// The caller hung up before the target answered.
    Canceled,
}

impl DialStatus {
    /// The dialect's status value, if known.
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw.trim().to_ascii_lowercase().as_str() {
            "completed" | "answered" | "in-progress" => Self::Answered,
            "busy" => Self::Busy,
            "no-answer" => Self::NoAnswer,
            // Plivo's `timeout` is a failure to connect, not an unanswered ring.
            "failed" | "timeout" => Self::Failed,
            "canceled" | "cancel" => Self::Canceled,
            _ => return None,
        })
    }
}

/// The end of a dial attempt: the action request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialEnded {
    /// The carrier's id of the caller's call.
    pub call_id: String,
    /// How the attempt ended.
    pub status: DialStatus,
    /// Seconds the target was connected, when the dialect says.
    pub talk_secs: Option<u32>,
    /// Whether the caller has hung up too (else the target hung up first and the caller is
    /// still on the line).
    pub caller_gone: bool,
}

/// A parameter is present but not a value the dialect defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// Missing.
    #[error(transparent)]
    Missing(#[from] MissingParam),
    /// Not understood.
    #[error("the {name} parameter has an unknown value")]
    Unknown {
        /// The parameter's name.
        name: &'static str,
    },
}

/// Reads the end of a dial attempt.
pub fn dial_ended(carrier: Carrier, p: &Params) -> Result<DialEnded, ParamError> {
    let (status_name, duration_name) = match carrier {
        Carrier::Plivo => ("DialStatus", "DialBLegDuration"),
        _ => ("DialCallStatus", "DialCallDuration"),
    };
    let status = DialStatus::parse(p.required(carrier, status_name)?)
        .ok_or(ParamError::Unknown { name: status_name })?;
    Ok(DialEnded {
        call_id: p.required(carrier, call_id_name(carrier))?.to_string(),
        status,
        talk_secs: p.get(duration_name).and_then(|d| d.trim().parse().ok()),
        caller_gone: p
            .get("CallStatus")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("completed")),
    })
}

/// The end of the caller's call: the status callback (Plivo's hangup URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnded {
    /// The carrier's id of the call.
    pub call_id: String,
    /// Whether the call is over (a final status), as opposed to a progress report.
    pub is_final: bool,
    /// Whether the caller hung up, when the dialect says (`HangupSource`).
    pub by_caller: Option<bool>,
}

/// Reads a status callback.
pub fn call_ended(carrier: Carrier, p: &Params) -> Result<CallEnded, MissingParam> {
    let status = p.required(carrier, "CallStatus")?.to_ascii_lowercase();
    let is_final = matches!(
        status.as_str(),
        "completed" | "busy" | "failed" | "no-answer" | "canceled" | "cancel" | "timeout"
    );
    let by_caller = p.get("HangupSource").map(|s| {
        let s = s.trim().to_ascii_lowercase();
        s == "caller" || s == "a leg" || s == "a_leg"
    });
    Ok(CallEnded {
        call_id: p.required(carrier, call_id_name(carrier))?.to_string(),
        is_final,
        by_caller,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_e164() {
        assert_eq!(normalize_number("14155550123"), "+14155550123");
        assert_eq!(normalize_number("+14155550123"), "+14155550123");
        assert_eq!(
            normalize_number("sip:+14155550123@trunk.example;user=phone"),
            "+14155550123"
        );
        assert_eq!(normalize_number("anonymous"), "anonymous");
        assert_eq!(normalize_number(""), "");
    }

    #[test]
    fn each_dialect_names_its_parameters() {
        let twilio = Params::from_pairs([
            ("CallSid", "CA1"),
            ("DialCallStatus", "busy"),
            ("CallStatus", "in-progress"),
        ]);
        let d = dial_ended(Carrier::Twilio, &twilio).unwrap();
        assert_eq!(
            (d.status, d.caller_gone, d.talk_secs),
            (DialStatus::Busy, false, None)
        );
        assert!(dial_ended(Carrier::Plivo, &twilio).is_err());
        let plivo = Params::from_pairs([
            ("CallUUID", "u1"),
            ("DialStatus", "completed"),
            ("DialBLegDuration", "42"),
            ("CallStatus", "completed"),
        ]);
        let d = dial_ended(Carrier::Plivo, &plivo).unwrap();
        assert_eq!(
            (d.status, d.caller_gone, d.talk_secs),
            (DialStatus::Answered, true, Some(42))
        );
        let odd = Params::from_pairs([("CallSid", "CA1"), ("DialCallStatus", "exploded")]);
        assert_eq!(
            dial_ended(Carrier::Twilio, &odd),
            Err(ParamError::Unknown {
                name: "DialCallStatus"
            })
        );
        let inc = incoming(
            Carrier::Plivo,
            &Params::from_pairs([
                ("CallUUID", "u1"),
                ("From", "14155550100"),
                ("To", "14155550123"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (inc.from.as_str(), inc.to.as_str()),
            ("+14155550100", "+14155550123")
        );
        assert_eq!(
            incoming(Carrier::Twilio, &Params::from_pairs([("CallSid", "CA1")])),
            Err(MissingParam {
                carrier: Carrier::Twilio,
                name: "To"
            })
        );
    }

    #[test]
    fn status_callbacks_tell_final_from_progress() {
        let p = Params::from_pairs([("CallSid", "CA1"), ("CallStatus", "ringing")]);
        assert!(!call_ended(Carrier::Twilio, &p).unwrap().is_final);
        let p = Params::from_pairs([
            ("CallSid", "CA1"),
            ("CallStatus", "completed"),
            ("HangupSource", "callee"),
        ]);
        let e = call_ended(Carrier::Telnyx, &p).unwrap();
        assert_eq!((e.is_final, e.by_caller), (true, Some(false)));
    }
}

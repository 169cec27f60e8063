//! Tracking numbers: E.164 numbers an account owns, classified at import.

use crate::{ValidationError, E164};

/// Whether a number is geographic or free to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberKind {
    /// A geographic number, with an area code.
    Local,
    /// A toll-free number.
    TollFree,
}

impl NumberKind {
    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::TollFree => "toll_free",
        }
    }

    /// Parses the API spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "local" => Ok(Self::Local),
            "toll_free" => Ok(Self::TollFree),
            _ => Err(ValidationError::new(
                field,
                "expected \"local\" or \"toll_free\"",
            )),
        }
    }
}

/// Whether a tracking number may be served and routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumberStatus {
    /// Served to visitors and routed.
    Active,
    /// Held back by the Guard: neither served nor handed out again until reviewed.
    Quarantined,
    /// Given back to the carrier; kept for the history of its calls.
    Released,
}

impl NumberStatus {
    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Quarantined => "quarantined",
            Self::Released => "released",
        }
    }

    /// Parses the API spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "active" => Ok(Self::Active),
            "quarantined" => Ok(Self::Quarantined),
            "released" => Ok(Self::Released),
            _ => Err(ValidationError::new(
                field,
                "expected \"active\", \"quarantined\" or \"released\"",
            )),
        }
    }
}

/// A tracking number with what DNI matches visitors on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingNumber {
    /// The number itself.
    pub e164: E164,
    /// ISO 3166-1 alpha-2 country, from the numbering plan.
    pub country: String,
    /// Area code (national destination code), when the plan has one.
    pub region: Option<String>,
    /// Local or toll-free.
    pub kind: NumberKind,
    /// Languages (ISO 639-1, lower case) of the visitors the number is meant for.
    pub languages: Vec<String>,
    /// Whether it may be served.
    pub status: NumberStatus,
}

impl TrackingNumber {
    /// Builds a tracking number from raw input: the number (international, or national for
    /// `country`), and its languages. Country, region and kind come from the numbering plan
    /// unless given.
    pub fn parse(
        raw: &str,
        country: Option<&str>,
        languages: &[String],
        kind: Option<NumberKind>,
    ) -> Result<Self, ValidationError> {
        let e164 = E164::parse("e164", raw, country)?;
        let country = e164
            .country()
            .ok_or_else(|| ValidationError::new("e164", "the number belongs to no country"))?;
        let languages = parse_languages("languages", languages)?;
        let kind = kind.unwrap_or(if e164.is_toll_free() {
            NumberKind::TollFree
        } else {
            NumberKind::Local
        });
        let region = match kind {
            NumberKind::Local => e164.area_code(),
            NumberKind::TollFree => None,
        };
        Ok(Self {
            e164,
            country,
            region,
            kind,
            languages,
            status: NumberStatus::Active,
        })
    }
}

/// Normalises a list of language tags to their primary ISO 639 subtags, lower case.
pub fn parse_languages(field: &str, raw: &[String]) -> Result<Vec<String>, ValidationError> {
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, tag) in raw.iter().enumerate() {
        let primary = tag
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(ValidationError::new(
                format!("{field}[{i}]"),
                format!("{tag:?} is not a language tag such as \"en\" or \"de-AT\""),
            ));
        }
        if !out.contains(&primary) {
            out.push(primary);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_from_the_plan() {
        let n = TrackingNumber::parse("+33 1 42 68 53 00", None, &["FR".into()], None).unwrap();
        assert_eq!(n.country, "FR");
        assert_eq!(n.kind, NumberKind::Local);
        assert_eq!(n.languages, vec!["fr"]);
        let tf = TrackingNumber::parse("+1 888 555 0100", None, &[], None).unwrap();
        assert_eq!(tf.kind, NumberKind::TollFree);
        assert_eq!(tf.region, None);
    }

    #[test]
    fn bad_language_names_its_index() {
        let err = TrackingNumber::parse("+14155552671", None, &["en".into(), "1".into()], None)
            .unwrap_err();
        assert_eq!(err.field, "languages[1]");
    }
}

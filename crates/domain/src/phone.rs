//! E.164 phone numbers: parsed, classified and formatted through the `phonenumber` crate.

use crate::ValidationError;
use phonenumber::{country, Mode, PhoneNumber};
use std::fmt;
use std::str::FromStr;

/// A valid phone number in E.164 form (`+14155550100`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164(String);

impl E164 {
    /// Parses a number written in international form, or in the national form of `default_country`
    /// (an ISO 3166-1 alpha-2 code) when one is given. Rejects numbers that are not valid.
    pub fn parse(
        field: &str,
        raw: &str,
        default_country: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 40 {
            return Err(ValidationError::new(field, "a phone number is required"));
        }
        let region = match default_country {
            Some(c) => Some(parse_country(c).ok_or_else(|| {
                ValidationError::new("country", format!("unknown country code {c:?}"))
            })?),
            None => None,
        };
        Self::parse_number(field, raw, region).map(|(e164, _)| e164)
    }

    /// A caller's number with its country and area code, for the cost of one parse (the caller
    /// geography a call is routed by, read as it comes in).
    pub fn parse_with_geography(
        field: &str,
        raw: &str,
    ) -> Result<(Self, Option<String>, Option<String>), ValidationError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 40 {
            return Err(ValidationError::new(field, "a phone number is required"));
        }
        let (e164, number) = Self::parse_number(field, raw, None)?;
        let country = number.country().id().map(|id| id.as_ref().to_string());
        // A carrier code dialled in front (`+57 07 …`) changes the national format: read the
        // area code from the number itself, as `area_code` does.
        let area = if number.carrier().is_some() {
            e164.area_code()
        } else {
            area_code_of(&number)
        };
        Ok((e164, country, area))
    }

    fn parse_number(
        field: &str,
        raw: &str,
        region: Option<country::Id>,
    ) -> Result<(Self, PhoneNumber), ValidationError> {
        let parsed = phonenumber::parse(region, raw).map_err(|_| {
            ValidationError::new(
                field,
                format!("{raw:?} is not a phone number (use E.164 such as +14155550100)"),
            )
        })?;
        let invalid = || {
            ValidationError::new(
                field,
                format!("{raw:?} is not a valid number in its numbering plan"),
            )
        };
        if !phonenumber::is_valid(&parsed) {
            return Err(invalid());
        }
        let e164 = parsed.format().mode(Mode::E164).to_string();
        // The country given as a hint can make the library take a number as valid that it
        // refuses in E.164 alone (`+7833…` read with `SA`): the number is kept only if it stays
        // valid as it will be stored and read back.
        if region.is_some() {
            let alone = phonenumber::parse(None, &e164).map_err(|_| invalid())?;
            if !phonenumber::is_valid(&alone) {
                return Err(invalid());
            }
            return Ok((Self(e164), alone));
        }
        Ok((Self(e164), parsed))
    }

    /// The number in E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parsed(&self) -> PhoneNumber {
        phonenumber::parse(None, &self.0).expect("E164 holds a valid number")
    }

    /// The ISO 3166-1 alpha-2 country the number belongs to, if its plan names one.
    pub fn country(&self) -> Option<String> {
        self.parsed()
            .country()
            .id()
            .map(|id| id.as_ref().to_string())
    }

    /// The country calling code, as digits (`1`, `44`, `49`).
    pub fn calling_code(&self) -> String {
        self.parsed().code().value().to_string()
    }

    /// The national significant number, as digits (the number without calling code or trunk
    /// prefix: `4155552671` for `+14155552671`).
    pub fn national_significant(&self) -> String {
        let cc = self.calling_code();
        self.0[1 + cc.len()..].to_string()
    }

    /// Whether the number is toll-free (else it is treated as local).
    pub fn is_toll_free(&self) -> bool {
        matches!(
            self.parsed().number_type(&phonenumber::metadata::DATABASE),
            phonenumber::Type::TollFree
        )
    }

    /// The national destination code (area code) when the plan has one: the leading digits of the
    /// national number that the plan's national format groups first.
    pub fn area_code(&self) -> Option<String> {
        area_code_of(&self.parsed())
    }

    /// The country and the area code together, for the cost of one parse (the caller
    /// geography of a call).
    pub fn country_and_area(&self) -> (Option<String>, Option<String>) {
        let number = self.parsed();
        let country = number.country().id().map(|id| id.as_ref().to_string());
        (country, area_code_of(&number))
    }

    /// The display form for a visitor in `visitor_country`: national form when the visitor is in
    /// the number's country, international form otherwise (or when the country is unknown).
    pub fn display_for(&self, visitor_country: Option<&str>) -> String {
        self.formats().for_visitor(visitor_country).to_string()
    }

    /// The number's country and both written forms, computed once (formatting goes through the
    /// numbering plan, which is too slow to repeat on every request).
    pub fn formats(&self) -> NumberFormats {
        let number = self.parsed();
        NumberFormats {
            country: number.country().id().map(|id| id.as_ref().to_string()),
            national: number.format().mode(Mode::National).to_string(),
            international: number.format().mode(Mode::International).to_string(),
        }
    }
}

/// A number's country and written forms, for showing it to visitors of any country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFormats {
    /// ISO 3166-1 alpha-2 country of the number, when its plan names one.
    pub country: Option<String>,
    /// National form, for visitors in the number's country (`(415) 555-2671`).
    pub national: String,
    /// International form, for everyone else (`+1 415-555-2671`).
    pub international: String,
}

impl NumberFormats {
    /// The form for a visitor in `visitor_country`: national at home, international elsewhere
    /// or when the visitor's country is unknown.
    pub fn for_visitor(&self, visitor_country: Option<&str>) -> &str {
        match (visitor_country, &self.country) {
            (Some(v), Some(h)) if v.eq_ignore_ascii_case(h) => &self.national,
            _ => &self.international,
        }
    }
}

/// The area code of a parsed number: the first digit group of its national format, when the
/// format has more than one group.
fn area_code_of(number: &PhoneNumber) -> Option<String> {
    let national = number.format().mode(Mode::National).to_string();
    let digits_groups: Vec<String> = national
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    if digits_groups.len() < 2 {
        return None;
    }
    let first = digits_groups[0].trim_start_matches('0');
    (!first.is_empty()).then(|| first.to_string())
}

/// Parses an ISO 3166-1 alpha-2 code into the crate's country id.
pub fn parse_country(code: &str) -> Option<country::Id> {
    country::Id::from_str(&code.to_ascii_uppercase()).ok()
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_international_and_national_forms() {
        let a = E164::parse("e164", "+1 415-555-2671", None).unwrap();
        assert_eq!(a.as_str(), "+14155552671");
        let b = E164::parse("e164", "(415) 555-2671", Some("US")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.country().as_deref(), Some("US"));
        assert_eq!(a.area_code().as_deref(), Some("415"));
        assert_eq!(a.calling_code(), "1");
        assert_eq!(a.national_significant(), "4155552671");
        let (c, country, area) = E164::parse_with_geography("caller", " +1 415-555-2671").unwrap();
        assert_eq!(c, a);
        assert_eq!((country, area), a.country_and_area());
        assert!(E164::parse_with_geography("caller", "anonymous").is_err());
    }

    #[test]
    fn rejects_garbage_and_invalid_numbers() {
        let err = E164::parse("e164", "hello", None).unwrap_err();
        assert_eq!(err.field, "e164");
        assert!(E164::parse("e164", "+1 000 000 0000", None).is_err());
        assert!(E164::parse("e164", "", None).is_err());
        assert!(E164::parse("e164", "0301234567", Some("XX")).is_err());
        // Valid only under another country's hint: refused, as it would be read back alone
        // (found by the parser fuzz).
        assert!(E164::parse("e164", "+78330000000", None).is_err());
        assert!(E164::parse("e164", "+78330000000", Some("SA")).is_err());
    }

    #[test]
    fn classifies_toll_free() {
        assert!(E164::parse("n", "+18005550199", None)
            .unwrap()
            .is_toll_free());
        assert!(!E164::parse("n", "+14155552671", None)
            .unwrap()
            .is_toll_free());
    }

    #[test]
    fn display_depends_on_visitor_country() {
        let de = E164::parse("n", "+49 30 901820", None).unwrap();
        assert_eq!(de.country().as_deref(), Some("DE"));
        assert_eq!(de.display_for(Some("DE")), "030 901820");
        assert_eq!(de.display_for(Some("US")), "+49 30 901820");
        assert_eq!(de.display_for(None), "+49 30 901820");
    }
}

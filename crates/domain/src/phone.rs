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
        Ok((e164, country, area_code_of(&number)))
    }

    fn parse_number(
        field: &str,
        raw: &str,
        region: Option<country::Id>,
    ) -> Result<(Self, PhoneNumber), ValidationError> {
        let parsed = read(region, raw).map_err(|_| {
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
            let alone = read(None, &e164).map_err(|_| invalid())?;
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
        read(None, &self.0).expect("E164 holds a valid number")
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

/// The area code of a parsed number: the first digit group after the calling code in its
/// international format, when the format has more than one group. The international format is
/// read rather than the national one because the latter carries the trunk prefix in some plans
/// (`8 (495) 123-45-67` in Russia, `06 1 …` in Hungary) and a carrier code in others.
fn area_code_of(number: &PhoneNumber) -> Option<String> {
    let international = number.format().mode(Mode::International).to_string();
    let digit_groups: Vec<&str> = international
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .skip(1)
        .collect();
    if digit_groups.len() < 2 {
        return None;
    }
    let first = digit_groups[0].trim_start_matches('0');
    (!first.is_empty()).then(|| first.to_string())
}

/// Reads a number through the numbering plan, keeping the digits it was written with.
///
/// The `phonenumber` crate strips a trunk prefix from the national number a second time, after
/// its own check that the stripped number is viable, and even after a `+`: `+7 812 123-45-67`
/// (Saint Petersburg) loses the `8` of its area code and `+7 800 …` (Russian toll-free) turns
/// into nonsense. So when the crate's reading is not valid, or has other digits than a number
/// written with `+`, the number is read again as written, under a region that has no trunk
/// prefix (Spain), which leaves the national number alone; a number in national form is first
/// put in international form under its region, with and then without one trunk prefix. That
/// reading is kept when it is valid. A trunk prefix really written after the calling code
/// (`+44 (0)20 …`) still goes, as the number with it is not valid.
fn read(region: Option<country::Id>, raw: &str) -> Result<PhoneNumber, phonenumber::ParseError> {
    let first = phonenumber::parse(region, raw)?;
    if first.extension().is_some() {
        return Ok(first);
    }
    let raw = raw.trim_start();
    let written: String = raw.chars().filter(char::is_ascii_digit).collect();
    let valid = phonenumber::is_valid(&first);
    let literal = |international: &str| {
        phonenumber::parse(Some(country::Id::ES), international)
            .ok()
            .filter(phonenumber::is_valid)
    };
    let better = if raw.starts_with('+') {
        let kept = first.format().mode(Mode::E164).to_string();
        if valid && kept[1..] == written {
            return Ok(first);
        }
        literal(raw)
    } else {
        let meta = region.and_then(|r| phonenumber::metadata::DATABASE.by_id(r.as_ref()));
        match meta {
            Some(meta) if !valid => {
                let code = meta.country_code();
                let stripped = meta
                    .national_prefix()
                    .and_then(|p| written.strip_prefix(p))
                    .and_then(|rest| literal(&format!("+{code}{rest}")));
                stripped.or_else(|| literal(&format!("+{code}{written}")))
            }
            _ => None,
        }
    };
    Ok(better.unwrap_or(first))
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
        // A hint does not make a number valid that is refused alone (found by the parser fuzz).
        let kirov = E164::parse("e164", "+78330000000", None).unwrap();
        assert_eq!(
            E164::parse("e164", "+78330000000", Some("SA")).unwrap(),
            kirov
        );
    }

    #[test]
    fn a_national_number_that_starts_like_the_trunk_prefix_keeps_its_digits() {
        // Saint Petersburg and Russian toll-free: the `8` after `+7` is the area code's, not a
        // trunk prefix (found by the parser fuzz: `+7 888 030…` came back as `+7 803…`, which
        // then read back as another number).
        for (raw, e164, area) in [
            ("+7 812 123-45-67", "+78121234567", "812"),
            ("+7 495 123-45-67", "+74951234567", "495"),
            ("+78030000000", "+78030000000", "803"),
            ("+36 1 460 1234", "+3614601234", "1"),
        ] {
            let (n, country, got) = E164::parse_with_geography("caller", raw).unwrap();
            assert_eq!(n.as_str(), e164, "{raw}");
            assert_eq!(got.as_deref(), Some(area), "{raw}");
            assert_eq!((country, got), n.country_and_area(), "{raw}");
            assert_eq!(E164::parse("n", n.as_str(), None).unwrap(), n, "{raw}");
        }
        let toll_free = E164::parse("n", "+7 800 555-35-35", None).unwrap();
        assert_eq!(toll_free.as_str(), "+78005553535");
        assert!(toll_free.is_toll_free());
        // In national form the `8` in front is the trunk prefix, and goes.
        for raw in ["8 (812) 123-45-67", "(812) 123-45-67", "8 812 1234567"] {
            let national = E164::parse("n", raw, Some("RU")).unwrap();
            assert_eq!(national.as_str(), "+78121234567", "{raw}");
        }
        let toll_free = E164::parse("n", "8 800 555 35 35", Some("RU")).unwrap();
        assert_eq!(toll_free.as_str(), "+78005553535");
        // A trunk prefix written after the calling code still goes.
        let london = E164::parse("n", "+44 (0)20 7946 0958", None).unwrap();
        assert_eq!(london.as_str(), "+442079460958");
        assert_eq!(london.area_code().as_deref(), Some("20"));
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

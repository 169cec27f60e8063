//! Targets: where calls go (a SIP URI or a number to dial), with whom and when they serve, and
//! how much they may take.

use crate::number::parse_languages;
use crate::{ValidationError, E164};
use std::fmt;

/// A SIP or SIPS URI, checked for shape at the edge: `sip:[user@]host[:port][;params]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri {
    /// The URI as given (scheme lower-cased).
    raw: String,
    /// Byte range of the host within `raw`.
    host: (usize, usize),
    /// The port, when given.
    port: Option<u16>,
}

impl SipUri {
    /// Parses `sip:` or `sips:` URIs with a host (name, IPv4 or `[IPv6]`), an optional user part
    /// and port, and URI parameters. No headers (`?…`), no whitespace or control characters.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let bad = |why: &str| ValidationError::new(field, format!("{raw:?}: {why}"));
        let raw = raw.trim();
        if raw.len() > 256 {
            return Err(bad("longer than 256 characters"));
        }
        if raw.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b'?') {
            return Err(bad("spaces, control characters and '?' are not allowed"));
        }
        let (scheme, rest) = raw
            .split_once(':')
            .ok_or_else(|| bad("expected sip:host or sip:user@host"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return Err(bad("the scheme must be sip: or sips:"));
        }
        let offset = scheme.len() + 1;
        let hostport_start = rest.find('@').map_or(0, |at| at + 1);
        if hostport_start == 1 {
            return Err(bad("empty user part"));
        }
        let hostport_end = rest[hostport_start..]
            .find(';')
            .map_or(rest.len(), |i| hostport_start + i);
        let hostport = &rest[hostport_start..hostport_end];
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad host or port"))?;
        let host_start = offset + hostport_start;
        Ok(Self {
            raw: format!("{scheme}:{rest}"),
            host: (host_start, host_start + host.len()),
            port,
        })
    }

    /// The URI.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The host part (an IPv6 address keeps its brackets).
    pub fn host(&self) -> &str {
        &self.raw[self.host.0..self.host.1]
    }

    /// The port, when the URI names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether the URI asks for TCP (`;transport=tcp`).
    pub fn wants_tcp(&self) -> bool {
        self.raw[self.host.1..]
            .split(';')
            .any(|p| p.eq_ignore_ascii_case("transport=tcp"))
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

fn split_host_port(hostport: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let end = v6.find(']')? + 1;
        let host = &hostport[..=end];
        host[1..end].parse::<std::net::Ipv6Addr>().ok()?;
        match &hostport[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !host_ok {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
    };
    Some((host, port))
}

/// Where a target's calls are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A SIP endpoint the SIP router proxies to.
    Sip(SipUri),
    /// A number a carrier dials out to (webhook calls), or the SIP router sends to its trunk.
    Number(E164),
}

impl Destination {
    /// A SIP URI (`sip:…`, `sips:…`) or an E.164 number.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let lower = raw.trim_start().get(..4).map(str::to_ascii_lowercase);
        if matches!(lower.as_deref(), Some("sip:") | Some("sips")) {
            SipUri::parse(field, raw).map(Self::Sip)
        } else {
            E164::parse(field, raw, None)
                .map(Self::Number)
                .map_err(|_| ValidationError::new(field, "expected a sip: URI or an E.164 number"))
        }
    }

    /// The API and store spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sip(u) => u.as_str(),
            Self::Number(n) => n.as_str(),
        }
    }
}

/// A caller geography a target serves: a country, or one area code of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region {
    /// ISO 3166-1 alpha-2 country, upper case.
    pub country: String,
    /// Area code (national destination code), when narrower than the country.
    pub area_code: Option<String>,
}

impl Region {
    /// Parses `US` (a country) or `US-415` (an area code of it).
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let (country, area) = match raw.trim().split_once('-') {
            Some((c, a)) => (c, Some(a)),
            None => (raw.trim(), None),
        };
        if crate::phone::parse_country(country).is_none() || country.len() != 2 {
            return Err(ValidationError::new(
                field,
                format!("{raw:?}: expected a country such as \"US\" or an area such as \"US-415\""),
            ));
        }
        if let Some(a) = area {
            if a.is_empty() || a.len() > 6 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ValidationError::new(
                    field,
                    format!("{raw:?}: the area code must be 1 to 6 digits"),
                ));
            }
        }
        Ok(Self {
            country: country.to_ascii_uppercase(),
            area_code: area.map(str::to_string),
        })
    }

    /// Whether a caller from `country` (and `area_code`, when known) is in this region.
    pub fn contains(&self, country: &str, area_code: Option<&str>) -> bool {
        self.country.eq_ignore_ascii_case(country)
            && match &self.area_code {
                None => true,
                Some(a) => area_code == Some(a.as_str()),
            }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.area_code {
            Some(a) => write!(f, "{}-{a}", self.country),
            None => f.write_str(&self.country),
        }
    }
}

/// One opening interval of a day, in minutes since local midnight: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenInterval {
    /// First open minute (0..1440).
    pub start: u16,
    /// First closed minute after it (start < end <= 1440).
    pub end: u16,
}

impl OpenInterval {
    /// Parses `("09:00", "17:30")`; `"24:00"` is allowed as an end.
    pub fn parse(field: &str, start: &str, end: &str) -> Result<Self, ValidationError> {
        let minute = |s: &str| -> Option<u16> {
            let (h, m) = s.split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let bad = || {
            ValidationError::new(
                field,
                format!(
                    "[{start:?}, {end:?}]: expected [\"HH:MM\", \"HH:MM\"] with start before end"
                ),
            )
        };
        let (s, e) = (minute(start).ok_or_else(bad)?, minute(end).ok_or_else(bad)?);
        if s >= e || s >= 1440 {
            return Err(bad());
        }
        Ok(Self { start: s, end: e })
    }

    /// `HH:MM` of a minute of the day.
    pub fn format_minute(m: u16) -> String {
        format!("{:02}:{:02}", m / 60, m % 60)
    }
}

/// When a target takes calls: intervals per weekday, in an IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// The zone the intervals are in.
    pub time_zone: chrono_tz::Tz,
    /// Monday first; an empty day is closed.
    pub days: [Vec<OpenInterval>; 7],
}

/// The API's weekday names, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Parses an IANA time zone name such as `America/New_York`.
pub fn parse_time_zone(field: &str, raw: &str) -> Result<chrono_tz::Tz, ValidationError> {
    raw.parse().map_err(|_| {
        ValidationError::new(
            field,
            format!("{raw:?} is not an IANA time zone such as \"America/New_York\""),
        )
    })
}

/// Limits on what a target takes. `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// Calls ringing or connected at once.
    pub concurrent: Option<u32>,
    /// Connected calls per clock hour (in the target's time zone).
    pub hourly: Option<u32>,
    /// Connected calls per day.
    pub daily: Option<u32>,
    /// Connected calls per calendar month.
    pub monthly: Option<u32>,
}

/// A place calls go, as a routing plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Store id.
    pub id: i64,
    /// Human name.
    pub name: String,
    /// Where calls are sent.
    pub destination: Destination,
    /// Languages the target's agents speak (ISO 639-1); empty serves every language.
    pub languages: Vec<String>,
    /// Caller geographies served; empty serves every caller.
    pub regions: Vec<Region>,
    /// Opening hours; `None` is always open.
    pub hours: Option<BusinessHours>,
    /// Limits.
    pub caps: Caps,
    /// Tier: lower is tried first.
    pub priority: u32,
    /// Share within its tier for weighted selection (1..=1000).
    pub weight: u32,
    /// Seconds to ring before giving up on it; `None` takes the plan's.
    pub ring_timeout_secs: Option<u32>,
    /// A disabled target takes no calls.
    pub enabled: bool,
}

impl Target {
    /// Validates and normalises a list of language tags for a target.
    pub fn parse_languages(raw: &[String]) -> Result<Vec<String>, ValidationError> {
        parse_languages("languages", raw)
    }
}

/// Bounds of a ring timeout, in seconds.
pub const RING_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 5..=300;

/// Bounds of a target's weight.
pub const WEIGHT_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uris() {
        let u = SipUri::parse("d", "SIP:agent@10.0.0.5:5070;transport=tcp").unwrap();
        assert_eq!(u.as_str(), "sip:agent@10.0.0.5:5070;transport=tcp");
        assert_eq!(u.host(), "10.0.0.5");
        assert_eq!(u.port(), Some(5070));
        assert!(u.wants_tcp());
        let v6 = SipUri::parse("d", "sip:[::1]:5060").unwrap();
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.port(), Some(5060));
        let bare = SipUri::parse("d", "sips:pbx.example.com").unwrap();
        assert_eq!((bare.host(), bare.port()), ("pbx.example.com", None));
        for bad in [
            "http://x",
            "sip:",
            "sip:@host",
            "sip:a@",
            "sip:h:0",
            "sip:h:99999",
            "sip:h x",
            "sip:a@h?x=1",
            "sip:[zz]:5060",
        ] {
            assert_eq!(SipUri::parse("d", bad).unwrap_err().field, "d", "{bad}");
        }
    }

    #[test]
    fn destinations() {
        assert!(matches!(
            Destination::parse("d", "sip:a@b").unwrap(),
            Destination::Sip(_)
        ));
        assert!(matches!(
            Destination::parse("d", "+14155552671").unwrap(),
            Destination::Number(_)
        ));
        assert!(Destination::parse("d", "nonsense").is_err());
    }

    #[test]
    fn regions() {
        let r = Region::parse("r", "us-415").unwrap();
        assert_eq!(r.to_string(), "US-415");
        assert!(r.contains("US", Some("415")));
        assert!(!r.contains("US", Some("212")));
        assert!(!r.contains("US", None));
        assert!(Region::parse("r", "DE").unwrap().contains("de", None));
        for bad in ["", "USA", "ZZ", "US-", "US-4x"] {
            assert!(Region::parse("r", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals() {
        let i = OpenInterval::parse("h", "09:00", "17:30").unwrap();
        assert_eq!((i.start, i.end), (540, 1050));
        assert_eq!(
            OpenInterval::parse("h", "00:00", "24:00").unwrap().end,
            1440
        );
        for (s, e) in [
            ("17:00", "09:00"),
            ("9:00", "10:00"),
            ("24:00", "24:00"),
            ("10:60", "11:00"),
        ] {
            assert!(OpenInterval::parse("h", s, e).is_err(), "{s}-{e}");
        }
        assert_eq!(OpenInterval::format_minute(1050), "17:30");
        assert!(parse_time_zone("tz", "Europe/Berlin").is_ok());
        assert!(parse_time_zone("tz", "Mars/Olympus").is_err());
    }
}

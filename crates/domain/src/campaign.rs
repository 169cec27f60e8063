//! Campaigns: the unit of business, with the settings the tag and DNI act on.

use crate::{session::Attribution, DomainHost, ValidationError, E164};

/// The public key of a campaign, written into the tag (`data-campaign="…"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CampaignKey(pub String);

impl CampaignKey {
    /// The prefix of every campaign key.
    pub const PREFIX: &'static str = "cmp_";

    /// Checks the shape of a key presented by a page (no store lookup).
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let ok = raw.starts_with(Self::PREFIX)
            && raw.len() <= 64
            && raw[Self::PREFIX.len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric());
        if ok && raw.len() > Self::PREFIX.len() {
            Ok(Self(raw.to_string()))
        } else {
            Err(ValidationError::new(field, "not a campaign key (cmp_…)"))
        }
    }
}

/// When the tag swaps numbers on a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// On every page that carries the tag.
    Always,
    /// Only when the page URL carries this query parameter (e.g. `utm_source` or `gclid`).
    Parameter(String),
}

impl Trigger {
    /// Whether a page URL's attribution fires this trigger.
    pub fn fires(&self, page_query: &[(String, String)]) -> bool {
        match self {
            Self::Always => true,
            Self::Parameter(p) => page_query.iter().any(|(k, _)| k == p),
        }
    }

    /// Builds a trigger from the API's optional parameter name (`None` means always).
    pub fn parse(field: &str, raw: Option<&str>) -> Result<Self, ValidationError> {
        match raw {
            None => Ok(Self::Always),
            Some(p)
                if !p.is_empty()
                    && p.len() <= 64
                    && p.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
            {
                Ok(Self::Parameter(p.to_string()))
            }
            Some(_) => Err(ValidationError::new(
                field,
                "a query parameter name of letters, digits, '_', '-' or '.'",
            )),
        }
    }

    /// The parameter name, if any.
    pub fn parameter(&self) -> Option<&str> {
        match self {
            Self::Always => None,
            Self::Parameter(p) => Some(p),
        }
    }
}

/// How a campaign's pool hands out numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentMode {
    /// Each visitor leases its own number from the pool.
    PerVisitor,
    /// Each traffic source has a fixed number (source rules); no leases.
    PerSource,
}

impl AssignmentMode {
    /// The API and store spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerVisitor => "per_visitor",
            Self::PerSource => "per_source",
        }
    }

    /// Parses the API spelling.
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw {
            "per_visitor" => Ok(Self::PerVisitor),
            "per_source" => Ok(Self::PerSource),
            _ => Err(ValidationError::new(
                field,
                "expected \"per_visitor\" or \"per_source\"",
            )),
        }
    }
}

/// What a source rule matches a visitor's attribution on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMatch {
    /// `utm_source` equals this value (case-insensitive).
    UtmSource(String),
    /// The referrer's host is this domain or a subdomain of it.
    ReferrerDomain(DomainHost),
    /// The page URL carries this click id (`gclid`, `fbclid` or `msclkid`).
    ClickId(String),
    /// Every visitor: the campaign's fallback source number.
    Any,
}

/// A fixed number for the visitors of one traffic source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRule {
    /// Which visitors the rule is for.
    pub matches: SourceMatch,
    /// The number they see.
    pub number: E164,
}

/// The click ids read from page URLs.
pub const CLICK_IDS: [&str; 3] = ["gclid", "fbclid", "msclkid"];

impl SourceRule {
    /// Builds a rule from the API's fields: `kind` is `utm_source`, `referrer_domain`,
    /// `click_id` or `any`; `value` its argument.
    pub fn parse(
        field: &str,
        kind: &str,
        value: Option<&str>,
        number: &str,
    ) -> Result<Self, ValidationError> {
        let value_of = || {
            value
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ValidationError::new(format!("{field}.value"), "required"))
        };
        let matches = match kind {
            "utm_source" => SourceMatch::UtmSource(value_of()?.trim().to_ascii_lowercase()),
            "referrer_domain" => SourceMatch::ReferrerDomain(DomainHost::parse(
                &format!("{field}.value"),
                value_of()?,
            )?),
            "click_id" => {
                let v = value_of()?.to_ascii_lowercase();
                if !CLICK_IDS.contains(&v.as_str()) {
                    return Err(ValidationError::new(
                        format!("{field}.value"),
                        "expected \"gclid\", \"fbclid\" or \"msclkid\"",
                    ));
                }
                SourceMatch::ClickId(v)
            }
            "any" => SourceMatch::Any,
            _ => {
                return Err(ValidationError::new(
                    format!("{field}.match"),
                    "expected \"utm_source\", \"referrer_domain\", \"click_id\" or \"any\"",
                ))
            }
        };
        let number = E164::parse(&format!("{field}.number"), number, None)?;
        Ok(Self { matches, number })
    }

    /// The API spelling of the match kind and its value.
    pub fn kind_and_value(&self) -> (&'static str, Option<&str>) {
        match &self.matches {
            SourceMatch::UtmSource(v) => ("utm_source", Some(v)),
            SourceMatch::ReferrerDomain(d) => ("referrer_domain", Some(d.as_str())),
            SourceMatch::ClickId(c) => ("click_id", Some(c)),
            SourceMatch::Any => ("any", None),
        }
    }

    /// Whether the rule applies to a visitor with this attribution.
    pub fn applies_to(&self, a: &Attribution) -> bool {
        match &self.matches {
            SourceMatch::UtmSource(s) => a
                .utm_source
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(s)),
            SourceMatch::ReferrerDomain(d) => a
                .referrer
                .as_deref()
                .and_then(DomainHost::from_origin)
                .is_some_and(|r| d.covers(&r)),
            SourceMatch::ClickId(c) => match c.as_str() {
                "gclid" => a.gclid.is_some(),
                "fbclid" => a.fbclid.is_some(),
                "msclkid" => a.msclkid.is_some(),
                _ => false,
            },
            SourceMatch::Any => true,
        }
    }
}

/// The first rule (in order) that applies to a visitor.
pub fn source_number<'a>(rules: &'a [SourceRule], a: &Attribution) -> Option<&'a SourceRule> {
    rules.iter().find(|r| r.applies_to(a))
}

/// A campaign as DNI sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// Store id.
    pub id: i64,
    /// Public key used by the tag.
    pub key: CampaignKey,
    /// Human name.
    pub name: String,
    /// The number printed on the page; shown when no tracking number can be served.
    pub default_number: E164,
    /// Other numbers on the page that the tag replaces too.
    pub swap_numbers: Vec<E164>,
    /// When the tag acts.
    pub trigger: Trigger,
    /// Per-visitor leases or per-source numbers.
    pub assignment: AssignmentMode,
    /// Seconds without activity after which a visitor's lease ends.
    pub idle_timeout_secs: u32,
    /// Hosts whose pages may be served; each must also be verified in the account.
    pub domains: Vec<DomainHost>,
    /// Source rules, first match wins.
    pub source_rules: Vec<SourceRule>,
    /// The pool the campaign draws numbers from.
    pub pool_id: Option<i64>,
    /// The routing plan for calls on the campaign's numbers.
    pub routing_plan_id: Option<i64>,
}

/// Bounds of the lease idle timeout, in seconds.
pub const IDLE_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;

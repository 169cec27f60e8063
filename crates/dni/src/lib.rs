//! Number assignment for dynamic number insertion: which tracking number of a pool each visitor
//! sees, held by a lease that activity renews; pure and deterministic, with the clock a parameter.
//!
//! # Layout
//! - `pool`: the [`Pool`]: leases, lazy expiry, tiered choice, and the indexes that keep every
//!   operation O(log n).
//! - `free`: the free numbers, one ordered set per matching tier (country and language, country,
//!   language, any).
//! - `volume`: recent call volume per number, a ring of ten-minute buckets over the last hour.
//! - `tests`: table-driven tests of assignment with an injected clock.

mod free;
mod pool;
mod volume;

#[cfg(test)]
mod tests;

use callopt_domain::{VisitorId, E164};

pub use pool::Pool;
pub use volume::{BUCKET_MS, RECENT_WINDOW_MS};

/// Milliseconds since the Unix epoch: the only clock this crate knows, always passed in.
pub type Millis = i64;

/// One number of a pool, as assignment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolNumber {
    /// The number's id in the store: what leases and calls refer to.
    pub id: i64,
    /// The number itself, for the caller to show.
    pub e164: E164,
    /// ISO 3166-1 alpha-2 country (upper case), matched against the visitor's country.
    pub country: String,
    /// ISO 639-1 languages (lower case), matched against the visitor's language.
    pub languages: Vec<String>,
}

/// What the visitor brings to assignment.
#[derive(Debug, Clone, Copy)]
pub struct VisitorProfile<'a> {
    /// Who is asking: a live lease of theirs is renewed rather than a new number given.
    pub visitor: &'a VisitorId,
    /// The visitor's ISO 3166-1 alpha-2 country, if known (matched case-insensitively).
    pub country: Option<&'a str>,
    /// The visitor's language, if known: ISO 639-1, or a tag such as `pt-BR` whose primary
    /// subtag is used (matched case-insensitively).
    pub language: Option<&'a str>,
}

/// The outcome of [`Pool::assign`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignment {
    /// The visitor already held a live lease: same number, lease renewed to now + idle.
    Renewed {
        /// The number the visitor keeps.
        number_id: i64,
        /// When the renewed lease ends.
        expires_at: Millis,
    },
    /// A new lease on a free number.
    New {
        /// The number now leased to the visitor.
        number_id: i64,
        /// When the lease ends unless renewed.
        expires_at: Millis,
        /// Which tier the number came from.
        matched: Match,
    },
    /// No free number: the caller answers with the campaign's overflow (default number,
    /// unattributed).
    Exhausted,
}

/// Which tier of the visitor's profile a newly assigned number matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The number's country is the visitor's and it lists the visitor's language.
    CountryAndLanguage,
    /// The number's country is the visitor's.
    Country,
    /// The number lists the visitor's language.
    Language,
    /// No free number matched; any free one was given.
    Any,
}

//! The rows of the store in domain types: what callers pass in and get back.

use callopt_domain::{AccountId, Attribution, Campaign, NumberKind, NumberStatus, TrackingNumber};

/// A pool as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolRecord {
    /// Store id.
    pub id: i64,
    /// Owner.
    pub account: AccountId,
    /// Human name.
    pub name: String,
    /// How many tracking numbers it holds.
    pub size: i64,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// A tracking number to add.
#[derive(Debug, Clone)]
pub struct NewNumber {
    /// The number and its classification.
    pub number: TrackingNumber,
    /// The pool it joins, if any (checked to belong to the account).
    pub pool_id: Option<i64>,
}

/// A tracking number as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRecord {
    /// Store id.
    pub id: i64,
    /// Owner.
    pub account: AccountId,
    /// Its pool, if any.
    pub pool_id: Option<i64>,
    /// The number and its classification.
    pub number: TrackingNumber,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// A change to a tracking number: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct NumberChange {
    /// New pool (`Some(None)` takes it out of any pool).
    pub pool_id: Option<Option<i64>>,
    /// New languages.
    pub languages: Option<Vec<String>>,
    /// New status.
    pub status: Option<NumberStatus>,
    /// New kind.
    pub kind: Option<NumberKind>,
}

/// The fields of a campaign that the API sets (the id and key are the store's).
pub type CampaignFields = Campaign;

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignRecord {
    /// Owner.
    pub account: AccountId,
    /// The campaign (its `id` and `key` are the store's).
    pub campaign: Campaign,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

/// A domain as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// Store id.
    pub id: i64,
    /// Owner.
    pub account: AccountId,
    /// The host (with port when not default).
    pub host: String,
    /// The token to publish at the well-known path.
    pub token: String,
    /// When ownership was last proved, if ever.
    pub verified_at: Option<i64>,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// One visitor-session write: a new session, or a renewal of one.
#[derive(Debug, Clone)]
pub enum SessionWrite {
    /// A new lease (or an unleased overflow/per-source session).
    Insert(Box<SessionRecord>),
    /// The visitor came back while the lease lived.
    Renew {
        /// Session id.
        id: String,
        /// Time of the visit.
        last_seen: i64,
        /// The new end of the lease.
        lease_expires_at: i64,
    },
}

/// A visitor session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Session id (`ses_…`).
    pub id: String,
    /// Owner.
    pub account: AccountId,
    /// Campaign.
    pub campaign_id: i64,
    /// The tag's first-party visitor id.
    pub visitor: String,
    /// The pool number leased, if the visitor got one (None for overflow and per-source).
    pub number_id: Option<i64>,
    /// The number shown, E.164.
    pub number_e164: String,
    /// Whether calls on the number can be tied to this session (false for overflow).
    pub attributed: bool,
    /// Where the visitor came from.
    pub attribution: Attribution,
    /// Visitor country (ISO alpha-2), when known.
    pub country: Option<String>,
    /// Visitor language (ISO 639-1), when known.
    pub language: Option<String>,
    /// The browser's user agent.
    pub user_agent: Option<String>,
    /// First request, ms since the epoch.
    pub first_seen: i64,
    /// Latest request, ms since the epoch.
    pub last_seen: i64,
    /// End of the lease, ms since the epoch.
    pub lease_expires_at: i64,
}

/// A refused DNI request, for the Guard's record.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The account, when the campaign key was known.
    pub account: Option<AccountId>,
    /// The campaign, when known.
    pub campaign_id: Option<i64>,
    /// The Origin (or Referer) presented, if any.
    pub origin: Option<String>,
    /// The page URL the tag reported.
    pub page_url: Option<String>,
    /// Why: `unverified_origin`, `missing_origin`, `unknown_campaign`.
    pub reason: String,
    /// When, ms since the epoch.
    pub at: i64,
}

/// A refusal as stored.
#[derive(Debug, Clone)]
pub struct RefusalRecord {
    /// Store id.
    pub id: i64,
    /// The refusal.
    pub refusal: Refusal,
}

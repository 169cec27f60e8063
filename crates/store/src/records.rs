//! The rows of the store in domain types: what callers pass in and get back.

use std::sync::Arc;

use callopt_domain::{
    AccountId, AttemptOutcome, Attribution, CallOutcome, Campaign, HungUpBy, NumberKind,
    NumberStatus, RoutingPlan, Target, TrackingNumber,
};

/// What [`crate::Store::interrupt_calls`] closed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interrupted {
    /// How many calls.
    pub calls: u64,
    /// The attempts that were open on them: `(call id, target id)`, so that the targets' shared
    /// counters can let them go.
    pub attempts: Vec<(i64, i64)>,
}

/// What routing counted before a node started, asked of the store at start
/// ([`crate::Store::routing_history`]) so that a restart or a new node routes as if it had seen
/// it: caps, lowest-volume and duplicate-caller memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The instant the history is read for, ms since the epoch.
    pub now: i64,
    /// Starts of a local hour, day and month that some targets' caps count over (one entry
    /// per calendar in use): answered attempts are counted since each.
    pub periods: Vec<[i64; 3]>,
    /// Attempts started since then are counted per minute (the last hour).
    pub attempts_since: i64,
    /// Plans with a duplicate-caller rule, each with the start of its window.
    pub callers_since: Vec<(i64, i64)>,
}

/// What [`crate::Store::routing_history`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// For each entry of [`HistoryQuery::periods`] (by its index), each target's answered
    /// attempts in the hour, the day and the month that start there.
    pub answered: Vec<(usize, i64, [u32; 3])>,
    /// `(target, minute start, attempts started in that minute)`.
    pub attempts: Vec<(i64, i64, u32)>,
    /// `(plan, caller as presented, target, answered at)`: each caller's latest answered call
    /// in the plan's window.
    pub callers: Vec<(i64, String, i64, i64)>,
}

/// A running Callopt process, as registered in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRecord {
    /// The node's id, which the calls it handles carry.
    pub id: i64,
    /// Its call-id slot, below [`NODE_SLOTS`]: its call ids are equal to it modulo
    /// [`NODE_SLOTS`], so no two live nodes hand out the same id.
    pub slot: i64,
}

/// Call-id slots, and so live nodes sharing a database, at most.
pub const NODE_SLOTS: i64 = 16;

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

/// A target as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRecord {
    /// Owner.
    pub account: AccountId,
    /// The target (its `id` is the store's).
    pub target: Target,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

/// A routing plan as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    /// Owner.
    pub account: AccountId,
    /// The plan (its `id` is the store's).
    pub plan: RoutingPlan,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

/// One attempt of a call: one target tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Order within the call, from 1.
    pub seq: u32,
    /// The target tried (None when it was deleted since).
    pub target_id: Option<i64>,
    /// Where the attempt was sent (SIP URI or number).
    pub destination: Arc<str>,
    /// How it ended; None while it rings or is connected.
    pub outcome: Option<AttemptOutcome>,
    /// The SIP final status (or the carrier's equivalent), when one came.
    pub sip_status: Option<u16>,
    /// When it was sent, ms since the epoch.
    pub started_at: i64,
    /// When it was answered.
    pub answered_at: Option<i64>,
    /// When it ended (failure, or hang-up of the connected call).
    pub ended_at: Option<i64>,
}

/// A call with its attempts: what the record of a call holds at one moment. Writing a later
/// record of the same call replaces the earlier one.
///
/// A live call's record is copied each time it changes (for the call log and live watchers),
/// so its text is shared (`Arc<str>`): a copy costs the attempts' list and no string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Store id (assigned by the call handler, increasing with time).
    pub id: i64,
    /// Owner.
    pub account: AccountId,
    /// The campaign the tracking number belongs to.
    pub campaign_id: Option<i64>,
    /// The routing plan that routed it.
    pub routing_plan_id: Option<i64>,
    /// The number called, E.164 (or as dialled when it did not parse).
    pub tracking_number: Arc<str>,
    /// The caller id as presented.
    pub caller: Arc<str>,
    /// The visitor session that held the number when the call came (attribution).
    pub session_id: Option<Arc<str>>,
    /// `sip`, or the carrier of a webhook call.
    pub channel: Arc<str>,
    /// The call's id on its channel (SIP Call-ID, carrier call sid).
    pub external_id: Arc<str>,
    /// Final outcome (or in progress).
    pub outcome: CallOutcome,
    /// Why the call was rejected or failed, in words.
    pub reason: Option<String>,
    /// Who ended the connected call.
    pub hung_up_by: Option<HungUpBy>,
    /// When the call arrived, ms since the epoch.
    pub started_at: i64,
    /// When a target answered.
    pub answered_at: Option<i64>,
    /// When the call ended.
    pub ended_at: Option<i64>,
    /// Every attempt, in order.
    pub attempts: Vec<AttemptRecord>,
}

/// Which calls a listing returns; every field narrows it.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Of this campaign.
    pub campaign_id: Option<i64>,
    /// With this final outcome.
    pub outcome: Option<CallOutcome>,
    /// On this tracking number (E.164).
    pub tracking_number: Option<String>,
    /// From this caller.
    pub caller: Option<String>,
    /// With an attempt on this target.
    pub target_id: Option<i64>,
    /// Started at or after, ms since the epoch.
    pub from: Option<i64>,
    /// Started before, ms since the epoch.
    pub to: Option<i64>,
    /// Newest first (a page's cursor then leads to older calls); oldest first otherwise.
    pub newest_first: bool,
}

/// A secret the service must use in clear (a carrier's auth token): its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    /// The last four characters, for showing which secret is set.
    pub fn hint(&self) -> String {
        let n = self.0.chars().count();
        let tail: String = self.0.chars().skip(n.saturating_sub(4)).collect();
        format!("…{tail}")
    }
}

/// A carrier connection's fields, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierConnection {
    /// Human name.
    pub name: String,
    /// `twilio`, `telnyx`, `signalwire` or `plivo`.
    pub carrier: String,
    /// The carrier's id of the account (Twilio AccountSid, SignalWire project, Telnyx account);
    /// when set, webhooks naming another account are refused.
    pub carrier_account: Option<String>,
    /// What verifies the carrier's signatures: the auth token (Twilio, Plivo), the signing key
    /// (SignalWire) or the public key (Telnyx).
    pub secret: Secret,
    /// The tracking numbers (E.164) whose calls it routes.
    pub numbers: Vec<String>,
}

/// A carrier connection as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierConnectionRecord {
    /// Store id.
    pub id: i64,
    /// Owner.
    pub account: AccountId,
    /// The public key in its webhook URLs (`cc_…`).
    pub key: String,
    /// Its fields.
    pub connection: CarrierConnection,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

/// What a report groups calls by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportGroup {
    /// Nothing: one row of totals.
    Total,
    /// Local clock hour (see [`ReportQuery::offsets`]); the key is the bucket number.
    Hour,
    /// Local calendar day; the key is the bucket number.
    Day,
    /// Campaign id.
    Campaign,
    /// `utm_source` of the attributed visitor session.
    Source,
    /// `utm_medium`.
    Medium,
    /// `utm_campaign`.
    UtmCampaign,
    /// `utm_term` (the keyword).
    Term,
    /// The landing page, without its query string.
    LandingPage,
    /// The tracking number called.
    TrackingNumber,
    /// The target that answered, else the last one tried.
    Target,
    /// The caller's country.
    Caller,
    /// `sip` or the carrier.
    Channel,
}

/// Filters of a report; each one set must hold.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    /// Of this campaign.
    pub campaign_id: Option<i64>,
    /// On this tracking number (E.164).
    pub tracking_number: Option<String>,
    /// With an attempt on this target.
    pub target_id: Option<i64>,
    /// Through this channel.
    pub channel: Option<String>,
    /// Attributed to a visit with this `utm_source`.
    pub utm_source: Option<String>,
    /// … `utm_medium`.
    pub utm_medium: Option<String>,
    /// … `utm_campaign`.
    pub utm_campaign: Option<String>,
    /// … `utm_term`.
    pub utm_term: Option<String>,
    /// … on this landing page (without its query string).
    pub landing_page: Option<String>,
    /// From a caller in this country (ISO 3166 alpha-2).
    pub caller_country: Option<String>,
}

/// A report to compute.
#[derive(Debug, Clone)]
pub struct ReportQuery {
    /// Calls started at or after (ms).
    pub from: i64,
    /// … and before (ms).
    pub to: i64,
    /// The grouping.
    pub group: ReportGroup,
    /// The report's time zone as (until ms, offset ms) intervals covering the range, in order;
    /// the last offset holds after its `until` too. Used by the hour and day groupings.
    pub offsets: Vec<(i64, i64)>,
    /// Filters.
    pub filter: ReportFilter,
}

/// A call is a repeat call when its caller called the account less than this long before (30
/// days, ms); otherwise it is a unique call. Being a property of the call, not of the period
/// looked at, unique calls add up over days, groups and ranges.
pub const REPEAT_WINDOW_MS: i64 = 30 * 86_400_000;

/// One row of a report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRow {
    /// The group's key (`None`: calls without that dimension, such as unattributed calls).
    pub key: Option<String>,
    /// Calls.
    pub calls: i64,
    /// Answered calls.
    pub answered: i64,
    /// Calls whose caller had not called the account in the [`REPEAT_WINDOW_MS`] before.
    pub unique_calls: i64,
    /// Total talk time (ms).
    pub talk_ms: i64,
    /// Answered calls the caller hung up.
    pub hung_up_by_caller: i64,
    /// … the target hung up.
    pub hung_up_by_target: i64,
    /// … Callopt ended (a lost hang-up).
    pub hung_up_by_system: i64,
    /// Routing attempts.
    pub attempts: i64,
    /// Calls with no visitor session (the number was not shown to a visitor then).
    pub unattributed: i64,
    /// Calls the account marked converted.
    pub conversions: i64,
    /// The sum of their conversion values.
    pub conversion_value: f64,
}

impl ReportRow {
    /// Adds `other`'s measures to this row's (every measure adds up).
    pub fn add(&mut self, other: &ReportRow) {
        self.calls += other.calls;
        self.answered += other.answered;
        self.unique_calls += other.unique_calls;
        self.talk_ms += other.talk_ms;
        self.hung_up_by_caller += other.hung_up_by_caller;
        self.hung_up_by_target += other.hung_up_by_target;
        self.hung_up_by_system += other.hung_up_by_system;
        self.attempts += other.attempts;
        self.unattributed += other.unattributed;
        self.conversions += other.conversions;
        self.conversion_value += other.conversion_value;
    }
}

/// How far the report rollups reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollupStatus {
    /// Calls started before this UTC midnight (ms) are rolled up, but for the dirty days.
    pub rolled_until: i64,
    /// Days waiting to be rolled (the settled ones not rolled yet, and the dirty ones).
    pub pending_days: i64,
}

/// The most numbers of a pool leased at once in an hour, as sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSample {
    /// The pool.
    pub pool_id: i64,
    /// Start of the UTC hour (ms).
    pub hour: i64,
    /// Most numbers leased at once.
    pub peak_in_use: i64,
    /// Numbers in the pool.
    pub size: i64,
}

/// One pool's peak in one hour, with the pool's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsageRow {
    /// The sample.
    pub sample: PoolSample,
    /// The pool's name.
    pub pool_name: String,
}

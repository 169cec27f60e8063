//! The rows of event webhooks: the account's endpoints, their deliveries from the outbox, and
//! the conversions a business reports for its calls.

use crate::{AccountId, Secret};

/// What happened, as a webhook subscribes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A call arrived (its first record was written).
    CallStarted,
    /// An attempt of a call was sent to a target.
    CallRouted,
    /// A call's outcome is final.
    CallFinished,
    /// A visitor session was created (a visitor was given a number).
    SessionCreated,
    /// A campaign was quarantined by the Guard (its page was scanned as a scam).
    CampaignQuarantined,
}

impl EventType {
    /// Every event type, in the order the API lists them.
    pub const ALL: [EventType; 5] = [
        EventType::CallStarted,
        EventType::CallRouted,
        EventType::CallFinished,
        EventType::SessionCreated,
        EventType::CampaignQuarantined,
    ];

    /// The name in the API, the payload and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CallStarted => "call.started",
            EventType::CallRouted => "call.routed",
            EventType::CallFinished => "call.finished",
            EventType::SessionCreated => "session.created",
            EventType::CampaignQuarantined => "campaign.quarantined",
        }
    }

    /// The event type of a name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// A webhook's fields, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Where events are posted (http or https).
    pub url: String,
    /// The event types it wants (at least one, no repeats).
    pub events: Vec<EventType>,
    /// Disabled webhooks get no new deliveries, and their pending ones wait.
    pub enabled: bool,
}

/// A webhook as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    /// Store id.
    pub id: i64,
    /// Owner.
    pub account: AccountId,
    /// Its fields.
    pub webhook: Webhook,
    /// The key its deliveries are signed with (needed in clear to sign).
    pub secret: Secret,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not yet accepted by the receiver; tried again at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; no more will be made.
    Failed,
}

impl DeliveryStatus {
    /// The name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The status of a name, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// One event's delivery to one webhook, as the API lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// Store id; `dlv_<id>` is the idempotency id the receiver sees on every attempt.
    pub id: i64,
    /// The webhook.
    pub webhook_id: i64,
    /// The event's id (`evt_…`), the same for every webhook that gets it.
    pub event_id: String,
    /// The event's type (`call.started`, …).
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The HTTP status of the last attempt, when one came.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, in words (never the URL).
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only), ms since the epoch.
    pub next_attempt_at: Option<i64>,
    /// When the event happened, ms since the epoch.
    pub created_at: i64,
    /// When the receiver accepted it.
    pub delivered_at: Option<i64>,
}

/// A delivery the worker has claimed: everything it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// Store id.
    pub id: i64,
    /// Owner.
    pub account: AccountId,
    /// The webhook.
    pub webhook_id: i64,
    /// Where to post it.
    pub url: String,
    /// The key to sign it with.
    pub secret: Secret,
    /// The event's id.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// The event's data, a JSON object.
    pub data: String,
    /// When the event happened, ms since the epoch.
    pub created_at: i64,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What became of one attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The receiver answered 2xx with this status.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// It failed; try again at `next_attempt_at`.
    Retry {
        /// The HTTP status, when one came.
        status: Option<u16>,
        /// Why, in words.
        error: String,
        /// When to try again, ms since the epoch.
        next_attempt_at: i64,
    },
    /// It failed for the last time.
    Failed {
        /// The HTTP status, when one came.
        status: Option<u16>,
        /// Why, in words.
        error: String,
    },
}

/// A conversion reported for a call: what the call was worth to the business.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The value, in `currency` (finite, not negative).
    pub value: f64,
    /// ISO 4217 code, upper case.
    pub currency: String,
    /// When it was reported, ms since the epoch.
    pub at: i64,
}

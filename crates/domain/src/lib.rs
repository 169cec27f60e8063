//! Callopt's domain model: the glossary's words as types, built once at the edge by fallible
//! `parse` functions so that no raw string phone number or host travels further in.
//!
//! # Layout
//! - [`phone`]: E.164 numbers ([`E164`]) parsed and formatted through the `phonenumber` crate.
//! - [`number`]: tracking numbers, their kind and status.
//! - [`campaign`]: campaigns, assignment modes, source rules, trigger and overflow settings.
//! - [`domain_name`]: verified domains and the host matching that gates DNI.
//! - [`session`]: visitor sessions and the attribution read from a page URL.
//! - [`account`]: accounts and API keys (only the SHA-256 of a key is ever stored).
//! - [`target`]: targets (SIP URIs or numbers), their regions, business hours and caps.
//! - [`plan`]: routing plans: strategy, filters, reroute rules, overflow.
//! - [`call`]: call outcomes and who hung up.
//! - [`error`]: the validation error every parse function returns, naming the bad field.

pub mod account;
pub mod call;
pub mod campaign;
pub mod domain_name;
pub mod error;
pub mod number;
pub mod phone;
pub mod plan;
pub mod session;
pub mod target;

pub use account::{AccountId, ApiKey, ApiKeyHash};
pub use call::{CallOutcome, HungUpBy};
pub use campaign::{AssignmentMode, Campaign, CampaignKey, SourceMatch, SourceRule, Trigger};
pub use domain_name::{DomainHost, VerificationToken};
pub use error::ValidationError;
pub use number::{NumberKind, NumberStatus, TrackingNumber};
pub use phone::{NumberFormats, E164};
pub use plan::{
    AttemptOutcome, DuplicateAction, DuplicateCaller, Filters, NoTargetAnswer, Reroute,
    RoutingPlan, Strategy,
};
pub use session::{scan_url, Attribution, VisitorId};
pub use target::{BusinessHours, Caps, Destination, OpenInterval, Region, SipUri, Target};

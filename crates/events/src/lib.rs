//! Callopt's event webhooks: the worker that delivers the outbox's events to the accounts'
//! endpoints, signed, with retries, and never to a private network unless told to.
//!
//! # Layout
//! - [`signature`]: the `Callopt-Signature` header (HMAC-SHA256 over `"<t>.<body>"`).
//! - [`destination`]: which URLs a webhook may name, and a DNS resolver that refuses private
//!   addresses (so a name cannot be pointed at one after the check); re-exported from
//!   `callopt-egress`, which the page scanner shares.
//! - [`worker`]: [`Worker`], the task that claims due deliveries, posts them and records the
//!   outcome, with exponential backoff and jitter between attempts.
//!
//! Events themselves are written by the store, in the transaction of the change they describe;
//! this crate only reads the outbox.

pub use callopt_egress as destination;
pub mod signature;
pub mod worker;

pub use destination::{check_url, DestinationError};
pub use worker::{Settings, Worker};

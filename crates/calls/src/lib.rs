//! Call handling shared by the SIP router and the carrier webhooks: which campaign and routing
//! plan a tracking number belongs to, the live counters every routing decision reads, the visitor
//! session a call is attributed to, and the durable record of every call.
//!
//! # Layout
//! - [`switchboard`]: [`Switchboard`], the one object both call paths ask (start a call, next
//!   target, answered, ended), with the routing table swapped atomically on every change.
//! - [`shared`]: [`SharedCounters`], target counters shared by the nodes of a deployment in
//!   Redis, reserved atomically by a Lua script.
//! - [`leases`]: [`SharedLeases`], visitor-number leases shared by the nodes in Redis, and the
//!   announcements that keep each node's copy of the pools and its attribution in step.
//! - [`table`]: the routing table built from the store: number → campaign and compiled plan.
//! - [`writer`]: [`CallWriter`], which writes call records in batches without making the call
//!   path wait, and never drops one.
//!
//! Every method the call paths use is synchronous and takes no lock longer than one routing
//! decision: the SIP core calls them from its single task.

pub mod leases;
pub mod shared;
pub mod switchboard;
pub mod table;
pub mod writer;

pub use leases::{Hold, Leased, SharedLeases};
/// What Redis answers when it fails.
pub use redis::RedisError;
pub use shared::{SharedCounters, Slot};
pub use switchboard::{CallState, Next, NodeSettings, Switchboard, MAX_CALL_MS};
pub use writer::CallWriter;

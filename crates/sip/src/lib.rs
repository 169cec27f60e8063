//! Callopt's SIP router: a stateful RFC 3261 proxy on UDP and TCP that asks the binary where
//! each call goes ([`CallControl`]), forks serially through the targets it names, and reports
//! every attempt and how the call ended.
//!
//! # Layout
//! - [`parse`]: the sans-IO message parser (start line and header spans over `Bytes`), framing.
//! - [`edit`]: the proxy's edits to forwarded messages, and the messages it writes itself.
//! - [`dns`]: host names of targets and routes, resolved off the message path into a cache.
//! - [`core`]: the transaction and call state machine, sans-IO: messages and time in, sends out.
//! - [`fuzzing`]: harnesses that feed arbitrary bytes to the parser and the core (fuzz targets,
//!   corpus and property tests).
//! - [`driver`]: the tokio drivers (one task owns the core; UDP socket, TCP listener and
//!   connections) and [`serve`].
//! - `batch`: UDP datagrams read and written many per system call (`recvmmsg`, `sendmmsg`).
//!
//! # Decisions
//! - The parser is written here rather than taken from `rsip`, `ezk-sip-types`, `rsipstack` or
//!   `sipx-sip`: a proxy forwards messages nearly byte for byte and reads a handful of fields,
//!   so an index of spans over the received `Bytes` is all it needs, and it costs one small
//!   `Vec` per message instead of a typed tree of owned strings.
//! - Ring timeout counts from the moment the INVITE goes to the target (as Kamailio's
//!   `fr_inv_timer` counts from the first provisional when one arrives quickly, the two agree
//!   within a round trip). A target that has not answered anything when it fires is
//!   `Unreachable`.
//! - When the caller cancels, the proxy answers 487 upstream at once (rather than relaying the
//!   target's 487) and cancels the branch; the call ends with `HungUpBy::Caller`. A 2xx that
//!   crosses the CANCEL cannot follow that 487 upstream (the caller's INVITE transaction is
//!   over), so the proxy ACKs it and sends the target a BYE of its own (RFC 3261 §15 leaves the
//!   choice to whoever holds the dialog); no dialog is kept.
//! - The single core task never blocks on DNS: a target or route that names a host is sent to
//!   the address [`dns`] resolved for it in a task of its own (RFC 3263's SRV, then A/AAAA). A
//!   name not resolved yet makes that attempt `Unreachable` and has it resolved at once.
//! - A dialog that sees no BYE within `max_dialog` ([`MAX_DIALOG`], 12 hours, by default) is
//!   hung up by the proxy, as Kamailio's dialog module does when a dialog times out: a BYE of
//!   its own to each side (to the target in the caller's name, to the caller in the target's,
//!   each along the route set from the proxy's place and above the highest CSeq that side was
//!   seen to use), so neither leg stays up and billed after the call record ends. The call is
//!   reported through `call_ended(key, HungUpBy::System, true)` once, the dialog forgotten, and
//!   the answers to those BYEs (481 and silence included) stop at the proxy. A dialog keeps a
//!   few short strings for this (at most 8 routes and 1 KiB per value a side, else that dialog
//!   is only forgotten), so the table stays bounded when callers vanish.
//! - A target URI's `;transport=tcp` puts its leg on TCP. When the caller's leg and the
//!   target's differ in transport, the INVITE carries two Record-Route values, the target's
//!   side on top (double record-routing, as Kamailio's rr module with `enable_double_rr`), so
//!   each side reaches the proxy on its own transport; in-dialog requests have both popped.
//! - Every call that ends without an answer and without the caller canceling (a `Reject` hop)
//!   is reported through `call_ended(key, HungUpBy::System, false)`.

mod batch;
pub mod core;
pub mod dns;
pub mod driver;
pub mod edit;
#[doc(hidden)]
pub mod fuzzing;
pub mod parse;

pub use callopt_domain::AttemptOutcome;
pub use driver::{serve, SipConfig};

use std::net::SocketAddr;
use std::time::Duration;

/// The transport a message came in on or goes out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams: retransmission timers apply.
    Udp,
    /// Streams framed by Content-Length: the transport is reliable, timers only time out.
    Tcp,
}

impl Transport {
    /// The Via spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
        }
    }
}

/// What the proxy knows of a new inbound call (an out-of-dialog INVITE).
#[derive(Debug, Clone)]
pub struct InboundCall<'a> {
    /// The Call-ID, for correlating logs and records with the carrier's.
    pub call_id: &'a str,
    /// The user part of the Request-URI, else of To: the tracking number dialed.
    pub called: &'a str,
    /// The user part of From: the caller's number.
    pub caller: &'a str,
    /// Where the INVITE came from (the carrier's address).
    pub source: SocketAddr,
    /// The transport it came on.
    pub transport: Transport,
}

/// Where the next attempt goes, or the final answer.
#[derive(Debug, Clone)]
pub enum Hop {
    /// Send the INVITE to this target.
    Target {
        /// The target's id, reported back in `attempt_failed` and `call_answered`.
        target: i64,
        /// Where to send it: an IP address, or a host name the router's [`dns`] task resolves.
        uri: callopt_domain::SipUri,
        /// How long it may ring before the proxy cancels it and asks again.
        ring_timeout: Duration,
    },
    /// Answer the caller with this final status.
    Reject {
        /// A final status, 300 to 699.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The decision is on its way (a control that asks something it cannot answer at once,
    /// such as counters shared between nodes): the control hands it to the router later
    /// through [`Hops::send`], under the call's key, which it must have given. Meanwhile the
    /// caller has its 100. If the caller cancels, or [`ROUTING_TIMEOUT`] passes first (the call
    /// is then answered 503 and ended by the system), the call ends as usual and the late hop
    /// is dropped: a control that reserved something for it releases it itself.
    Pending,
}

/// How long a [`Hop::Pending`] decision may take before the call is given up.
pub const ROUTING_TIMEOUT: Duration = Duration::from_secs(8);

/// Where a control sends the decisions it gave as [`Hop::Pending`]; cloneable, usable from any
/// thread or task.
#[derive(Debug, Clone)]
pub struct Hops(tokio::sync::mpsc::UnboundedSender<(u64, Hop)>);

impl Hops {
    /// A sender and the receiving end the router reads.
    pub fn channel() -> (Self, tokio::sync::mpsc::UnboundedReceiver<(u64, Hop)>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (Self(tx), rx)
    }

    /// Hands the router the hop decided for the call with this key. False once the router has
    /// stopped.
    pub fn send(&self, call: u64, hop: Hop) -> bool {
        self.0.send((call, hop)).is_ok()
    }
}

/// The binary's side of the router: routing decisions and call records. Calls are synchronous
/// and must not block (state in memory, database writes queued); a decision that has to wait
/// is given as [`Hop::Pending`] and sent later through [`Hops`].
pub trait CallControl: Send + Sync + 'static {
    /// A new call: the first hop. `None` for the key means no call record (e.g. unknown number
    /// rejected).
    fn call_started(&self, call: &InboundCall<'_>) -> (Option<u64>, Hop);
    /// An attempt ended without being answered (not Canceled): the next hop (another target, or
    /// the final answer to send upstream).
    fn attempt_failed(
        &self,
        call: u64,
        target: i64,
        outcome: AttemptOutcome,
        sip_status: Option<u16>,
    ) -> Hop;
    /// The current attempt was answered (2xx forwarded upstream).
    fn call_answered(&self, call: u64, target: i64, sip_status: u16);
    /// The call is over: `Caller`/`Target` hung up (BYE) after answer, or the caller canceled
    /// while ringing (`HungUpBy::Caller` with `answered=false`), or the proxy gave up (`System`).
    fn call_ended(&self, call: u64, by: callopt_domain::HungUpBy, answered: bool);
    /// SIP targets to probe with OPTIONS (asked periodically).
    fn probe_targets(&self) -> Vec<(i64, callopt_domain::SipUri)>;
    /// A probed target changed state (down after N failures in a row, up after M successes), as
    /// Kamailio's dispatcher does.
    fn target_health(&self, target: i64, up: bool);
    /// Where to send the decisions given as [`Hop::Pending`]; called once when the router
    /// starts. A control that never defers ignores it.
    fn attach(&self, hops: Hops) {
        let _ = hops;
    }
}

/// How long a dialog may last without a BYE, by default: the switchboard's own bound on a call
/// (`calls::MAX_CALL_MS`, 12 hours), so neither keeps a call the other has let go of.
pub const MAX_DIALOG: Duration = Duration::from_secs(12 * 3600);

/// RFC 3261 timer bases. Tests shorten them; production keeps the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// Round-trip estimate: first retransmission interval; transactions time out at 64×T1.
    pub t1: Duration,
    /// Cap on non-INVITE and response retransmission intervals.
    pub t2: Duration,
    /// How long the network may hold a message: wait states after completion.
    pub t4: Duration,
    /// How long a finished transaction stays on UDP to absorb retransmissions: an INVITE
    /// branch after its final (Timer D, RFC 6026's Timer M), a caller's accepted INVITE (its
    /// Timer L) and a relayed request after its final (Timer J). `None` is RFC 3261's 64×T1
    /// (32 s). Kamailio's tm keeps them 5 s (`wt_timer`), trading late retransmissions for
    /// memory: at thousands of calls a second every second kept is that many more calls held.
    pub linger: Option<Duration>,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            linger: None,
        }
    }
}

/// OPTIONS probing of targets, as Kamailio's dispatcher does.
#[derive(Debug, Clone, Copy)]
pub struct Probing {
    /// How often every probe target gets an OPTIONS; `None` turns probing off.
    pub interval: Option<Duration>,
    /// Failures in a row that mark a target down.
    pub failures: u32,
    /// Successes in a row that mark a down target up again.
    pub successes: u32,
}

impl Default for Probing {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(10)),
            failures: 3,
            successes: 2,
        }
    }
}

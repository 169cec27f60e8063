//! The proxy's state machine, sans-IO: calls (server INVITE transactions with their serial
//! branches), relayed in-dialog requests, dialogs and OPTIONS probes, driven by messages and a
//! clock given as arguments, answering with the bytes to send.

use crate::edit::{self, Forward};
use crate::parse::{self, Framing, HeaderName, Message};
use crate::{AttemptOutcome, CallControl, Hop, InboundCall, Probing, Timers, Transport};
use bytes::Bytes;
use callopt_domain::HungUpBy;
use foldhash::{HashMap, HashMapExt};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A remote end: address and transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// How to reach it.
    pub transport: Transport,
}

/// Something that happened outside the core.
#[derive(Debug)]
pub enum Input {
    /// A datagram, or one framed message from a stream.
    Message {
        /// The bytes.
        data: Bytes,
        /// Who sent them, and on which transport.
        from: Peer,
    },
    /// Sending to this peer failed (connection refused, ICMP): whatever waits on it gives up.
    Unreachable {
        /// The peer.
        to: Peer,
    },
    /// A decision the control gave as [`Hop::Pending`], for the call with this key.
    Hop {
        /// The call's key.
        key: u64,
        /// Where it goes.
        hop: Hop,
    },
}

/// Bytes to send.
#[derive(Debug, Clone)]
pub struct Output {
    /// Where to.
    pub to: Peer,
    /// The message.
    pub data: Bytes,
}

/// The core's settings.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Our UDP address as others must reach it (Via, Record-Route, recognising Routes to us).
    pub udp: SocketAddr,
    /// Our TCP address, when we listen on TCP.
    pub tcp: Option<SocketAddr>,
    /// Timer bases.
    pub timers: Timers,
    /// Target probing.
    pub probing: Probing,
    /// How long a dialog may last without a BYE (the BYE was lost, or the caller vanished)
    /// before the core hangs up both sides with a BYE of its own, forgets it and reports the
    /// call ended by the system.
    pub max_dialog: Duration,
    /// Resolved host names, for targets and routes that name a host; without it (or before a
    /// name is resolved) such a next hop is unreachable.
    pub hosts: Option<Arc<crate::dns::Hosts>>,
}

/// Why a branch is being canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelWhy {
    /// The ring timeout fired.
    NoAnswer,
    /// The caller sent CANCEL.
    Caller,
}

/// The client INVITE transaction states (RFC 3261 §17.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
    Terminated,
}

/// The server INVITE transaction states (RFC 3261 §17.2.1 with RFC 6026's Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Proceeding,
    Completed,
    Confirmed,
}

/// One inbound call: its server INVITE transaction and the current attempt.
struct Call {
    /// The CallControl's key, when the call has a record.
    key: Option<u64>,
    /// Where responses go.
    upstream: Peer,
    /// The INVITE as received, to build responses and the next attempts from.
    invite: Message,
    /// Its top Via branch: the key in `server_invites`.
    server_branch: String,
    /// Our To tag for the responses we write.
    to_tag: String,
    /// Server transaction state.
    state: ServerState,
    /// The last response sent upstream, for INVITE retransmissions and Timer G.
    last: Option<Bytes>,
    /// Timer G's current interval.
    g_interval: Duration,
    /// The current branch id.
    branch: Option<u64>,
    /// The caller canceled: answered already, the branch only needs cleaning up.
    caller_canceled: bool,
    /// Hops taken, to bound a CallControl that never stops.
    hops: u32,
    /// Waiting for a [`Hop::Pending`] decision.
    waiting: bool,
    /// When the decision being waited for is given up: a routing timer set for an earlier wait
    /// of the same call (each failover may wait) fires before it and is ignored.
    waiting_until: Option<Instant>,
}

/// One attempt: a client INVITE transaction toward a target.
struct Branch {
    /// The call it belongs to.
    call: u64,
    /// The target's id.
    target: i64,
    /// Where it goes.
    to: Peer,
    /// Where the call's responses go (2xx retransmissions outlive the call).
    upstream: Peer,
    /// The INVITE as sent (retransmissions, ACK and CANCEL are built from it).
    request: Bytes,
    /// Transaction state.
    state: ClientState,
    /// Timer A's current interval.
    a_interval: Duration,
    /// Why it is being canceled, if it is.
    cancel: Option<CancelWhy>,
    /// The CANCEL, once sent (retransmitted until answered).
    cancel_sent: Option<Bytes>,
    /// A response to the CANCEL came.
    cancel_answered: bool,
    /// Timer E's interval for the CANCEL.
    e_interval: Duration,
    /// The ACK we sent for the final response (a non-2xx, or a 2xx that came after the caller
    /// canceled), re-sent when that final is retransmitted.
    ack: Option<Output>,
    /// When Timer B fires (64×T1 after the INVITE went out).
    b_due: Instant,
    /// When the finished transaction may be forgotten, if Timer B is still to come: Timer B
    /// then forgets it, or sets Timer D for what is left, so that a branch holds one long
    /// timer rather than two.
    forget_at: Option<Instant>,
    /// The answered branch's call: the caller's INVITE branch, kept in `server_invites` to
    /// absorb retransmitted INVITEs (RFC 6026's Accepted state) until this branch is forgotten.
    accepted: Option<String>,
}

/// A relayed request (in dialog: BYE, re-INVITE, INFO, ...): a server and a client transaction.
struct Relay {
    /// Where responses go.
    upstream: Peer,
    /// The request as received, to write a 408 from; dropped once complete.
    request: Option<Message>,
    /// Its key in `relay_keys` ([`relay_key`]).
    server_key: String,
    /// Where the request went.
    to: Peer,
    /// The request as sent; dropped once complete.
    forwarded: Option<Bytes>,
    /// A final response has come (or 408 was sent).
    done: bool,
    /// The last response relayed, for retransmitted requests.
    last: Option<Bytes>,
    /// Retransmission interval (E, or A for INVITE).
    interval: Duration,
    /// INVITE semantics: ACK non-2xx finals hop by hop, no interval cap.
    invite: bool,
    /// The Call-ID of a BYE, to forget the dialog when it completes.
    bye_call_id: Option<String>,
    /// The caller canceled this (re-)INVITE: a CANCEL goes downstream once it is proceeding.
    cancel_wanted: bool,
    /// That CANCEL, once sent; retransmitted on UDP until answered or the INVITE completes.
    cancel_sent: Option<Bytes>,
    /// A final response to that CANCEL came.
    cancel_answered: bool,
    /// Our hop-by-hop ACK for a non-2xx final to an INVITE: re-sent when that final is
    /// retransmitted; the caller's own ACK for it stops here.
    ack: Option<Bytes>,
    /// Timer E's interval for that CANCEL.
    cancel_interval: Duration,
    /// When the completed transaction may be forgotten (UDP): its Timer F, still to come,
    /// forgets it then or sets Timer J/K for what is left, so that a relay holds one long timer
    /// rather than two.
    forget_at: Option<Instant>,
}

/// A confirmed dialog, so that BYE ends the call exactly once, and so that the proxy can hang
/// up both sides itself when it outlives `max_dialog`.
struct Dialog {
    /// Its id, for the timer that bounds it.
    id: u64,
    /// The CallControl's key.
    key: Option<u64>,
    /// From tag of the INVITE: a BYE with this From tag comes from the caller.
    caller_tag: String,
    /// To tag of the 2xx: requests with this From tag come from the target.
    target_tag: String,
    /// What the proxy needs to write each side a request of its own.
    sides: Sides,
    /// The highest CSeq of each side's requests seen through the proxy, the caller's first (its
    /// INVITE's, and 0 for a target that has sent none): a request the proxy sends in a side's
    /// name goes above it.
    cseq: [u32; 2],
    /// Each side's remote target since its last target refresh (re-INVITE, UPDATE), the
    /// caller's first; `None` while it is the one the dialog began with.
    refreshed: [Option<String>; 2],
    /// A BYE was seen.
    ended: bool,
    /// When it reaches `max_dialog`: with `id`, its key in `Core::dialog_limits`.
    limit_at: Instant,
}

/// Where a dialog's sides come from. Most dialogs end with a BYE that passes through and never
/// need them, so the messages are kept as they came and read only at the limit; a message
/// larger than [`MAX_KEPT_MESSAGE`] is read at once and only the few values it yields are kept,
/// so that a dialog held for hours costs a bounded amount of memory.
#[allow(clippy::large_enum_variant)] // in a boxed `Dialog`; the small variant is the rare one
enum Sides {
    /// The caller's INVITE as received, with its source, and the target's 2xx, with where the
    /// INVITE went and that INVITE's Request-URI when the 2xx has no usable Contact.
    Kept {
        invite: Message,
        upstream: Peer,
        answer: Message,
        target_peer: Peer,
        sent_uri: Option<String>,
    },
    /// The sides themselves; `None` for one too large or odd to keep (then the proxy sends no
    /// BYE at the limit).
    Read(Option<Party>, Option<Party>),
}

/// One side of a confirmed dialog, as the proxy needs it to write that side a request of its
/// own and to speak for it to the other side (RFC 3261 §12.1). A few short strings: a value
/// longer than [`MAX_KEPT`] or more than [`MAX_ROUTES`] routes and the side is not kept.
struct Party {
    /// Its address with its tag: the From of its requests (the caller's From, the target's To).
    addr: String,
    /// Its remote target (its Contact) and the Route values from the proxy to it.
    reach: edit::DialogTarget,
    /// Where to send when neither its Contact nor its first route names an IP address: the
    /// caller's source address, or where the INVITE went.
    peer: Peer,
}

/// An OPTIONS probe in flight.
struct Probe {
    /// The target probed.
    target: i64,
    /// Where it went.
    to: Peer,
    /// The OPTIONS, for retransmissions.
    request: Bytes,
    /// Timer E's interval.
    interval: Duration,
    /// Answered or timed out.
    done: bool,
}

/// A request the proxy sends on its own behalf (the BYE that ends a dialog it would not keep,
/// or one that outlived `max_dialog`).
struct Own {
    /// The dialog's Call-ID, for the log line its outcome gets.
    call_id: String,
    /// Where it went.
    to: Peer,
    /// The request, for retransmissions.
    request: Bytes,
    /// Timer E's interval.
    interval: Duration,
}

/// A target's probing record.
#[derive(Default)]
struct Health {
    /// Marked down.
    down: bool,
    /// Failures in a row.
    failures: u32,
    /// Successes in a row.
    successes: u32,
}

/// What a timer is for; each handler checks that the state it was set for still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Timer A: retransmit the INVITE.
    A(u64),
    /// Timer B: the target never answered.
    B(u64),
    /// The ring timeout.
    Ring(u64),
    /// Retransmit the CANCEL.
    CancelE(u64),
    /// Give up on a canceled branch that never sent a final.
    CancelGuard(u64),
    /// Timer D: forget a completed branch.
    D(u64),
    /// Timer G: retransmit our final upstream.
    G(u64),
    /// Timer H: the caller never ACKed.
    H(u64),
    /// Timer I: forget a confirmed call.
    I(u64),
    /// Timer E (or A) of a relay.
    RelayE(u64),
    /// Timer F (or B) of a relay.
    RelayF(u64),
    /// Retransmit the CANCEL of a relayed INVITE.
    RelayCancelE(u64),
    /// Timer J/K: forget a completed relay.
    RelayDone(u64),
    /// Timer E of a probe.
    ProbeE(u64),
    /// Timer F of a probe.
    ProbeF(u64),
    /// Time to probe every target.
    ProbeAll,
    /// A pending routing decision took too long.
    Routing(u64),
    /// Timer E of a request of our own.
    OwnE(u64),
    /// Timer F of a request of our own.
    OwnF(u64),
}

const MAX_HOPS: u32 = 32;
/// The longest header value (an address, a URI, a route) a dialog keeps for its own BYEs.
const MAX_KEPT: usize = 1024;
/// The most routes a dialog keeps towards one side.
const MAX_ROUTES: usize = 8;
/// The largest message (the caller's INVITE, the target's 2xx) a dialog keeps whole.
const MAX_KEPT_MESSAGE: usize = 4096;
const ALLOW: &str = "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n";
const KNOWN_METHODS: [&str; 10] = [
    "REGISTER",
    "SUBSCRIBE",
    "NOTIFY",
    "MESSAGE",
    "REFER",
    "INFO",
    "UPDATE",
    "PRACK",
    "PUBLISH",
    "PING",
];

/// The proxy. One task owns it; nothing in it locks.
pub struct Core {
    /// Settings.
    config: CoreConfig,
    /// The binary's routing and records.
    control: Arc<dyn CallControl>,
    /// `z9hG4bK` + this process's random prefix: branches we made start with it.
    branch_prefix: String,
    /// Our Via up to the branch's kind and id, and our Record-Route, by transport (UDP, TCP):
    /// written once, as neither address changes.
    own_headers: [(String, String); 2],
    /// Ids for calls, branches, relays and probes; never reused.
    next_id: u64,
    /// Calls by id. This map and those of branches, relays and dialogs hold their values boxed:
    /// finished transactions wait out Timer D and J (32 s on UDP unless [`Timers::linger`] is
    /// shorter), so under load these maps hold hundreds of thousands of entries, and with
    /// values of 250–450 bytes inline each doubling of a table copied them all into fresh
    /// memory (page faults were 7% of the router's CPU at 3,000 calls/s; 4% boxed).
    calls: HashMap<u64, Box<Call>>,
    /// Server INVITE transactions: caller's branch → call id (or `None` once accepted, kept to
    /// absorb retransmissions).
    server_invites: HashMap<String, Option<u64>>,
    /// Branches by id.
    branches: HashMap<u64, Box<Branch>>,
    /// Relays by id.
    relays: HashMap<u64, Box<Relay>>,
    /// Relays by (caller's branch, method).
    relay_keys: HashMap<String, u64>,
    /// Where a key of `relay_keys` is written to look it up, so that a look-up allocates
    /// nothing (the caller's ACK for every answered call is one).
    key_scratch: String,
    /// Calls waiting for a [`Hop::Pending`] decision: call id by the control's key.
    pending: HashMap<u64, u64>,
    /// Dialogs by Call-ID.
    dialogs: HashMap<String, Box<Dialog>>,
    /// Dialogs' Call-IDs by (time limit, dialog id), soonest first. Not in `timers`: a timer
    /// cannot be taken out, and would outlive its call by `max_dialog` (hours, where
    /// every other timer is gone within a minute); this one goes with the dialog.
    dialog_limits: BTreeMap<(Instant, u64), String>,
    /// Probes by id.
    probes: HashMap<u64, Probe>,
    /// Requests of our own in flight, by id.
    own: HashMap<u64, Own>,
    /// Probing records by target.
    health: HashMap<i64, Health>,
    /// Timers, soonest first (in the order set when due together).
    timers: queue::TimerQueues<Timer>,
}

impl Core {
    /// A core with nothing in flight; probing (when on) starts one interval from `now`.
    pub fn new(config: CoreConfig, control: Arc<dyn CallControl>, now: Instant) -> Self {
        let prefix: u32 = rand::random();
        let branch_prefix = format!("z9hG4bK{prefix:08x}");
        let own_headers = [Transport::Udp, Transport::Tcp].map(|transport| {
            let addr = match transport {
                Transport::Tcp => config.tcp.unwrap_or(config.udp),
                Transport::Udp => config.udp,
            };
            let via = format!(
                "SIP/2.0/{} {addr};branch={branch_prefix}",
                transport.as_str()
            );
            let record_route = match transport {
                Transport::Udp => format!("<sip:{addr};lr>"),
                Transport::Tcp => format!("<sip:{addr};transport=tcp;lr>"),
            };
            (via, record_route)
        });
        let mut core = Self {
            branch_prefix,
            own_headers,
            config,
            control,
            next_id: 1,
            calls: HashMap::new(),
            server_invites: HashMap::new(),
            branches: HashMap::new(),
            relays: HashMap::new(),
            relay_keys: HashMap::new(),
            key_scratch: String::new(),
            pending: HashMap::new(),
            dialogs: HashMap::new(),
            dialog_limits: BTreeMap::new(),
            probes: HashMap::new(),
            own: HashMap::new(),
            health: HashMap::new(),
            timers: queue::TimerQueues::default(),
        };
        if let Some(every) = core.config.probing.interval {
            core.set(now, every, Timer::ProbeAll);
        }
        core
    }

    /// The earliest timer deadline, for the driver's sleep.
    pub fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.next_due();
        let limit = self.dialog_limits.first_key_value().map(|((at, _), _)| *at);
        match (timer, limit) {
            (Some(t), Some(l)) => Some(t.min(l)),
            (t, l) => t.or(l),
        }
    }

    /// Timers set and not yet fired, dialogs' time limits included (for tests and metrics).
    pub fn timers(&self) -> usize {
        self.timers.len() + self.dialog_limits.len()
    }

    /// Calls and dialogs in memory (for tests and metrics).
    pub fn live(&self) -> (usize, usize) {
        (self.calls.len(), self.dialogs.len())
    }

    /// Handles one input; sends go to `out`.
    pub fn handle(&mut self, input: Input, now: Instant, out: &mut Vec<Output>) {
        match input {
            Input::Message { data, from } => {
                let framing = match from.transport {
                    Transport::Udp => Framing::Datagram,
                    Transport::Tcp => Framing::Stream,
                };
                match Message::parse_or_return(data, framing) {
                    Ok(msg) if msg.status().is_some() => self.on_response(msg, now, out),
                    Ok(msg) => self.on_request(msg, from, now, out),
                    Err((e, data)) => self.on_unparseable(e, data, from, out),
                }
            }
            Input::Unreachable { to } => self.on_unreachable(to, now, out),
            Input::Hop { key, hop } => self.on_decided(key, hop, now, out),
        }
    }

    /// A pending decision arrived: it goes on from where the call waits, unless the call
    /// ended meanwhile (canceled, timed out), when it is dropped.
    fn on_decided(&mut self, key: u64, hop: Hop, now: Instant, out: &mut Vec<Output>) {
        let Some(call_id) = self.pending.remove(&key) else {
            tracing::debug!(key, "a routing decision for a call that has ended dropped");
            return;
        };
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        if !call.waiting || call.caller_canceled || call.state != ServerState::Proceeding {
            return;
        }
        call.waiting = false;
        self.apply_hop(call_id, hop, now, out);
    }

    /// Stops waiting for a call's pending decision, if it was.
    fn stop_waiting(&mut self, call_id: u64) {
        if let Some(call) = self.calls.get_mut(&call_id) {
            if std::mem::take(&mut call.waiting) {
                if let Some(key) = call.key {
                    self.pending.remove(&key);
                }
            }
        }
    }

    /// Answers 400 to a request whose framing is broken but whose headers allow a response;
    /// anything else is dropped.
    fn on_unparseable(&self, e: parse::ParseError, data: Bytes, from: Peer, out: &mut Vec<Output>) {
        let (head, reason) = match e {
            parse::ParseError::ContentLength => {
                (Message::parse_head(data).ok(), "Bad Content-Length")
            }
            parse::ParseError::StartLine => {
                (head_behind_bad_request_line(&data), "Bad Request-Line")
            }
            _ => (None, ""),
        };
        if let Some(msg) = head {
            if msg.method().is_some_and(|m| m != "ACK") && edit::can_respond(&msg) {
                return self.respond(from, &msg, 400, reason, out);
            }
        }
        tracing::debug!(%e, from = %from.addr, "unparseable message dropped");
    }

    /// Fires every timer due at `now`, soonest first.
    pub fn poll_timers(&mut self, now: Instant, out: &mut Vec<Output>) {
        loop {
            let limit = self.dialog_limits.first_key_value().map(|((at, _), _)| *at);
            // A timer due with a dialog's limit goes first.
            if let Some(timer) = self.timers.pop_due(limit.map_or(now, |l| l.min(now))) {
                self.on_timer(timer, now, out);
            } else if limit.is_some_and(|l| l <= now) {
                if let Some((_, call_id)) = self.dialog_limits.pop_first() {
                    self.dialog_limit(call_id, now, out);
                }
            } else {
                break;
            }
        }
    }

    fn set(&mut self, now: Instant, after: Duration, timer: Timer) {
        self.timers.set(now, after, timer);
    }

    fn id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn t64(&self) -> Duration {
        self.config.timers.t1 * 64
    }

    /// How long a finished transaction stays on UDP (see [`Timers::linger`]).
    fn linger(&self) -> Duration {
        self.config.timers.linger.unwrap_or_else(|| self.t64())
    }

    fn our_addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tcp => self.config.tcp.unwrap_or(self.config.udp),
            Transport::Udp => self.config.udp,
        }
    }

    fn via(&self, transport: Transport, kind: char, id: u64) -> String {
        use std::fmt::Write;
        let head = &self.own_headers[transport as usize].0;
        let mut via = String::with_capacity(head.len() + 21);
        via.push_str(head);
        via.push(kind);
        let _ = write!(via, "{id}");
        via
    }

    /// Decodes a branch we made: (kind, id).
    fn our_branch(&self, branch: &str) -> Option<(char, u64)> {
        let rest = branch.strip_prefix(self.branch_prefix.as_str())?;
        let kind = rest.chars().next()?;
        Some((kind, rest[1..].parse().ok()?))
    }

    /// Where a URI points: its IP address, or its host name's address once resolved.
    fn peer(&self, uri: &str) -> Option<Peer> {
        if let Some(p) = uri_peer(uri) {
            return Some(p);
        }
        let key = crate::dns::host_key(uri)?;
        let addr = self.config.hosts.as_ref()?.lookup(&key)?;
        Some(Peer {
            addr,
            transport: key.transport,
        })
    }

    fn is_us(&self, peer: Peer) -> bool {
        let same = |a: SocketAddr| a == peer.addr;
        same(self.config.udp) || self.config.tcp.is_some_and(same)
    }

    fn respond(&self, to: Peer, req: &Message, status: u16, reason: &str, out: &mut Vec<Output>) {
        self.respond_extra(to, req, status, reason, "", out);
    }

    fn respond_extra(
        &self,
        to: Peer,
        req: &Message,
        status: u16,
        reason: &str,
        extra: &str,
        out: &mut Vec<Output>,
    ) {
        let tag = format!("{}x", &self.branch_prefix[7..]);
        let data = edit::response(req, status, reason, Some(&tag), extra);
        out.push(Output { to, data });
    }

    // ---- requests -------------------------------------------------------------------------

    fn on_request(&mut self, msg: Message, from: Peer, now: Instant, out: &mut Vec<Output>) {
        if !msg.version_ok() {
            // The Via names the other version too, so `can_respond` would refuse: answer when
            // the headers a response copies are there at all.
            let copied = [
                HeaderName::Via,
                HeaderName::From,
                HeaderName::To,
                HeaderName::CSeq,
            ];
            if msg.method() != Some("ACK")
                && msg.call_id().is_some()
                && copied.iter().all(|h| msg.header(*h).is_some())
            {
                self.respond(from, &msg, 505, "Version Not Supported", out);
            }
            return;
        }
        if !edit::can_respond(&msg) {
            // With a Via a response can find its way back: say what is missing, copying what
            // is there (RFC 4475's insuf). Without one, nothing tells where it would go.
            if msg.method() != Some("ACK") && msg.top_via().is_some() && vias_well_formed(&msg) {
                let reason = format!("Missing {}", edit::missing_headers(&msg).join(", "));
                return self.respond(from, &msg, 400, &reason, out);
            }
            tracing::debug!(from = %from.addr, "request without a Via dropped");
            return;
        }
        // The methods the proxy handles are named without a copy; any other is copied.
        let method: std::borrow::Cow<'static, str> = {
            let m = msg.method().unwrap_or_default();
            match ["ACK", "BYE", "CANCEL", "INVITE", "OPTIONS"]
                .into_iter()
                .chain(KNOWN_METHODS)
                .find(|k| *k == m)
            {
                Some(k) => k.into(),
                None => m.to_string().into(),
            }
        };
        if method != "ACK" {
            if let Some((status, reason, extra)) = refusal(&msg, &method) {
                return self.respond_extra(from, &msg, status, reason, &extra, out);
            }
        }
        let cseq_ok = msg
            .cseq()
            .is_some_and(|(_, m)| m == method || (method == "ACK" && m == "ACK"));
        if !cseq_ok || !vias_well_formed(&msg) {
            if method != "ACK" {
                self.respond(from, &msg, 400, "Bad Request", out);
            }
            return;
        }
        match msg.max_forwards() {
            Some(Err(())) if method != "ACK" => {
                return self.respond(from, &msg, 400, "Bad Max-Forwards", out)
            }
            Some(Ok(0)) if method != "ACK" => {
                return self.respond(from, &msg, 483, "Too Many Hops", out)
            }
            Some(Ok(0)) | Some(Err(())) => return,
            _ => {}
        }
        match &*method {
            "ACK" => self.on_ack(msg, from, now, out),
            "CANCEL" => self.on_cancel(msg, from, now, out),
            _ if msg.to_tag().is_some() => self.on_in_dialog(msg, from, &method, now, out),
            "INVITE" => self.on_invite(msg, from, now, out),
            "OPTIONS" => self.respond_extra(from, &msg, 200, "OK", ALLOW, out),
            "BYE" => self.respond(from, &msg, 481, "Call/Transaction Does Not Exist", out),
            m if KNOWN_METHODS.contains(&m) => {
                self.respond_extra(from, &msg, 405, "Method Not Allowed", ALLOW, out)
            }
            _ => self.respond(from, &msg, 501, "Not Implemented", out),
        }
    }

    fn on_invite(&mut self, msg: Message, from: Peer, now: Instant, out: &mut Vec<Output>) {
        let branch = &*server_key(&msg);
        if let Some(entry) = self.server_invites.get(branch) {
            // A retransmission: repeat what we last said.
            if let Some(call) = entry.and_then(|id| self.calls.get(&id)) {
                if let Some(last) = &call.last {
                    out.push(Output {
                        to: call.upstream,
                        data: last.clone(),
                    });
                }
            }
            return;
        }
        let id = self.id();
        let to_tag = format!("{}c{id}", &self.branch_prefix[7..]);
        let trying = edit::response(&msg, 100, "Trying", None, "");
        out.push(Output {
            to: from,
            data: trying.clone(),
        });
        let uri = msg.uri().unwrap_or_default();
        let called = parse::uri_user(uri)
            .or_else(|| {
                msg.value(HeaderName::To)
                    .and_then(|t| parse::uri_user(parse::addr_uri(t)))
            })
            .unwrap_or_default();
        let caller = msg
            .value(HeaderName::From)
            .and_then(|f| parse::uri_user(parse::addr_uri(f)))
            .unwrap_or_default();
        let (key, hop) = self.control.call_started(&InboundCall {
            call_id: msg.call_id().unwrap_or_default(),
            called,
            caller,
            source: from.addr,
            transport: from.transport,
        });
        let server_branch = branch.to_string();
        self.server_invites.insert(server_branch.clone(), Some(id));
        self.calls.insert(
            id,
            Call {
                key,
                upstream: from,
                invite: msg,
                server_branch,
                to_tag,
                state: ServerState::Proceeding,
                last: Some(trying),
                g_interval: self.config.timers.t1,
                branch: None,
                caller_canceled: false,
                hops: 0,
                waiting: false,
                waiting_until: None,
            }
            .into(),
        );
        self.apply_hop(id, hop, now, out);
    }

    /// Follows a hop: start a branch, or answer the caller.
    fn apply_hop(&mut self, call_id: u64, mut hop: Hop, now: Instant, out: &mut Vec<Output>) {
        loop {
            let Some(call) = self.calls.get_mut(&call_id) else {
                return;
            };
            if matches!(hop, Hop::Pending) {
                let Some(key) = call.key else {
                    hop = Hop::Reject {
                        status: 500,
                        reason: "Server Internal Error".into(),
                    };
                    continue;
                };
                call.waiting = true;
                call.waiting_until = Some(now + crate::ROUTING_TIMEOUT);
                call.branch = None;
                self.pending.insert(key, call_id);
                self.set(now, crate::ROUTING_TIMEOUT, Timer::Routing(call_id));
                return;
            }
            call.hops += 1;
            if call.hops > MAX_HOPS {
                hop = Hop::Reject {
                    status: 500,
                    reason: "Too Many Attempts".into(),
                };
            }
            let key = call.key;
            match hop {
                Hop::Reject { status, reason } => {
                    let status = if (300..=699).contains(&status) {
                        status
                    } else {
                        500
                    };
                    self.final_upstream(call_id, status, &reason, now, out);
                    if let Some(key) = key {
                        self.control.call_ended(key, HungUpBy::System, false);
                    }
                    return;
                }
                Hop::Pending => unreachable!("handled above"),
                Hop::Target {
                    target,
                    uri,
                    ring_timeout,
                } => match self.start_branch(call_id, target, &uri, ring_timeout, now, out) {
                    Ok(()) => return,
                    Err(()) => {
                        tracing::debug!(target, uri = %uri, "target unreachable (address)");
                        match key {
                            Some(key) => {
                                hop = self.control.attempt_failed(
                                    key,
                                    target,
                                    AttemptOutcome::Unreachable,
                                    None,
                                )
                            }
                            None => {
                                hop = Hop::Reject {
                                    status: 480,
                                    reason: "Temporarily Unavailable".into(),
                                }
                            }
                        }
                    }
                },
            }
        }
    }

    /// Sends a final response we wrote to the caller and completes the server transaction.
    fn final_upstream(
        &mut self,
        call_id: u64,
        status: u16,
        reason: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        if call.state != ServerState::Proceeding {
            return;
        }
        let data = edit::response(&call.invite, status, reason, Some(&call.to_tag), "");
        self.send_final(call_id, data, now, out);
    }

    /// Sends a non-2xx final upstream (ours or relayed) and starts Timers G and H.
    fn send_final(&mut self, call_id: u64, data: Bytes, now: Instant, out: &mut Vec<Output>) {
        let t1 = self.config.timers.t1;
        let t64 = self.t64();
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        call.state = ServerState::Completed;
        call.last = Some(data.clone());
        out.push(Output {
            to: call.upstream,
            data,
        });
        if call.upstream.transport == Transport::Udp {
            call.g_interval = t1;
            self.set(now, t1, Timer::G(call_id));
        }
        self.set(now, t64, Timer::H(call_id));
    }

    fn start_branch(
        &mut self,
        call_id: u64,
        target: i64,
        uri: &callopt_domain::SipUri,
        ring_timeout: Duration,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), ()> {
        let to = self.peer(uri.as_str()).ok_or(())?;
        if self.is_us(to) {
            return Err(());
        }
        let id = self.id();
        let via = self.via(to.transport, 'i', id);
        let upstream_transport = self.calls.get(&call_id).ok_or(())?.upstream.transport;
        // The target's side on top: it is where the target's in-dialog requests come in. When
        // the legs differ in transport, the caller's side below it (double record-routing).
        // (The fields themselves, not `record_route`, so that `calls` can be borrowed below.)
        let both = [
            self.own_headers[to.transport as usize].1.as_str(),
            self.own_headers[upstream_transport as usize].1.as_str(),
        ];
        let record_routes = if to.transport == upstream_transport {
            &both[..1]
        } else {
            &both[..]
        };
        let call = self.calls.get_mut(&call_id).ok_or(())?;
        let pop_routes = routes_to_us(&call.invite, &self.config);
        let request = edit::forward_request(
            &call.invite,
            &Forward {
                uri: Some(uri.as_str()),
                via: &via,
                record_routes,
                pop_routes,
            },
        );
        call.branch = Some(id);
        let upstream = call.upstream;
        out.push(Output {
            to,
            data: request.clone(),
        });
        let t1 = self.config.timers.t1;
        self.branches.insert(
            id,
            Branch {
                call: call_id,
                target,
                to,
                upstream,
                request,
                state: ClientState::Calling,
                a_interval: t1,
                cancel: None,
                cancel_sent: None,
                cancel_answered: false,
                e_interval: t1,
                ack: None,
                b_due: now + self.config.timers.t1 * 64,
                forget_at: None,
                accepted: None,
            }
            .into(),
        );
        if to.transport == Transport::Udp {
            self.set(now, t1, Timer::A(id));
        }
        self.set(now, self.t64(), Timer::B(id));
        self.set(now, ring_timeout, Timer::Ring(id));
        Ok(())
    }

    fn on_ack(&mut self, msg: Message, from: Peer, now: Instant, out: &mut Vec<Output>) {
        let branch = &*server_key(&msg);
        if let Some(entry) = self.server_invites.get(branch) {
            // ACK for our non-2xx final: absorb it.
            if let Some(id) = *entry {
                if let Some(call) = self.calls.get_mut(&id) {
                    if call.state == ServerState::Completed {
                        call.state = ServerState::Confirmed;
                        let wait = match call.upstream.transport {
                            Transport::Udp => self.config.timers.t4,
                            Transport::Tcp => Duration::ZERO,
                        };
                        self.set(now, wait, Timer::I(id));
                    }
                }
            }
            return;
        }
        let relay = self.relay_id("INVITE", branch);
        if let Some(r) = relay.and_then(|id| self.relays.get(&id)) {
            if r.ack.is_some() {
                // The caller's ACK for a non-2xx final to its re-INVITE: hop by hop, and we
                // ACKed the target ourselves.
                return;
            }
        }
        // ACK for a 2xx: end to end, statelessly along the route.
        let Some(to) = self.next_hop(&msg) else {
            return;
        };
        let id = self.id();
        let via = self.via(to.transport, 'a', id);
        let data = edit::forward_request(
            &msg,
            &Forward {
                via: &via,
                pop_routes: routes_to_us(&msg, &self.config),
                ..Forward::default()
            },
        );
        let _ = from;
        out.push(Output { to, data });
    }

    /// Where an in-dialog request goes: the next Route after ours (one, or two when we
    /// double record-routed), else the Request-URI.
    fn next_hop(&self, msg: &Message) -> Option<Peer> {
        let ours = routes_to_us(msg, &self.config);
        let route = msg.values(HeaderName::Route).nth(ours);
        let uri = match route {
            Some(r) => parse::addr_uri(msg.text(r)),
            None => msg.uri()?,
        };
        self.peer(uri).filter(|p| !self.is_us(*p))
    }

    fn on_cancel(&mut self, msg: Message, from: Peer, now: Instant, out: &mut Vec<Output>) {
        let branch = &*server_key(&msg);
        let call_id = match self.server_invites.get(branch) {
            Some(Some(id)) => *id,
            // Answered already: the CANCEL matches, and changes nothing (RFC 3261 §9.2).
            Some(None) => return self.respond(from, &msg, 200, "OK", out),
            None => return self.cancel_relay(msg, from, now, out),
        };
        let Some(call) = self.calls.get_mut(&call_id) else {
            return self.respond(from, &msg, 481, "Call/Transaction Does Not Exist", out);
        };
        let tag = call.to_tag.clone();
        out.push(Output {
            to: from,
            data: edit::response(&msg, 200, "OK", Some(&tag), ""),
        });
        if call.state != ServerState::Proceeding {
            return;
        }
        call.caller_canceled = true;
        let key = call.key;
        let branch = call.branch;
        self.stop_waiting(call_id);
        self.final_upstream(call_id, 487, "Request Terminated", now, out);
        if let Some(key) = key {
            self.control.call_ended(key, HungUpBy::Caller, false);
        }
        if let Some(b) = branch {
            self.cancel_branch(b, CancelWhy::Caller, now, out);
        }
    }

    /// A CANCEL for an INVITE relayed inside a dialog (a re-INVITE): 200 to the CANCEL, and the
    /// CANCEL goes on along the INVITE's path (RFC 3261 §16.10); the INVITE's final response
    /// (487, or a 2xx that won the race) is relayed as any other.
    fn cancel_relay(&mut self, msg: Message, from: Peer, now: Instant, out: &mut Vec<Output>) {
        let branch = &*server_key(&msg);
        let Some(id) = self.relay_id("INVITE", branch) else {
            return self.respond(from, &msg, 481, "Call/Transaction Does Not Exist", out);
        };
        self.respond(from, &msg, 200, "OK", out);
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        if r.done || r.cancel_wanted {
            return;
        }
        r.cancel_wanted = true;
        if r.interval == Duration::MAX {
            self.send_relay_cancel(id, now, out);
        }
    }

    /// Sends the CANCEL for a relayed INVITE (RFC 3261 §9.1: only once it is proceeding).
    fn send_relay_cancel(&mut self, id: u64, now: Instant, out: &mut Vec<Output>) {
        let t1 = self.config.timers.t1;
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        let Some(Ok(invite)) = r
            .forwarded
            .clone()
            .map(|f| Message::parse(f, Framing::Datagram))
        else {
            return;
        };
        let cancel = edit::cancel_for(&invite);
        r.cancel_sent = Some(cancel.clone());
        out.push(Output {
            to: r.to,
            data: cancel,
        });
        if r.to.transport == Transport::Udp {
            r.cancel_interval = t1;
            self.set(now, t1, Timer::RelayCancelE(id));
        }
    }

    /// Cancels a branch: CANCEL now if it has sent a provisional, else when it does.
    fn cancel_branch(&mut self, id: u64, why: CancelWhy, now: Instant, out: &mut Vec<Output>) {
        let t1 = self.config.timers.t1;
        let t64 = self.t64();
        let Some(b) = self.branches.get_mut(&id) else {
            return;
        };
        if b.cancel.is_none() {
            b.cancel = Some(why);
        }
        if b.state != ClientState::Proceeding || b.cancel_sent.is_some() {
            return;
        }
        let invite = match Message::parse(b.request.clone(), Framing::Datagram) {
            Ok(m) => m,
            Err(_) => return,
        };
        let cancel = edit::cancel_for(&invite);
        b.cancel_sent = Some(cancel.clone());
        out.push(Output {
            to: b.to,
            data: cancel,
        });
        if b.to.transport == Transport::Udp {
            b.e_interval = t1;
            self.set(now, t1, Timer::CancelE(id));
        }
        self.set(now, t64, Timer::CancelGuard(id));
    }

    fn on_in_dialog(
        &mut self,
        msg: Message,
        from: Peer,
        method: &str,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let branch = &*server_key(&msg);
        if let Some(id) = self.relay_id(method, branch) {
            if let Some(relay) = self.relays.get(&id) {
                if let Some(last) = &relay.last {
                    out.push(Output {
                        to: relay.upstream,
                        data: last.clone(),
                    });
                }
            }
            return;
        }
        let Some(to) = self.next_hop(&msg) else {
            return self.respond(from, &msg, 404, "Not Found", out);
        };
        let call_id = msg.call_id().unwrap_or_default().to_string();
        if let Some(d) = self.dialogs.get_mut(&call_id) {
            d.saw_request(&msg, method);
        }
        let mut bye_call_id = None;
        if method == "BYE" {
            if let Some(d) = self.dialogs.get_mut(&call_id) {
                if !d.ended {
                    d.ended = true;
                    let by = if msg.from_tag() == Some(d.caller_tag.as_str()) {
                        HungUpBy::Caller
                    } else {
                        HungUpBy::Target
                    };
                    if let Some(key) = d.key {
                        self.control.call_ended(key, by, true);
                    }
                }
                bye_call_id = Some(call_id);
            }
        }
        let id = self.id();
        let via = self.via(to.transport, 'n', id);
        let forwarded = edit::forward_request(
            &msg,
            &Forward {
                via: &via,
                pop_routes: routes_to_us(&msg, &self.config),
                ..Forward::default()
            },
        );
        out.push(Output {
            to,
            data: forwarded.clone(),
        });
        let t1 = self.config.timers.t1;
        let server_key = relay_key(method, branch);
        self.relay_keys.insert(server_key.clone(), id);
        self.relays.insert(
            id,
            Relay {
                upstream: from,
                request: Some(msg),
                server_key,
                to,
                forwarded: Some(forwarded),
                done: false,
                last: None,
                interval: t1,
                invite: method == "INVITE",
                bye_call_id,
                cancel_wanted: false,
                cancel_sent: None,
                cancel_answered: false,
                ack: None,
                cancel_interval: t1,
                forget_at: None,
            }
            .into(),
        );
        if to.transport == Transport::Udp {
            self.set(now, t1, Timer::RelayE(id));
        }
        self.set(now, self.t64(), Timer::RelayF(id));
    }

    // ---- responses ------------------------------------------------------------------------

    fn on_response(&mut self, msg: Message, now: Instant, out: &mut Vec<Output>) {
        let Some(via) = msg.top_via() else {
            return;
        };
        let Some((kind, id)) = via.branch.and_then(|b| self.our_branch(b)) else {
            tracing::debug!("response not for us dropped");
            return;
        };
        match kind {
            'i' if self.branches.contains_key(&id) => self.on_branch_response(id, msg, now, out),
            'n' if self.relays.contains_key(&id) => self.on_relay_response(id, msg, now, out),
            'p' => self.on_probe_response(id, &msg),
            'b' => self.on_own_response(id, &msg),
            _ => self.forward_stateless(&msg, out),
        }
    }

    /// Relays a response whose transaction is gone (2xx retransmissions) along its next Via.
    fn forward_stateless(&self, msg: &Message, out: &mut Vec<Output>) {
        if !msg.status().is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        let Some(next) = msg.values(HeaderName::Via).nth(1) else {
            return;
        };
        let Some(via) = parse::Via::parse(msg.text(next)) else {
            return;
        };
        let transport = if via.transport.eq_ignore_ascii_case("TCP") {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let host = via.received.unwrap_or(via.host);
        let port = via.rport.or(via.port).unwrap_or(5060);
        let Some(ip) = parse_ip(host) else {
            return;
        };
        out.push(Output {
            to: Peer {
                addr: SocketAddr::new(ip, port),
                transport,
            },
            data: edit::strip_top_via(msg),
        });
    }

    fn on_branch_response(&mut self, id: u64, msg: Message, now: Instant, out: &mut Vec<Output>) {
        let status = msg.status().unwrap_or(500);
        if msg.cseq().is_some_and(|(_, m)| m == "CANCEL") {
            if let Some(b) = self.branches.get_mut(&id) {
                b.cancel_answered = true;
            }
            return;
        }
        let linger = self.linger();
        let Some(b) = self.branches.get_mut(&id) else {
            return;
        };
        let call_id = b.call;
        let target = b.target;
        match status {
            100..=199 => {
                if b.state == ClientState::Calling {
                    b.state = ClientState::Proceeding;
                }
                if b.state != ClientState::Proceeding {
                    return;
                }
                if b.cancel.is_some() {
                    let why = b.cancel.unwrap_or(CancelWhy::NoAnswer);
                    self.cancel_branch(id, why, now, out);
                    return;
                }
                if status > 100 {
                    if let Some(call) = self.calls.get_mut(&call_id) {
                        if call.state == ServerState::Proceeding && call.branch == Some(id) {
                            let data = edit::strip_top_via(&msg);
                            call.last = Some(data.clone());
                            out.push(Output {
                                to: call.upstream,
                                data,
                            });
                        }
                    }
                }
            }
            200..=299 if b.cancel == Some(CancelWhy::Caller) => {
                self.answered_after_cancel(id, &msg, now, out);
            }
            200..=299 => {
                let first = matches!(b.state, ClientState::Calling | ClientState::Proceeding);
                b.state = ClientState::Terminated;
                let sent = std::mem::take(&mut b.request);
                let target_peer = b.to;
                out.push(Output {
                    to: b.upstream,
                    data: edit::strip_top_via(&msg),
                });
                if !first {
                    return;
                }
                self.finish_branch(id, linger, now);
                let Some(mut call) = self.calls.remove(&call_id) else {
                    return;
                };
                // The caller's INVITE is accepted: its retransmissions are absorbed until the
                // branch is forgotten, which forgets its key too.
                if let Some(entry) = self.server_invites.get_mut(&call.server_branch) {
                    *entry = None;
                    if let Some(b) = self.branches.get_mut(&id) {
                        b.accepted = Some(std::mem::take(&mut call.server_branch));
                    }
                }
                let key = call.key;
                self.open_dialog(*call, msg, sent, target_peer, now);
                if let Some(key) = key {
                    self.control.call_answered(key, target, status);
                }
            }
            _ => {
                if b.state == ClientState::Completed {
                    if let Some(ack) = &b.ack {
                        out.push(ack.clone());
                    }
                    return;
                }
                if b.state == ClientState::Terminated {
                    return;
                }
                b.state = ClientState::Completed;
                if let Ok(invite) = Message::parse(b.request.clone(), Framing::Datagram) {
                    let ack = Output {
                        to: b.to,
                        data: edit::ack_for(&invite, &msg),
                    };
                    out.push(ack.clone());
                    b.ack = Some(ack);
                }
                b.request = Bytes::new();
                let wait = match b.to.transport {
                    Transport::Udp => linger,
                    Transport::Tcp => Duration::ZERO,
                };
                let outcome = match (b.cancel, status) {
                    (Some(CancelWhy::NoAnswer), _) => AttemptOutcome::NoAnswer,
                    (_, 486 | 600) => AttemptOutcome::Busy,
                    _ => AttemptOutcome::Failed,
                };
                self.finish_branch(id, wait, now);
                self.attempt_ended(call_id, target, outcome, Some(status), Some(&msg), now, out);
            }
        }
    }

    /// The target answered as the caller's CANCEL crossed its 2xx. The caller already has its
    /// 487 (its INVITE transaction is over), so the 2xx cannot go upstream: the proxy ACKs it
    /// and hangs up the dialog with a BYE of its own, so the target is not left talking to no
    /// one. The call was reported ended when the CANCEL came; no dialog is kept.
    fn answered_after_cancel(
        &mut self,
        id: u64,
        msg: &Message,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let linger = self.linger();
        let Some(b) = self.branches.get_mut(&id) else {
            return;
        };
        if !matches!(b.state, ClientState::Calling | ClientState::Proceeding) {
            // A retransmitted 2xx: our ACK was lost.
            if let Some(ack) = &b.ack {
                out.push(ack.clone());
            }
            return;
        }
        b.state = ClientState::Terminated;
        let sent = std::mem::take(&mut b.request);
        let (call_id, fallback) = (b.call, b.to);
        self.finish_branch(id, linger, now);
        if let Some(call) = self.calls.get_mut(&call_id) {
            if call.branch == Some(id) {
                call.branch = None;
            }
        }
        let Ok(invite) = Message::parse(sent, Framing::Datagram) else {
            return;
        };
        let (target, to) = self.dialog_target(msg, invite.uri(), fallback);
        let cseq = invite.cseq().map_or(1, |(n, _)| n);
        let ack_id = self.id();
        let via = self.via(to.transport, 'a', ack_id);
        let ack = Output {
            to,
            data: edit::dialog_request(&invite, msg, "ACK", cseq, &via, &target),
        };
        out.push(ack.clone());
        if let Some(b) = self.branches.get_mut(&id) {
            b.ack = Some(ack);
        }
        let bye_id = self.id();
        let via = self.via(to.transport, 'b', bye_id);
        let bye = edit::dialog_request(&invite, msg, "BYE", cseq.saturating_add(1), &via, &target);
        tracing::info!(
            call_id = msg.call_id(),
            "target answered after the caller canceled: ACKed and hung up"
        );
        let call_id = msg.call_id().unwrap_or_default().to_string();
        self.send_own(bye_id, to, bye, call_id, now, out);
    }

    /// Keeps a confirmed dialog, bounded by `max_dialog`: its tags, and what the proxy needs
    /// to hang up each side itself (the caller's INVITE, the target's 2xx and the Request-URI of
    /// the INVITE as sent to the target).
    fn open_dialog(
        &mut self,
        call: Call,
        answer: Message,
        sent: Bytes,
        target_peer: Peer,
        now: Instant,
    ) {
        let Some(call_id) = answer.call_id().map(str::to_string) else {
            return;
        };
        let caller_tag = call.invite.from_tag().unwrap_or_default().to_string();
        let target_tag = answer.to_tag().unwrap_or_default().to_string();
        let cseq = [call.invite.cseq().map_or(0, |(n, _)| n), 0];
        // The INVITE's Request-URI stands for the target's remote target only when the 2xx
        // has no usable Contact, which a 2xx must carry (RFC 3261 §12.1.1): read it then.
        let contact_usable = answer
            .value(HeaderName::Contact)
            .is_some_and(|c| request_uri(parse::addr_uri(c)));
        let sent_uri = if contact_usable {
            None
        } else {
            Message::parse(sent, Framing::Datagram)
                .ok()
                .and_then(|m| m.uri().map(str::to_string))
        };
        let small = call.invite.bytes().len() <= MAX_KEPT_MESSAGE
            && answer.bytes().len() <= MAX_KEPT_MESSAGE;
        let sides = if small {
            Sides::Kept {
                invite: call.invite,
                upstream: call.upstream,
                answer,
                target_peer,
                sent_uri,
            }
        } else {
            let (caller, target) = self.read_sides(
                &call.invite,
                call.upstream,
                &answer,
                sent_uri.as_deref(),
                target_peer,
            );
            Sides::Read(caller, target)
        };
        let id = self.id();
        let limit_at = now + self.config.max_dialog;
        self.dialog_limits.insert((limit_at, id), call_id.clone());
        let old = self.dialogs.insert(
            call_id,
            Dialog {
                id,
                key: call.key,
                caller_tag,
                target_tag,
                sides,
                cseq,
                refreshed: [None, None],
                ended: false,
                limit_at,
            }
            .into(),
        );
        if let Some(old) = old {
            self.dialog_limits.remove(&(old.limit_at, old.id));
        }
    }

    /// Both sides of a dialog, read out of the caller's INVITE (from `upstream`) and the
    /// target's 2xx (from `target_peer`, `sent_uri` being the Request-URI the INVITE went to).
    fn read_sides(
        &self,
        invite: &Message,
        upstream: Peer,
        answer: &Message,
        sent_uri: Option<&str>,
        target_peer: Peer,
    ) -> (Option<Party>, Option<Party>) {
        (
            self.caller_party(invite, upstream),
            self.target_party(answer, sent_uri, target_peer),
        )
    }

    /// The caller's side of a dialog, seen from the proxy as the target sees it (RFC 3261
    /// §12.1.1): its Contact as remote target, and the Record-Route values of its INVITE as
    /// received (those below ours, added by the proxies between it and us) as the route set, in
    /// their order, first hop first.
    fn caller_party(&self, invite: &Message, upstream: Peer) -> Option<Party> {
        let routes = invite
            .values(HeaderName::RecordRoute)
            .map(|r| kept(invite.text(r)).map(str::to_string))
            .collect::<Option<Vec<String>>>()?;
        if routes.len() > MAX_ROUTES {
            return None;
        }
        let uri = match invite.value(HeaderName::Contact) {
            Some(c) => uri_kept(parse::addr_uri(c))?.to_string(),
            None => peer_uri(upstream),
        };
        Some(Party {
            addr: kept(invite.value(HeaderName::From)?)?.to_string(),
            reach: edit::DialogTarget { uri, routes },
            peer: upstream,
        })
    }

    /// The target's side of a dialog, seen from the proxy as the caller sees it: the 2xx's To
    /// (with the target's tag), its Contact and the route set above ours ([`Self::dialog_target`]).
    fn target_party(
        &self,
        answer: &Message,
        sent_uri: Option<&str>,
        fallback: Peer,
    ) -> Option<Party> {
        let (reach, _) = self.dialog_target(answer, sent_uri, fallback);
        let fits = reach.routes.len() <= MAX_ROUTES
            && uri_kept(&reach.uri).is_some()
            && reach.routes.iter().all(|r| kept(r).is_some());
        if !fits {
            return None;
        }
        Some(Party {
            addr: kept(answer.value(HeaderName::To)?)?.to_string(),
            reach,
            peer: fallback,
        })
    }

    /// Forgets a dialog (BYE answered or timed out).
    fn close_dialog(&mut self, call_id: &str) {
        if let Some(d) = self.dialogs.remove(call_id) {
            self.dialog_limits.remove(&(d.limit_at, d.id));
        }
    }

    /// A dialog outlived `max_dialog`: no BYE is coming (the caller vanished, or the BYE went
    /// another way). Unless a BYE is already on its way, the proxy hangs up both sides with a
    /// BYE of its own, as Kamailio's dialog module does when a dialog times out, so neither
    /// leg stays up (and billed) past the call record; the call ends as hung up by the system.
    fn dialog_limit(&mut self, call_id: String, now: Instant, out: &mut Vec<Output>) {
        let Some(d) = self.dialogs.remove(&call_id) else {
            return;
        };
        if d.ended {
            tracing::info!(call_id, "dialog reached its limit with its BYE in flight");
            return;
        }
        if let Some(key) = d.key {
            self.control.call_ended(key, HungUpBy::System, true);
        }
        let [caller_cseq, target_cseq] = d.cseq;
        let (caller, target) = match d.sides {
            Sides::Kept {
                invite,
                upstream,
                answer,
                target_peer,
                sent_uri,
            } => self.read_sides(&invite, upstream, &answer, sent_uri.as_deref(), target_peer),
            Sides::Read(caller, target) => (caller, target),
        };
        let refreshed = |mut party: Party, uri: Option<String>| {
            if let Some(uri) = uri {
                party.reach.uri = uri;
            }
            party
        };
        let [caller_uri, target_uri] = d.refreshed;
        let (Some(caller), Some(target)) = (
            caller.map(|p| refreshed(p, caller_uri)),
            target.map(|p| refreshed(p, target_uri)),
        ) else {
            tracing::info!(
                call_id,
                "dialog outlived its limit without a BYE: forgotten (too large to hang up)"
            );
            return;
        };
        tracing::info!(
            call_id,
            "dialog outlived its limit without a BYE: hanging up both sides"
        );
        self.send_dialog_bye(&call_id, (&caller, caller_cseq), &target, now, out);
        self.send_dialog_bye(&call_id, (&target, target_cseq), &caller, now, out);
    }

    /// Sends `to` a BYE in the name of `from`, above the highest CSeq seen from it, from the
    /// proxy's place on the dialog's path.
    fn send_dialog_bye(
        &mut self,
        call_id: &str,
        (from, cseq): (&Party, u32),
        to: &Party,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let peer = self.next_peer(&to.reach, to.peer);
        let id = self.id();
        let via = self.via(peer.transport, 'b', id);
        let bye = edit::in_dialog_request(&edit::InDialog {
            method: "BYE",
            target: &to.reach,
            via: &via,
            from: &from.addr,
            to: &to.addr,
            call_id,
            cseq: cseq.saturating_add(1),
        });
        self.send_own(id, peer, bye, call_id.to_string(), now, out);
    }

    /// Where the caller's side of the dialog a 2xx created sends its requests, from the
    /// proxy's place on the path: the Record-Route values above ours (added between us and the
    /// target), reversed, then the 2xx's Contact; `fallback` when neither names an IP address.
    fn dialog_target(
        &self,
        answer: &Message,
        sent_uri: Option<&str>,
        fallback: Peer,
    ) -> (edit::DialogTarget, Peer) {
        let values: Vec<&str> = answer
            .values(HeaderName::RecordRoute)
            .map(|r| answer.text(r))
            .collect();
        let ours = values
            .iter()
            .position(|v| uri_peer(parse::addr_uri(v)).is_some_and(|p| self.is_us(p)));
        let routes: Vec<String> = match ours {
            Some(i) => values[..i]
                .iter()
                .rev()
                .filter(|v| clean(v))
                .map(|v| v.to_string())
                .collect(),
            None => Vec::new(),
        };
        let contact = answer
            .value(HeaderName::Contact)
            .map(parse::addr_uri)
            .filter(|u| request_uri(u))
            .or(sent_uri)
            .unwrap_or("sip:invalid")
            .to_string();
        let target = edit::DialogTarget {
            uri: contact,
            routes,
        };
        let to = self.next_peer(&target, fallback);
        (target, to)
    }

    /// The next hop of a request inside a dialog: its first route, else its Request-URI;
    /// `fallback` when that names no IP address (or names us).
    fn next_peer(&self, target: &edit::DialogTarget, fallback: Peer) -> Peer {
        let next = match target.routes.first() {
            Some(r) => self.peer(parse::addr_uri(r)),
            None => self.peer(&target.uri),
        };
        next.filter(|p| !self.is_us(*p)).unwrap_or(fallback)
    }

    /// Sends a non-INVITE request of the proxy's own (a BYE) as a client transaction:
    /// retransmitted on UDP (Timer E), given up after Timer F, done at its first final.
    fn send_own(
        &mut self,
        id: u64,
        to: Peer,
        request: Bytes,
        call_id: String,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let t1 = self.config.timers.t1;
        out.push(Output {
            to,
            data: request.clone(),
        });
        self.own.insert(
            id,
            Own {
                call_id,
                to,
                request,
                interval: t1,
            },
        );
        if to.transport == Transport::Udp {
            self.set(now, t1, Timer::OwnE(id));
        }
        self.set(now, self.t64(), Timer::OwnF(id));
    }

    /// An attempt ended unanswered: ask for the next hop (or relay the final when there is no
    /// call record).
    #[allow(clippy::too_many_arguments)]
    fn attempt_ended(
        &mut self,
        call_id: u64,
        target: i64,
        outcome: AttemptOutcome,
        status: Option<u16>,
        response: Option<&Message>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(call) = self.calls.get_mut(&call_id) else {
            return;
        };
        call.branch = None;
        if call.caller_canceled || call.state != ServerState::Proceeding {
            return;
        }
        let hop = match call.key {
            Some(key) => self.control.attempt_failed(key, target, outcome, status),
            None => {
                match response {
                    Some(r) => self.send_final(call_id, edit::strip_top_via(r), now, out),
                    None => self.final_upstream(call_id, 408, "Request Timeout", now, out),
                }
                return;
            }
        };
        self.apply_hop(call_id, hop, now, out);
    }

    fn on_relay_response(&mut self, id: u64, msg: Message, now: Instant, out: &mut Vec<Output>) {
        let status = msg.status().unwrap_or(500);
        let (t64, linger) = (self.t64(), self.linger());
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        if msg.cseq().is_some_and(|(_, m)| m == "CANCEL") {
            // The answer to our CANCEL: hop by hop, it goes no further.
            r.cancel_answered |= status >= 200;
            return;
        }
        if r.done {
            if status >= 200 && r.invite && status < 300 {
                self.forward_stateless(&msg, out);
            } else if let (true, Some(ack)) = (status >= 300, &r.ack) {
                out.push(Output {
                    to: r.to,
                    data: ack.clone(),
                });
            }
            return;
        }
        let data = edit::strip_top_via(&msg);
        out.push(Output {
            to: r.upstream,
            data: data.clone(),
        });
        if status < 200 {
            r.interval = Duration::MAX; // provisional: stop retransmitting
            if r.cancel_wanted && r.cancel_sent.is_none() {
                self.send_relay_cancel(id, now, out);
            }
            return;
        }
        r.done = true;
        r.last = Some(data);
        if status < 300 {
            // A 2xx to a re-INVITE or UPDATE refreshes its sender's remote target too.
            if let Some(d) = msg.call_id().and_then(|c| self.dialogs.get_mut(c)) {
                d.saw_answer(&msg);
            }
        }
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        if r.invite && status >= 300 {
            if let Some(fwd) = r.forwarded.clone() {
                if let Ok(inv) = Message::parse(fwd, Framing::Datagram) {
                    let ack = edit::ack_for(&inv, &msg);
                    out.push(Output {
                        to: r.to,
                        data: ack.clone(),
                    });
                    r.ack = Some(ack);
                }
            }
        }
        r.request = None;
        r.forwarded = None;
        let bye = r.bye_call_id.take();
        let wait = match r.upstream.transport {
            Transport::Udp => linger,
            Transport::Tcp => Duration::ZERO,
        };
        if let Some(cid) = bye {
            self.close_dialog(&cid);
        }
        if wait.is_zero() {
            self.set(now, wait, Timer::RelayDone(id));
            return;
        }
        if let Some(r) = self.relays.get_mut(&id) {
            r.forget_at = Some(now + wait);
        }
        if wait < t64 {
            // Shorter than 64×T1: forgotten at its own timer rather than after Timer F.
            self.set(now, wait, Timer::RelayDone(id));
        }
    }

    /// A response to a request of our own: the first final ends its transaction, and goes no
    /// further. 481 or 408 is no surprise (the other side may be gone already).
    fn on_own_response(&mut self, id: u64, msg: &Message) {
        let status = msg.status().unwrap_or(500);
        if status < 200 {
            return;
        }
        let Some(own) = self.own.remove(&id) else {
            return;
        };
        if status < 300 {
            tracing::debug!(call_id = own.call_id, status, "our BYE was answered");
        } else {
            tracing::info!(call_id = own.call_id, status, "our BYE was refused");
        }
    }

    fn on_probe_response(&mut self, id: u64, msg: &Message) {
        let status = msg.status().unwrap_or(500);
        if status < 200 {
            return;
        }
        let Some(p) = self.probes.get_mut(&id) else {
            return;
        };
        if p.done {
            return;
        }
        p.done = true;
        let target = p.target;
        self.probes.remove(&id);
        // Any answer but a server failure shows the target is up and speaks SIP.
        self.probe_result(target, status < 500 && status != 408);
    }

    fn probe_result(&mut self, target: i64, ok: bool) {
        let probing = self.config.probing;
        let h = self.health.entry(target).or_default();
        if ok {
            h.failures = 0;
            h.successes += 1;
            if h.down && h.successes >= probing.successes.max(1) {
                h.down = false;
                self.control.target_health(target, true);
            }
        } else {
            h.successes = 0;
            h.failures += 1;
            if !h.down && h.failures >= probing.failures.max(1) {
                h.down = true;
                self.control.target_health(target, false);
            }
        }
    }

    fn on_unreachable(&mut self, to: Peer, now: Instant, out: &mut Vec<Output>) {
        let stuck: Vec<u64> = self
            .branches
            .iter()
            .filter(|(_, b)| b.to == to && b.state == ClientState::Calling)
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            self.branch_unreachable(id, now, out);
        }
        let probes: Vec<u64> = self
            .probes
            .iter()
            .filter(|(_, p)| p.to == to && !p.done)
            .map(|(id, _)| *id)
            .collect();
        for id in probes {
            if let Some(p) = self.probes.remove(&id) {
                self.probe_result(p.target, false);
            }
        }
        self.own.retain(|_, o| o.to != to);
        let relays: Vec<u64> = self
            .relays
            .iter()
            .filter(|(_, r)| r.to == to && !r.done)
            .map(|(id, _)| *id)
            .collect();
        for id in relays {
            self.relay_timeout(id, now, out);
        }
    }

    fn branch_unreachable(&mut self, id: u64, now: Instant, out: &mut Vec<Output>) {
        let Some(b) = self.branches.remove(&id) else {
            return;
        };
        if b.cancel == Some(CancelWhy::Caller) {
            return;
        }
        let outcome = if b.cancel == Some(CancelWhy::NoAnswer) {
            AttemptOutcome::NoAnswer
        } else {
            AttemptOutcome::Unreachable
        };
        self.attempt_ended(b.call, b.target, outcome, None, None, now, out);
    }

    fn relay_timeout(&mut self, id: u64, now: Instant, out: &mut Vec<Output>) {
        let linger = self.linger();
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        if r.done {
            // Completed before its Timer F: now it is Timer J/K's turn.
            match r.forget_at {
                Some(at) if at > now => self.set(now, at - now, Timer::RelayDone(id)),
                _ => self.forget_relay(id),
            }
            return;
        }
        r.done = true;
        if let Some(req) = r.request.take() {
            let data = edit::response(&req, 408, "Request Timeout", None, "");
            r.last = Some(data.clone());
            out.push(Output {
                to: r.upstream,
                data,
            });
        }
        r.forwarded = None;
        if let Some(cid) = r.bye_call_id.take() {
            self.close_dialog(&cid);
        }
        self.set(now, linger, Timer::RelayDone(id));
    }

    // ---- timers ---------------------------------------------------------------------------

    fn on_timer(&mut self, timer: Timer, now: Instant, out: &mut Vec<Output>) {
        let t2 = self.config.timers.t2;
        match timer {
            Timer::Routing(id) => {
                let Some(call) = self.calls.get(&id) else {
                    return;
                };
                if !call.waiting || call.waiting_until.is_some_and(|until| until > now) {
                    return;
                }
                let key = call.key;
                tracing::warn!(
                    ?key,
                    "a routing decision took too long: the call is refused"
                );
                self.stop_waiting(id);
                self.final_upstream(id, 503, "Routing Timed Out", now, out);
                if let Some(key) = key {
                    self.control.call_ended(key, HungUpBy::System, false);
                }
            }
            Timer::A(id) => {
                if let Some(b) = self.branches.get_mut(&id) {
                    if b.state == ClientState::Calling {
                        out.push(Output {
                            to: b.to,
                            data: b.request.clone(),
                        });
                        b.a_interval *= 2;
                        let after = b.a_interval;
                        self.set(now, after, Timer::A(id));
                    }
                }
            }
            Timer::B(id) => {
                let Some(b) = self.branches.get(&id) else {
                    return;
                };
                if b.state == ClientState::Calling {
                    self.branch_unreachable(id, now, out);
                } else if let Some(at) = b.forget_at {
                    // Finished before Timer B: now it is Timer D's turn.
                    if at > now {
                        self.set(now, at - now, Timer::D(id));
                    } else {
                        self.forget_branch(id);
                    }
                }
            }
            Timer::Ring(id) => {
                let Some(b) = self.branches.get(&id) else {
                    return;
                };
                match b.state {
                    ClientState::Calling => self.branch_unreachable(id, now, out),
                    ClientState::Proceeding => {
                        self.cancel_branch(id, CancelWhy::NoAnswer, now, out)
                    }
                    _ => {}
                }
            }
            Timer::CancelE(id) => {
                if let Some(b) = self.branches.get_mut(&id) {
                    if b.state == ClientState::Proceeding && !b.cancel_answered {
                        if let Some(c) = &b.cancel_sent {
                            out.push(Output {
                                to: b.to,
                                data: c.clone(),
                            });
                        }
                        b.e_interval = (b.e_interval * 2).min(t2);
                        let after = b.e_interval;
                        self.set(now, after, Timer::CancelE(id));
                    }
                }
            }
            Timer::CancelGuard(id) => {
                if self
                    .branches
                    .get(&id)
                    .is_some_and(|b| b.state == ClientState::Proceeding)
                {
                    self.branch_unreachable(id, now, out);
                }
            }
            Timer::D(id) => self.forget_branch(id),
            Timer::G(id) => {
                if let Some(call) = self.calls.get_mut(&id) {
                    if call.state == ServerState::Completed {
                        if let Some(last) = &call.last {
                            out.push(Output {
                                to: call.upstream,
                                data: last.clone(),
                            });
                        }
                        call.g_interval = (call.g_interval * 2).min(t2);
                        let after = call.g_interval;
                        self.set(now, after, Timer::G(id));
                    }
                }
            }
            Timer::H(id) | Timer::I(id) => {
                if self
                    .calls
                    .get(&id)
                    .is_some_and(|c| c.state != ServerState::Proceeding)
                {
                    self.remove_call(id);
                }
            }
            Timer::RelayE(id) => self.relay_retransmit(id, now, out),
            Timer::RelayF(id) => self.relay_timeout(id, now, out),
            Timer::RelayCancelE(id) => {
                if let Some(r) = self.relays.get_mut(&id) {
                    if let (false, false, Some(c)) = (r.done, r.cancel_answered, &r.cancel_sent) {
                        out.push(Output {
                            to: r.to,
                            data: c.clone(),
                        });
                        r.cancel_interval = (r.cancel_interval * 2).min(t2);
                        let after = r.cancel_interval;
                        self.set(now, after, Timer::RelayCancelE(id));
                    }
                }
            }
            Timer::RelayDone(id) => self.forget_relay(id),
            Timer::ProbeAll => self.probe_all(now, out),
            Timer::ProbeE(id) => {
                if let Some(p) = self.probes.get_mut(&id) {
                    if !p.done {
                        out.push(Output {
                            to: p.to,
                            data: p.request.clone(),
                        });
                        p.interval = (p.interval * 2).min(t2);
                        let after = p.interval;
                        self.set(now, after, Timer::ProbeE(id));
                    }
                }
            }
            Timer::OwnE(id) => {
                if let Some(o) = self.own.get_mut(&id) {
                    out.push(Output {
                        to: o.to,
                        data: o.request.clone(),
                    });
                    o.interval = (o.interval * 2).min(t2);
                    let after = o.interval;
                    self.set(now, after, Timer::OwnE(id));
                }
            }
            Timer::OwnF(id) => {
                if let Some(own) = self.own.remove(&id) {
                    tracing::info!(call_id = own.call_id, "our BYE got no answer");
                }
            }
            Timer::ProbeF(id) => {
                if let Some(p) = self.probes.remove(&id) {
                    if !p.done {
                        self.probe_result(p.target, false);
                    }
                }
            }
        }
    }

    /// A branch's client transaction is over; it stays `wait` more for retransmitted finals.
    /// Timer B, when still to come before the wait is over, forgets it then or sets Timer D
    /// for what is left; otherwise, and on a reliable transport (no wait), Timer D does.
    fn finish_branch(&mut self, id: u64, wait: Duration, now: Instant) {
        let Some(b) = self.branches.get_mut(&id) else {
            return;
        };
        if wait.is_zero() || now >= b.b_due || now + wait < b.b_due {
            // Timer B has fired, or would fire after the wait is over: Timer D of its own.
            self.set(now, wait, Timer::D(id));
        } else {
            b.forget_at = Some(now + wait);
        }
    }

    fn forget_branch(&mut self, id: u64) {
        if let Some(b) = self.branches.remove(&id) {
            if let Some(key) = &b.accepted {
                self.server_invites.remove(key);
            }
        }
    }

    /// The relay of a request by its method and its server transaction's key.
    fn relay_id(&mut self, method: &str, branch: &str) -> Option<u64> {
        self.key_scratch.clear();
        write_relay_key(&mut self.key_scratch, method, branch);
        self.relay_keys.get(self.key_scratch.as_str()).copied()
    }

    fn forget_relay(&mut self, id: u64) {
        if let Some(r) = self.relays.remove(&id) {
            self.relay_keys.remove(&r.server_key);
        }
    }

    fn remove_call(&mut self, id: u64) {
        if let Some(call) = self.calls.remove(&id) {
            self.server_invites.remove(&call.server_branch);
        }
    }

    fn relay_retransmit(&mut self, id: u64, now: Instant, out: &mut Vec<Output>) {
        let t2 = self.config.timers.t2;
        let Some(r) = self.relays.get_mut(&id) else {
            return;
        };
        if r.done || r.interval == Duration::MAX {
            return;
        }
        if let Some(f) = &r.forwarded {
            out.push(Output {
                to: r.to,
                data: f.clone(),
            });
        }
        r.interval = if r.invite {
            r.interval * 2
        } else {
            (r.interval * 2).min(t2)
        };
        let after = r.interval;
        self.set(now, after, Timer::RelayE(id));
    }

    fn probe_all(&mut self, now: Instant, out: &mut Vec<Output>) {
        if let Some(every) = self.config.probing.interval {
            self.set(now, every, Timer::ProbeAll);
        }
        let t1 = self.config.timers.t1;
        let t64 = self
            .t64()
            .min(self.config.probing.interval.unwrap_or(Duration::MAX));
        for (target, uri) in self.control.probe_targets() {
            // A probe still out when the next is due has failed.
            let stale: Vec<u64> = self
                .probes
                .iter()
                .filter(|(_, p)| p.target == target)
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                self.probes.remove(&id);
                self.probe_result(target, false);
            }
            let Some(to) = self.peer(uri.as_str()) else {
                self.probe_result(target, false);
                continue;
            };
            let id = self.id();
            let via = self.via(to.transport, 'p', id);
            let host = self.our_addr(to.transport);
            let call_id = format!("{}-{id}", &self.branch_prefix[7..]);
            let request = edit::options(uri.as_str(), &via, &host.to_string(), &call_id, "probe");
            out.push(Output {
                to,
                data: request.clone(),
            });
            self.probes.insert(
                id,
                Probe {
                    target,
                    to,
                    request,
                    interval: t1,
                    done: false,
                },
            );
            if to.transport == Transport::Udp {
                self.set(now, t1, Timer::ProbeE(id));
            }
            self.set(now, t64, Timer::ProbeF(id));
        }
    }
}

/// Every Via value reads as `SIP/2.0/transport sent-by`, with no empty value or parameter
/// (RFC 4475's badinv01 has `;;,;,,`): responses travel back along them.
fn vias_well_formed(msg: &Message) -> bool {
    msg.values(HeaderName::Via).enumerate().all(|(i, r)| {
        let v = msg.text(r);
        // The first is the top Via, which the message has read already.
        let parses = if i == 0 {
            msg.top_via().is_some()
        } else {
            parse::Via::parse(v).is_some()
        };
        parses && v.split(';').skip(1).all(|p| !p.trim().is_empty())
    })
}

/// The key a request's server transaction goes by (RFC 3261 §17.2.3): its top Via branch when
/// that carries RFC 3261's magic cookie. An RFC 2543 client's branch (or its lack of one) is not
/// unique, so its requests go by what that RFC matched on: the whole top Via, the Call-ID, the
/// From tag, the CSeq number and the Request-URI, which an INVITE shares with its CANCEL and
/// with the ACK for a non-2xx final. The space keeps such keys apart from any branch token.
fn server_key(msg: &Message) -> Cow<'_, str> {
    match msg.top_via().and_then(|v| v.branch) {
        Some(b) if b.starts_with("z9hG4bK") => Cow::Borrowed(b),
        _ => {
            let via = msg
                .first_value(HeaderName::Via)
                .map(|r| msg.text(r))
                .unwrap_or_default();
            Cow::Owned(format!(
                "2543 {via}|{}|{}|{}|{}",
                msg.call_id().unwrap_or_default(),
                msg.from_tag().unwrap_or_default(),
                msg.cseq().map_or(0, |(n, _)| n),
                msg.uri().unwrap_or_default(),
            ))
        }
    }
}

/// A relay's key in `Core::relay_keys`: its method and its server transaction's key
/// ([`server_key`]), which a request shares with the CANCEL and the ACK that go with it. The
/// method is a token, so the first space ends it.
fn relay_key(method: &str, branch: &str) -> String {
    let mut key = String::with_capacity(method.len() + 1 + branch.len());
    write_relay_key(&mut key, method, branch);
    key
}

fn write_relay_key(key: &mut String, method: &str, branch: &str) {
    key.push_str(method);
    key.push(' ');
    key.push_str(branch);
}

/// RFC 3261 §16.3's request validation steps the proxy makes before anything else: repeated
/// single-value headers (400), a Request-URI scheme it does not route (416), option tags in
/// Proxy-Require (420, listing them in Unsupported; not for CANCEL). The response to send, if
/// any.
fn refusal(msg: &Message, method: &str) -> Option<(u16, &'static str, String)> {
    let single = [
        HeaderName::From,
        HeaderName::To,
        HeaderName::CallId,
        HeaderName::CSeq,
        HeaderName::MaxForwards,
    ];
    if single
        .iter()
        .any(|n| msg.headers.iter().filter(|h| h.name == *n).count() > 1)
    {
        return Some((400, "Repeated Single-Value Header", String::new()));
    }
    let scheme = msg.uri().and_then(|u| u.split_once(':')).map(|(s, _)| s);
    if !scheme.is_some_and(|s| {
        ["sip", "sips", "tel"]
            .iter()
            .any(|k| s.eq_ignore_ascii_case(k))
    }) {
        return Some((416, "Unsupported URI Scheme", String::new()));
    }
    if method == "CANCEL" {
        return None;
    }
    let tags: Vec<&str> = msg
        .headers
        .iter()
        .filter(|h| {
            let name = msg.text(h.line.start..h.value.start);
            name.trim_end_matches(|c: char| c == ':' || c.is_ascii_whitespace())
                .eq_ignore_ascii_case("Proxy-Require")
        })
        .flat_map(|h| msg.text(h.value.clone()).split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if tags.is_empty() {
        return None;
    }
    Some((
        420,
        "Bad Extension",
        format!("Unsupported: {}\r\n", tags.join(", ")),
    ))
}

/// The headers of a request whose request line cannot be read (LWS inside the Request-URI,
/// `<>` around it, extra spaces: RFC 4475 §3.1.2.7–10), under a stand-in request line carrying
/// its method, so that a 400 can be written from them. `None` for responses and for anything
/// whose headers do not parse either.
fn head_behind_bad_request_line(data: &Bytes) -> Option<Message> {
    let skip = data.iter().position(|b| *b != b'\r' && *b != b'\n')?;
    let rest = &data[skip..];
    if rest.starts_with(b"SIP/") {
        return None;
    }
    let eol = memchr::memchr(b'\n', rest)?;
    let method = rest[..eol].split(|b| *b == b' ').next()?;
    if method.is_empty() || !method.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let mut fixed = bytes::BytesMut::with_capacity(rest.len() + 32);
    fixed.extend_from_slice(method);
    fixed.extend_from_slice(b" sip:invalid SIP/2.0\r\n");
    fixed.extend_from_slice(&rest[eol + 1..]);
    Message::parse_head(fixed.freeze()).ok()
}

impl Dialog {
    /// Which side a tag names: 0 for the caller, 1 for the target.
    fn side(&self, tag: Option<&str>) -> Option<usize> {
        match tag {
            Some(t) if t == self.caller_tag => Some(0),
            Some(t) if t == self.target_tag => Some(1),
            _ => None,
        }
    }

    /// Notes an in-dialog request passing through: the highest CSeq of its sender, and the
    /// sender's new Contact when it is a target refresh (re-INVITE, UPDATE).
    fn saw_request(&mut self, msg: &Message, method: &str) {
        let Some(side) = self.side(msg.from_tag()) else {
            return;
        };
        if let Some((n, _)) = msg.cseq() {
            self.cseq[side] = self.cseq[side].max(n);
        }
        if matches!(method, "INVITE" | "UPDATE") {
            self.refresh_target(side, msg);
        }
    }

    /// Notes a 2xx to an in-dialog request: when it answers a target refresh (re-INVITE,
    /// UPDATE), its sender (the party the To tag names) moves to its Contact (RFC 3261
    /// §12.2.1.2).
    fn saw_answer(&mut self, msg: &Message) {
        if !msg
            .cseq()
            .is_some_and(|(_, m)| matches!(m, "INVITE" | "UPDATE"))
        {
            return;
        }
        if let Some(side) = self.side(msg.to_tag()) {
            self.refresh_target(side, msg);
        }
    }

    /// A side's remote target becomes the message's Contact, when a dialog may keep it.
    fn refresh_target(&mut self, side: usize, msg: &Message) {
        let contact = msg.value(HeaderName::Contact).map(parse::addr_uri);
        if let Some(uri) = contact.and_then(uri_kept) {
            self.refreshed[side] = Some(uri.to_string());
        }
    }
}

/// Whether a header value can be written into a message of ours as it is: not empty, no
/// whitespace or control characters (a folded line cannot smuggle a header in).
fn clean(s: &str) -> bool {
    !s.is_empty() && !s.bytes().any(|b| b <= b' ' || b == 0x7f)
}

/// `s` when a dialog may keep it: short enough, and written on one line with no control
/// characters (spaces allowed, as in a display name).
fn kept(s: &str) -> Option<&str> {
    let one_line = !s.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f);
    (!s.is_empty() && s.len() <= MAX_KEPT && one_line).then_some(s)
}

/// `uri` when a dialog may keep it as a Request-URI: [`kept`], and [`request_uri`].
fn uri_kept(uri: &str) -> Option<&str> {
    kept(uri).filter(|u| request_uri(u))
}

/// Whether `uri` can stand as the Request-URI of a request we write: [`clean`], no angle
/// brackets, and a scheme (a letter, then letters, digits, `+`, `-` or `.`) before a colon.
fn request_uri(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    clean(uri)
        && !uri.contains(['<', '>'])
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// A SIP URI for a peer's address, when nothing better names it.
fn peer_uri(peer: Peer) -> String {
    match peer.transport {
        Transport::Udp => format!("sip:{}", peer.addr),
        Transport::Tcp => format!("sip:{};transport=tcp", peer.addr),
    }
}

/// How many Route values on top name us (loose routing: we remove them before forwarding).
/// Two when we double record-routed a dialog between two transports, one otherwise.
fn routes_to_us(msg: &Message, config: &CoreConfig) -> usize {
    msg.values(HeaderName::Route)
        .take(2)
        .take_while(|r| {
            uri_peer(parse::addr_uri(msg.text(r.clone())))
                .is_some_and(|p| p.addr == config.udp || config.tcp == Some(p.addr))
        })
        .count()
}

/// The address a SIP URI names, when its host is an IP address (port 5060 by default;
/// `;transport=tcp` picks TCP).
pub fn uri_peer(uri: &str) -> Option<Peer> {
    let (host, port, transport) = uri_parts(uri)?;
    Some(Peer {
        addr: SocketAddr::new(parse_ip(host)?, port.unwrap_or(5060)),
        transport,
    })
}

/// The host, port and transport of a `sip:`/`sips:` URI.
pub(crate) fn uri_parts(uri: &str) -> Option<(&str, Option<u16>, Transport)> {
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return None;
    }
    let rest = rest.split('?').next().unwrap_or(rest);
    let hostpart = match rest.find('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let (hostport, params) = match hostpart.find(';') {
        Some(i) => (&hostpart[..i], &hostpart[i..]),
        None => (hostpart, ""),
    };
    let (host, port) = parse::split_host_port(hostport)?;
    let tcp = parse::param(params, "transport").is_some_and(|t| t.eq_ignore_ascii_case("tcp"));
    Some((
        host,
        port,
        if tcp { Transport::Tcp } else { Transport::Udp },
    ))
}

pub(crate) fn parse_ip(host: &str) -> Option<IpAddr> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    host.parse().ok()
}

mod queue;
#[cfg(test)]
mod tests;

//! The SIP router's view of the switchboard: the [`CallControl`] the proxy asks where calls go.
//!
//! With counters shared between nodes ([`SharedCounters`]), each target the switchboard picks
//! is reserved there before the proxy tries it: the decision is given as [`Hop::Pending`] and
//! sent once Redis has answered. A target whose caps are full counting the other nodes' calls
//! is withdrawn and the plan goes on. If Redis cannot be reached, calls are routed on this
//! node's counters alone (a cap may then be exceeded across nodes; a call is not lost).

use callopt_calls::{Next, SharedCounters, Switchboard};
use callopt_domain::{AttemptOutcome, Destination, HungUpBy, SipUri};
use callopt_sip::{CallControl, Hop, Hops, InboundCall};
use std::sync::{Arc, OnceLock};

/// The switchboard, speaking the SIP router's language.
pub struct SipControl {
    board: Arc<Switchboard>,
    shared: Option<SharedCounters>,
    hops: OnceLock<Hops>,
}

/// Turns the switchboard's answer into a SIP hop. A target reached by number (for carrier
/// dial-out) cannot take a SIP call: that attempt fails at once and the plan goes on.
fn hop(board: &Switchboard, call: Option<u64>, mut next: Next) -> Hop {
    loop {
        match next {
            Next::Target {
                target,
                destination: Destination::Sip(uri),
                ring_timeout,
            } => {
                return Hop::Target {
                    target,
                    uri,
                    ring_timeout,
                }
            }
            Next::Target { target, .. } => match call {
                Some(key) => {
                    next = board.attempt_failed(key, target, AttemptOutcome::Unreachable, None)
                }
                None => return reject(503, "Service Unavailable"),
            },
            Next::Reject { status, reason } => return reject(status, &reason),
        }
    }
}

fn reject(status: u16, reason: &str) -> Hop {
    Hop::Reject {
        status,
        reason: reason.to_string(),
    }
}

impl SipControl {
    /// The control over `board`, reserving targets in `shared` when there are several nodes
    /// (the switchboard keeps its calls counted there).
    pub fn new(board: Arc<Switchboard>, shared: Option<SharedCounters>) -> Self {
        Self {
            board,
            shared,
            hops: OnceLock::new(),
        }
    }

    /// The hop for `next` of call `key`: at once without shared counters or for an answer;
    /// otherwise pending until the target is reserved (or withdrawn, and the next one is).
    fn decide(&self, key: u64, next: Next) -> Hop {
        let (Some(shared), Some(hops), Next::Target { .. }) =
            (self.shared.clone(), self.hops.get().cloned(), &next)
        else {
            self.board.confirm(key);
            return hop(&self.board, Some(key), next);
        };
        let board = self.board.clone();
        tokio::spawn(async move {
            let next = shared
                .reserve_next(&board, key, next, |d| matches!(d, Destination::Sip(_)))
                .await;
            hops.send(key, hop(&board, Some(key), next));
        });
        Hop::Pending
    }

    /// Releases call `key`'s hold on `target` in the shared counters, if any.
    fn release(&self, key: u64, target: i64) {
        if let Some(shared) = self.shared.clone() {
            tokio::spawn(async move { shared.let_go(key, target).await });
        }
    }
}

impl CallControl for SipControl {
    fn call_started(&self, call: &InboundCall<'_>) -> (Option<u64>, Hop) {
        let confirms = self.shared.is_some();
        let (key, next) =
            self.board
                .start_call_with("sip", call.call_id, call.called, call.caller, confirms);
        match key {
            Some(key) if confirms => (Some(key), self.decide(key, next)),
            _ => (key, hop(&self.board, key, next)),
        }
    }

    fn attempt_failed(
        &self,
        call: u64,
        target: i64,
        outcome: AttemptOutcome,
        sip_status: Option<u16>,
    ) -> Hop {
        self.release(call, target);
        let next = self.board.attempt_failed(call, target, outcome, sip_status);
        if self.shared.is_some() {
            self.decide(call, next)
        } else {
            hop(&self.board, Some(call), next)
        }
    }

    fn call_answered(&self, call: u64, target: i64, sip_status: u16) {
        self.board.answered(call, target, sip_status);
        if let Some(shared) = self.shared.clone() {
            let board = self.board.clone();
            tokio::spawn(async move { shared.count_answer(&board, call, target).await });
        }
    }

    fn call_ended(&self, call: u64, by: HungUpBy, answered: bool) {
        if let Some(target) = self.board.current_target(call) {
            self.release(call, target);
        }
        self.board.ended(call, by, answered);
    }

    fn probe_targets(&self) -> Vec<(i64, SipUri)> {
        self.board.sip_targets()
    }

    fn target_health(&self, target: i64, up: bool) {
        self.board.set_health(target, up);
    }

    fn attach(&self, hops: Hops) {
        let _ = self.hops.set(hops);
    }
}

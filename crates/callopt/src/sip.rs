//! The SIP router's view of the switchboard: the [`CallControl`] the proxy asks where calls go.

use callopt_calls::{Next, Switchboard};
use callopt_domain::{AttemptOutcome, Destination, HungUpBy, SipUri};
use callopt_sip::{CallControl, Hop, InboundCall};
use std::sync::Arc;

/// The switchboard, speaking the SIP router's language.
pub struct SipControl(pub Arc<Switchboard>);

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

impl CallControl for SipControl {
    fn call_started(&self, call: &InboundCall<'_>) -> (Option<u64>, Hop) {
        let (key, next) = self
            .0
            .start_call("sip", call.call_id, call.called, call.caller);
        (key, hop(&self.0, key, next))
    }

    fn attempt_failed(
        &self,
        call: u64,
        target: i64,
        outcome: AttemptOutcome,
        sip_status: Option<u16>,
    ) -> Hop {
        let next = self.0.attempt_failed(call, target, outcome, sip_status);
        hop(&self.0, Some(call), next)
    }

    fn call_answered(&self, call: u64, target: i64, sip_status: u16) {
        self.0.answered(call, target, sip_status);
    }

    fn call_ended(&self, call: u64, by: HungUpBy, answered: bool) {
        self.0.ended(call, by, answered);
    }

    fn probe_targets(&self) -> Vec<(i64, SipUri)> {
        self.0.sip_targets()
    }

    fn target_health(&self, target: i64, up: bool) {
        self.0.set_health(target, up);
    }
}

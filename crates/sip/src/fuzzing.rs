//! Harnesses shared by the fuzz targets (`fuzz/`), the corpus test and the property tests: each
//! takes arbitrary bytes and must never panic.

use crate::core::{Core, CoreConfig, Input, Peer};
use crate::edit::{self, Forward};
use crate::parse::{self, Framing, Message};
use crate::{AttemptOutcome, CallControl, Hop, InboundCall, Probing, Timers, Transport};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Parses `data` both ways and, on success, reads every field and applies every edit the proxy
/// makes, re-parsing what the edits produce.
pub fn parse_message(data: &[u8]) {
    let _ = parse::frame(data);
    let _ = Message::parse_head(Bytes::copy_from_slice(data));
    for framing in [Framing::Datagram, Framing::Stream] {
        let Ok(msg) = Message::parse(Bytes::copy_from_slice(data), framing) else {
            continue;
        };
        let _ = (
            msg.method(),
            msg.uri(),
            msg.status(),
            msg.call_id(),
            msg.cseq(),
        );
        let _ = (msg.from_tag(), msg.to_tag(), msg.max_forwards());
        // The top Via is read once and kept: what is kept is what parsing it again gives.
        let again = msg
            .first_value(parse::HeaderName::Via)
            .and_then(|r| parse::Via::parse(msg.text(r)));
        assert_eq!(msg.top_via(), again);
        assert_eq!(msg.top_via(), again);
        for name in [parse::HeaderName::Via, parse::HeaderName::Route] {
            for r in msg.values(name) {
                let _ = parse::Via::parse(msg.text(r.clone()));
                let _ = crate::core::uri_peer(parse::addr_uri(msg.text(r)));
            }
        }
        let forwarded = edit::forward_request(
            &msg,
            &Forward {
                uri: Some("sip:agent@127.0.0.1:5070"),
                via: "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfuzz",
                record_routes: &[
                    "<sip:127.0.0.1:5061;transport=tcp;lr>",
                    "<sip:127.0.0.1:5060;lr>",
                ],
                pop_routes: 2,
            },
        );
        let _ = Message::parse(forwarded, Framing::Datagram);
        let _ = Message::parse(edit::strip_top_via(&msg), Framing::Datagram);
        if edit::can_respond(&msg) {
            let r = edit::response(&msg, 400, "Bad Request", Some("t"), "");
            let _ = Message::parse(r, Framing::Datagram);
        }
        let _ = Message::parse(edit::ack_for(&msg, &msg), Framing::Datagram);
        let _ = Message::parse(edit::cancel_for(&msg), Framing::Datagram);
    }
}

/// A CallControl that sends every call to one target, then rejects.
struct Fixed;

impl CallControl for Fixed {
    fn call_started(&self, _: &InboundCall<'_>) -> (Option<u64>, Hop) {
        let uri = callopt_domain::SipUri::parse("t", "sip:agent@127.0.0.1:7001").ok();
        let hop = match uri {
            Some(uri) => Hop::Target {
                target: 1,
                uri,
                ring_timeout: Duration::from_secs(1),
            },
            None => Hop::Reject {
                status: 500,
                reason: "x".into(),
            },
        };
        (Some(1), hop)
    }
    fn attempt_failed(&self, _: u64, _: i64, _: AttemptOutcome, _: Option<u16>) -> Hop {
        Hop::Reject {
            status: 480,
            reason: "Temporarily Unavailable".into(),
        }
    }
    fn call_answered(&self, _: u64, _: i64, _: u16) {}
    fn call_ended(&self, _: u64, _: callopt_domain::HungUpBy, _: bool) {}
    fn probe_targets(&self) -> Vec<(i64, callopt_domain::SipUri)> {
        Vec::new()
    }
    fn target_health(&self, _: i64, _: bool) {}
}

/// Feeds `data`, split at `\0\0` into messages alternately from a caller and a target, to a
/// core, advancing a fake clock between them and firing timers.
pub fn core_input(data: &[u8]) {
    let now = Instant::now();
    let config = CoreConfig {
        udp: "127.0.0.1:5060".parse().expect("literal"),
        tcp: Some("127.0.0.1:5061".parse().expect("literal")),
        timers: Timers::default(),
        probing: Probing {
            interval: None,
            ..Probing::default()
        },
        max_dialog: crate::MAX_DIALOG,
        hosts: None,
    };
    let mut core = Core::new(config, Arc::new(Fixed), now);
    let mut out = Vec::new();
    let peers = ["127.0.0.1:6000", "127.0.0.1:7001"];
    let mut t = now;
    for (i, chunk) in data
        .split(|b| *b == 0)
        .filter(|c| !c.is_empty())
        .enumerate()
    {
        let from = Peer {
            addr: peers[i % 2].parse().expect("literal"),
            transport: if i % 3 == 2 {
                Transport::Tcp
            } else {
                Transport::Udp
            },
        };
        let input = Input::Message {
            data: Bytes::copy_from_slice(chunk),
            from,
        };
        core.handle(input, t, &mut out);
        t += Duration::from_millis(300);
        core.poll_timers(t, &mut out);
        out.clear();
    }
    core.poll_timers(t + Duration::from_secs(120), &mut out);
}

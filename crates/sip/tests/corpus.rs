//! Runs every fuzz seed (RFC 4475's torture messages and a few of our own) through the parser
//! and the core, and random bytes through both, so CI exercises them without cargo-fuzz; and
//! holds the parser and the core to what RFC 4475 says of each torture message.
//!
//! The `*.dat` seeds are the RFC's own bytes, named as in its Appendix A archive (a base64,
//! gzipped tar of every message, published so that implementers get them bit-exact: several
//! turn on octets that do not survive retyping, such as `trws`'s trailing space or `intmeth`'s
//! NUL). They were taken from that archive as decoded in the `sipx-testkit` 1.0.1 crate
//! (`corpus/rfc4475/`); its 13 valid messages match, by SHA-256, a second and independent
//! decode of the same archive. Do not edit them: the malformations are the test.

use bytes::Bytes;
use callopt_domain::{HungUpBy, SipUri};
use callopt_sip::core::{Core, CoreConfig, Input, Output, Peer};
use callopt_sip::parse::{Framing, HeaderName, Message};
use callopt_sip::{
    fuzzing, AttemptOutcome, CallControl, Hop, InboundCall, Probing, Timers, Transport,
};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_message")
}

#[test]
fn every_corpus_message_is_handled_without_panic() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).expect("the seed corpus exists") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        fuzzing::parse_message(&data);
        fuzzing::core_input(&data);
        n += 1;
    }
    assert!(n >= 50, "only {n} seeds");
}

/// What the parser must make of a message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Parse {
    /// It is a message.
    Yes,
    /// It is not one (framing or start line).
    No,
    /// The RFC does not say (the archive's unreferenced `test`).
    Any,
}

/// What the proxy core must do with it, arriving over UDP from a caller.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Proxy {
    /// Answer upstream with one of these statuses, and send nothing on.
    Answer(&'static [u16]),
    /// Send nothing at all (a response to discard, or a request nothing can be answered to).
    Silent,
    /// Take the call: 100 upstream, the INVITE to the target.
    Forward,
    /// The RFC lets an element reject it or be liberal and process it.
    Either,
}

use Parse::{Any, No, Yes};
use Proxy::{Answer, Either, Forward, Silent};

/// RFC 4475's messages: (name, section, parse, proxy). Where the RFC gives a proxy a choice the
/// comment says which the core makes.
const CASES: &[(&str, &str, Parse, Proxy)] = &[
    // 3.1.1: valid messages. They must parse; what the core does next is routing, not syntax
    // (wsinv's Route names a host, longreq's top Via has no branch).
    ("wsinv", "3.1.1.1", Yes, Either),
    ("intmeth", "3.1.1.2", Yes, Answer(&[501])),
    ("esc01", "3.1.1.3", Yes, Forward),
    ("escnull", "3.1.1.4", Yes, Answer(&[405])),
    ("esc02", "3.1.1.5", Yes, Answer(&[501])),
    ("lwsdisp", "3.1.1.6", Yes, Either),
    ("longreq", "3.1.1.7", Yes, Either),
    ("dblreq", "3.1.1.8", Yes, Answer(&[405])),
    ("semiuri", "3.1.1.9", Yes, Either),
    ("transports", "3.1.1.10", Yes, Either),
    ("mpart01", "3.1.1.11", Yes, Answer(&[405])),
    ("unreason", "3.1.1.12", Yes, Silent),
    ("noreason", "3.1.1.13", Yes, Silent),
    // 3.1.2: invalid messages.
    ("badinv01", "3.1.2.1", Yes, Answer(&[400])),
    ("clerr", "3.1.2.2", No, Answer(&[400])),
    ("ncl", "3.1.2.3", No, Answer(&[400])),
    ("scalar02", "3.1.2.4", Yes, Answer(&[400])),
    ("scalarlg", "3.1.2.5", Yes, Silent),
    // The core infers nothing and forwards it, as the RFC allows.
    ("quotbal", "3.1.2.6", Yes, Either),
    ("ltgtruri", "3.1.2.7", No, Answer(&[400])),
    ("lwsruri", "3.1.2.8", No, Answer(&[400])),
    ("lwsstart", "3.1.2.9", No, Answer(&[400])),
    ("trws", "3.1.2.10", No, Answer(&[400])),
    // Liberal: the forwarded Request-URI is the target's, so the escaped headers go.
    ("escruri", "3.1.2.11", Yes, Either),
    ("baddate", "3.1.2.12", Yes, Either),
    // A proxy that takes no REGISTER refuses it before reading its Contact.
    ("regbadct", "3.1.2.13", Yes, Answer(&[400, 405])),
    ("badaspec", "3.1.2.14", Yes, Either),
    // The archive's copy has no blank line after its headers: on UDP, a truncated message.
    ("baddn", "3.1.2.15", No, Silent),
    ("badvers", "3.1.2.16", Yes, Answer(&[505])),
    ("mismatch01", "3.1.2.17", Yes, Answer(&[400])),
    ("mismatch02", "3.1.2.18", Yes, Answer(&[501, 400])),
    ("bigcode", "3.1.2.19", No, Silent),
    // 3.2: transaction layer.
    ("badbranch", "3.2.1", Yes, Either),
    // 3.3: application layer.
    // No Call-ID, From or To: a 400 naming them, copying the Via and CSeq it has.
    ("insuf", "3.3.1", Yes, Answer(&[400])),
    ("unkscm", "3.3.2", Yes, Answer(&[416])),
    ("novelsc", "3.3.3", Yes, Answer(&[416])),
    ("unksm2", "3.3.4", Yes, Answer(&[405])),
    ("bext01", "3.3.5", Yes, Answer(&[420])),
    ("invut", "3.3.6", Yes, Forward),
    ("regaut01", "3.3.7", Yes, Answer(&[405])),
    ("multi01", "3.3.8", Yes, Answer(&[400])),
    ("mcl01", "3.3.9", No, Answer(&[400])),
    ("bcast", "3.3.10", Yes, Silent),
    ("zeromf", "3.3.11", Yes, Answer(&[483])),
    ("cparam01", "3.3.12", Yes, Answer(&[405])),
    ("cparam02", "3.3.13", Yes, Answer(&[405])),
    ("regescrt", "3.3.14", Yes, Answer(&[405])),
    ("sdp01", "3.3.15", Yes, Forward),
    // 3.4: RFC 2543 syntax. Its Via has no branch: the core matches its transactions by
    // RFC 2543's fields, and takes the call.
    ("inv2543", "3.4.1", Yes, Forward),
    // In the archive, referenced by no section.
    ("test", "-", Any, Either),
];

/// Every call goes to one target, at 127.0.0.1:7001.
struct OneTarget;

impl CallControl for OneTarget {
    fn call_started(&self, _: &InboundCall<'_>) -> (Option<u64>, Hop) {
        let uri = SipUri::parse("t", "sip:agent@127.0.0.1:7001").unwrap();
        let hop = Hop::Target {
            target: 1,
            uri,
            ring_timeout: Duration::from_secs(5),
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
    fn call_ended(&self, _: u64, _: HungUpBy, _: bool) {}
    fn probe_targets(&self) -> Vec<(i64, SipUri)> {
        Vec::new()
    }
    fn target_health(&self, _: i64, _: bool) {}
}

const CALLER: &str = "127.0.0.1:6000";
const TARGET: &str = "127.0.0.1:7001";

/// What a fresh core sends when `data` arrives from the caller over UDP: (to, message).
fn proxy(data: &[u8]) -> Vec<(String, Message)> {
    let now = Instant::now();
    let config = CoreConfig {
        udp: "127.0.0.1:5060".parse().unwrap(),
        tcp: None,
        timers: Timers::default(),
        probing: Probing {
            interval: None,
            ..Probing::default()
        },
        max_dialog: callopt_sip::MAX_DIALOG,
        hosts: None,
    };
    let mut core = Core::new(config, Arc::new(OneTarget), now);
    let mut out: Vec<Output> = Vec::new();
    let from = Peer {
        addr: CALLER.parse().unwrap(),
        transport: Transport::Udp,
    };
    let data = Bytes::copy_from_slice(data);
    core.handle(Input::Message { data, from }, now, &mut out);
    out.into_iter()
        .map(|o| {
            let m = Message::parse(o.data, Framing::Datagram).expect("the core sends valid SIP");
            (o.to.addr.to_string(), m)
        })
        .collect()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(corpus().join(format!("{name}.dat"))).unwrap()
}

#[test]
fn the_corpus_holds_every_message_of_the_rfc_archive() {
    let mut on_disk: Vec<String> = std::fs::read_dir(corpus())
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".dat").map(str::to_string))
        .collect();
    on_disk.sort();
    let mut named: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    named.sort();
    assert_eq!(on_disk, named);
    assert_eq!(CASES.len(), 50, "the archive holds 50 messages");
}

#[test]
fn torture_messages_are_parsed_and_answered_as_rfc_4475_says() {
    let mut wrong = Vec::new();
    for &(name, section, parse, expect) in CASES {
        let data = read(name);
        let parsed = Message::parse(Bytes::copy_from_slice(&data), Framing::Datagram);
        match (parse, &parsed) {
            (Yes, Err(e)) => wrong.push(format!("{name} ({section}) must parse: {e}")),
            (No, Ok(_)) => wrong.push(format!("{name} ({section}) must not parse")),
            _ => {}
        }
        let sent = proxy(&data);
        let upstream: Vec<u16> = sent
            .iter()
            .filter(|(to, _)| to == CALLER)
            .filter_map(|(_, m)| m.status())
            .collect();
        let onward = sent.iter().any(|(to, _)| to == TARGET);
        let ok = match expect {
            Answer(statuses) => !onward && upstream.len() == 1 && statuses.contains(&upstream[0]),
            Silent => sent.is_empty(),
            Forward => {
                upstream == [100]
                    && sent
                        .iter()
                        .any(|(to, m)| to == TARGET && m.method() == Some("INVITE"))
            }
            Either => true,
        };
        if !ok {
            wrong.push(format!(
                "{name} ({section}): expected {expect:?}, the core sent {:?} upstream{}",
                upstream,
                if onward { " and forwarded it" } else { "" }
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn valid_torture_messages_read_as_the_rfc_describes() {
    let parse = |name: &str| Message::parse(Bytes::from(read(name)), Framing::Datagram).unwrap();
    let wsinv = parse("wsinv");
    assert_eq!(wsinv.cseq(), Some((9, "INVITE")));
    assert_eq!(wsinv.max_forwards(), Some(Ok(68)));
    assert_eq!(wsinv.to_tag(), Some("1918181833n"));
    assert_eq!(wsinv.from_tag(), Some("98asjd8"));
    assert_eq!(wsinv.top_via().unwrap().branch, Some("390skdjuw"));
    assert_eq!(wsinv.values(HeaderName::Via).count(), 3);
    // The extra octets after the first message of a datagram are not part of it.
    let dblreq = parse("dblreq");
    assert_eq!(dblreq.method(), Some("REGISTER"));
    assert!(!String::from_utf8_lossy(dblreq.bytes()).contains("INVITE"));
    assert_eq!(parse("noreason").status(), Some(100));
    assert_eq!(parse("unreason").status(), Some(200));
    assert_eq!(parse("esc02").method(), Some("RE%47IST%45R"));
    assert_eq!(
        parse("semiuri").uri(),
        Some("sip:user;par=u%40example.net@example.com")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::parse_message(&data);
        fuzzing::core_input(&data);
    }

    #[test]
    fn mutated_requests_never_panic(cut in 0usize..400, byte in any::<u8>(), at in 0usize..400) {
        let mut msg = b"INVITE sip:+15551230000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bKx\r\nRoute: <sip:127.0.0.1:5060;lr>\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 3\r\nContent-Length: 0\r\n\r\n".to_vec();
        if at < msg.len() { msg[at] = byte; }
        msg.truncate(cut.max(1).min(msg.len()));
        fuzzing::parse_message(&msg);
        fuzzing::core_input(&msg);
    }
}

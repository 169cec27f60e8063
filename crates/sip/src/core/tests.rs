//! State machine tests of the core, driven with a fake clock: no sockets, no sleeping.

use super::*;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

const PROXY: &str = "127.0.0.1:5060";
const CALLER: &str = "127.0.0.1:6000";
const T1: &str = "127.0.0.1:7001";
const T2: &str = "127.0.0.1:7002";

/// What the control was told, in order.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Started(String),
    Failed(i64, AttemptOutcome, Option<u16>),
    Answered(i64, u16),
    Ended(HungUpBy, bool),
    Health(i64, bool),
}

/// Sends attempts through `targets` in order, then rejects with 480.
struct Control {
    targets: Vec<String>,
    /// Give every decision as `Hop::Pending` (the test delivers them).
    defer: std::sync::atomic::AtomicBool,
    ring: Duration,
    events: Mutex<Vec<Event>>,
    next: Mutex<usize>,
}

impl Control {
    fn new(targets: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            targets: targets.iter().map(|t| format!("sip:agent@{t}")).collect(),
            defer: Default::default(),
            ring: Duration::from_secs(20),
            events: Mutex::new(Vec::new()),
            next: Mutex::new(0),
        })
    }

    fn hop(&self) -> Hop {
        let mut next = self.next.lock().unwrap();
        let i = *next;
        *next += 1;
        match self.targets.get(i) {
            Some(t) => Hop::Target {
                target: i as i64 + 1,
                uri: callopt_domain::SipUri::parse("t", t).unwrap(),
                ring_timeout: self.ring,
            },
            None => Hop::Reject {
                status: 480,
                reason: "Temporarily Unavailable".into(),
            },
        }
    }

    /// The next hop, or `Pending` when deferring.
    fn decide(&self) -> Hop {
        if self.defer.load(std::sync::atomic::Ordering::SeqCst) {
            Hop::Pending
        } else {
            self.hop()
        }
    }

    fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }
}

impl CallControl for Control {
    fn call_started(&self, call: &InboundCall<'_>) -> (Option<u64>, Hop) {
        self.push(Event::Started(call.called.to_string()));
        (Some(1), self.decide())
    }
    fn attempt_failed(&self, _: u64, target: i64, o: AttemptOutcome, s: Option<u16>) -> Hop {
        self.push(Event::Failed(target, o, s));
        self.decide()
    }
    fn call_answered(&self, _: u64, target: i64, status: u16) {
        self.push(Event::Answered(target, status));
    }
    fn call_ended(&self, _: u64, by: HungUpBy, answered: bool) {
        self.push(Event::Ended(by, answered));
    }
    fn probe_targets(&self) -> Vec<(i64, callopt_domain::SipUri)> {
        vec![(
            9,
            callopt_domain::SipUri::parse("t", "sip:127.0.0.1:7009").unwrap(),
        )]
    }
    fn target_health(&self, target: i64, up: bool) {
        self.push(Event::Health(target, up));
    }
}

/// A core, its control and a fake clock.
struct Rig {
    core: Core,
    control: Arc<Control>,
    now: Instant,
    out: Vec<Output>,
}

impl Rig {
    fn new(targets: &[&str]) -> Self {
        Self::with(
            targets,
            Probing {
                interval: None,
                ..Probing::default()
            },
        )
    }

    fn with(targets: &[&str], probing: Probing) -> Self {
        Self::config(targets, |c| c.probing = probing)
    }

    /// A rig whose core settings `change` adjusts (probing off by default).
    fn config(targets: &[&str], change: impl FnOnce(&mut CoreConfig)) -> Self {
        let control = Control::new(targets);
        let now = Instant::now();
        let mut config = CoreConfig {
            udp: PROXY.parse().unwrap(),
            tcp: None,
            timers: Timers::default(),
            probing: Probing {
                interval: None,
                ..Probing::default()
            },
            max_dialog: crate::MAX_DIALOG,
            hosts: None,
        };
        change(&mut config);
        Self {
            core: Core::new(config, control.clone(), now),
            control,
            now,
            out: Vec::new(),
        }
    }

    /// Feeds a message from `from`; returns what was sent, as (to, parsed message).
    fn feed(&mut self, from: &str, text: &str) -> Vec<(String, Message)> {
        let input = Input::Message {
            data: Bytes::copy_from_slice(text.as_bytes()),
            from: Peer {
                addr: from.parse().unwrap(),
                transport: Transport::Udp,
            },
        };
        self.core.handle(input, self.now, &mut self.out);
        self.drain()
    }

    /// Delivers a decision the control gave as pending.
    fn decided(&mut self, key: u64, hop: Hop) -> Vec<(String, Message)> {
        self.core
            .handle(Input::Hop { key, hop }, self.now, &mut self.out);
        self.drain()
    }

    /// Moves the clock and fires due timers.
    fn advance(&mut self, by: Duration) -> Vec<(String, Message)> {
        self.now += by;
        self.core.poll_timers(self.now, &mut self.out);
        self.drain()
    }

    fn drain(&mut self) -> Vec<(String, Message)> {
        self.out
            .drain(..)
            .map(|o| {
                let m = Message::parse(o.data, Framing::Datagram).expect("we send valid SIP");
                (o.to.addr.to_string(), m)
            })
            .collect()
    }
}

fn invite(branch: &str) -> String {
    format!(
        "INVITE sip:+15551230000@{PROXY} SIP/2.0\r\n\
Via: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:+15550001111@{CALLER}>;tag=caller1\r\n\
To: <sip:+15551230000@{PROXY}>\r\n\
Call-ID: call-1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:c@{CALLER}>\r\n\
Content-Length: 0\r\n\r\n"
    )
}

/// A response from a target to a request we sent (copies its Via, From, To, Call-ID, CSeq).
fn answer(req: &Message, status: u16, to_tag: &str) -> String {
    let mut s = format!("SIP/2.0 {status} Reason\r\n");
    for h in &req.headers {
        let line = req.text(h.line.clone());
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                s.push_str(line)
            }
            HeaderName::RecordRoute => s.push_str(line),
            HeaderName::To => {
                s.push_str(line.trim_end());
                if req.to_tag().is_none() && status > 100 {
                    s.push_str(&format!(";tag={to_tag}"));
                }
                s.push_str("\r\n");
            }
            _ => {}
        }
    }
    s.push_str("Contact: <sip:agent@127.0.0.1:7002>\r\nContent-Length: 0\r\n\r\n");
    s
}

/// The caller's BYE for the dialog `invite` opened with T2, through the proxy.
fn bye_to_t2(branch: &str) -> String {
    format!(
        "BYE sip:agent@{T2} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
Route: <sip:{PROXY};lr>\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@{CALLER}>;tag=caller1\r\n\
To: <sip:+15551230000@{PROXY}>;tag=t2\r\nCall-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
}

fn only<'a>(sent: &'a [(String, Message)], to: &str, what: &str) -> &'a Message {
    let found: Vec<_> = sent
        .iter()
        .filter(|(t, m)| {
            t == to
                && (m.method() == Some(what)
                    || m.status().map(|s| s.to_string()).as_deref() == Some(what))
        })
        .collect();
    assert_eq!(found.len(), 1, "one {what} to {to} in {sent:#?}");
    &found[0].1
}

#[test]
fn busy_then_answered_then_bye_from_the_caller() {
    let mut rig = Rig::new(&[T1, T2]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKc1"));
    only(&sent, CALLER, "100");
    let inv1 = only(&sent, T1, "INVITE").clone();
    assert_eq!(inv1.uri(), Some("sip:agent@127.0.0.1:7001"));
    assert_eq!(inv1.max_forwards(), Some(Ok(69)));
    assert_eq!(inv1.values(HeaderName::Via).count(), 2);
    assert!(inv1.value(HeaderName::RecordRoute).unwrap().contains(";lr"));

    let sent = rig.feed(T1, &answer(&inv1, 486, "t1"));
    let ack = only(&sent, T1, "ACK");
    assert_eq!(ack.to_tag(), Some("t1"));
    assert_eq!(
        ack.top_via().unwrap().branch,
        inv1.top_via().unwrap().branch
    );
    let inv2 = only(&sent, T2, "INVITE").clone();
    assert_ne!(
        inv2.top_via().unwrap().branch,
        inv1.top_via().unwrap().branch
    );

    let sent = rig.feed(T2, &answer(&inv2, 180, "t2"));
    let ringing = only(&sent, CALLER, "180");
    assert_eq!(
        ringing.values(HeaderName::Via).count(),
        1,
        "our Via is stripped"
    );
    let sent = rig.feed(T2, &answer(&inv2, 200, "t2"));
    let ok = only(&sent, CALLER, "200");
    assert_eq!(ok.to_tag(), Some("t2"));

    // A retransmitted 2xx is relayed too.
    let sent = rig.feed(T2, &answer(&inv2, 200, "t2"));
    only(&sent, CALLER, "200");

    let bye = format!(
        "BYE sip:agent@{T2} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKbye\r\n\
Route: <sip:{PROXY};lr>\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@{CALLER}>;tag=caller1\r\n\
To: <sip:+15551230000@{PROXY}>;tag=t2\r\nCall-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let sent = rig.feed(CALLER, &bye);
    let fwd = only(&sent, T2, "BYE").clone();
    assert!(
        fwd.header(HeaderName::Route).is_none(),
        "our Route is popped"
    );
    let sent = rig.feed(T2, &answer(&fwd, 200, "t2"));
    only(&sent, CALLER, "200");
    // A retransmitted BYE is answered from the transaction, and ends nothing twice.
    let sent = rig.feed(CALLER, &bye);
    only(&sent, CALLER, "200");

    assert_eq!(
        rig.control.events(),
        [
            Event::Started("+15551230000".into()),
            Event::Failed(1, AttemptOutcome::Busy, Some(486)),
            Event::Answered(2, 200),
            Event::Ended(HungUpBy::Caller, true),
        ]
    );
    assert_eq!(rig.core.live(), (0, 0));
    // Once the transactions' own timers have run out, nothing of the call is left waiting:
    // not its dialog's time limit, hours away.
    rig.advance(Duration::from_secs(64));
    assert_eq!(rig.core.timers(), 0);
}

/// Whether a retransmission of `final_` from T1 is still absorbed by its branch (our ACK goes
/// out again) rather than passed on statelessly.
fn absorbed(rig: &mut Rig, final_: &str) -> bool {
    let sent = rig.feed(T1, final_);
    sent.iter()
        .any(|(t, m)| t == T1 && m.method() == Some("ACK"))
}

#[test]
fn a_finished_branch_absorbs_its_final_for_64_t1_after_it_then_is_forgotten() {
    // Finished before Timer B (10 s in): Timer B, at 32 s, hands over to Timer D until 42 s.
    let mut rig = Rig::new(&[T1]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKk1"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer(&inv1, 100, ""));
    rig.advance(Duration::from_secs(10));
    let busy = answer(&inv1, 486, "t1");
    let sent = rig.feed(T1, &busy);
    only(&sent, T1, "ACK");
    only(&sent, CALLER, "480");
    rig.advance(Duration::from_secs(25));
    assert!(absorbed(&mut rig, &busy), "35 s: after Timer B, before D");
    rig.advance(Duration::from_secs(6));
    assert!(absorbed(&mut rig, &busy), "41 s");
    rig.advance(Duration::from_secs(2));
    assert!(!absorbed(&mut rig, &busy), "43 s: forgotten");
    assert_eq!(rig.core.branches.len(), 0);

    // Finished after Timer B (ringing past 32 s): Timer D alone.
    let mut rig = Rig::new(&[T1]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKk2"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer(&inv1, 180, "t1"));
    let sent = rig.advance(Duration::from_secs(20));
    let cancel = only(&sent, T1, "CANCEL").clone();
    rig.feed(T1, &answer(&cancel, 200, "t1"));
    rig.advance(Duration::from_secs(20));
    let terminated = answer(&inv1, 487, "t1");
    assert!(absorbed(&mut rig, &terminated), "40 s: the final");
    rig.advance(Duration::from_secs(31));
    assert!(absorbed(&mut rig, &terminated), "71 s");
    rig.advance(Duration::from_secs(2));
    assert!(!absorbed(&mut rig, &terminated), "73 s: forgotten");
    assert_eq!(rig.core.branches.len(), 0);
}

/// An answered call's INVITE key and its BYE's relay, with the core's linger set to `linger`,
/// are kept `wait` after their finals to absorb retransmissions, then forgotten.
fn accepted_invite_and_relayed_bye_are_kept(linger: Option<Duration>, wait: Duration) {
    let mut rig = Rig::config(&[T2], |c| c.timers.linger = linger);
    let sent = rig.feed(CALLER, &invite("z9hG4bKk3"));
    let inv = only(&sent, T2, "INVITE").clone();
    rig.advance(Duration::from_secs(5));
    rig.feed(T2, &answer(&inv, 180, "t2"));
    let sent = rig.feed(T2, &answer(&inv, 200, "t2"));
    only(&sent, CALLER, "200");
    // The caller's INVITE, retransmitted, is absorbed until `wait` after the 2xx.
    let second = Duration::from_secs(1);
    rig.advance(wait - second);
    assert!(
        rig.feed(CALLER, &invite("z9hG4bKk3")).is_empty(),
        "just before"
    );
    let bye = bye_to_t2("z9hG4bKk3bye");
    let sent = rig.feed(CALLER, &bye);
    let fwd = only(&sent, T2, "BYE").clone();
    rig.feed(T2, &answer(&fwd, 200, "t2"));
    rig.advance(2 * second);
    assert_eq!(
        rig.core.server_invites.len(),
        0,
        "the INVITE's key is forgotten after the wait"
    );
    assert_eq!(rig.core.branches.len(), 0);
    // The BYE's transaction answers a retransmission until `wait` after its 200.
    rig.advance(wait - 3 * second);
    let sent = rig.feed(CALLER, &bye);
    only(&sent, CALLER, "200");
    assert!(
        sent.iter().all(|(t, _)| t != T2),
        "answered from the transaction"
    );
    rig.advance(2 * second);
    assert_eq!(rig.core.relays.len(), 0, "the relay is forgotten");
    assert_eq!(rig.core.relay_keys.len(), 0);
    // Timers B and F, when set for longer, still fire and find nothing.
    rig.advance(Duration::from_secs(64));
    assert_eq!(rig.core.timers(), 0);
}

#[test]
fn an_accepted_invite_and_a_relayed_bye_are_kept_64_t1_then_forgotten() {
    accepted_invite_and_relayed_bye_are_kept(None, Duration::from_secs(32));
}

#[test]
fn a_linger_shorter_than_64_t1_forgets_finished_transactions_when_it_ends() {
    let five = Duration::from_secs(5);
    accepted_invite_and_relayed_bye_are_kept(Some(five), five);
    // A busy branch, 1 s in: absorbed for 5 s, then forgotten long before Timer B (32 s).
    let mut rig = Rig::config(&[T1], |c| c.timers.linger = Some(five));
    let sent = rig.feed(CALLER, &invite("z9hG4bKl1"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer(&inv1, 100, ""));
    rig.advance(Duration::from_secs(1));
    let busy = answer(&inv1, 486, "t1");
    only(&rig.feed(T1, &busy), T1, "ACK");
    rig.advance(Duration::from_millis(4500));
    assert!(absorbed(&mut rig, &busy), "5.5 s");
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.core.branches.len(), 0, "6.5 s: forgotten");
    assert!(!absorbed(&mut rig, &busy), "6.5 s");
}

#[test]
fn silent_target_is_retransmitted_then_unreachable() {
    let mut rig = Rig::new(&[T1, T2]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKc2"));
    only(&sent, T1, "INVITE");
    // Timer A: 0.5 s, then 1 s, 2 s, ... until Timer B at 32 s; the ring timeout (20 s) comes
    // first and, with no provisional, the target counts as unreachable.
    let mut retransmits = 0;
    let mut to_t2 = None;
    for _ in 0..400 {
        let sent = rig.advance(Duration::from_millis(100));
        retransmits += sent.iter().filter(|(t, _)| t == T1).count();
        if let Some((_, m)) = sent.iter().find(|(t, _)| t == T2) {
            to_t2 = Some(m.clone());
            break;
        }
    }
    assert_eq!(retransmits, 5, "Timer A at 0.5, 1.5, 3.5, 7.5, 15.5 s");
    assert_eq!(to_t2.unwrap().method(), Some("INVITE"));
    assert_eq!(
        rig.control.events()[1],
        Event::Failed(1, AttemptOutcome::Unreachable, None)
    );
}

#[test]
fn ring_timeout_cancels_then_next_target() {
    let mut rig = Rig::new(&[T1, T2]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKc3"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer(&inv1, 180, "t1"));
    let sent = rig.advance(Duration::from_secs(20));
    let cancel = only(&sent, T1, "CANCEL").clone();
    assert_eq!(
        cancel.top_via().unwrap().branch,
        inv1.top_via().unwrap().branch
    );
    assert!(cancel.to_tag().is_none());
    rig.feed(T1, &answer(&cancel, 200, "t1"));
    let sent = rig.feed(T1, &answer(&inv1, 487, "t1"));
    only(&sent, T1, "ACK");
    only(&sent, T2, "INVITE");
    assert!(
        sent.iter().all(|(t, _)| t != CALLER),
        "nothing final upstream yet"
    );
    assert_eq!(
        rig.control.events()[1],
        Event::Failed(1, AttemptOutcome::NoAnswer, Some(487))
    );
}

#[test]
fn caller_cancel_while_ringing() {
    let mut rig = Rig::new(&[T1]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKc4"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer(&inv1, 180, "t1"));
    let cancel = invite("z9hG4bKc4")
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let sent = rig.feed(CALLER, &cancel);
    let ok = only(&sent, CALLER, "200");
    assert_eq!(ok.cseq(), Some((1, "CANCEL")));
    let term = only(&sent, CALLER, "487").clone();
    only(&sent, T1, "CANCEL");
    let sent = rig.feed(T1, &answer(&inv1, 487, "t1"));
    only(&sent, T1, "ACK");
    assert!(sent.iter().all(|(t, _)| t != CALLER));
    // Timer G retransmits the 487 until the caller's ACK.
    let sent = rig.advance(Duration::from_millis(500));
    only(&sent, CALLER, "487");
    let ack = format!(
        "ACK sip:+15551230000@{PROXY} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKc4\r\n\
Max-Forwards: 70\r\nFrom: <sip:+15550001111@{CALLER}>;tag=caller1\r\nTo: {}\r\nCall-ID: call-1\r\n\
CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        term.value(HeaderName::To).unwrap()
    );
    assert!(rig.feed(CALLER, &ack).is_empty());
    assert!(rig.advance(Duration::from_secs(10)).is_empty());
    assert_eq!(
        rig.control.events()[1..],
        [Event::Ended(HungUpBy::Caller, false)]
    );
    assert_eq!(rig.core.live(), (0, 0));
}

#[test]
fn no_more_targets_rejects_and_retransmits_until_ack_or_timer_h() {
    let mut rig = Rig::new(&[]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKc5"));
    only(&sent, CALLER, "480");
    // An INVITE retransmission gets the final again.
    let sent = rig.feed(CALLER, &invite("z9hG4bKc5"));
    only(&sent, CALLER, "480");
    let mut finals = 0;
    for _ in 0..40 {
        finals += rig.advance(Duration::from_secs(1)).len();
    }
    assert!(
        (5..=12).contains(&finals),
        "{finals} Timer G retransmissions"
    );
    assert_eq!(rig.core.live(), (0, 0), "Timer H forgot the call");
    assert_eq!(
        rig.control.events()[1],
        Event::Ended(HungUpBy::System, false)
    );
}

#[test]
fn bad_and_unwanted_requests() {
    let mut rig = Rig::new(&[T1]);
    let mf0 = invite("z9hG4bKm").replace("Max-Forwards: 70", "Max-Forwards: 0");
    only(&rig.feed(CALLER, &mf0), CALLER, "483");
    let bad_cseq = invite("z9hG4bKb").replace("CSeq: 1 INVITE", "CSeq: x INVITE");
    only(&rig.feed(CALLER, &bad_cseq), CALLER, "400");
    let mismatch = invite("z9hG4bKb2").replace("CSeq: 1 INVITE", "CSeq: 1 BYE");
    only(&rig.feed(CALLER, &mismatch), CALLER, "400");
    let no_call_id = invite("z9hG4bKb3").replace("Call-ID: call-1\r\n", "");
    let sent = rig.feed(CALLER, &no_call_id);
    let missing = only(&sent, CALLER, "400");
    assert!(missing
        .text(0..missing.headers_start)
        .contains("Missing Call-ID"));
    assert_eq!(missing.top_via().unwrap().branch, Some("z9hG4bKb3"));
    let no_via = invite("z9hG4bKb4").replace(
        &format!("Via: SIP/2.0/UDP {CALLER};branch=z9hG4bKb4\r\n"),
        "",
    );
    assert!(
        rig.feed(CALLER, &no_via).is_empty(),
        "silence when nothing says where a response would go"
    );
    let bad_via = invite("z9hG4bKb5").replace("branch=z9hG4bKb5", "branch=z9hG4bKb5;;");
    only(&rig.feed(CALLER, &bad_via), CALLER, "400");
    assert!(rig.feed(CALLER, "garbage\r\n\r\n").is_empty());
    let short_body = invite("z9hG4bKl").replace("Content-Length: 0", "Content-Length: 99");
    only(&rig.feed(CALLER, &short_body), CALLER, "400");
    let unknown = invite("z9hG4bKu")
        .replacen("INVITE sip", "FOO sip", 1)
        .replace("1 INVITE", "1 FOO");
    only(&rig.feed(CALLER, &unknown), CALLER, "501");
    let register = invite("z9hG4bKr")
        .replacen("INVITE sip", "REGISTER sip", 1)
        .replace("1 INVITE", "1 REGISTER");
    let r = rig.feed(CALLER, &register);
    assert!(only(&r, CALLER, "405").header(HeaderName::Other).is_some());
    let options = invite("z9hG4bKo")
        .replacen("INVITE sip", "OPTIONS sip", 1)
        .replace("1 INVITE", "1 OPTIONS");
    only(&rig.feed(CALLER, &options), CALLER, "200");
    let version = invite("z9hG4bKv").replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia");
    only(&rig.feed(CALLER, &version), CALLER, "505");
    assert!(rig.control.events().is_empty());
}

#[test]
fn probing_marks_down_then_up() {
    let mut rig = Rig::with(
        &[],
        Probing {
            interval: Some(Duration::from_secs(10)),
            failures: 3,
            successes: 2,
        },
    );
    let mut last = None;
    let mut step = |rig: &mut Rig, secs: u32| {
        for _ in 0..secs {
            for (to, m) in rig.advance(Duration::from_secs(1)) {
                assert_eq!(to, "127.0.0.1:7009");
                if m.method() == Some("OPTIONS") {
                    last = Some(m);
                }
            }
        }
        last.clone().expect("an OPTIONS went out")
    };
    // Probes at 10, 20, 30, 40 s, none answered: the third failure (at 40 s) marks it down.
    step(&mut rig, 40);
    assert_eq!(rig.control.events(), [Event::Health(9, false)]);
    let opt = step(&mut rig, 0);
    rig.feed("127.0.0.1:7009", &answer(&opt, 200, "p"));
    assert_eq!(rig.control.events().len(), 1, "one success is not enough");
    let opt = step(&mut rig, 10);
    rig.feed("127.0.0.1:7009", &answer(&opt, 200, "p"));
    assert_eq!(
        rig.control.events(),
        [Event::Health(9, false), Event::Health(9, true)]
    );
}

/// `answer` with the target's own address as Contact.
fn answer_at(req: &Message, status: u16, to_tag: &str, contact: &str) -> String {
    answer(req, status, to_tag).replace("sip:agent@127.0.0.1:7002", &format!("sip:agent@{contact}"))
}

fn cancel_of(invite_text: &str) -> String {
    invite_text
        .replacen("INVITE sip", "CANCEL sip", 1)
        .replace(" INVITE\r\n", " CANCEL\r\n")
}

#[test]
fn answer_crossing_the_callers_cancel_is_acked_and_hung_up() {
    let mut rig = Rig::new(&[T1]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKrace"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer_at(&inv1, 180, "t1", T1));
    let sent = rig.feed(CALLER, &cancel_of(&invite("z9hG4bKrace")));
    only(&sent, CALLER, "487");
    only(&sent, T1, "CANCEL");

    // The target answered before it saw the CANCEL.
    let ok = answer_at(&inv1, 200, "t1", T1);
    let sent = rig.feed(T1, &ok);
    assert!(
        sent.iter().all(|(to, _)| to != CALLER),
        "the caller has its 487; no 2xx follows it: {sent:#?}"
    );
    let ack = only(&sent, T1, "ACK");
    assert_eq!(ack.uri(), Some(format!("sip:agent@{T1}").as_str()));
    assert_eq!(ack.to_tag(), Some("t1"));
    assert_eq!(ack.cseq(), Some((1, "ACK")));
    assert_ne!(
        ack.top_via().unwrap().branch,
        inv1.top_via().unwrap().branch
    );
    let bye = only(&sent, T1, "BYE").clone();
    assert_eq!(bye.to_tag(), Some("t1"));
    assert_eq!(bye.from_tag(), Some("caller1"));
    assert_eq!(bye.call_id(), Some("call-1"));
    assert_eq!(bye.cseq(), Some((2, "BYE")));

    // The 2xx retransmitted (our ACK was lost): ACKed again, still nothing upstream.
    let sent = rig.feed(T1, &ok);
    only(&sent, T1, "ACK");
    assert_eq!(sent.len(), 1, "{sent:#?}");
    // The BYE is retransmitted until answered.
    let sent = rig.advance(Duration::from_millis(500));
    assert!(sent
        .iter()
        .any(|(t, m)| t == T1 && m.method() == Some("BYE")));
    assert!(rig.feed(T1, &answer(&bye, 200, "t1")).is_empty());
    assert!(rig.core.own.is_empty(), "the BYE transaction is over");

    assert_eq!(
        rig.control.events(),
        [
            Event::Started("+15551230000".into()),
            Event::Ended(HungUpBy::Caller, false)
        ]
    );
    assert_eq!(rig.core.live().1, 0, "no dialog is kept");
    rig.advance(Duration::from_secs(40));
    assert_eq!(rig.core.live(), (0, 0));
}

#[test]
fn answer_before_any_provisional_still_loses_to_the_callers_cancel() {
    let mut rig = Rig::new(&[T1]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKrace2"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    // CANCEL before the target said anything: our CANCEL waits for a provisional.
    let sent = rig.feed(CALLER, &cancel_of(&invite("z9hG4bKrace2")));
    only(&sent, CALLER, "487");
    assert!(sent.iter().all(|(t, _)| t != T1));
    let sent = rig.feed(T1, &answer_at(&inv1, 200, "t1", T1));
    assert!(sent.iter().all(|(to, _)| to != CALLER), "{sent:#?}");
    only(&sent, T1, "ACK");
    only(&sent, T1, "BYE");
    assert_eq!(rig.core.live().1, 0);
}

/// Sets up a call answered by T1 (INVITE, 200, ACK through the proxy); the INVITE T1 got.
fn answered_call(rig: &mut Rig) -> Message {
    let sent = rig.feed(CALLER, &invite("z9hG4bKans"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    let sent = rig.feed(T1, &answer_at(&inv1, 200, "t1", T1));
    only(&sent, CALLER, "200");
    let sent = rig.feed(CALLER, &in_dialog("ACK", "z9hG4bKack", 1));
    only(&sent, T1, "ACK");
    inv1
}

/// A request of the caller's inside the dialog `answered_call` set up, routed through us.
fn in_dialog(method: &str, branch: &str, cseq: u32) -> String {
    format!(
        "{method} sip:agent@{T1} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch={branch}\r\n\
Route: <sip:{PROXY};lr>\r\nMax-Forwards: 70\r\nFrom: <sip:+15550001111@{CALLER}>;tag=caller1\r\n\
To: <sip:+15551230000@{PROXY}>;tag=t1\r\nCall-ID: call-1\r\nCSeq: {cseq} {method}\r\n\
Contact: <sip:c@{CALLER}>\r\nContent-Length: 0\r\n\r\n"
    )
}

#[test]
fn dialog_without_a_bye_is_forgotten_at_its_bound() {
    let hour = Duration::from_secs(3600);
    let mut rig = Rig::config(&[T1], |c| c.max_dialog = 2 * hour);
    answered_call(&mut rig);
    rig.advance(2 * hour - Duration::from_secs(1));
    assert_eq!(rig.core.live(), (0, 1), "the dialog lives until its bound");
    assert!(!rig
        .control
        .events()
        .contains(&Event::Ended(HungUpBy::System, true)));
    rig.advance(Duration::from_secs(1));
    assert_eq!(rig.core.live(), (0, 0));
    assert_eq!(
        rig.control.events()[1..],
        [
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::System, true)
        ]
    );
    // A BYE that turns up after all is still relayed, and ends nothing twice.
    let sent = rig.feed(CALLER, &in_dialog("BYE", "z9hG4bKlate", 2));
    let bye = only(&sent, T1, "BYE").clone();
    rig.feed(T1, &answer(&bye, 200, "t1"));
    assert_eq!(rig.control.events().len(), 3);
}

#[test]
fn dialogs_are_bounded_at_twelve_hours_by_default() {
    assert_eq!(crate::MAX_DIALOG, Duration::from_secs(12 * 3600));
    let mut rig = Rig::new(&[T1]);
    answered_call(&mut rig);
    rig.advance(Duration::from_secs(11 * 3600));
    assert_eq!(rig.core.live(), (0, 1));
    rig.advance(Duration::from_secs(3600));
    assert_eq!(rig.core.live(), (0, 0));
    assert_eq!(
        rig.control.events().last(),
        Some(&Event::Ended(HungUpBy::System, true))
    );
}

#[test]
fn a_dialog_ended_by_bye_is_not_ended_again_at_its_bound() {
    let mut rig = Rig::new(&[T1]);
    answered_call(&mut rig);
    let sent = rig.feed(CALLER, &in_dialog("BYE", "z9hG4bKbye2", 2));
    let bye = only(&sent, T1, "BYE").clone();
    rig.feed(T1, &answer(&bye, 200, "t1"));
    let sent = rig.advance(Duration::from_secs(13 * 3600));
    assert!(sent.is_empty(), "no BYE of ours: {sent:#?}");
    assert_eq!(
        rig.control.events()[1..],
        [
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
    assert!(rig.core.dialog_limits.is_empty());
}

#[test]
fn cancel_of_a_re_invite_is_answered_and_passed_on() {
    let mut rig = Rig::new(&[T1]);
    answered_call(&mut rig);
    let sent = rig.feed(CALLER, &in_dialog("INVITE", "z9hG4bKre1", 2));
    let reinv = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer(&reinv, 100, "t1"));

    let sent = rig.feed(CALLER, &in_dialog("CANCEL", "z9hG4bKre1", 2));
    let ok = only(&sent, CALLER, "200");
    assert_eq!(ok.cseq(), Some((2, "CANCEL")));
    let cancel = only(&sent, T1, "CANCEL").clone();
    assert_eq!(
        cancel.top_via().unwrap().branch,
        reinv.top_via().unwrap().branch,
        "the CANCEL matches the re-INVITE the target has"
    );
    assert_eq!(cancel.to_tag(), Some("t1"));
    // Retransmitted on UDP until the target answers it; its answer goes no further.
    let sent = rig.advance(Duration::from_millis(500));
    only(&sent, T1, "CANCEL");
    assert!(rig.feed(T1, &answer(&cancel, 200, "t1")).is_empty());
    assert!(rig.advance(Duration::from_secs(2)).is_empty());

    let sent = rig.feed(T1, &answer(&reinv, 487, "t1"));
    only(&sent, CALLER, "487");
    only(&sent, T1, "ACK");
    // The 487 again (our ACK was lost): ACKed again, relayed no more.
    let sent = rig.feed(T1, &answer(&reinv, 487, "t1"));
    only(&sent, T1, "ACK");
    assert_eq!(sent.len(), 1);
    // The caller's ACK for the 487 is hop by hop: it stops here.
    let sent = rig.feed(CALLER, &in_dialog("ACK", "z9hG4bKre1", 2));
    assert!(sent.is_empty(), "{sent:#?}");
    assert_eq!(rig.core.live(), (0, 1), "the dialog goes on");
    assert_eq!(
        rig.control.events()[1..],
        [Event::Answered(1, 200)],
        "a canceled re-INVITE ends nothing"
    );
}

#[test]
fn cancel_of_a_re_invite_waits_for_a_provisional() {
    let mut rig = Rig::new(&[T1]);
    answered_call(&mut rig);
    let sent = rig.feed(CALLER, &in_dialog("INVITE", "z9hG4bKre2", 2));
    let reinv = only(&sent, T1, "INVITE").clone();
    let sent = rig.feed(CALLER, &in_dialog("CANCEL", "z9hG4bKre2", 2));
    only(&sent, CALLER, "200");
    assert!(sent.iter().all(|(t, _)| t != T1), "{sent:#?}");
    let sent = rig.feed(T1, &answer(&reinv, 180, "t1"));
    only(&sent, CALLER, "180");
    only(&sent, T1, "CANCEL");
    // The target's 2xx won the race: relayed as any answer to a re-INVITE.
    let sent = rig.feed(T1, &answer(&reinv, 200, "t1"));
    only(&sent, CALLER, "200");
    // A CANCEL for a request nobody knows is still 481.
    let sent = rig.feed(CALLER, &in_dialog("CANCEL", "z9hG4bKnone", 3));
    only(&sent, CALLER, "481");
}

const PROXY_TCP: &str = "127.0.0.1:5061";

impl Rig {
    /// A rig listening on UDP and TCP.
    fn with_tcp(targets: &[&str]) -> Self {
        Self::config(targets, |c| c.tcp = Some(PROXY_TCP.parse().unwrap()))
    }

    /// Feeds a message that came over TCP.
    fn feed_tcp(&mut self, from: &str, text: &str) -> Vec<(String, Message)> {
        let input = Input::Message {
            data: Bytes::copy_from_slice(text.as_bytes()),
            from: Peer {
                addr: from.parse().unwrap(),
                transport: Transport::Tcp,
            },
        };
        self.core.handle(input, self.now, &mut self.out);
        self.drain_with_transport()
            .into_iter()
            .map(|(to, _, m)| (to, m))
            .collect()
    }

    /// Like `drain`, keeping the transport of each send.
    fn drain_with_transport(&mut self) -> Vec<(String, Transport, Message)> {
        self.out
            .drain(..)
            .map(|o| {
                let m = Message::parse(o.data, Framing::Datagram).expect("we send valid SIP");
                (o.to.addr.to_string(), o.to.transport, m)
            })
            .collect()
    }
}

fn values(m: &Message, name: HeaderName) -> Vec<String> {
    m.values(name).map(|r| m.text(r).to_string()).collect()
}

#[test]
fn udp_caller_and_tcp_target_are_double_record_routed() {
    let target = format!("{T1};transport=tcp");
    let mut rig = Rig::with_tcp(&[&target]);
    let input = Input::Message {
        data: Bytes::copy_from_slice(invite("z9hG4bKdrr").as_bytes()),
        from: Peer {
            addr: CALLER.parse().unwrap(),
            transport: Transport::Udp,
        },
    };
    rig.core.handle(input, rig.now, &mut rig.out);
    let sent = rig.drain_with_transport();
    let (_, transport, inv1) = sent
        .iter()
        .find(|(to, _, m)| to == T1 && m.method() == Some("INVITE"))
        .expect("the INVITE goes to the target");
    assert_eq!(
        *transport,
        Transport::Tcp,
        "the target URI says transport=tcp"
    );
    assert!(inv1
        .top_via()
        .unwrap()
        .transport
        .eq_ignore_ascii_case("TCP"));
    assert_eq!(
        values(inv1, HeaderName::RecordRoute),
        [
            format!("<sip:{PROXY_TCP};transport=tcp;lr>"),
            format!("<sip:{PROXY};lr>")
        ],
        "one Record-Route for each side, the target's on top"
    );
    let inv1 = inv1.clone();
    let ok = answer_at(&inv1, 200, "t1", &target);
    let sent = rig.feed_tcp(T1, &ok);
    only(&sent, CALLER, "200");

    // The caller's route set is the Record-Route reversed: our UDP side first, then our TCP
    // side. Both are ours: both are popped, and the request goes on over TCP.
    let bye = format!(
        "BYE sip:agent@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {CALLER};branch=z9hG4bKdrrbye\r\n\
Route: <sip:{PROXY};lr>, <sip:{PROXY_TCP};transport=tcp;lr>\r\nMax-Forwards: 70\r\n\
From: <sip:+15550001111@{CALLER}>;tag=caller1\r\nTo: <sip:+15551230000@{PROXY}>;tag=t1\r\n\
Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let input = Input::Message {
        data: Bytes::copy_from_slice(bye.as_bytes()),
        from: Peer {
            addr: CALLER.parse().unwrap(),
            transport: Transport::Udp,
        },
    };
    rig.core.handle(input, rig.now, &mut rig.out);
    let sent = rig.drain_with_transport();
    let (_, transport, fwd) = sent
        .iter()
        .find(|(to, _, m)| to == T1 && m.method() == Some("BYE"))
        .expect("the BYE goes to the target");
    assert_eq!(*transport, Transport::Tcp);
    assert!(
        fwd.header(HeaderName::Route).is_none(),
        "both our Routes are popped: {:?}",
        values(fwd, HeaderName::Route)
    );
    assert_eq!(fwd.values(HeaderName::Via).count(), 2);
}

#[test]
fn tcp_target_hangs_up_a_udp_caller_through_both_record_routes() {
    let target = format!("{T1};transport=tcp");
    let mut rig = Rig::with_tcp(&[&target]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKdrr2"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed_tcp(T1, &answer_at(&inv1, 200, "t1", &target));
    // The target's route set is the Record-Route as it came: our TCP side, then our UDP side.
    let bye = format!(
        "BYE sip:c@{CALLER} SIP/2.0\r\nVia: SIP/2.0/TCP {T1};branch=z9hG4bKtbye\r\n\
Route: <sip:{PROXY_TCP};transport=tcp;lr>\r\nRoute: <sip:{PROXY};lr>\r\nMax-Forwards: 70\r\n\
From: <sip:+15551230000@{PROXY}>;tag=t1\r\nTo: <sip:+15550001111@{CALLER}>;tag=caller1\r\n\
Call-ID: call-1\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    let sent = rig.feed_tcp(T1, &bye);
    let fwd = only(&sent, CALLER, "BYE").clone();
    assert!(fwd.header(HeaderName::Route).is_none());
    assert!(fwd.top_via().unwrap().transport.eq_ignore_ascii_case("UDP"));
    let sent = rig.feed(CALLER, &answer(&fwd, 200, "caller1"));
    only(&sent, T1, "200");
    assert_eq!(
        rig.control.events()[1..],
        [
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Target, true)
        ]
    );
}

#[test]
fn one_record_route_when_both_legs_share_a_transport() {
    let mut rig = Rig::with_tcp(&[T1]);
    let sent = rig.feed(CALLER, &invite("z9hG4bKsrr"));
    let inv1 = only(&sent, T1, "INVITE");
    assert_eq!(
        values(inv1, HeaderName::RecordRoute),
        [format!("<sip:{PROXY};lr>")]
    );
}

#[test]
fn requests_are_validated_before_they_are_routed() {
    let mut rig = Rig::new(&[T1]);
    let status = |rig: &mut Rig, text: &str| -> Option<u16> {
        let sent = rig.feed(CALLER, text);
        assert!(
            sent.iter().all(|(t, _)| t != T1),
            "nothing goes on: {sent:#?}"
        );
        assert!(sent.len() <= 1, "{sent:#?}");
        sent.first().and_then(|(_, m)| m.status())
    };
    let scheme = invite("z9hG4bKv1").replacen("INVITE sip:", "INVITE im:", 1);
    assert_eq!(status(&mut rig, &scheme), Some(416));
    let ext = invite("z9hG4bKv2").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nProxy-Require: foo, bar\r\n",
    );
    let sent = rig.feed(CALLER, &ext);
    let r = only(&sent, CALLER, "420");
    let unsupported = r
        .headers
        .iter()
        .map(|h| r.text(h.line.clone()))
        .find(|l| l.starts_with("Unsupported:"));
    assert_eq!(unsupported, Some("Unsupported: foo, bar\r\n"));
    let twice = invite("z9hG4bKv3").replace("Call-ID: call-1\r\n", "Call-ID: a\r\nCall-ID: b\r\n");
    assert_eq!(status(&mut rig, &twice), Some(400));
    let version = invite("z9hG4bKv4").replace("SIP/2.0", "SIP/3.0");
    assert_eq!(status(&mut rig, &version), Some(505));
    let brackets = invite("z9hG4bKv5").replacen(
        "INVITE sip:+15551230000@127.0.0.1:5060 SIP/2.0",
        "INVITE <sip:+15551230000@127.0.0.1:5060> SIP/2.0",
        1,
    );
    let sent = rig.feed(CALLER, &brackets);
    let r = only(&sent, CALLER, "400");
    assert_eq!(r.cseq(), Some((1, "INVITE")));
    let spaced = invite("z9hG4bKv6").replacen("SIP/2.0\r\n", "SIP/2.0 \r\n", 1);
    assert_eq!(status(&mut rig, &spaced), Some(400));
    assert_eq!(status(&mut rig, &spaced.replace("INVITE", "ACK")), None);
    assert!(rig.control.events().is_empty());
}

/// An edge proxy between the caller and us, and one between us and the target; both
/// record-route.
const EDGE: &str = "127.0.0.1:6500";
const FAR: &str = "127.0.0.1:7500";

/// Our own client transaction's branch: one Via, ours, kind `b`.
fn assert_our_bye(rig: &Rig, bye: &Message) {
    assert_eq!(bye.values(HeaderName::Via).count(), 1, "only our Via");
    let branch = bye.top_via().and_then(|v| v.branch).unwrap_or_default();
    assert!(
        matches!(rig.core.our_branch(branch), Some(('b', _))),
        "our branch: {branch}"
    );
    assert_eq!(bye.max_forwards(), Some(Ok(70)));
}

#[test]
fn dialog_at_its_limit_is_hung_up_on_both_sides() {
    hang_up_both_sides_at_the_limit("");
}

#[test]
fn dialog_whose_messages_are_too_large_to_keep_whole_is_hung_up_alike() {
    // Session descriptions too large for the dialog to keep its messages whole: it keeps the
    // values it needs from them instead.
    let body = "a=rtpmap:0 PCMU/8000\r\n".repeat(MAX_KEPT_MESSAGE / 20);
    assert!(body.len() > MAX_KEPT_MESSAGE);
    hang_up_both_sides_at_the_limit(&body);
}

/// A dialog through an edge proxy and a far proxy, with an in-dialog request from each side
/// (one a target refresh), reaches its limit; the INVITE and its 2xx carry `body`.
fn hang_up_both_sides_at_the_limit(body: &str) {
    let with_body = |msg: String| {
        msg.replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: {}\r\n\r\n{body}", body.len()),
        )
    };
    let hour = Duration::from_secs(3600);
    let mut rig = Rig::config(&[T1], |c| c.max_dialog = 2 * hour);
    // The caller's INVITE comes through the edge proxy, which record-routed it.
    let inv = with_body(invite("z9hG4bKlim").replace(
        "Max-Forwards: 70\r\n",
        &format!("Record-Route: <sip:{EDGE};lr>\r\nMax-Forwards: 70\r\n"),
    ));
    let sent = rig.feed(EDGE, &inv);
    let inv1 = only(&sent, T1, "INVITE").clone();
    // The target answers through the far proxy, which record-routed above us.
    let ok = with_body(answer_at(&inv1, 200, "t1", T1).replacen(
        "Record-Route:",
        &format!("Record-Route: <sip:{FAR};lr>\r\nRecord-Route:"),
        1,
    ));
    let sent = rig.feed(FAR, &ok);
    only(&sent, EDGE, "200");

    // The caller sends an INFO (CSeq 3); the target re-INVITEs (CSeq 5) from a new Contact.
    let sent = rig.feed(EDGE, &in_dialog("INFO", "z9hG4bKinfo", 3));
    let info = only(&sent, T1, "INFO").clone();
    rig.feed(T1, &answer(&info, 200, "t1"));
    let reinvite = format!(
        "INVITE sip:c@{CALLER} SIP/2.0\r\nVia: SIP/2.0/UDP {FAR};branch=z9hG4bKfar1\r\n\
Via: SIP/2.0/UDP {T1};branch=z9hG4bKtre\r\nRoute: <sip:{PROXY};lr>, <sip:{EDGE};lr>\r\n\
Max-Forwards: 69\r\nFrom: <sip:+15551230000@{PROXY}>;tag=t1\r\n\
To: <sip:+15550001111@{CALLER}>;tag=caller1\r\nCall-ID: call-1\r\nCSeq: 5 INVITE\r\n\
Contact: <sip:agent@127.0.0.1:7003>\r\nContent-Length: 0\r\n\r\n"
    );
    let sent = rig.feed(FAR, &reinvite);
    let fwd = only(&sent, EDGE, "INVITE").clone();
    // The caller answers from the Contact it had: its remote target stays.
    let ok = answer(&fwd, 200, "caller1")
        .replace("sip:agent@127.0.0.1:7002", &format!("sip:c@{CALLER}"));
    only(&rig.feed(EDGE, &ok), FAR, "200");

    let sent = rig.advance(2 * hour);
    assert_eq!(sent.len(), 2, "a BYE to each side: {sent:#?}");

    // Towards the target: through the far proxy, to its refreshed Contact, as the caller.
    let to_target = only(&sent, FAR, "BYE").clone();
    assert_eq!(to_target.uri(), Some("sip:agent@127.0.0.1:7003"));
    assert_eq!(
        values(&to_target, HeaderName::Route),
        [format!("<sip:{FAR};lr>")]
    );
    assert_eq!(to_target.from_tag(), Some("caller1"));
    assert_eq!(to_target.to_tag(), Some("t1"));
    assert_eq!(to_target.call_id(), Some("call-1"));
    assert_eq!(
        to_target.cseq(),
        Some((4, "BYE")),
        "above the caller's INFO"
    );
    assert_our_bye(&rig, &to_target);

    // Towards the caller: through the edge proxy, to the caller's Contact, as the target.
    let to_caller = only(&sent, EDGE, "BYE").clone();
    assert_eq!(to_caller.uri(), Some(format!("sip:c@{CALLER}").as_str()));
    assert_eq!(
        values(&to_caller, HeaderName::Route),
        [format!("<sip:{EDGE};lr>")]
    );
    assert_eq!(
        to_caller.value(HeaderName::From),
        Some(format!("<sip:+15551230000@{PROXY}>;tag=t1").as_str())
    );
    assert_eq!(
        to_caller.value(HeaderName::To),
        Some(format!("<sip:+15550001111@{CALLER}>;tag=caller1").as_str())
    );
    assert_eq!(to_caller.call_id(), Some("call-1"));
    assert_eq!(
        to_caller.cseq(),
        Some((6, "BYE")),
        "above the target's re-INVITE"
    );
    assert_our_bye(&rig, &to_caller);
    assert_ne!(
        to_caller.top_via().unwrap().branch,
        to_target.top_via().unwrap().branch
    );

    // Their 200s stop at the proxy and end the transactions.
    assert!(rig.feed(FAR, &answer(&to_target, 200, "t1")).is_empty());
    assert!(rig
        .feed(EDGE, &answer(&to_caller, 200, "caller1"))
        .is_empty());
    assert!(rig.core.own.is_empty());
    assert!(rig.advance(Duration::from_secs(40)).is_empty());
    assert_eq!(rig.core.live(), (0, 0));
    assert_eq!(
        rig.control.events()[1..],
        [
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::System, true)
        ],
        "the call ends once"
    );
}

#[test]
fn dialog_limit_byes_are_retransmitted_and_a_refusal_or_silence_is_fine() {
    let mut rig = Rig::config(&[T1], |c| c.max_dialog = Duration::from_secs(60));
    answered_call(&mut rig);
    let sent = rig.advance(Duration::from_secs(60));
    let to_target = only(&sent, T1, "BYE").clone();
    let to_caller = only(&sent, CALLER, "BYE").clone();
    assert!(to_target.header(HeaderName::Route).is_none());
    assert!(to_caller.header(HeaderName::Route).is_none());
    assert_eq!(to_target.uri(), Some(format!("sip:agent@{T1}").as_str()));
    assert_eq!(to_target.cseq(), Some((2, "BYE")), "above the INVITE's");
    assert_eq!(
        to_caller.cseq(),
        Some((1, "BYE")),
        "the target sent nothing"
    );

    // Timer E on UDP: both are sent again until answered.
    let sent = rig.advance(Duration::from_millis(500));
    only(&sent, T1, "BYE");
    only(&sent, CALLER, "BYE");
    // The target is gone already: 481, absorbed.
    let sent = rig.feed(T1, &answer(&to_target, 481, "t1"));
    assert!(sent.is_empty(), "{sent:#?}");
    // A provisional from the caller's side stops nothing; it never answers a final.
    assert!(rig.feed(CALLER, &answer(&to_caller, 100, "")).is_empty());
    let mut to_caller_again = 0;
    for _ in 0..40 {
        let sent = rig.advance(Duration::from_secs(1));
        assert!(sent.iter().all(|(t, _)| t == CALLER), "{sent:#?}");
        to_caller_again += sent.len();
    }
    assert!(
        to_caller_again >= 7,
        "retransmitted up to T2: {to_caller_again}"
    );
    assert!(rig.core.own.is_empty(), "Timer F ended it");
    assert!(rig.advance(Duration::from_secs(10)).is_empty());

    // A BYE from the caller after ours: passed on as any request of an unknown dialog, and
    // it ends nothing twice.
    let sent = rig.feed(CALLER, &in_dialog("BYE", "z9hG4bKafter", 2));
    let late = only(&sent, T1, "BYE").clone();
    only(&rig.feed(T1, &answer(&late, 481, "t1")), CALLER, "481");
    assert_eq!(
        rig.control.events()[1..],
        [
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::System, true)
        ]
    );
}

#[test]
fn no_bye_of_ours_when_one_is_in_flight_at_the_limit() {
    let mut rig = Rig::config(&[T1], |c| c.max_dialog = Duration::from_secs(10));
    answered_call(&mut rig);
    rig.advance(Duration::from_secs(9));
    let sent = rig.feed(CALLER, &in_dialog("BYE", "z9hG4bKslow", 2));
    let bye = only(&sent, T1, "BYE").clone();
    // The target has not answered the caller's BYE when the limit comes.
    let sent = rig.advance(Duration::from_secs(1));
    assert!(
        sent.iter()
            .all(|(t, m)| t == T1 && m.values(HeaderName::Via).count() == 2),
        "only the relayed BYE, retransmitted: {sent:#?}"
    );
    only(&rig.feed(T1, &answer(&bye, 200, "t1")), CALLER, "200");
    assert_eq!(
        rig.control.events()[1..],
        [
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

#[test]
fn dialog_limit_byes_go_out_on_each_sides_transport() {
    let target = format!("{T1};transport=tcp");
    let mut rig = Rig::config(&[&target], |c| {
        c.tcp = Some(PROXY_TCP.parse().unwrap());
        c.max_dialog = Duration::from_secs(30);
    });
    let sent = rig.feed(CALLER, &invite("z9hG4bKlimtcp"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    only(
        &rig.feed_tcp(T1, &answer_at(&inv1, 200, "t1", &target)),
        CALLER,
        "200",
    );
    rig.now += Duration::from_secs(30);
    rig.core.poll_timers(rig.now, &mut rig.out);
    let sent = rig.drain_with_transport();
    assert_eq!(sent.len(), 2, "{sent:#?}");
    for (to, transport, bye) in &sent {
        let via = bye.top_via().unwrap();
        let (want, ours) = if to == T1 {
            (Transport::Tcp, PROXY_TCP)
        } else {
            (Transport::Udp, PROXY)
        };
        assert_eq!(*transport, want, "to {to}");
        assert!(via.transport.eq_ignore_ascii_case(want.as_str()));
        assert_eq!(format!("{}:{}", via.host, via.port.unwrap_or(0)), ours);
        assert!(
            bye.header(HeaderName::Route).is_none(),
            "both our Record-Routes are ours: {:?}",
            values(bye, HeaderName::Route)
        );
    }
}

#[test]
fn a_dialog_too_large_to_keep_is_only_forgotten() {
    let mut rig = Rig::config(&[T1], |c| c.max_dialog = Duration::from_secs(30));
    let long = "x".repeat(MAX_KEPT + 1);
    let inv = invite("z9hG4bKbig").replace("Contact: <sip:c@", &format!("Contact: <sip:{long}@"));
    let sent = rig.feed(CALLER, &inv);
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer_at(&inv1, 200, "t1", T1));
    assert!(rig.advance(Duration::from_secs(30)).is_empty());
    assert_eq!(rig.core.live(), (0, 0));
    assert_eq!(
        rig.control.events().last(),
        Some(&Event::Ended(HungUpBy::System, true))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// Whatever byte an INVITE or its 2xx carries where, the dialog limit never panics, sends
    /// only messages that parse, and ends the call at most once.
    #[test]
    fn odd_dialogs_are_hung_up_or_forgotten_safely(
        in_invite in proptest::prelude::any::<bool>(),
        at in 0usize..400,
        byte in proptest::prelude::any::<u8>(),
    ) {
        let mut rig = Rig::config(&[T1], |c| c.max_dialog = Duration::from_secs(30));
        let mut inv = invite("z9hG4bKodd").replace(
            "Max-Forwards: 70\r\n",
            &format!("Record-Route: <sip:{EDGE};lr>\r\nMax-Forwards: 70\r\n"),
        ).into_bytes();
        if in_invite && at < inv.len() {
            inv[at] = byte;
        }
        let input = Input::Message {
            data: Bytes::from(inv),
            from: Peer { addr: EDGE.parse().unwrap(), transport: Transport::Udp },
        };
        rig.core.handle(input, rig.now, &mut rig.out);
        let sent = rig.drain();
        if let Some((_, inv1)) = sent.iter().find(|(t, m)| t == T1 && m.method() == Some("INVITE")) {
            let mut ok = answer_at(inv1, 200, "t1", T1).into_bytes();
            if !in_invite && at < ok.len() {
                ok[at] = byte;
            }
            let input = Input::Message {
                data: Bytes::from(ok),
                from: Peer { addr: T1.parse().unwrap(), transport: Transport::Udp },
            };
            rig.core.handle(input, rig.now, &mut rig.out);
            rig.drain();
        }
        for _ in 0..80 {
            rig.advance(Duration::from_secs(1));
        }
        let ended = rig
            .control
            .events()
            .iter()
            .filter(|e| matches!(e, Event::Ended(..)))
            .count();
        proptest::prop_assert!(ended <= 1);
        proptest::prop_assert_eq!(rig.core.live(), (0, 0));
    }
}

#[test]
fn a_contact_that_is_no_uri_is_not_a_request_uri() {
    let mut rig = Rig::config(&[T1], |c| c.max_dialog = Duration::from_secs(30));
    let sent = rig.feed(CALLER, &invite("z9hG4bKbadc"));
    let inv1 = only(&sent, T1, "INVITE").clone();
    let ok = answer_at(&inv1, 200, "t1", T1).replace("Contact: <sip:", "Contact: !sip:");
    rig.feed(T1, &ok);
    let sent = rig.advance(Duration::from_secs(30));
    // `drain` parsed what was sent: the BYE goes to the URI the INVITE went to.
    let bye = only(&sent, T1, "BYE");
    assert_eq!(bye.uri(), Some(format!("sip:agent@{T1}").as_str()));
    only(&sent, CALLER, "BYE");
}

/// An INVITE from an RFC 2543 client: its Via has no branch.
fn invite_2543(call_id: &str) -> String {
    invite("x")
        .replace(";branch=x", "")
        .replace("Call-ID: call-1", &format!("Call-ID: {call_id}"))
}

#[test]
fn rfc_2543_requests_are_matched_by_their_fields() {
    // The control hands out one attempt per entry: one for each call.
    let mut rig = Rig::new(&[T1, T1]);
    let sent = rig.feed(CALLER, &invite_2543("old-1"));
    only(&sent, CALLER, "100");
    let inv1 = only(&sent, T1, "INVITE").clone();
    // Its retransmission is the same transaction: the 100 again, nothing onward.
    let sent = rig.feed(CALLER, &invite_2543("old-1"));
    only(&sent, CALLER, "100");
    assert!(sent.iter().all(|(t, _)| t != T1), "{sent:#?}");
    // Another branchless call from the same client is a transaction of its own.
    let sent = rig.feed(CALLER, &invite_2543("old-2"));
    only(&sent, T1, "INVITE");
    assert_eq!(rig.core.live().0, 2);

    // The CANCEL matches the first INVITE by its fields.
    rig.feed(T1, &answer(&inv1, 180, "t1"));
    let sent = rig.feed(CALLER, &cancel_of(&invite_2543("old-1")));
    assert_eq!(only(&sent, CALLER, "200").cseq(), Some((1, "CANCEL")));
    let term = only(&sent, CALLER, "487").clone();
    assert!(term.top_via().unwrap().branch.is_none(), "the caller's Via");
    only(&sent, T1, "CANCEL");
    rig.feed(T1, &answer(&inv1, 487, "t1"));
    // The ACK for the 487 ends the transaction: no more retransmissions of it.
    let ack = cancel_of(&invite_2543("old-1"))
        .replacen("CANCEL sip", "ACK sip", 1)
        .replace(" CANCEL\r\n", " ACK\r\n")
        .replace(
            &format!("To: <sip:+15551230000@{PROXY}>\r\n"),
            &format!("To: {}\r\n", term.value(HeaderName::To).unwrap()),
        );
    assert!(rig.feed(CALLER, &ack).is_empty());
    let later = rig.advance(Duration::from_secs(2));
    assert!(
        later
            .iter()
            .all(|(t, m)| !(t == CALLER && m.status() == Some(487))),
        "{later:#?}"
    );
}

#[test]
fn a_2xx_to_a_re_invite_moves_its_sender_for_the_bye_at_the_limit() {
    let hour = Duration::from_secs(3600);
    let mut rig = Rig::config(&[T1], |c| c.max_dialog = 2 * hour);
    answered_call(&mut rig);
    // The caller re-INVITEs; the target answers from a new Contact.
    let sent = rig.feed(CALLER, &in_dialog("INVITE", "z9hG4bKre", 2));
    let fwd = only(&sent, T1, "INVITE").clone();
    let sent = rig.feed(T1, &answer_at(&fwd, 200, "t1", "127.0.0.1:7004"));
    only(&sent, CALLER, "200");
    let sent = rig.advance(2 * hour);
    let bye = only(&sent, "127.0.0.1:7004", "BYE");
    assert_eq!(bye.uri(), Some("sip:agent@127.0.0.1:7004"));
    assert_eq!(bye.cseq(), Some((3, "BYE")), "above the caller's re-INVITE");
    only(&sent, CALLER, "BYE");
}

/// A decision to ring `target` at `at` for 20 s.
fn ring(target: i64, at: &str) -> Hop {
    Hop::Target {
        target,
        uri: callopt_domain::SipUri::parse("t", &format!("sip:agent@{at}")).unwrap(),
        ring_timeout: Duration::from_secs(20),
    }
}

#[test]
fn a_pending_decision_goes_on_when_it_arrives() {
    let mut rig = Rig::new(&[T1, T2]);
    rig.control.defer.store(true, Ordering::SeqCst);
    let sent = rig.feed(CALLER, &invite("z9hG4bKp1"));
    assert_eq!(
        sent.len(),
        1,
        "only the 100 while the decision is pending: {sent:#?}"
    );
    only(&sent, CALLER, "100");
    // A decision for a key nobody waits on changes nothing.
    assert!(rig.decided(7, rig.control.hop()).is_empty());
    let sent = rig.decided(1, ring(1, T1));
    let inv1 = only(&sent, T1, "INVITE").clone();
    // The failover decision is pending too; then the second target answers.
    let sent = rig.feed(T1, &answer(&inv1, 486, "t1"));
    only(&sent, T1, "ACK");
    assert!(sent.iter().all(|(t, _)| t == T1), "{sent:#?}");
    let sent = rig.decided(1, ring(2, T2));
    let inv2 = only(&sent, T2, "INVITE").clone();
    only(
        &rig.feed(T2, &answer_at(&inv2, 200, "t2", T2)),
        CALLER,
        "200",
    );
    assert_eq!(
        rig.control.events()[1..],
        [
            Event::Failed(1, AttemptOutcome::Busy, Some(486)),
            Event::Answered(2, 200)
        ]
    );
}

#[test]
fn a_caller_cancel_or_the_routing_timeout_ends_a_pending_call() {
    let mut rig = Rig::new(&[T1, T1]);
    rig.control.defer.store(true, Ordering::SeqCst);
    rig.feed(CALLER, &invite("z9hG4bKp2"));
    let sent = rig.feed(CALLER, &cancel_of(&invite("z9hG4bKp2")));
    only(&sent, CALLER, "487");
    // The decision arrives late: dropped, nothing goes to the target.
    assert!(rig.decided(1, rig.control.hop()).is_empty());
    assert_eq!(
        rig.control.events()[1..],
        [Event::Ended(HungUpBy::Caller, false)]
    );

    let mut rig = Rig::new(&[T1]);
    rig.control.defer.store(true, Ordering::SeqCst);
    rig.feed(CALLER, &invite("z9hG4bKp3"));
    assert!(rig
        .advance(crate::ROUTING_TIMEOUT - Duration::from_millis(1))
        .is_empty());
    let sent = rig.advance(Duration::from_millis(1));
    let refused = only(&sent, CALLER, "503");
    assert!(refused
        .text(0..refused.headers_start)
        .contains("Routing Timed Out"));
    assert!(rig.decided(1, rig.control.hop()).is_empty());
    assert_eq!(
        rig.control.events()[1..],
        [Event::Ended(HungUpBy::System, false)]
    );
}

#[test]
fn the_routing_timeout_of_an_earlier_wait_does_not_end_a_later_one() {
    let mut rig = Rig::new(&[T1, T2]);
    rig.control.defer.store(true, Ordering::SeqCst);
    rig.feed(CALLER, &invite("z9hG4bKp4"));
    // The first decision comes after 5 s; the target is busy; the failover waits again.
    rig.advance(Duration::from_secs(5));
    let sent = rig.decided(1, ring(1, T1));
    let inv1 = only(&sent, T1, "INVITE").clone();
    rig.feed(T1, &answer(&inv1, 486, "t1"));
    // The first wait's timer comes due 3 s into the second wait: the call goes on waiting.
    let sent = rig.advance(Duration::from_secs(4));
    assert!(sent.iter().all(|(to, _)| to != CALLER), "{sent:#?}");
    let sent = rig.decided(1, ring(2, T2));
    only(&sent, T2, "INVITE");
}

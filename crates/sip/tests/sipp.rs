//! End-to-end tests on loopback: real sipp processes as the caller and as targets, the router
//! between them, and a static CallControl that records what the router told it.

use callopt_domain::{HungUpBy, SipUri};
use callopt_sip::{AttemptOutcome, CallControl, Hop, InboundCall, Probing, SipConfig, Timers};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{free_port, Sipp};

const CALLED: &str = "+15551230000";

/// What the control was told.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Started,
    Failed(i64, AttemptOutcome, Option<u16>),
    Answered(i64, u16),
    Ended(HungUpBy, bool),
    Health(i64, bool),
}

/// One call's place in the target list.
#[derive(Default)]
struct CallState {
    /// Index of the next target to try.
    next: usize,
    /// The target ringing or talking, counted in `live`.
    current: Option<i64>,
}

#[derive(Default)]
struct State {
    calls: HashMap<u64, CallState>,
    live: HashMap<i64, usize>,
    max_live: HashMap<i64, usize>,
    events: Vec<Event>,
    next_key: u64,
}

/// Tries targets in order, skipping those at their cap; rejects with 480 when none is left.
struct TestControl {
    /// (id, URI, ring timeout).
    targets: Vec<(i64, SipUri, Duration)>,
    /// Live calls allowed per target.
    cap: usize,
    state: Mutex<State>,
    /// Hand every decision to the router from another thread, as a control waiting on a
    /// shared store would.
    defer: std::sync::atomic::AtomicBool,
    /// Where deferred decisions go (attached by the router).
    hops: Mutex<Option<callopt_sip::Hops>>,
}

impl TestControl {
    fn new(targets: &[(u16, Duration)], cap: usize) -> Arc<Self> {
        let uris: Vec<(String, Duration)> = targets
            .iter()
            .map(|(port, ring)| (format!("sip:agent@127.0.0.1:{port}"), *ring))
            .collect();
        Self::with_uris(&uris, cap)
    }

    /// Targets given by URI (to name a transport).
    fn with_uris(targets: &[(String, Duration)], cap: usize) -> Arc<Self> {
        Arc::new(Self {
            targets: targets
                .iter()
                .enumerate()
                .map(|(i, (uri, ring))| (i as i64 + 1, SipUri::parse("t", uri).unwrap(), *ring))
                .collect(),
            cap,
            state: Mutex::new(State::default()),
            defer: Default::default(),
            hops: Mutex::new(None),
        })
    }

    fn next_hop(&self, s: &mut State, key: u64) -> Hop {
        let call = s.calls.entry(key).or_default();
        while let Some((id, uri, ring)) = self.targets.get(call.next) {
            call.next += 1;
            let live = s.live.entry(*id).or_default();
            if *live < self.cap {
                *live += 1;
                let max = s.max_live.entry(*id).or_default();
                *max = (*max).max(*live);
                call.current = Some(*id);
                return Hop::Target {
                    target: *id,
                    uri: uri.clone(),
                    ring_timeout: *ring,
                };
            }
        }
        call.current = None;
        Hop::Reject {
            status: 480,
            reason: "Temporarily Unavailable".into(),
        }
    }

    /// `hop` as it is, or `Pending` with `hop` sent from another thread when deferring.
    fn deliver(&self, key: u64, hop: Hop) -> Hop {
        if !self.defer.load(std::sync::atomic::Ordering::SeqCst) {
            return hop;
        }
        let hops = self
            .hops
            .lock()
            .unwrap()
            .clone()
            .expect("the router attached");
        std::thread::spawn(move || assert!(hops.send(key, hop)));
        Hop::Pending
    }

    fn release(s: &mut State, key: u64) {
        if let Some(t) = s.calls.get_mut(&key).and_then(|c| c.current.take()) {
            *s.live.entry(t).or_default() -= 1;
        }
    }

    fn events(&self) -> Vec<Event> {
        self.state.lock().unwrap().events.clone()
    }

    /// Polls until `pred` holds for the events, or panics at the deadline.
    fn wait_for(&self, what: &str, pred: impl Fn(&[Event]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !pred(&self.events()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl CallControl for TestControl {
    fn call_started(&self, call: &InboundCall<'_>) -> (Option<u64>, Hop) {
        assert_eq!(call.called, CALLED);
        let mut s = self.state.lock().unwrap();
        s.next_key += 1;
        let key = s.next_key;
        s.events.push(Event::Started);
        let hop = self.next_hop(&mut s, key);
        (Some(key), self.deliver(key, hop))
    }

    fn attempt_failed(&self, key: u64, target: i64, o: AttemptOutcome, st: Option<u16>) -> Hop {
        let mut s = self.state.lock().unwrap();
        s.events.push(Event::Failed(target, o, st));
        Self::release(&mut s, key);
        let hop = self.next_hop(&mut s, key);
        self.deliver(key, hop)
    }

    fn call_answered(&self, _: u64, target: i64, status: u16) {
        self.state
            .lock()
            .unwrap()
            .events
            .push(Event::Answered(target, status));
    }

    fn call_ended(&self, key: u64, by: HungUpBy, answered: bool) {
        let mut s = self.state.lock().unwrap();
        s.events.push(Event::Ended(by, answered));
        Self::release(&mut s, key);
    }

    fn probe_targets(&self) -> Vec<(i64, SipUri)> {
        self.targets
            .iter()
            .map(|(id, uri, _)| (*id, uri.clone()))
            .collect()
    }

    fn target_health(&self, target: i64, up: bool) {
        self.state
            .lock()
            .unwrap()
            .events
            .push(Event::Health(target, up));
    }

    fn attach(&self, hops: callopt_sip::Hops) {
        *self.hops.lock().unwrap() = Some(hops);
    }
}

/// The router on 127.0.0.1, in its own thread and runtime.
struct Proxy {
    udp: SocketAddr,
    tcp: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(control: Arc<TestControl>, probing: Probing) -> Self {
        Self::start_with(control, probing, callopt_sip::MAX_DIALOG)
    }

    /// A router whose dialogs last at most `max_dialog`.
    fn start_with(control: Arc<TestControl>, probing: Probing, max_dialog: Duration) -> Self {
        Self::start_config(control, move |c| {
            c.probing = probing;
            c.max_dialog = max_dialog;
        })
    }

    /// A router whose configuration `change` adjusts (test timers, no DNS by default).
    fn start_config(
        control: Arc<TestControl>,
        change: impl FnOnce(&mut SipConfig) + Send + 'static,
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_addr = udp.local_addr().unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        udp.set_nonblocking(true).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut config = SipConfig::new(tokio::net::UdpSocket::from_std(udp).unwrap());
                config.tcp = Some(tokio::net::TcpListener::from_std(tcp).unwrap());
                config.timers = Timers {
                    t1: Duration::from_millis(50),
                    t2: Duration::from_millis(400),
                    t4: Duration::from_millis(500),
                    linger: None,
                };
                config.dns = None;
                change(&mut config);
                callopt_sip::serve(config, control, stopped).await.unwrap();
            });
        });
        Self {
            udp: udp_addr,
            tcp: tcp_addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn no_probing() -> Probing {
    Probing {
        interval: None,
        ..Probing::default()
    }
}

/// Runs the caller scenario against the proxy.
fn caller(dir: &Path, proxy: SocketAddr, scenario_file: &str, args: &[&str]) -> Sipp {
    let target = proxy.to_string();
    let mut all = vec![target.as_str(), "-s", CALLED];
    all.extend_from_slice(args);
    // The caller needs no readiness check: it starts the exchange.
    Sipp::spawn(dir, scenario_file, free_port(), &all)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn answered_call_with_ack_and_bye_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sipp::start(dir.path(), "uas.xml", &["-m", "1"]);
    let control = TestControl::new(&[(target.port, secs(5))], 10);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.udp, "uac.xml", &["-m", "1"]).expect_success();
    target.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 3);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

#[test]
fn answered_call_from_a_tcp_caller() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sipp::start(dir.path(), "uas.xml", &["-m", "1"]);
    let control = TestControl::new(&[(target.port, secs(5))], 10);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.tcp, "uac.xml", &["-m", "1", "-t", "t1"]).expect_success();
    target.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 3);
    assert_eq!(
        control.events()[1..],
        [
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

/// A target reached over TCP, for calls from a UDP caller (double record-routing).
fn tcp_target(port: u16) -> Arc<TestControl> {
    TestControl::with_uris(
        &[(format!("sip:agent@127.0.0.1:{port};transport=tcp"), secs(5))],
        10,
    )
}

#[test]
fn udp_caller_hangs_up_a_tcp_target_through_both_record_routes() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sipp::start(dir.path(), "uas.xml", &["-m", "1", "-t", "t1"]);
    let control = tcp_target(target.port);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.udp, "uac.xml", &["-m", "1"]).expect_success();
    target.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 3);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

#[test]
fn tcp_target_hangs_up_a_udp_caller_through_both_record_routes() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sipp::start(dir.path(), "uas_hangs_up.xml", &["-m", "1", "-t", "t1"]);
    let control = tcp_target(target.port);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.udp, "uac_hung_up.xml", &["-m", "1"]).expect_success();
    target.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 3);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Target, true)
        ]
    );
}

/// Runs a call nobody hangs up through a router whose dialogs last 1.5 s: both sides must get
/// the proxy's BYE (their scenarios check its Request-URI and tags) and answer it.
fn hung_up_by_the_proxy(control: impl FnOnce(u16) -> Arc<TestControl>, target_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let target = Sipp::start(dir.path(), "uas_bye_from_proxy.xml", target_args);
    let control = control(target.port);
    let limit = Duration::from_millis(1500);
    let proxy = Proxy::start_with(control.clone(), no_probing(), limit);
    let started = Instant::now();
    caller(
        dir.path(),
        proxy.udp,
        "uac_bye_from_proxy.xml",
        &["-m", "1"],
    )
    .expect_success();
    target.expect_success();
    assert!(started.elapsed() >= limit, "not before the limit");
    control.wait_for("the call to end", |e| e.len() >= 3);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::System, true)
        ]
    );
}

#[test]
fn dialog_past_its_limit_is_hung_up_on_both_sides() {
    hung_up_by_the_proxy(
        |port| TestControl::new(&[(port, secs(5))], 10),
        &["-m", "1"],
    );
}

#[test]
fn dialog_past_its_limit_is_hung_up_on_a_tcp_target_and_a_udp_caller() {
    hung_up_by_the_proxy(tcp_target, &["-m", "1", "-t", "t1"]);
}

#[test]
fn busy_target_then_the_next_answers() {
    busy_then_the_next_answers(false);
}

#[test]
fn decisions_handed_over_later_from_another_thread_route_the_call() {
    busy_then_the_next_answers(true);
}

/// Target 1 busy, target 2 answers; with `defer`, every decision comes as `Hop::Pending` and
/// is sent from another thread.
fn busy_then_the_next_answers(defer: bool) {
    let dir = tempfile::tempdir().unwrap();
    let busy = Sipp::start(dir.path(), "uas_busy.xml", &["-m", "1"]);
    let answers = Sipp::start(dir.path(), "uas.xml", &["-m", "1"]);
    let control = TestControl::new(&[(busy.port, secs(5)), (answers.port, secs(5))], 10);
    control
        .defer
        .store(defer, std::sync::atomic::Ordering::SeqCst);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.udp, "uac.xml", &["-m", "1"]).expect_success();
    busy.expect_success();
    answers.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 4);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Failed(1, AttemptOutcome::Busy, Some(486)),
            Event::Answered(2, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

#[test]
fn ring_timeout_cancels_and_the_next_target_answers() {
    let dir = tempfile::tempdir().unwrap();
    let rings = Sipp::start(dir.path(), "uas_noanswer.xml", &["-m", "1"]);
    let answers = Sipp::start(dir.path(), "uas.xml", &["-m", "1"]);
    let ring = Duration::from_millis(700);
    let control = TestControl::new(&[(rings.port, ring), (answers.port, secs(5))], 10);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.udp, "uac.xml", &["-m", "1"]).expect_success();
    rings.expect_success();
    answers.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 4);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Failed(1, AttemptOutcome::NoAnswer, Some(487)),
            Event::Answered(2, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

#[test]
fn caller_cancels_while_ringing() {
    let dir = tempfile::tempdir().unwrap();
    let rings = Sipp::start(dir.path(), "uas_noanswer.xml", &["-m", "1"]);
    let control = TestControl::new(&[(rings.port, secs(10))], 10);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.udp, "uac_cancel.xml", &["-m", "1"]).expect_success();
    rings.expect_success();
    assert_eq!(
        control.events(),
        [Event::Started, Event::Ended(HungUpBy::Caller, false)]
    );
}

#[test]
fn answer_crossing_the_callers_cancel_is_acked_and_hung_up_by_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sipp::start(dir.path(), "uas_answers_cancel.xml", &["-m", "1"]);
    let control = TestControl::new(&[(target.port, secs(10))], 10);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(dir.path(), proxy.udp, "uac_cancel.xml", &["-m", "1"]).expect_success();
    // The target's scenario only ends well if the proxy ACKs its 200 and sends it a BYE.
    target.expect_success();
    assert_eq!(
        control.events(),
        [Event::Started, Event::Ended(HungUpBy::Caller, false)]
    );
}

#[test]
fn caller_cancels_a_re_invite_and_the_call_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let target = Sipp::start(dir.path(), "uas_reinvite_cancel.xml", &["-m", "1"]);
    let control = TestControl::new(&[(target.port, secs(10))], 10);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(
        dir.path(),
        proxy.udp,
        "uac_reinvite_cancel.xml",
        &["-m", "1"],
    )
    .expect_success();
    target.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 3);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Answered(1, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

#[test]
fn unreachable_target_is_skipped_marked_down_and_back_up() {
    let dir = tempfile::tempdir().unwrap();
    let dead_port = free_port();
    // No `-m`: sipp counts each probe as a call; these instances are killed at the end.
    let answers = Sipp::start(dir.path(), "uas.xml", &["-aa"]);
    let control = TestControl::new(
        &[
            (dead_port, Duration::from_millis(500)),
            (answers.port, secs(5)),
        ],
        10,
    );
    // A probe unanswered by the next round fails: five in a row, so that a healthy target
    // briefly starved of CPU is not marked down.
    let probing = Probing {
        interval: Some(Duration::from_millis(300)),
        failures: 5,
        successes: 2,
    };
    let proxy = Proxy::start(control.clone(), probing);
    caller(dir.path(), proxy.udp, "uac.xml", &["-m", "1"]).expect_success();
    control.wait_for("target 1 down", |e| e.contains(&Event::Health(1, false)));
    let events = control.events();
    assert!(
        events.contains(&Event::Failed(1, AttemptOutcome::Unreachable, None)),
        "{events:?}"
    );
    assert!(events.contains(&Event::Answered(2, 200)), "{events:?}");
    // A target starts listening there: probing brings it back.
    let revived = Sipp::spawn(dir.path(), "uas.xml", dead_port, &["-aa"]);
    control.wait_for("target 1 up", |e| e.contains(&Event::Health(1, true)));
    assert!(
        !control.events().contains(&Event::Health(2, false)),
        "target 2 answered probes"
    );
    drop((revived, answers));
}

#[test]
fn malformed_requests_get_400_or_silence() {
    let control = TestControl::new(&[], 10);
    let proxy = Proxy::start(control.clone(), no_probing());
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let me = sock.local_addr().unwrap();
    let request = |method: &str, cseq: &str, extra: &str| {
        format!(
            "{method} sip:{CALLED}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{method}{cseq}\r\n\
From: <sip:a@{me}>;tag=1\r\nTo: <sip:{CALLED}@{}>\r\nCall-ID: bad-{method}\r\nCSeq: {cseq}\r\n{extra}\
Content-Length: 0\r\n\r\n",
            proxy.udp, proxy.udp
        )
    };
    let exchange = |msg: &str| -> String {
        sock.send_to(msg.as_bytes(), proxy.udp).unwrap();
        let mut buf = [0u8; 4096];
        let (n, _) = sock.recv_from(&mut buf).expect("an answer");
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap()
            .to_string()
    };
    // Silence first: nothing can be answered to these; the next answer belongs to what follows.
    sock.send_to(b"\x00\x01garbage\r\n\r\n", proxy.udp).unwrap();
    sock.send_to(b"INVITE sip:x SIP/2.0\r\nVia: nonsense\r\n\r\n", proxy.udp)
        .unwrap();
    assert_eq!(
        exchange(&request("INVITE", "x INVITE", "")),
        "SIP/2.0 400 Bad Request"
    );
    assert_eq!(
        exchange(&request("INVITE", "1 BYE", "")),
        "SIP/2.0 400 Bad Request"
    );
    assert_eq!(
        exchange(&request("INVITE", "2 INVITE", "Max-Forwards: 0\r\n")),
        "SIP/2.0 483 Too Many Hops"
    );
    assert_eq!(
        exchange(&request("INVITE", "3 INVITE", "Content-Length: 99\r\n")),
        "SIP/2.0 400 Bad Content-Length"
    );
    assert_eq!(
        exchange(&request("FROB", "4 FROB", "")),
        "SIP/2.0 501 Not Implemented"
    );
    assert_eq!(
        exchange(&request("OPTIONS", "5 OPTIONS", "")),
        "SIP/2.0 200 OK"
    );
    assert!(control.events().is_empty());
}

#[test]
fn burst_of_parallel_calls_never_exceeds_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let calls = 60;
    let m = calls.to_string();
    let t1 = Sipp::start(dir.path(), "uas.xml", &["-m", &m]);
    let t2 = Sipp::start(dir.path(), "uas.xml", &["-m", &m]);
    let cap = 3;
    let control = TestControl::new(&[(t1.port, secs(5)), (t2.port, secs(5))], cap);
    let proxy = Proxy::start(control.clone(), no_probing());
    caller(
        dir.path(),
        proxy.udp,
        "uac.xml",
        &["-m", &m, "-r", "200", "-l", "6"],
    )
    .expect_success();
    control.wait_for("every call to end", |e| {
        e.iter().filter(|e| matches!(e, Event::Ended(..))).count() == calls
    });
    let s = control.state.lock().unwrap();
    for t in [1, 2] {
        let max = s.max_live.get(&t).copied().unwrap_or(0);
        assert!(max <= cap, "target {t} had {max} live calls");
    }
    let answered = s
        .events
        .iter()
        .filter(|e| matches!(e, Event::Answered(..)))
        .count();
    assert_eq!(answered, calls);
    assert!(s.live.values().all(|l| *l == 0), "{:?}", s.live);
    drop(s);
    drop((t1, t2));
}

/// A DNS responder on loopback UDP: SRV and A answers from `records` (name with its final dot
/// → rdata), NXDOMAIN for anything else.
fn dns(records: Vec<(&'static str, hickory_proto::rr::RData)>) -> SocketAddr {
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{Name, Record};
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut answer = Message::new();
            answer
                .set_id(query.id())
                .set_message_type(MessageType::Response)
                .set_op_code(query.op_code())
                .set_recursion_desired(query.recursion_desired())
                .set_recursion_available(true)
                .set_authoritative(true);
            for q in query.queries() {
                answer.add_query(q.clone());
                let name = q.name().to_ascii().to_lowercase();
                let found: Vec<_> = records
                    .iter()
                    .filter(|(n, r)| *n == name && r.record_type() == q.query_type())
                    .collect();
                if found.is_empty() {
                    let exists = records.iter().any(|(n, _)| *n == name);
                    if !exists {
                        answer.set_response_code(ResponseCode::NXDomain);
                    }
                }
                for (n, rdata) in found {
                    answer.add_answer(Record::from_rdata(
                        Name::from_ascii(n).unwrap(),
                        5,
                        rdata.clone(),
                    ));
                }
            }
            let _ = socket.send_to(&answer.to_vec().unwrap(), peer);
        }
    });
    addr
}

#[test]
fn targets_named_by_host_name_are_reached_through_dns() {
    use callopt_sip::dns::{HostKey, ResolverSettings};
    use hickory_proto::rr::rdata::{A, SRV};
    use hickory_proto::rr::{Name, RData};
    let dir = tempfile::tempdir().unwrap();
    let busy = Sipp::start(dir.path(), "uas_busy.xml", &["-m", "1"]);
    let answers = Sipp::start(dir.path(), "uas.xml", &["-m", "1"]);
    let nameserver = dns(vec![
        ("agents.test.", RData::A(A::new(127, 0, 0, 1))),
        (
            "_sip._udp.busy.test.",
            RData::SRV(SRV::new(
                0,
                5,
                busy.port,
                Name::from_ascii("agents.test.").unwrap(),
            )),
        ),
    ]);
    // A name that does not resolve, one found by SRV (no port), one by A (with its port).
    let control = TestControl::with_uris(
        &[
            ("sip:agent@nowhere.test:5060".into(), secs(5)),
            ("sip:agent@busy.test".into(), secs(5)),
            (format!("sip:agent@agents.test:{}", answers.port), secs(5)),
        ],
        10,
    );
    let hosts = Arc::new(callopt_sip::dns::Hosts::default());
    let cache = hosts.clone();
    let proxy = Proxy::start_config(control.clone(), move |c| {
        c.hosts = cache;
        c.dns = Some(ResolverSettings {
            nameservers: vec![nameserver],
            refresh: secs(30),
        });
    });
    let key = |host: &str, port| HostKey {
        host: host.into(),
        port,
        transport: callopt_sip::Transport::Udp,
    };
    let deadline = Instant::now() + secs(20);
    while hosts.resolved(&key("busy.test", None)).is_none()
        || hosts
            .resolved(&key("agents.test", Some(answers.port)))
            .is_none()
    {
        assert!(Instant::now() < deadline, "the target names never resolved");
        std::thread::sleep(Duration::from_millis(10));
    }
    let srv = SocketAddr::from(([127, 0, 0, 1], busy.port));
    assert_eq!(
        hosts.resolved(&key("busy.test", None)),
        Some(vec![callopt_sip::dns::Address {
            addr: srv,
            priority: 0,
            weight: 5
        }])
    );
    assert_eq!(hosts.resolved(&key("nowhere.test", Some(5060))), None);

    caller(dir.path(), proxy.udp, "uac.xml", &["-m", "1"]).expect_success();
    busy.expect_success();
    answers.expect_success();
    control.wait_for("the call to end", |e| e.len() >= 5);
    assert_eq!(
        control.events(),
        [
            Event::Started,
            Event::Failed(1, AttemptOutcome::Unreachable, None),
            Event::Failed(2, AttemptOutcome::Busy, Some(486)),
            Event::Answered(3, 200),
            Event::Ended(HungUpBy::Caller, true)
        ]
    );
}

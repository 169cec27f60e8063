//! Runs every fuzz seed (the RFC 4475 torture cases and friends) through the parser and the core,
//! and random bytes through both, so CI exercises them without cargo-fuzz.

use callopt_sip::fuzzing;
use proptest::prelude::*;
use std::path::Path;

#[test]
fn every_corpus_message_is_handled_without_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_message");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("the seed corpus exists") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        fuzzing::parse_message(&data);
        fuzzing::core_input(&data);
        n += 1;
    }
    assert!(n >= 30, "only {n} seeds");
}

#[test]
fn valid_torture_messages_parse_and_invalid_ones_do_not() {
    use callopt_sip::parse::{Framing, Message};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/parse_message");
    let parse = |name: &str| {
        let data = std::fs::read(dir.join(format!("{name}.sip"))).unwrap();
        Message::parse(bytes::Bytes::from(data), Framing::Datagram)
    };
    for ok in [
        "wsinv", "intmeth", "esc01", "longreq", "dblreq", "unreason", "noreason", "mpart01",
    ] {
        assert!(parse(ok).is_ok(), "{ok}: {:?}", parse(ok).err());
    }
    let wsinv = parse("wsinv").unwrap();
    assert_eq!(wsinv.cseq(), Some((9, "INVITE")));
    assert_eq!(wsinv.to_tag(), Some("1918181833n"));
    assert_eq!(wsinv.top_via().unwrap().branch, Some("390skdjuw"));
    assert_eq!(wsinv.values(callopt_sip::parse::HeaderName::Via).count(), 3);
    for bad in ["clerr", "ncl", "ltgtruri", "lwsruri", "nobody"] {
        assert!(parse(bad).is_err(), "{bad} should not parse");
    }
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

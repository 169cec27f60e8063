//! Message editing for proxying: the few changes a proxy makes to a message it forwards (Via,
//! Max-Forwards, Record-Route, Route, Request-URI), each a splice into the original bytes, and
//! the messages it writes itself (responses, ACK, CANCEL, OPTIONS).

use crate::parse::{HeaderName, Message};
use bytes::{BufMut, Bytes, BytesMut};
use smallvec::SmallVec;
use std::fmt::Write as _;
use std::ops::Range;

/// What to change in a request being forwarded. Everything else is copied byte for byte.
#[derive(Debug, Default)]
pub struct Forward<'a> {
    /// A new Request-URI (the target), or keep the one received.
    pub uri: Option<&'a str>,
    /// Our Via value (`SIP/2.0/UDP host:port;branch=z9hG4bK...`), put on top.
    pub via: &'a str,
    /// Record-Route values (`<sip:host:port;lr>`) to add on top, in order, for dialog-creating
    /// requests: one, or two when the proxy joins two transports (double record-routing).
    pub record_routes: &'a [&'a str],
    /// How many leading Route values to remove (they named us).
    pub pop_routes: usize,
}

/// A list of splices over one buffer, applied in order of position (splices at one position in
/// the order they were put). Kept inline: a forwarded request takes a dozen at most, and the
/// copy it produces is then its only allocation.
struct Splices<'a> {
    /// (span replaced, bytes put there); an empty span inserts.
    items: SmallVec<[(Range<usize>, &'a [u8]); 16]>,
}

impl<'a> Splices<'a> {
    fn new() -> Self {
        Self {
            items: SmallVec::new(),
        }
    }

    fn put(&mut self, at: Range<usize>, bytes: &'a [u8]) {
        self.items.push((at, bytes));
    }

    fn apply(mut self, src: &[u8]) -> Bytes {
        // Stable: insertions at one position keep their order.
        self.items.sort_by_key(|(r, _)| (r.start, r.end));
        // An overlapping edit is dropped (the first one is kept).
        let mut pos = 0;
        self.items.retain(|(r, _)| {
            let keep = r.start >= pos;
            if keep {
                pos = r.end;
            }
            keep
        });
        // The exact length: a buffer filled to its capacity becomes a `Bytes` without another
        // allocation.
        let len = self
            .items
            .iter()
            .fold(src.len(), |n, (r, b)| n - r.len() + b.len());
        let mut out = Vec::with_capacity(len);
        let mut pos = 0;
        for (r, bytes) in &self.items {
            out.extend_from_slice(&src[pos..r.start]);
            out.extend_from_slice(bytes);
            pos = r.end;
        }
        out.extend_from_slice(&src[pos..]);
        debug_assert_eq!(out.len(), len);
        Bytes::from(out)
    }
}

/// The span to delete to remove the first value of a (possibly multi-valued) header: the whole
/// line when it holds one value, else the value and its comma.
fn first_value_removal(msg: &Message, name: HeaderName) -> Option<Range<usize>> {
    let h = msg.header(name)?;
    let mut values = crate::parse::split_values(msg.bytes(), h.value.clone());
    let first = values.next()?;
    match values.next() {
        None => Some(h.line.clone()),
        Some(second) => Some(first.start..second.start),
    }
}

/// Deletes the first `n` Route values: whole lines for lines all of whose values go, else from
/// the first value to the first one kept.
fn remove_routes<'a>(msg: &Message, n: usize, s: &mut Splices<'a>) {
    let mut left = n;
    for h in msg.headers.iter().filter(|h| h.name == HeaderName::Route) {
        if left == 0 {
            break;
        }
        let mut first = None;
        let mut removed = 0;
        let mut kept = None;
        for v in crate::parse::split_values(msg.bytes(), h.value.clone()) {
            if removed == left {
                kept = Some(v.start);
                break;
            }
            first.get_or_insert(v.start);
            removed += 1;
        }
        match (first, kept) {
            (Some(first), Some(kept)) => {
                s.put(first..kept, b"");
                left = 0;
            }
            _ => {
                s.put(h.line.clone(), b"");
                left -= removed;
            }
        }
    }
}

/// The decimal digits of `n` (at most 99) in `buf`.
fn two_digits(n: u8, buf: &mut [u8; 2]) -> &[u8] {
    let n = n.min(99);
    *buf = [b'0' + n / 10, b'0' + n % 10];
    if n < 10 {
        &buf[1..]
    } else {
        &buf[..]
    }
}

/// The forwarded copy of a request.
pub fn forward_request(msg: &Message, f: &Forward<'_>) -> Bytes {
    let at = msg.headers_start;
    let mut buf = [0; 2];
    let max_forwards = msg.header(HeaderName::MaxForwards).map(|h| {
        let n = msg.max_forwards().and_then(Result::ok).unwrap_or(70);
        let n = u8::try_from(n.saturating_sub(1).min(70)).unwrap_or(70);
        (h.value.clone(), two_digits(n, &mut buf))
    });
    let mut s = Splices::new();
    if let (Some(uri), crate::parse::StartLine::Request { uri: span, .. }) = (f.uri, &msg.start) {
        s.put(span.clone(), uri.as_bytes());
    }
    s.put(at..at, b"Via: ");
    s.put(at..at, f.via.as_bytes());
    s.put(at..at, b"\r\n");
    for rr in f.record_routes {
        s.put(at..at, b"Record-Route: ");
        s.put(at..at, rr.as_bytes());
        s.put(at..at, b"\r\n");
    }
    match max_forwards {
        Some((span, digits)) => s.put(span, digits),
        None => s.put(at..at, b"Max-Forwards: 70\r\n"),
    }
    remove_routes(msg, f.pop_routes, &mut s);
    s.apply(msg.bytes())
}

/// A response with our top Via removed, for relaying upstream.
pub fn strip_top_via(msg: &Message) -> Bytes {
    let mut s = Splices::new();
    if let Some(r) = first_value_removal(msg, HeaderName::Via) {
        s.put(r, b"");
    }
    s.apply(msg.bytes())
}

/// A response to `req` written by the proxy: Via, From, To (with `to_tag` added when To has no
/// tag), Call-ID and CSeq copied, then `extra` header lines (each ending in CRLF).
pub fn response(
    req: &Message,
    status: u16,
    reason: &str,
    to_tag: Option<&str>,
    extra: &str,
) -> Bytes {
    let mut out = BytesMut::with_capacity(512);
    let _ = write!(Writer(&mut out), "SIP/2.0 {status} {reason}\r\n");
    let src = req.bytes();
    for h in &req.headers {
        match h.name {
            HeaderName::Via | HeaderName::From | HeaderName::CallId | HeaderName::CSeq => {
                out.put_slice(&src[h.line.clone()]);
                if !src[h.line.clone()].ends_with(b"\n") {
                    out.put_slice(b"\r\n");
                }
            }
            HeaderName::To => {
                out.put_slice(b"To: ");
                out.put_slice(&src[h.value.clone()]);
                if let (Some(tag), None) = (to_tag, req.to_tag()) {
                    out.put_slice(b";tag=");
                    out.put_slice(tag.as_bytes());
                }
                out.put_slice(b"\r\n");
            }
            _ => {}
        }
    }
    out.put_slice(extra.as_bytes());
    out.put_slice(b"Server: callopt\r\nContent-Length: 0\r\n\r\n");
    out.freeze()
}

/// Whether a request carries what a response needs (Via, From, To, Call-ID, CSeq).
pub fn can_respond(req: &Message) -> bool {
    req.top_via().is_some() && missing_headers(req).is_empty()
}

/// Which of the headers a response copies, besides Via, the request lacks.
pub fn missing_headers(req: &Message) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if req.header(HeaderName::From).is_none() {
        missing.push("From");
    }
    if req.header(HeaderName::To).is_none() {
        missing.push("To");
    }
    if req.call_id().is_none() {
        missing.push("Call-ID");
    }
    if req.header(HeaderName::CSeq).is_none() {
        missing.push("CSeq");
    }
    missing
}

/// The hop-by-hop ACK for a non-2xx final response to an INVITE we sent (RFC 3261 §17.1.1.3):
/// same Request-URI, top Via, From, Call-ID and Route as the INVITE, To from the response.
pub fn ack_for(invite: &Message, response: &Message) -> Bytes {
    in_transaction_request(invite, "ACK", response.value(HeaderName::To))
}

/// A CANCEL for an INVITE we sent (RFC 3261 §9.1).
pub fn cancel_for(invite: &Message) -> Bytes {
    in_transaction_request(invite, "CANCEL", None)
}

fn in_transaction_request(invite: &Message, method: &str, to: Option<&str>) -> Bytes {
    let uri = invite.uri().unwrap_or("sip:invalid");
    let via = invite
        .first_value(HeaderName::Via)
        .map_or("", |r| invite.text(r));
    let copied = |name: HeaderName| match name {
        HeaderName::Route | HeaderName::From | HeaderName::CallId => true,
        HeaderName::To => to.is_none(),
        _ => false,
    };
    // Room for exactly what is written (the fixed text is under 128 bytes): an ACK is kept
    // while its branch waits out Timer D, so its buffer should not be a round 512.
    let lines: usize = (invite.headers.iter())
        .filter(|h| copied(h.name))
        .map(|h| h.line.len())
        .sum();
    let size = 128 + 2 * method.len() + uri.len() + via.len() + lines + to.map_or(0, str::len);
    let mut out = BytesMut::with_capacity(size);
    let (cseq, _) = invite.cseq().unwrap_or((1, "INVITE"));
    let _ = write!(Writer(&mut out), "{method} {uri} SIP/2.0\r\nVia: {via}\r\n");
    let src = invite.bytes();
    for h in invite.headers.iter().filter(|h| copied(h.name)) {
        out.put_slice(&src[h.line.clone()]);
    }
    if let Some(to) = to {
        let _ = write!(Writer(&mut out), "To: {to}\r\n");
    }
    let _ = write!(
        Writer(&mut out),
        "CSeq: {cseq} {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    out.freeze()
}

/// Where a request inside a dialog goes, as the caller's side of it would send it (RFC 3261
/// §12.2.1.1): the remote target (the 2xx's Contact) as Request-URI, and the route set.
#[derive(Debug, Clone)]
pub struct DialogTarget {
    /// The Request-URI: the Contact of the 2xx.
    pub uri: String,
    /// Route values, first hop first (Record-Route values the target side added, reversed).
    pub routes: Vec<String>,
}

/// A request the proxy sends itself inside the dialog an INVITE it forwarded created: the ACK
/// for a 2xx it will not forward, or the BYE that ends that dialog. From, Call-ID come from the
/// INVITE as sent, To (with the target's tag) from the 2xx; `cseq` is the number to use.
pub fn dialog_request(
    invite: &Message,
    answer: &Message,
    method: &str,
    cseq: u32,
    via: &str,
    target: &DialogTarget,
) -> Bytes {
    let to = answer
        .value(HeaderName::To)
        .or_else(|| invite.value(HeaderName::To))
        .unwrap_or("<sip:invalid>");
    in_dialog_request(&InDialog {
        method,
        target,
        via,
        from: invite.value(HeaderName::From).unwrap_or("<sip:invalid>"),
        to,
        call_id: invite.call_id().unwrap_or_default(),
        cseq,
    })
}

/// What a request the proxy writes inside a dialog, on its own behalf, carries (RFC 3261
/// §12.2.1.1): one side's place in the dialog towards the other.
#[derive(Debug)]
pub struct InDialog<'a> {
    /// The method (ACK, BYE).
    pub method: &'a str,
    /// The Request-URI (the receiving side's remote target) and the Route values to it.
    pub target: &'a DialogTarget,
    /// Our Via value, with the branch of our client transaction.
    pub via: &'a str,
    /// The From value: the side the request speaks for, with its tag.
    pub from: &'a str,
    /// The To value: the receiving side, with its tag.
    pub to: &'a str,
    /// The dialog's Call-ID.
    pub call_id: &'a str,
    /// The CSeq number, in the sequence of the side the request speaks for.
    pub cseq: u32,
}

/// Writes a request of the proxy's own inside a dialog; no body.
pub fn in_dialog_request(r: &InDialog<'_>) -> Bytes {
    let mut out = BytesMut::with_capacity(512);
    let mut w = Writer(&mut out);
    let _ = write!(
        w,
        "{} {} SIP/2.0\r\nVia: {}\r\n",
        r.method, r.target.uri, r.via
    );
    for route in &r.target.routes {
        let _ = write!(w, "Route: {route}\r\n");
    }
    let _ = write!(
        w,
        "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\nMax-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        r.from, r.to, r.call_id, r.cseq, r.method
    );
    out.freeze()
}

/// An OPTIONS request to probe a target.
pub fn options(uri: &str, via: &str, from_host: &str, call_id: &str, tag: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(400);
    let _ = write!(
        Writer(&mut out),
        "OPTIONS {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
         From: <sip:probe@{from_host}>;tag={tag}\r\nTo: <{uri}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    out.freeze()
}

/// `fmt::Write` into a `BytesMut`.
struct Writer<'a>(&'a mut BytesMut);

impl std::fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.put_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Framing;

    fn parse(s: &str) -> Message {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()), Framing::Datagram).unwrap()
    }

    const REQ: &str = "INVITE sip:123@proxy SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\r\n\
Route: <sip:10.0.0.2;lr>, <sip:10.0.0.9;lr>\r\n\
Max-Forwards: 10\r\n\
From: <sip:c@x>;tag=f\r\n\
To: <sip:123@proxy>\r\n\
Call-ID: id1\r\n\
CSeq: 7 INVITE\r\n\
Content-Length: 0\r\n\r\n";

    #[test]
    fn forwarding_edits_only_what_it_must() {
        let m = parse(REQ);
        let out = forward_request(
            &m,
            &Forward {
                uri: Some("sip:agent@10.0.0.5:5070"),
                via: "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKours",
                record_routes: &["<sip:10.0.0.2:5060;lr>"],
                pop_routes: 1,
            },
        );
        let text = std::str::from_utf8(&out).unwrap();
        assert_eq!(
            text,
            "INVITE sip:agent@10.0.0.5:5070 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKours\r\n\
Record-Route: <sip:10.0.0.2:5060;lr>\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\r\n\
Route: <sip:10.0.0.9;lr>\r\n\
Max-Forwards: 9\r\n\
From: <sip:c@x>;tag=f\r\n\
To: <sip:123@proxy>\r\n\
Call-ID: id1\r\n\
CSeq: 7 INVITE\r\n\
Content-Length: 0\r\n\r\n"
        );
        let again = parse(text);
        assert_eq!(again.top_via().unwrap().branch, Some("z9hG4bKours"));
    }

    #[test]
    fn double_record_route_and_two_routes_popped() {
        let two_lines = REQ.replace(
            "Route: <sip:10.0.0.2;lr>, <sip:10.0.0.9;lr>\r\n",
            "Route: <sip:10.0.0.2;lr>\r\nRoute: <sip:10.0.0.2;transport=tcp;lr>, <sip:10.0.0.9;lr>\r\n",
        );
        for (text, left) in [(REQ, None), (two_lines.as_str(), Some("<sip:10.0.0.9;lr>"))] {
            let out = forward_request(
                &parse(text),
                &Forward {
                    via: "SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bKours",
                    record_routes: &["<sip:10.0.0.2;transport=tcp;lr>", "<sip:10.0.0.2;lr>"],
                    pop_routes: 2,
                    ..Forward::default()
                },
            );
            let m = Message::parse(out, Framing::Datagram).unwrap();
            let rr: Vec<_> = m
                .values(HeaderName::RecordRoute)
                .map(|r| m.text(r))
                .collect();
            assert_eq!(rr, ["<sip:10.0.0.2;transport=tcp;lr>", "<sip:10.0.0.2;lr>"]);
            assert_eq!(m.value(HeaderName::Route), left);
            assert_eq!(m.cseq(), Some((7, "INVITE")));
        }
    }

    #[test]
    fn max_forwards_goes_down_by_one_and_at_most_to_70() {
        let cases = [(Some(1), 0), (Some(10), 9), (Some(11), 10), (Some(70), 69)];
        let more = [(Some(71), 70), (Some(255), 70), (None, 70)];
        for (given, sent) in cases.into_iter().chain(more) {
            let header = given.map_or(String::new(), |n| format!("Max-Forwards: {n}\r\n"));
            let m = parse(&REQ.replace("Max-Forwards: 10\r\n", &header));
            let out = forward_request(
                &m,
                &Forward {
                    via: "SIP/2.0/UDP h;branch=z9hG4bKb",
                    ..Forward::default()
                },
            );
            let again = Message::parse(out, Framing::Datagram).unwrap();
            assert_eq!(again.max_forwards(), Some(Ok(sent)), "given {given:?}");
            assert_eq!(again.uri(), Some("sip:123@proxy"));
        }
    }

    #[test]
    fn top_via_stripping() {
        let one = parse("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n");
        let out = strip_top_via(&one);
        assert_eq!(
            &out[..],
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n"
        );
        let joined = parse("SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1 , SIP/2.0/UDP b;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n");
        let out = strip_top_via(&joined);
        assert_eq!(
            &out[..],
            b"SIP/2.0 200 OK\r\nv: SIP/2.0/UDP b;branch=z9hG4bK2\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn responses_copy_the_transaction_headers() {
        let m = parse(REQ);
        let out = response(&m, 486, "Busy Here", Some("t1"), "");
        let r = Message::parse(out, Framing::Datagram).unwrap();
        assert_eq!(r.status(), Some(486));
        assert_eq!(r.to_tag(), Some("t1"));
        assert_eq!(r.call_id(), Some("id1"));
        assert_eq!(r.cseq(), Some((7, "INVITE")));
        assert_eq!(r.top_via().unwrap().branch, Some("z9hG4bKa"));
    }

    #[test]
    fn ack_and_cancel() {
        let m = parse(REQ);
        let resp = parse("SIP/2.0 486 Busy\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa\r\nTo: <sip:123@proxy>;tag=xyz\r\nContent-Length: 0\r\n\r\n");
        let ack = Message::parse(ack_for(&m, &resp), Framing::Datagram).unwrap();
        assert_eq!(ack.method(), Some("ACK"));
        assert_eq!(ack.to_tag(), Some("xyz"));
        assert_eq!(ack.cseq(), Some((7, "ACK")));
        assert_eq!(ack.values(HeaderName::Route).count(), 2);
        let cancel = Message::parse(cancel_for(&m), Framing::Datagram).unwrap();
        assert_eq!(cancel.cseq(), Some((7, "CANCEL")));
        assert_eq!(cancel.top_via().unwrap().branch, Some("z9hG4bKa"));
        assert_eq!(cancel.values(HeaderName::Via).count(), 1);
    }
}

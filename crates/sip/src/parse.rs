//! The SIP message parser: indexes the start line and header spans of one message held in
//! [`Bytes`], without copying it, so that the proxy can read a few fields and forward the rest
//! byte for byte.

use bytes::Bytes;
use std::ops::Range;

/// Largest message accepted (UDP datagrams cannot be larger; TCP peers are held to the same).
pub const MAX_MESSAGE: usize = 65_535;
/// Most header lines accepted in one message.
pub const MAX_HEADERS: usize = 128;

/// Why bytes are not a SIP message. Small and cheap: the hot path only needs to know whether to
/// answer 400 or stay silent, and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("empty message")]
    Empty,
    /// The header section has no end yet (a stream needs more bytes; a datagram is truncated).
    #[error("incomplete message")]
    Incomplete,
    /// The message is larger than [`MAX_MESSAGE`] or has more than [`MAX_HEADERS`] headers.
    #[error("message too large")]
    TooLarge,
    /// The request or status line is not `METHOD SP URI SP SIP/x.y` or `SIP/x.y SP code SP reason`.
    #[error("bad start line")]
    StartLine,
    /// A header line without a colon or with a name that is not a token.
    #[error("bad header line")]
    Header,
    /// Content-Length is not a number, differs between two headers, or exceeds the bytes sent.
    #[error("bad Content-Length")]
    ContentLength,
    /// The header section is not UTF-8.
    #[error("header section is not UTF-8")]
    Utf8,
}

/// The headers the proxy reads or edits; everything else is [`HeaderName::Other`] and is only
/// copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderName {
    /// `Via` / `v`.
    Via,
    /// `From` / `f`.
    From,
    /// `To` / `t`.
    To,
    /// `Call-ID` / `i`.
    CallId,
    /// `CSeq`.
    CSeq,
    /// `Max-Forwards`.
    MaxForwards,
    /// `Content-Length` / `l`.
    ContentLength,
    /// `Route`.
    Route,
    /// `Record-Route`.
    RecordRoute,
    /// `Contact` / `m`.
    Contact,
    /// `Content-Type` / `c`.
    ContentType,
    /// Any other header (including the other compact forms: e, k, s, o, r, u, ...).
    Other,
}

impl HeaderName {
    /// Classifies a header name, long or compact form, case-insensitively.
    pub fn classify(name: &[u8]) -> Self {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'v' => Self::Via,
                b'f' => Self::From,
                b't' => Self::To,
                b'i' => Self::CallId,
                b'l' => Self::ContentLength,
                b'm' => Self::Contact,
                b'c' => Self::ContentType,
                _ => Self::Other,
            };
        }
        const NAMES: [(&[u8], HeaderName); 11] = [
            (b"via", HeaderName::Via),
            (b"from", HeaderName::From),
            (b"to", HeaderName::To),
            (b"call-id", HeaderName::CallId),
            (b"cseq", HeaderName::CSeq),
            (b"max-forwards", HeaderName::MaxForwards),
            (b"content-length", HeaderName::ContentLength),
            (b"route", HeaderName::Route),
            (b"record-route", HeaderName::RecordRoute),
            (b"contact", HeaderName::Contact),
            (b"content-type", HeaderName::ContentType),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(Self::Other, |(_, h)| *h)
    }
}

/// One header line as spans into the message.
#[derive(Debug, Clone)]
pub struct Header {
    /// Which header it is.
    pub name: HeaderName,
    /// The whole line, from the name to the end of its CRLF (folded continuation lines included),
    /// so that editing can drop or copy it whole.
    pub line: Range<usize>,
    /// The value, from after the colon and its whitespace to before the final CRLF; folded lines
    /// stay inside (readers treat CR/LF as whitespace).
    pub value: Range<usize>,
}

/// The first line.
#[derive(Debug, Clone)]
pub enum StartLine {
    /// `METHOD SP Request-URI SP SIP-Version`.
    Request {
        /// The method token.
        method: Range<usize>,
        /// The Request-URI, which forwarding may rewrite.
        uri: Range<usize>,
        /// The version token (the core answers 505 to anything but `SIP/2.0`).
        version: Range<usize>,
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    Response {
        /// The status code.
        status: u16,
    },
}

/// A parsed message: the bytes plus the index of their parts.
#[derive(Debug, Clone)]
pub struct Message {
    /// The message as received (leading CRLF keep-alives removed, trailing extra bytes after the
    /// body cut off).
    buf: Bytes,
    /// The start line's parts.
    pub start: StartLine,
    /// The end of the start line including its CRLF: where the first header begins.
    pub headers_start: usize,
    /// Header lines in order.
    pub headers: Vec<Header>,
    /// Where the body starts (after the blank line).
    pub body_start: usize,
    /// The same, kept where nothing outside can change it: the bytes before it were checked to
    /// be UTF-8, so that [`Message::text`] need not check them again on every look-up.
    head_end: usize,
    /// The top Via's parts, read at the first look: the router reads them several times for
    /// each message (whether it can be answered, its transaction, where a response goes).
    top_via: std::cell::OnceCell<Option<ViaSpans>>,
}

/// A [`Via`] as spans of its message, each a start and an end: a message is at most
/// [`MAX_MESSAGE`] bytes, so they fit in 16 bits and the message stays small to move.
#[derive(Debug, Clone)]
struct ViaSpans {
    transport: [u16; 2],
    host: [u16; 2],
    port: Option<u16>,
    branch: Option<[u16; 2]>,
    received: Option<[u16; 2]>,
    rport: Option<u16>,
}

/// How a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A datagram: the body is what follows the headers, cut to Content-Length when given.
    Datagram,
    /// A stream: the body is exactly Content-Length bytes (0 when absent).
    Stream,
}

/// Finds the end of the first message in a stream buffer: `Ok(Some(len))` when `buf[..len]` is a
/// whole message (including leading keep-alive CRLFs), `Ok(None)` when more bytes are needed.
pub fn frame(buf: &[u8]) -> Result<Option<usize>, ParseError> {
    let keepalive = buf
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    if keepalive > 0 {
        // Keep-alive CRLFs are a "message" of their own, which parsing drops as empty.
        return Ok(Some(keepalive));
    }
    let Some(head_end) = find_head_end(buf) else {
        if buf.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let head = &buf[..head_end];
    let mut length = None;
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        if HeaderName::classify(trim(&line[..colon])) == HeaderName::ContentLength {
            length = Some(parse_length(trim(&line[colon + 1..]))?);
        }
    }
    let total = head_end + length.unwrap_or(0);
    if total > MAX_MESSAGE {
        return Err(ParseError::TooLarge);
    }
    Ok((buf.len() >= total).then_some(total))
}

/// Where the blank line ends (the body starts), accepting CRLF or bare LF line ends.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &buf[from..]) {
        let at = from + i + 1;
        match buf.get(at..) {
            Some([b'\n', ..]) => return Some(at + 1),
            Some([b'\r', b'\n', ..]) => return Some(at + 2),
            _ => from = at,
        }
    }
    None
}

fn parse_length(v: &[u8]) -> Result<usize, ParseError> {
    if v.is_empty() || v.len() > 7 || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::ContentLength);
    }
    Ok(v.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Strips the line end (LF or CRLF) from `start..end` where `end` is just past the LF.
fn without_eol(buf: &[u8], start: usize, mut end: usize) -> usize {
    if end > start && buf[end - 1] == b'\n' {
        end -= 1;
    }
    if end > start && buf[end - 1] == b'\r' {
        end -= 1;
    }
    end
}

/// Where a message's parts are, found before the message takes its buffer: offsets from the
/// first byte after the leading line ends skipped.
struct Layout {
    /// Leading CR and LF bytes skipped.
    skip: usize,
    /// Length of the message after them (a datagram's bytes past its Content-Length dropped).
    end: usize,
    start: StartLine,
    headers_start: usize,
    headers: Vec<Header>,
    body_start: usize,
}

impl Layout {
    fn of(buf: &[u8], framing: Framing, check_length: bool) -> Result<Self, ParseError> {
        let skip = buf
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .ok_or(ParseError::Empty)?;
        let buf = &buf[skip..];
        if buf.len() > MAX_MESSAGE {
            return Err(ParseError::TooLarge);
        }
        let body_start = find_head_end(buf).ok_or(ParseError::Incomplete)?;
        let head = &buf[..body_start];
        if std::str::from_utf8(head).is_err() {
            return Err(ParseError::Utf8);
        }
        let first_end = memchr::memchr(b'\n', head).map_or(head.len(), |i| i + 1);
        let start = parse_start_line(buf, without_eol(head, 0, first_end))?;
        let headers = parse_headers(head, first_end, body_start)?;
        let mut length = None;
        for h in headers
            .iter()
            .filter(|h| check_length && h.name == HeaderName::ContentLength)
        {
            let n = parse_length(trim(&buf[h.value.clone()]))?;
            if length.is_some_and(|l| l != n) {
                return Err(ParseError::ContentLength);
            }
            length = Some(n);
        }
        let end = match (framing, length) {
            (_, Some(n)) if body_start + n > buf.len() => return Err(ParseError::ContentLength),
            (_, Some(n)) => body_start + n,
            (Framing::Datagram, None) => buf.len(),
            (Framing::Stream, None) => body_start,
        };
        Ok(Self {
            skip,
            end,
            start,
            headers_start: first_end,
            headers,
            body_start,
        })
    }
}

impl Message {
    /// Parses one message. Datagram framing takes the whole buffer; stream framing expects the
    /// buffer [`frame`] delimited.
    pub fn parse(buf: Bytes, framing: Framing) -> Result<Self, ParseError> {
        Self::parse_inner(buf, framing, true).map_err(|(e, _)| e)
    }

    /// As [`Message::parse`], handing the buffer back with the error, so that a caller that
    /// answers a bad message need not keep a copy of every good one (the first copy of a
    /// buffer received as a whole costs an allocation).
    pub fn parse_or_return(buf: Bytes, framing: Framing) -> Result<Self, (ParseError, Bytes)> {
        Self::parse_inner(buf, framing, true)
    }

    /// Parses the start line and headers only, ignoring a bad Content-Length: enough to answer
    /// 400 to a request whose body framing is broken.
    pub fn parse_head(buf: Bytes) -> Result<Self, ParseError> {
        Self::parse_inner(buf, Framing::Datagram, false).map_err(|(e, _)| e)
    }

    fn parse_inner(
        mut buf: Bytes,
        framing: Framing,
        check_length: bool,
    ) -> Result<Self, (ParseError, Bytes)> {
        match Layout::of(&buf, framing, check_length) {
            Ok(l) => {
                // In place: neither moves nor copies the bytes kept.
                if l.skip + l.end < buf.len() {
                    buf.truncate(l.skip + l.end);
                }
                bytes::Buf::advance(&mut buf, l.skip);
                Ok(Self {
                    buf,
                    start: l.start,
                    headers_start: l.headers_start,
                    headers: l.headers,
                    body_start: l.body_start,
                    head_end: l.body_start,
                    top_via: std::cell::OnceCell::new(),
                })
            }
            Err(e) => Err((e, buf)),
        }
    }

    /// The whole message.
    pub fn bytes(&self) -> &Bytes {
        &self.buf
    }

    /// The text of a span (empty if it is not UTF-8, which parsing already ruled out for the
    /// header section).
    pub fn text(&self, r: Range<usize>) -> &str {
        if r.end <= self.head_end {
            // SAFETY: parsing checked that the bytes before `head_end` are UTF-8, and neither
            // they nor `head_end` change after; `str::get` then checks the span's ends.
            let head = unsafe { std::str::from_utf8_unchecked(&self.buf[..self.head_end]) };
            return head.get(r).unwrap_or("");
        }
        self.buf
            .get(r)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(self.text(method.clone())),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(self.text(uri.clone())),
            StartLine::Response { .. } => None,
        }
    }

    /// Whether the request's version is `SIP/2.0` (responses are checked at parse time).
    pub fn version_ok(&self) -> bool {
        match &self.start {
            StartLine::Request { version, .. } => {
                self.text(version.clone()).eq_ignore_ascii_case("SIP/2.0")
            }
            StartLine::Response { .. } => true,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    /// The first header of that name.
    pub fn header(&self, name: HeaderName) -> Option<&Header> {
        self.headers.iter().find(|h| h.name == name)
    }

    /// The trimmed value of the first header of that name.
    pub fn value(&self, name: HeaderName) -> Option<&str> {
        self.header(name).map(|h| self.text(h.value.clone()).trim())
    }

    /// Every comma-separated value of every header of that name, in order, as spans (for Via,
    /// Route, Record-Route).
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = Range<usize>> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.name == name)
            .flat_map(move |h| split_values(&self.buf, h.value.clone()))
    }

    /// The first value of the first header of that name, as a span.
    pub fn first_value(&self, name: HeaderName) -> Option<Range<usize>> {
        self.values(name).next()
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.value(HeaderName::CallId).filter(|v| !v.is_empty())
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.value(HeaderName::CSeq)?;
        let mut parts = v.split_ascii_whitespace();
        let num = parts.next()?.parse().ok()?;
        let method = parts.next()?;
        parts.next().is_none().then_some((num, method))
    }

    /// The `tag` parameter of From.
    pub fn from_tag(&self) -> Option<&str> {
        self.value(HeaderName::From).and_then(tag_param)
    }

    /// The `tag` parameter of To.
    pub fn to_tag(&self) -> Option<&str> {
        self.value(HeaderName::To).and_then(tag_param)
    }

    /// The top Via, parsed.
    pub fn top_via(&self) -> Option<Via<'_>> {
        let spans = self.top_via.get_or_init(|| {
            let via = Via::parse(self.text(self.first_value(HeaderName::Via)?))?;
            let spans = |s: Option<&str>| s.map_or(Some(None), |s| self.span(s).map(Some));
            Some(ViaSpans {
                transport: self.span(via.transport)?,
                host: self.span(via.host)?,
                port: via.port,
                branch: spans(via.branch)?,
                received: spans(via.received)?,
                rport: via.rport,
            })
        });
        let spans = spans.as_ref()?;
        let text = |[start, end]: [u16; 2]| self.text(usize::from(start)..usize::from(end));
        Some(Via {
            transport: text(spans.transport),
            host: text(spans.host),
            port: spans.port,
            branch: spans.branch.map(text),
            received: spans.received.map(text),
            rport: spans.rport,
        })
    }

    /// Where a slice of this message's header section lies in it; `None` for another string.
    /// An empty string is an empty span wherever it came from (a parameter without a value is
    /// written as one).
    fn span(&self, s: &str) -> Option<[u16; 2]> {
        if s.is_empty() {
            return Some([0, 0]);
        }
        let start = (s.as_ptr() as usize).checked_sub(self.buf.as_ptr() as usize)?;
        let end = start + s.len();
        if end > self.head_end {
            return None;
        }
        Some([u16::try_from(start).ok()?, u16::try_from(end).ok()?])
    }

    /// The Max-Forwards value: `None` when absent, `Some(Err(()))` when not a number.
    pub fn max_forwards(&self) -> Option<Result<u32, ()>> {
        self.value(HeaderName::MaxForwards)
            .map(|v| v.parse::<u32>().map_err(|_| ()))
    }
}

fn parse_start_line(buf: &[u8], end: usize) -> Result<StartLine, ParseError> {
    let line = &buf[..end];
    let sp1 = memchr::memchr(b' ', line).ok_or(ParseError::StartLine)?;
    if line[..sp1].len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        if !line[..sp1].eq_ignore_ascii_case(b"SIP/2.0") {
            return Err(ParseError::StartLine);
        }
        let code = line.get(sp1 + 1..sp1 + 4).ok_or(ParseError::StartLine)?;
        if !code.iter().all(u8::is_ascii_digit) || line.get(sp1 + 4).is_some_and(|b| *b != b' ') {
            return Err(ParseError::StartLine);
        }
        let status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&status) {
            return Err(ParseError::StartLine);
        }
        return Ok(StartLine::Response { status });
    }
    let method = 0..sp1;
    if method.is_empty() || !line[method.clone()].iter().copied().all(is_token) {
        return Err(ParseError::StartLine);
    }
    let sp2 = memchr::memrchr(b' ', line).ok_or(ParseError::StartLine)?;
    if sp2 <= sp1 + 1 {
        return Err(ParseError::StartLine);
    }
    let uri = sp1 + 1..sp2;
    let version = sp2 + 1..end;
    let uri_ok = line[uri.clone()].iter().all(|b| *b > b' ' && *b != 0x7f)
        && memchr::memchr(b':', &line[uri.clone()]).is_some()
        && line[uri.start].is_ascii_alphabetic();
    let version_ok = line[version.clone()].len() >= 5
        && line[version.start..version.start + 4].eq_ignore_ascii_case(b"SIP/");
    if !uri_ok || !version_ok {
        return Err(ParseError::StartLine);
    }
    Ok(StartLine::Request {
        method,
        uri,
        version,
    })
}

fn parse_headers(head: &[u8], from: usize, body_start: usize) -> Result<Vec<Header>, ParseError> {
    let mut headers: Vec<Header> = Vec::with_capacity(24);
    let mut pos = from;
    while pos < body_start {
        let end = memchr::memchr(b'\n', &head[pos..]).map_or(body_start, |i| pos + i + 1);
        let content_end = without_eol(head, pos, end);
        if content_end == pos {
            break; // the blank line
        }
        if head[pos] == b' ' || head[pos] == b'\t' {
            let last = headers.last_mut().ok_or(ParseError::Header)?;
            last.line.end = end;
            if content_end > last.value.end && !trim(&head[pos..content_end]).is_empty() {
                last.value.end = content_end;
            }
            pos = end;
            continue;
        }
        let colon = memchr::memchr(b':', &head[pos..content_end]).ok_or(ParseError::Header)? + pos;
        let name = trim(&head[pos..colon]);
        if name.is_empty() || !name.iter().copied().all(is_token) {
            return Err(ParseError::Header);
        }
        let mut vstart = colon + 1;
        while vstart < content_end && (head[vstart] == b' ' || head[vstart] == b'\t') {
            vstart += 1;
        }
        let mut vend = content_end;
        while vend > vstart && (head[vend - 1] == b' ' || head[vend - 1] == b'\t') {
            vend -= 1;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ParseError::TooLarge);
        }
        headers.push(Header {
            name: HeaderName::classify(name),
            line: pos..end,
            value: vstart..vend,
        });
        pos = end;
    }
    Ok(headers)
}

/// Splits a header value at commas outside quotes and angle brackets; each piece trimmed.
pub fn split_values(buf: &[u8], value: Range<usize>) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut pos = value.start;
    let end = value.end;
    std::iter::from_fn(move || {
        while pos < end {
            let (mut quoted, mut angle, mut escaped) = (false, false, false);
            let start = pos;
            while pos < end {
                let b = buf[pos];
                match b {
                    _ if escaped => escaped = false,
                    b'\\' if quoted => escaped = true,
                    b'"' => quoted = !quoted,
                    b'<' if !quoted => angle = true,
                    b'>' if !quoted => angle = false,
                    b',' if !quoted && !angle => break,
                    _ => {}
                }
                pos += 1;
            }
            let piece = start..pos;
            pos += 1; // past the comma
            let t = trim_range(buf, piece);
            if !t.is_empty() {
                return Some(t);
            }
        }
        None
    })
}

/// Shrinks a span to exclude surrounding whitespace (CR and LF of folded lines included).
pub fn trim_range(buf: &[u8], mut r: Range<usize>) -> Range<usize> {
    while r.start < r.end && buf[r.start].is_ascii_whitespace() {
        r.start += 1;
    }
    while r.end > r.start && buf[r.end - 1].is_ascii_whitespace() {
        r.end -= 1;
    }
    r
}

/// The `tag` parameter of a From or To value (`"Name" <uri;p>;tag=x` or `uri;tag=x`).
pub fn tag_param(value: &str) -> Option<&str> {
    header_param(value, "tag")
}

/// A parameter of a name-addr or addr-spec header value: only parameters outside `<...>` count.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => match value.find(';') {
            Some(i) => &value[i..],
            None => "",
        },
    };
    param(params, name)
}

/// A `;name=value` parameter in a parameter list (whitespace tolerated around `;` and `=`).
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The URI inside a name-addr (`"Name" <sip:...>;p`) or the addr-spec itself (up to `;`).
pub fn addr_uri(value: &str) -> &str {
    match (value.find('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => value[a + 1..b].trim(),
        _ => value.split(';').next().unwrap_or("").trim(),
    }
}

/// The user part of a SIP URI (`sip:user@host`), if any.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let at = rest.find('@')?;
    let user = &rest[..at];
    Some(user.split(';').next().unwrap_or(user)).filter(|u| !u.is_empty())
}

/// A parsed Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// The transport of `SIP/2.0/UDP`.
    pub transport: &'a str,
    /// The sent-by host.
    pub host: &'a str,
    /// The sent-by port.
    pub port: Option<u16>,
    /// The `branch` parameter, which names the transaction.
    pub branch: Option<&'a str>,
    /// The `received` parameter.
    pub received: Option<&'a str>,
    /// The `rport` parameter value when it has one.
    pub rport: Option<u16>,
}

impl<'a> Via<'a> {
    /// Parses `SIP / 2.0 / UDP host[:port] *(;param)` (whitespace tolerated around `/` and `:`).
    pub fn parse(v: &'a str) -> Option<Self> {
        let (proto, params) = v.split_once(';').unwrap_or((v, ""));
        let mut parts = proto.splitn(3, '/');
        let (name, version, rest) = (parts.next()?, parts.next()?, parts.next()?);
        if !name.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return None;
        }
        let rest = rest.trim_start();
        let split = rest.find(|c: char| c.is_ascii_whitespace())?;
        let transport = &rest[..split];
        let sent_by = rest[split..].trim();
        let (host, port) = split_host_port(sent_by)?;
        let params = if params.is_empty() {
            ""
        } else {
            &v[proto.len()..]
        };
        // One pass over the parameters for the three the router reads (the first of each
        // name counts, as `param` would find it).
        let (mut branch, mut received, mut rport) = (None, None, None);
        for p in params.split(';').skip(1) {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (k, v) = (k.trim(), v.trim());
            let slot = if k.eq_ignore_ascii_case("branch") {
                &mut branch
            } else if k.eq_ignore_ascii_case("received") {
                &mut received
            } else if k.eq_ignore_ascii_case("rport") {
                &mut rport
            } else {
                continue;
            };
            slot.get_or_insert(v);
        }
        Some(Self {
            transport,
            host,
            port,
            branch: branch.filter(|b| !b.is_empty()),
            received,
            rport: rport.and_then(|p| p.parse().ok()),
        })
    }
}

/// Splits `host[:port]` (IPv6 in brackets), tolerating whitespace around the colon.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        let rest = s[end + 1..].trim();
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p.trim().parse().ok()?),
            None if rest.is_empty() => None,
            None => return None,
        };
        return Some((host, port));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => (h.trim(), Some(p.trim().parse().ok()?)),
        None => (s, None),
    };
    (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'))
    .then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Message, ParseError> {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()), Framing::Datagram)
    }

    const INVITE: &str = "INVITE sip:+15551234567@proxy.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: <sip:+15551234567@proxy.example.com>\r\n\
From: \"Alice\" <sip:+15550001111@carrier.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.0.0.1>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_a_request() {
        let m = parse(INVITE).unwrap();
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(m.uri(), Some("sip:+15551234567@proxy.example.com"));
        assert_eq!(m.call_id(), Some("a84b4c76e66710@pc33.example.com"));
        assert_eq!(m.cseq(), Some((314159, "INVITE")));
        assert_eq!(m.from_tag(), Some("1928301774"));
        assert_eq!(m.to_tag(), None);
        assert_eq!(m.max_forwards(), Some(Ok(70)));
        let via = m.top_via().unwrap();
        assert_eq!(via.transport, "UDP");
        assert_eq!((via.host, via.port), ("10.0.0.1", Some(5060)));
        assert_eq!(via.branch, Some("z9hG4bK776asdhds"));
        assert_eq!(&m.bytes()[m.body_start..], b"v=0\n");
        assert_eq!(m.headers.len(), 9);
    }

    #[test]
    fn keep_alives_before_and_bytes_past_the_body_are_dropped_in_place() {
        let given = format!("\r\n\r\n{INVITE}extra");
        let m = Message::parse(Bytes::from(given.clone()), Framing::Datagram).unwrap();
        assert_eq!(&m.bytes()[..], INVITE.as_bytes());
        assert_eq!(m.method(), Some("INVITE"));
        assert_eq!(&m.bytes()[m.body_start..], b"v=0\n");
        // A message that does not parse comes back whole, to be answered from.
        let bad = format!(
            "\r\n{}",
            INVITE.replace("Content-Length: 4", "Content-Length: 9")
        );
        let (e, back) = Message::parse_or_return(Bytes::from(bad.clone()), Framing::Datagram)
            .err()
            .unwrap();
        assert_eq!(e, ParseError::ContentLength);
        assert_eq!(&back[..], bad.as_bytes());
    }

    #[test]
    fn the_top_via_read_once_is_the_top_via_parsed_each_time() {
        let vias = [
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa;rport\r\n",
            "v: SIP / 2.0 / TCP [::1]:5070 ;received=10.0.0.9;rport=4321;branch=z9hG4bKb\r\n",
            "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKc, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKd\r\n",
            "Via: SIP/2.0/UDP 10.0.0.1;branch=;received\r\n",
            "Via: SIP/3.0/UDP 10.0.0.1;branch=z9hG4bKe\r\n",
        ];
        for via in vias {
            // After keep-alives, which the message drops in place.
            let text = format!(
                "\r\n\r\n{}",
                INVITE.replacen(
                    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n",
                    via,
                    1,
                )
            );
            let m = parse(&text).unwrap();
            let each_time = Via::parse(m.text(m.first_value(HeaderName::Via).unwrap()));
            assert_eq!(m.top_via(), each_time, "{via}");
            assert_eq!(m.top_via(), each_time, "read again: {via}");
            assert_eq!(m.clone().top_via(), each_time, "a copy: {via}");
        }
        assert_eq!(
            parse(&INVITE.replace("Via:", "X-Via:")).unwrap().top_via(),
            None
        );
    }

    #[test]
    fn parses_a_response() {
        let m =
            parse("SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nl: 0\r\n\r\n")
                .unwrap();
        assert_eq!(m.status(), Some(486));
        assert_eq!(m.method(), None);
        assert!(parse("SIP/2.0 99 Low\r\n\r\n").is_err());
        assert!(
            parse("SIP/2.0 200\r\n\r\n").is_ok(),
            "empty reason is tolerated"
        );
    }

    #[test]
    fn compact_forms_are_classified() {
        let m = parse(
            "OPTIONS sip:a@b SIP/2.0\r\nv: SIP/2.0/TCP h:5070;branch=z9hG4bKc\r\n\
             i: abc\r\nf: <sip:x@y>;tag=1\r\nt: sip:a@b\r\nm: <sip:c@d>\r\nl: 0\r\n\
             CSeq: 1 OPTIONS\r\ne: gzip\r\nk: 100rel\r\ns: hi\r\no: presence\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.call_id(), Some("abc"));
        assert_eq!(m.from_tag(), Some("1"));
        assert_eq!(m.top_via().unwrap().transport, "TCP");
        assert!(m.header(HeaderName::Contact).is_some());
        assert_eq!(
            m.headers
                .iter()
                .filter(|h| h.name == HeaderName::Other)
                .count(),
            4
        );
    }

    #[test]
    fn folded_lines_join_the_value() {
        let m = parse(
            "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1,\r\n  SIP/2.0/UDP h2;branch=z9hG4bK2\r\n\
             Subject: a\r\n\tfolded\r\n subject\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=2\r\n\r\n",
        )
        .unwrap();
        let vias: Vec<_> = m.values(HeaderName::Via).map(|r| m.text(r)).collect();
        assert_eq!(
            vias,
            [
                "SIP/2.0/UDP h1;branch=z9hG4bK1",
                "SIP/2.0/UDP h2;branch=z9hG4bK2"
            ]
        );
        let subject = &m.headers[1];
        assert!(m.text(subject.value.clone()).ends_with("subject"));
        assert!(m.text(subject.line.clone()).ends_with("subject\r\n"));
    }

    #[test]
    fn multi_value_via_across_headers() {
        let m = parse(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
             Via: SIP/2.0/UDP c;branch=z9hG4bK3;received=1.2.3.4;rport=99\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let vias: Vec<_> = m
            .values(HeaderName::Via)
            .map(|r| Via::parse(m.text(r)).unwrap())
            .collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[2].received, Some("1.2.3.4"));
        assert_eq!(vias[2].rport, Some(99));
    }

    #[test]
    fn quoted_commas_do_not_split() {
        let m = parse(
            "SIP/2.0 200 OK\r\nRoute: \"a, b\" <sip:p1;lr>, <sip:p2,x;lr>\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let routes: Vec<_> = m.values(HeaderName::Route).map(|r| m.text(r)).collect();
        assert_eq!(routes, ["\"a, b\" <sip:p1;lr>", "<sip:p2,x;lr>"]);
        assert_eq!(addr_uri(routes[0]), "sip:p1;lr");
    }

    #[test]
    fn content_length_frames_datagrams_and_streams() {
        let mut s = INVITE.to_string();
        s.push_str("garbage after body");
        let m = parse(&s).unwrap();
        assert_eq!(&m.bytes()[m.body_start..], b"v=0\n");
        let short = INVITE.replace("Content-Length: 4", "Content-Length: 40");
        assert_eq!(parse(&short).unwrap_err(), ParseError::ContentLength);
        let two = format!("{INVITE}{INVITE}");
        let n = frame(two.as_bytes()).unwrap().unwrap();
        assert_eq!(n, INVITE.len());
        assert_eq!(frame(&two.as_bytes()[..20]).unwrap(), None);
        assert_eq!(frame(b"\r\n\r\nINVITE").unwrap(), Some(4));
    }

    #[test]
    fn bad_messages_are_errors() {
        for bad in [
            "",
            "\r\n\r\n",
            "INVITE\r\n\r\n",
            "INVITE sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
            "INVITE sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
            "INVITE sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n",
            "INVITE sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab",
            "INVITE sip:a@b SIP/2.0\r\nVia: x\r\n",
            " folded first\r\n\r\n",
            "SIP/2.0 2000 OK\r\n\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn via_and_params() {
        let v = Via::parse("SIP / 2.0 / UDP [::1] : 5070 ; branch = z9hG4bKx ; rport").unwrap();
        assert_eq!(
            (v.host, v.port, v.branch),
            ("[::1]", Some(5070), Some("z9hG4bKx"))
        );
        assert_eq!(
            tag_param("\"A;tag=no\" <sip:a@b;tag=no>;tag=yes"),
            Some("yes")
        );
        assert_eq!(uri_user("sip:+1555@h;user=phone"), Some("+1555"));
        assert_eq!(uri_user("sip:h"), None);
    }
}

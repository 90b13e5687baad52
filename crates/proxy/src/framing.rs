//! The request-framing guard: follows the HTTP/1.x bytes a client sends, head by head and body by
//! body, and refuses what a front end and a back end could read differently (request smuggling:
//! both Content-Length and Transfer-Encoding, repeated or malformed lengths, transfer codings other
//! than chunked, bad chunk framing), plus heads over the size and count limits and malformed Host
//! values. It is sans-I/O: the connection adapter feeds it the bytes the client sends and hands
//! hyper what it gives back; the request handler takes one verdict per head, in order, with the
//! request target and headers exactly as sent (for the WAF: case, order and repeats intact).
//! hyper frames requests itself; the one rewrite here is percent-encoding the request-target
//! bytes hyper's URI parser refuses (`"`, `<`, `>`, `{`, non-ASCII...), which attacks use and
//! the WAF must see rather than hyper answering 400 on its own.

use std::collections::VecDeque;

/// Why a request is refused, and with which status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

/// A header field as the client sent it: name (case kept) and value.
pub type RawHeader = (Box<[u8]>, Box<[u8]>);

/// The guard's word on one request head, in the order the heads arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadVerdict {
    /// Forward it; `target` is the request target exactly as sent (absolute form included) and
    /// `headers` the header fields as sent.
    Accepted {
        target: Box<[u8]>,
        headers: Vec<RawHeader>,
    },
    Refused(Refusal),
}

#[derive(Debug, Clone, Copy)]
pub struct FramingLimits {
    /// Request line plus headers, in bytes.
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Default for FramingLimits {
    fn default() -> Self {
        FramingLimits {
            max_header_bytes: 32 << 10,
            max_headers: 100,
        }
    }
}

/// The HTTP/2 connection preface (RFC 9113 3.4): such a connection is not HTTP/1 framing.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A chunk-size or trailer line longer than this is refused.
const MAX_LINE: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a request head into `head`.
    Head,
    /// A body of known length: bytes still to come.
    Body(u64),
    /// Chunked body: reading a chunk-size line into `line`.
    ChunkSize,
    /// Chunk data still to come.
    ChunkData(u64),
    /// The CRLF after chunk data: how many of its two bytes have been seen.
    ChunkEnd(u8),
    /// Trailer lines after the last chunk, up to an empty line.
    Trailers,
    /// An HTTP/2 connection: nothing to follow.
    Passthrough,
    /// A refusal was issued; the connection is closed after answering it.
    Poisoned,
}

pub struct FramingGuard {
    limits: FramingLimits,
    state: State,
    head: Vec<u8>,
    line: Vec<u8>,
    trailer_bytes: usize,
    first_head: bool,
    verdicts: VecDeque<HeadVerdict>,
    body_refusal: Option<Refusal>,
    /// A head the HTTP parser will refuse (hyper answers it without a handler call): kept so the
    /// WAF can still log what it was.
    malformed: Option<Vec<u8>>,
}

impl FramingGuard {
    pub fn new(limits: FramingLimits) -> FramingGuard {
        FramingGuard {
            limits,
            state: State::Head,
            head: Vec::new(),
            line: Vec::new(),
            trailer_bytes: 0,
            first_head: true,
            verdicts: VecDeque::new(),
            body_refusal: None,
            malformed: None,
        }
    }

    /// The next head's verdict, in arrival order.
    pub fn take_verdict(&mut self) -> Option<HeadVerdict> {
        self.verdicts.pop_front()
    }

    /// The head the HTTP parser will refuse, once (see [`FramingGuard::feed`]).
    pub fn take_malformed(&mut self) -> Option<Vec<u8>> {
        self.malformed.take()
    }

    /// A refusal found in a body after its head was accepted (bad chunk framing).
    pub fn body_refusal(&self) -> Option<Refusal> {
        self.body_refusal
    }

    /// Between requests with nothing of the next one read: the connection is idle.
    pub fn is_idle(&self) -> bool {
        self.state == State::Head && self.head.is_empty()
    }

    /// Part of a head has arrived but not all of it.
    pub fn is_reading_head(&self) -> bool {
        self.state == State::Head && !self.head.is_empty()
    }

    /// A first request head (or the HTTP/2 preface) has come: the connection is in use.
    pub fn has_started(&self) -> bool {
        !self.first_head || self.state != State::Head
    }

    pub fn is_http2(&self) -> bool {
        self.state == State::Passthrough
    }

    /// Follows `bytes`, the next bytes the client sent, and appends to `out` what hyper should
    /// read: the same bytes, except that a head is held back until it is complete and may come
    /// out with its request target percent-encoded.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        while !bytes.is_empty() {
            match self.state {
                State::Passthrough | State::Poisoned => {
                    out.extend_from_slice(bytes);
                    return;
                }
                State::Head => {
                    let before = self.head.len();
                    let room = self.limits.max_header_bytes + 4 - before.min(self.limits.max_header_bytes);
                    let take = bytes.len().min(room);
                    self.head.extend_from_slice(&bytes[..take]);
                    match self.try_head(before) {
                        Some((consumed, target)) => {
                            // Bytes of the head buffer past the head belong to the body or the next
                            // request; hand them back to the loop.
                            emit_head(&self.head[..consumed], &target, out);
                            let extra = self.head.len() - consumed;
                            let rest_from = take - extra.min(take);
                            self.head.clear();
                            bytes = &bytes[rest_from..];
                        }
                        None => {
                            if self.state != State::Head {
                                // Refused, or HTTP/2: what was held goes on unchanged.
                                out.extend_from_slice(&self.head);
                                self.head.clear();
                            }
                            bytes = &bytes[take..];
                        }
                    }
                }
                State::Body(remaining) => {
                    let n = (bytes.len() as u64).min(remaining) as usize;
                    out.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.state = if remaining == n as u64 {
                        State::Head
                    } else {
                        State::Body(remaining - n as u64)
                    };
                }
                State::ChunkData(remaining) => {
                    let n = (bytes.len() as u64).min(remaining) as usize;
                    out.extend_from_slice(&bytes[..n]);
                    bytes = &bytes[n..];
                    self.state = if remaining == n as u64 {
                        State::ChunkEnd(0)
                    } else {
                        State::ChunkData(remaining - n as u64)
                    };
                }
                State::ChunkEnd(seen) => {
                    let expected = if seen == 0 { b'\r' } else { b'\n' };
                    if bytes[0] != expected {
                        self.refuse_body("chunk data not followed by CRLF");
                        continue;
                    }
                    out.push(bytes[0]);
                    bytes = &bytes[1..];
                    self.state = if seen == 0 {
                        State::ChunkEnd(1)
                    } else {
                        State::ChunkSize
                    };
                }
                State::ChunkSize | State::Trailers => {
                    let Some(end) = memchr_newline(bytes) else {
                        if self.line.len() + bytes.len() > MAX_LINE {
                            self.refuse_body("chunk line too long");
                            continue;
                        }
                        self.line.extend_from_slice(bytes);
                        out.extend_from_slice(bytes);
                        return;
                    };
                    if self.line.len() + end > MAX_LINE {
                        self.refuse_body("chunk line too long");
                        continue;
                    }
                    self.line.extend_from_slice(&bytes[..end]);
                    out.extend_from_slice(&bytes[..=end]);
                    bytes = &bytes[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    let Some(line) = line.strip_suffix(b"\r") else {
                        self.refuse_body("chunk line not terminated by CRLF");
                        continue;
                    };
                    if self.state == State::ChunkSize {
                        match chunk_size(line) {
                            Some(0) => {
                                self.trailer_bytes = 0;
                                self.state = State::Trailers;
                            }
                            Some(n) => self.state = State::ChunkData(n),
                            None => self.refuse_body("invalid chunk size"),
                        }
                    } else if line.is_empty() {
                        self.state = State::Head;
                    } else {
                        self.trailer_bytes += line.len() + 2;
                        if self.trailer_bytes > self.limits.max_header_bytes {
                            self.refuse_body("trailers too large");
                        }
                    }
                }
            }
        }
    }

    fn refuse_body(&mut self, reason: &'static str) {
        self.body_refusal = Some(Refusal { status: 400, reason });
        self.state = State::Poisoned;
    }

    fn refuse_head(&mut self, status: u16, reason: &'static str) {
        self.verdicts
            .push_back(HeadVerdict::Refused(Refusal { status, reason }));
        self.state = State::Poisoned;
    }

    /// Parses the head buffer if it may now hold a complete head (`before`: its length before the
    /// last append). Returns how many buffer bytes the head took and its request target, when it
    /// is complete and accepted.
    fn try_head(&mut self, before: usize) -> Option<(usize, Box<[u8]>)> {
        if self.first_head {
            let n = self.head.len().min(H2_PREFACE.len());
            if self.head[..n] == H2_PREFACE[..n] {
                if n == H2_PREFACE.len() {
                    self.state = State::Passthrough;
                }
                return None;
            }
        }
        // Only look for the end of the head in what just arrived (plus three bytes of overlap),
        // so a head trickled in byte by byte costs linear time.
        let from = before.saturating_sub(3);
        let tail = &self.head[from..];
        let ends =
            memchr::memmem::find(tail, b"\n\r\n").is_some() || memchr::memmem::find(tail, b"\n\n").is_some();
        if !ends {
            if self.head.len() > self.limits.max_header_bytes {
                self.refuse_head(431, "request head too large");
            }
            return None;
        }
        let mut headers = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut request = httparse::Request::new(&mut headers);
        let consumed = match request.parse(&self.head) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                if self.head.len() > self.limits.max_header_bytes {
                    self.refuse_head(431, "request head too large");
                }
                return None;
            }
            Err(httparse::Error::TooManyHeaders) => {
                self.refuse_head(431, "too many request headers");
                return None;
            }
            Err(_) => {
                let end = memchr::memmem::find(&self.head, b"\n\r\n")
                    .or_else(|| memchr::memmem::find(&self.head, b"\n\n"))
                    .map_or(self.head.len(), |e| e + 1);
                self.malformed = Some(self.head[..end.min(self.limits.max_header_bytes)].to_vec());
                self.refuse_head(400, "malformed request head");
                return None;
            }
        };
        self.first_head = false;
        if consumed > self.limits.max_header_bytes {
            self.refuse_head(431, "request head too large");
            return None;
        }
        let analysis = analyse(&request);
        match analysis {
            Err(refusal) => {
                self.refuse_head(refusal.status, refusal.reason);
                None
            }
            Ok((framing, target)) => {
                let headers = request
                    .headers
                    .iter()
                    .map(|h| (h.name.as_bytes().into(), h.value.into()))
                    .collect();
                self.verdicts.push_back(HeadVerdict::Accepted {
                    target: target.clone(),
                    headers,
                });
                self.state = match framing {
                    Framing::None => State::Head,
                    Framing::Length(0) => State::Head,
                    Framing::Length(n) => State::Body(n),
                    Framing::Chunked => State::ChunkSize,
                };
                Some((consumed, target))
            }
        }
    }
}

enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// The checks on one parsed head.
fn analyse(request: &httparse::Request<'_, '_>) -> Result<(Framing, Box<[u8]>), Refusal> {
    let refuse = |status, reason| Err(Refusal { status, reason });
    let target = request.path.unwrap_or("/");
    if target.contains('#') {
        return refuse(400, "fragment in the request target");
    }
    let http10 = request.version == Some(0);
    let mut content_length: Option<u64> = None;
    let mut lengths = 0usize;
    let mut transfer_encodings = 0usize;
    let mut hosts = 0usize;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            lengths += 1;
            let value = trim(header.value);
            if value.is_empty() || value.len() > 15 || !value.iter().all(u8::is_ascii_digit) {
                return refuse(400, "invalid Content-Length");
            }
            content_length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encodings += 1;
            if !trim(header.value).eq_ignore_ascii_case(b"chunked") {
                return refuse(501, "unsupported Transfer-Encoding (only chunked)");
            }
        } else if name.eq_ignore_ascii_case("host") {
            hosts += 1;
            if !valid_host(trim(header.value)) {
                return refuse(400, "invalid Host header");
            }
        }
    }
    if lengths > 1 {
        return refuse(400, "more than one Content-Length");
    }
    if transfer_encodings > 1 {
        return refuse(400, "more than one Transfer-Encoding");
    }
    if hosts > 1 {
        return refuse(400, "more than one Host");
    }
    if transfer_encodings > 0 && lengths > 0 {
        return refuse(400, "both Content-Length and Transfer-Encoding");
    }
    if transfer_encodings > 0 && http10 {
        return refuse(400, "Transfer-Encoding in an HTTP/1.0 request");
    }
    let framing = if transfer_encodings > 0 {
        Framing::Chunked
    } else {
        match content_length {
            Some(n) => Framing::Length(n),
            None if lengths > 0 => return refuse(400, "invalid Content-Length"),
            None => Framing::None,
        }
    };
    Ok((framing, target.as_bytes().into()))
}

fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &value[start..end.max(start)]
}

/// A Host value: a registered name, IPv4 or bracketed IPv6 literal, and an optional port. Percent
/// signs, control characters, spaces, `@` and `/` are refused, as Apache does.
pub fn valid_host(value: &[u8]) -> bool {
    let (host, port) = if value.first() == Some(&b'[') {
        let Some(close) = value.iter().position(|&b| b == b']') else {
            return false;
        };
        let inside = &value[1..close];
        if !inside
            .iter()
            .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
        {
            return false;
        }
        (&value[..0], &value[close + 1..])
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &value[..0]),
        }
    };
    let port_ok =
        port.is_empty() || (port[0] == b':' && port.len() <= 6 && port[1..].iter().all(u8::is_ascii_digit));
    port_ok
        && host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Bytes of a request target that hyper's URI parser (the `http` crate) accepts as they are.
fn uri_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
                | b'%'
        )
}

/// Writes `head` to `out` with the bytes of its request target that hyper would refuse
/// percent-encoded (the authority of an absolute-form target stays as it is).
fn emit_head(head: &[u8], target: &[u8], out: &mut Vec<u8>) {
    let start = memchr::memchr(b' ', head).map(|i| i + 1);
    let Some(start) = start.filter(|&s| head[s..].starts_with(target)) else {
        out.extend_from_slice(head);
        return;
    };
    let path_from = match target.windows(3).position(|w| w == b"://") {
        Some(i) if target[..i].iter().all(u8::is_ascii_alphabetic) => target[i + 3..]
            .iter()
            .position(|&b| b == b'/')
            .map_or(target.len(), |p| i + 3 + p),
        _ => 0,
    };
    if target[path_from..].iter().all(|&b| uri_safe(b)) {
        out.extend_from_slice(head);
        return;
    }
    out.extend_from_slice(&head[..start + path_from]);
    for &b in &target[path_from..] {
        if uri_safe(b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out.extend_from_slice(&head[start + target.len()..]);
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

/// A chunk-size line without its CRLF: hex digits, then optional extensions after `;`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return None;
    }
    let rest = trim(&line[digits..]);
    if !rest.is_empty() && rest[0] != b';' {
        return None;
    }
    let text = std::str::from_utf8(&line[..digits]).ok()?;
    u64::from_str_radix(text, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(input: &[&[u8]]) -> (Vec<HeadVerdict>, Option<Refusal>) {
        let mut g = FramingGuard::new(FramingLimits::default());
        let mut passed = Vec::new();
        for part in input {
            g.feed(part, &mut passed);
        }
        let mut out = Vec::new();
        while let Some(v) = g.take_verdict() {
            out.push(v);
        }
        (out, g.body_refusal())
    }

    fn refused(v: &HeadVerdict) -> Option<(u16, &'static str)> {
        match v {
            HeadVerdict::Refused(r) => Some((r.status, r.reason)),
            HeadVerdict::Accepted { .. } => None,
        }
    }

    #[test]
    fn pipelined_requests_with_bodies_are_followed() {
        let input: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\nGET /d?q=1 HTTP/1.1\r\n\r\n";
        let (v, body) = verdicts(&[input]);
        assert_eq!(body, None);
        let targets: Vec<&[u8]> = v
            .iter()
            .map(|v| match v {
                HeadVerdict::Accepted { target, .. } => &target[..],
                HeadVerdict::Refused(r) => panic!("refused: {r:?}"),
            })
            .collect();
        assert_eq!(targets, vec![&b"/a"[..], b"/b", b"/c", b"/d?q=1"]);
    }

    #[test]
    fn byte_by_byte_gives_the_same_verdicts() {
        let input: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET http://x/b HTTP/1.1\r\nHost: x\r\n\r\n";
        let parts: Vec<&[u8]> = input.chunks(1).collect();
        let (v, body) = verdicts(&parts);
        assert_eq!(body, None);
        assert_eq!(v.len(), 2);
        match &v[1] {
            HeadVerdict::Accepted { target, headers } => {
                assert_eq!(&target[..], b"http://x/b");
                assert_eq!(headers, &vec![(b"Host"[..].into(), b"x"[..].into())]);
            }
            other => panic!("{other:?}"),
        }
    }

    fn passed_on(parts: &[&[u8]]) -> Vec<u8> {
        let mut g = FramingGuard::new(FramingLimits::default());
        let mut out = Vec::new();
        for part in parts {
            g.feed(part, &mut out);
        }
        out
    }

    #[test]
    fn clean_traffic_passes_on_unchanged_however_it_is_split() {
        let input: &[u8] = b"POST /a?x=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET http://[::1]:8080/c HTTP/1.1\r\n\r\n";
        assert_eq!(passed_on(&[input]), input);
        for size in [1, 2, 7, 64] {
            let parts: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(passed_on(&parts), input, "chunks of {size}");
        }
        let h2 = [H2_PREFACE, b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"].concat();
        assert_eq!(passed_on(&[&h2[..5], &h2[5..]]), h2);
    }

    #[test]
    fn targets_hyper_refuses_are_percent_encoded_for_it_and_kept_raw_for_the_waf() {
        let input: &[u8] = b"GET /search?q=\"<script>\"&x={a|b}^`\\\xc3\xa9 HTTP/1.1\r\nReferer: x\r\n\r\n";
        let mut g = FramingGuard::new(FramingLimits::default());
        let mut out = Vec::new();
        g.feed(input, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /search?q=%22%3Cscript%3E%22&x=%7Ba%7Cb%7D%5E%60%5C%C3%A9 HTTP/1.1\r\nReferer: x\r\n\r\n"
        );
        match g.take_verdict() {
            Some(HeadVerdict::Accepted { target, headers }) => {
                assert_eq!(&target[..], &b"/search?q=\"<script>\"&x={a|b}^`\\\xc3\xa9"[..]);
                assert_eq!(&headers[0].0[..], b"Referer", "the name's case as sent");
            }
            other => panic!("{other:?}"),
        }
        // The authority of an absolute-form target is left alone.
        let mut out = Vec::new();
        FramingGuard::new(FramingLimits::default())
            .feed(b"GET http://[::1]:80/a<b HTTP/1.1\r\n\r\n", &mut out);
        assert_eq!(out, b"GET http://[::1]:80/a%3Cb HTTP/1.1\r\n\r\n");
        // A refused head goes on unchanged (hyper answers it or the handler takes the refusal).
        let refused: &[u8] =
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nxGET / HTTP/1.1\r\n\r\n";
        assert_eq!(passed_on(&[refused]), refused);
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let cases: &[(&[u8], u16, &str)] = &[
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
                "both Content-Length and Transfer-Encoding",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n",
                400,
                "both Content-Length and Transfer-Encoding",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
                400,
                "more than one Content-Length",
            ),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 4\r\n\r\n", 400, "invalid Content-Length"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\n", 400, "invalid Content-Length"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", 400, "invalid Content-Length"),
            (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n", 400, "invalid Content-Length"),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                501,
                "unsupported Transfer-Encoding (only chunked)",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
                501,
                "unsupported Transfer-Encoding (only chunked)",
            ),
            (
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
                "more than one Transfer-Encoding",
            ),
            (
                b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                400,
                "Transfer-Encoding in an HTTP/1.0 request",
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"),
            (b"GET / HTTP/1.1\r\nHost: localhost%00\r\n\r\n", 400, "invalid Host header"),
            (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host header"),
            (b"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400, "invalid Host header"),
            (b"GET /#frag HTTP/1.1\r\nHost: x\r\n\r\n", 400, "fragment in the request target"),
            (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "malformed request head"),
            (b"GET / HTTP/4.0\r\nHost: x\r\n\r\n", 400, "malformed request head"),
        ];
        for (input, status, reason) in cases {
            let (v, _) = verdicts(&[input]);
            assert_eq!(v.len(), 1, "{}", String::from_utf8_lossy(input));
            assert_eq!(
                refused(&v[0]),
                Some((*status, *reason)),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn valid_hosts_pass() {
        for host in [
            "localhost",
            "a.example:8080",
            "[::1]:80",
            "[::1]",
            "10.0.0.1",
            "",
            "x_y-z~",
        ] {
            assert!(valid_host(host.as_bytes()), "{host}");
        }
    }

    #[test]
    fn nothing_after_a_refusal_is_followed() {
        let (v, _) = verdicts(&[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        ]);
        assert_eq!(v.len(), 1);
        assert!(refused(&v[0]).is_some());
    }

    #[test]
    fn bad_chunks_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (b"zz\r\n", "invalid chunk size"),
            (b"\r\n", "invalid chunk size"),
            (b"5 x\r\nhello\r\n", "invalid chunk size"),
            (b"10000000000000000\r\n", "invalid chunk size"),
            (b"5\nhello\r\n", "chunk line not terminated by CRLF"),
            (b"5\r\nhelloXX0\r\n\r\n", "chunk data not followed by CRLF"),
        ];
        for (body, reason) in cases {
            let head: &[u8] = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
            let (v, refusal) = verdicts(&[head, body]);
            assert!(matches!(v[0], HeadVerdict::Accepted { .. }));
            assert_eq!(
                refusal.map(|r| r.reason),
                Some(*reason),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let long = vec![b'1'; MAX_LINE + 10];
        let (_, refusal) = verdicts(&[b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &long]);
        assert_eq!(refusal.map(|r| r.reason), Some("chunk line too long"));
    }

    #[test]
    fn head_limits_give_431() {
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let (v, _) = verdicts(&[&many]);
        assert_eq!(refused(&v[0]), Some((431, "too many request headers")));

        let mut big = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', 40 << 10));
        let (v, _) = verdicts(&[&big]);
        assert_eq!(refused(&v[0]), Some((431, "request head too large")));
        // The same, trickled: refused as soon as the limit is passed, without waiting for the end.
        let mut g = FramingGuard::new(FramingLimits::default());
        for part in big.chunks(1000) {
            g.feed(part, &mut Vec::new());
        }
        assert_eq!(
            g.take_verdict().as_ref().and_then(refused),
            Some((431, "request head too large"))
        );
    }

    #[test]
    fn http2_preface_switches_to_passthrough() {
        let mut g = FramingGuard::new(FramingLimits::default());
        g.feed(&H2_PREFACE[..10], &mut Vec::new());
        assert!(!g.is_http2());
        g.feed(&H2_PREFACE[10..], &mut Vec::new());
        g.feed(
            b"\x00\x00\x12\x04\x00\x00\x00\x00\x00garbage that is not HTTP/1\r\n\r\n",
            &mut Vec::new(),
        );
        assert!(g.is_http2());
        assert_eq!(g.take_verdict(), None);
    }

    #[test]
    fn idle_and_reading_states() {
        let mut g = FramingGuard::new(FramingLimits::default());
        assert!(g.is_idle());
        g.feed(b"GET / HT", &mut Vec::new());
        assert!(g.is_reading_head());
        g.feed(b"TP/1.1\r\nHost: x\r\n\r\n", &mut Vec::new());
        assert!(g.is_idle());
    }
}

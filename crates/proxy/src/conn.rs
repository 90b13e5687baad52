//! One client connection's guard rails: the byte stream goes through the framing guard on its way
//! to hyper, idle and slow-head connections are cut after their timeouts, and connections are
//! counted per client address so one address cannot take them all.

use crate::framing::FramingGuard;
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// What the connection adapter and the request handler share about one connection.
pub(crate) struct ConnShared {
    pub guard: FramingGuard,
    /// Requests of this connection being handled: no idle timeout runs meanwhile.
    pub in_flight: usize,
    /// Called with a head hyper will refuse without calling the handler (so the WAF can log it);
    /// true drops the connection without an answer.
    pub on_malformed: Option<MalformedHook>,
}

pub(crate) type MalformedHook = Box<dyn Fn(&[u8]) -> bool + Send>;

pub(crate) type SharedConn = Arc<Mutex<ConnShared>>;

pub(crate) fn lock(shared: &SharedConn) -> std::sync::MutexGuard<'_, ConnShared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a request in flight on its connection for as long as it lives.
pub(crate) struct InFlight(SharedConn);

impl InFlight {
    pub fn new(shared: &SharedConn) -> InFlight {
        lock(shared).in_flight += 1;
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut s = lock(&self.0);
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// From the first byte of a request head to its end (slowloris).
    pub header: Duration,
    /// With no request in flight and nothing of the next one read.
    pub idle: Duration,
}

/// The client stream, followed by the framing guard and cut on timeouts.
pub(crate) struct GuardedIo<S> {
    inner: S,
    shared: SharedConn,
    timeouts: Timeouts,
    last_activity: Instant,
    head_started: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    timer_deadline: Option<Instant>,
    /// What the guard gave back for hyper when it differs from what was read (a head held until
    /// complete, a rewritten request target), and how much of it hyper has taken.
    pending: Vec<u8>,
    pending_taken: usize,
    /// Set once the write side is shut mid-request: bytes drained since.
    linger: Option<usize>,
}

impl<S> GuardedIo<S> {
    pub fn new(inner: S, shared: SharedConn, timeouts: Timeouts) -> GuardedIo<S> {
        let now = Instant::now();
        GuardedIo {
            inner,
            shared,
            timeouts,
            last_activity: now,
            head_started: None,
            timer: Box::pin(tokio::time::sleep_until(now + timeouts.idle)),
            timer_deadline: None,
            pending: Vec::new(),
            pending_taken: 0,
            linger: None,
        }
    }

    /// When the connection should be cut if nothing more arrives, given where it is.
    fn deadline(&self) -> Option<Instant> {
        let s = lock(&self.shared);
        if s.in_flight > 0 {
            return None;
        }
        if s.guard.is_reading_head() {
            return Some(self.head_started.unwrap_or(self.last_activity) + self.timeouts.header);
        }
        if !s.guard.has_started() {
            // A new connection gets the header timeout for its first request, as nginx does: a
            // client that connects and sends nothing is a slowloris too.
            return Some(self.last_activity + self.timeouts.header);
        }
        if s.guard.is_idle() || s.guard.is_http2() {
            return Some(self.last_activity + self.timeouts.idle);
        }
        // Inside a body: the handler enforces the minimum body rate.
        None
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pending_taken < this.pending.len() {
                let n = (this.pending.len() - this.pending_taken).min(buf.remaining());
                buf.put_slice(&this.pending[this.pending_taken..this.pending_taken + n]);
                this.pending_taken += n;
                return Poll::Ready(Ok(()));
            }
            this.pending.clear();
            this.pending_taken = 0;
            let before = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {
                    crate::busy::note_progress();
                    let new = &buf.filled()[before..];
                    if new.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    let now = Instant::now();
                    this.last_activity = now;
                    let mut s = lock(&this.shared);
                    s.guard.feed(new, &mut this.pending);
                    if let Some(head) = s.guard.take_malformed()
                        && s.on_malformed.as_ref().is_some_and(|hook| hook(&head))
                    {
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "request without an HTTP version",
                        )));
                    }
                    if s.guard.is_reading_head() {
                        this.head_started.get_or_insert(now);
                    } else {
                        this.head_started = None;
                    }
                    drop(s);
                    // Usually the guard gives back exactly what was read: leave it in place.
                    if this.pending.as_slice() == new {
                        this.pending.clear();
                        return Poll::Ready(Ok(()));
                    }
                    buf.set_filled(before);
                    // Serve what the guard gave back, or read on if it holds everything so far.
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    let Some(deadline) = this.deadline() else {
                        return Poll::Pending;
                    };
                    if this.timer_deadline != Some(deadline) {
                        this.timer.as_mut().reset(deadline);
                        this.timer_deadline = Some(deadline);
                    }
                    if this.timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "client timed out",
                        )));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// After an answer that ends a request early (413, 400 on a bad body) the client may still be
/// sending: closing at once would make the kernel reset the connection and the client lose the
/// answer. Like nginx's lingering close, the rest is read and dropped, within these bounds.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 << 20;

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.linger.is_none() {
            let mid_request = !lock(&this.shared).guard.is_idle();
            std::task::ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            if !mid_request {
                return Poll::Ready(Ok(()));
            }
            let deadline = Instant::now() + LINGER_TIME;
            this.timer.as_mut().reset(deadline);
            this.timer_deadline = Some(deadline);
            this.linger = Some(0);
        }
        let mut scratch = [0u8; 8192];
        loop {
            let drained = this.linger.unwrap_or(0);
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if !rb.filled().is_empty() && drained < LINGER_BYTES => {
                    this.linger = Some(drained + rb.filled().len());
                }
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    return if this.timer.as_mut().poll(cx).is_ready() {
                        Poll::Ready(Ok(()))
                    } else {
                        Poll::Pending
                    };
                }
            }
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Open connections, in total and per client address.
pub struct ConnectionLimiter {
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; it is counted until dropped.
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRefusal {
    Total,
    PerAddress,
}

impl ConnectionLimiter {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnectionLimiter> {
        Arc::new(ConnectionLimiter {
            max_total,
            max_per_ip,
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionPermit, ConnectionRefusal> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if self.total.load(Ordering::Relaxed) >= self.max_total {
            return Err(ConnectionRefusal::Total);
        }
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(ConnectionRefusal::PerAddress);
        }
        *count += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(ConnectionPermit {
            limiter: self.clone(),
            ip,
        })
    }

    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut per_ip = self.limiter.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.limiter.total.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_address_and_in_total() {
        let limiter = ConnectionLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let a1 = limiter.admit(a).unwrap();
        let _a2 = limiter.admit(a).unwrap();
        assert_eq!(limiter.admit(a).err(), Some(ConnectionRefusal::PerAddress));
        let _b1 = limiter.admit(b).unwrap();
        assert_eq!(limiter.admit(b).err(), Some(ConnectionRefusal::Total));
        drop(a1);
        assert_eq!(limiter.open(), 2);
        assert!(limiter.admit(a).is_ok());
    }
}

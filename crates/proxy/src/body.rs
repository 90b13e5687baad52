//! Bodies on their way through the proxy: what was buffered for inspection goes first, the rest
//! streams from the other side as it arrives, counted against the size bound, so memory per
//! request stays at the inspection limit whatever the body's size.

use crate::conn::{SharedConn, lock};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Every body the proxy sends, to the client or upstream.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A complete body from bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// Why a streamed body stopped early.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("request framing refused: {0}")]
    Framing(&'static str),
}

/// The buffered prefix, then the rest of `rest`.
pub(crate) struct Prefixed {
    prefix: Option<Bytes>,
    rest: Option<Incoming>,
    /// Bytes allowed in total, prefix included.
    limit: usize,
    sent: usize,
    /// For request bodies: the connection whose framing guard may refuse the rest (bad chunks).
    conn: Option<SharedConn>,
}

impl Prefixed {
    pub(crate) fn boxed_body(
        prefix: Vec<u8>,
        rest: Option<Incoming>,
        limit: usize,
        conn: Option<SharedConn>,
    ) -> ProxyBody {
        let sent = prefix.len();
        Prefixed {
            prefix: (!prefix.is_empty()).then(|| Bytes::from(prefix)),
            rest,
            limit,
            sent,
            conn,
        }
        .boxed()
    }
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(prefix) = this.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        let Some(rest) = this.rest.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(rest).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len();
                    if this.sent > this.limit {
                        this.rest = None;
                        return Poll::Ready(Some(Err(Box::new(StreamError::TooLarge(this.limit)))));
                    }
                }
                if let Some(refusal) = this.conn.as_ref().and_then(|c| lock(c).guard.body_refusal()) {
                    this.rest = None;
                    return Poll::Ready(Some(Err(Box::new(StreamError::Framing(refusal.reason)))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.rest = None;
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                this.rest = None;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.as_ref().is_none_or(|r| r.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let prefix = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        match &self.rest {
            None => SizeHint::with_exact(prefix),
            Some(rest) => {
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + prefix);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + prefix);
                }
                hint
            }
        }
    }
}

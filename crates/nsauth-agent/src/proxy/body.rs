//! Request bodies on their way to NetSuite: held whole when a retry after a 401 may need
//! them a second time (up to a cap), streamed otherwise; and a caller who stops sending
//! in the middle of a body is cut off instead of holding the agent forever.

use crate::body::BodyError;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// A request body ready to go upstream.
pub(crate) enum Outgoing {
    /// Read whole (at most the cap): can be sent twice.
    Whole(Bytes),
    /// Too large to hold, or no retry possible: streamed once.
    Stream(reqwest::Body),
}

/// Why the caller's body could not be read.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The caller sent nothing for too long, or not all of it in time.
    Slow,
    /// The caller's connection broke or the body was malformed.
    Broken,
}

/// How long a caller may take over its body.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pace {
    /// The longest silence between two pieces.
    pub idle: Duration,
    /// The longest time for the whole body.
    pub total: Duration,
}

/// Reads the caller's body whole if it may need sending twice and fits in `cap`; otherwise
/// (or once more than `cap` bytes arrived) streams it, starting with what was read. `stalled`
/// is set when the caller's slowness, not a broken connection, ends the body.
pub(crate) async fn prepare<B>(
    body: B,
    hold: bool,
    cap: usize,
    pace: Pace,
    stalled: Arc<AtomicBool>,
) -> Result<Outgoing, Fault>
where
    B: HttpBody<Data = Bytes> + Send + Sync + Unpin + 'static,
    B::Error: Into<BodyError>,
{
    let declared = body.size_hint().lower();
    let mut body = Guarded::new(body, pace, stalled.clone(), CALLER_SILENT);
    if !hold || declared > cap as u64 {
        return Ok(Outgoing::Stream(reqwest::Body::wrap(body)));
    }
    let mut read = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| {
            if stalled.load(Ordering::SeqCst) {
                Fault::Slow
            } else {
                Fault::Broken
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers: nothing NetSuite reads
        };
        read += data.len();
        body.held.push_back(data);
        if read > cap {
            body.replay = true;
            return Ok(Outgoing::Stream(reqwest::Body::wrap(body)));
        }
    }
    let mut whole = BytesMut::with_capacity(read);
    for piece in body.held.drain(..) {
        whole.extend_from_slice(&piece);
    }
    Ok(Outgoing::Whole(whole.freeze()))
}

const CALLER_SILENT: &str = "the caller stopped sending its request body";

/// NetSuite's response body, ended with an error when NetSuite stays silent for `idle` in
/// the middle of it (the agent then lets go of the connection).
pub(crate) fn upstream_guard<B>(body: B, idle: Duration) -> Guarded<B> {
    let pace = Pace {
        idle,
        total: Duration::from_secs(7 * 24 * 3600),
    };
    let silent = "NetSuite stopped sending the response body";
    Guarded::new(body, pace, Arc::new(AtomicBool::new(false)), silent)
}

/// A body with a silence timer and an overall deadline, preceded by the pieces already read
/// (when `replay`).
pub(crate) struct Guarded<B> {
    silent: &'static str,
    held: VecDeque<Bytes>,
    replay: bool,
    inner: B,
    idle: Duration,
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
    stalled: Arc<AtomicBool>,
}

impl<B> Guarded<B> {
    fn new(inner: B, pace: Pace, stalled: Arc<AtomicBool>, silent: &'static str) -> Self {
        let now = Instant::now();
        let deadline = now + pace.total;
        Self {
            silent,
            held: VecDeque::new(),
            replay: false,
            inner,
            idle: pace.idle,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline.min(now + pace.idle))),
            stalled,
        }
    }

    fn held_len(&self) -> u64 {
        if self.replay {
            self.held.iter().map(|b| b.len() as u64).sum()
        } else {
            0
        }
    }
}

impl<B> HttpBody for Guarded<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.replay {
            if let Some(piece) = this.held.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = this.deadline.min(Instant::now() + this.idle);
                this.timer.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.stalled.store(true, Ordering::SeqCst);
                    Poll::Ready(Some(Err(this.silent.into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        (!self.replay || self.held.is_empty()) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let held = self.held_len();
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + held);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

/// A response body that holds something (the proxy's in-flight permit) until it is dropped.
pub(crate) struct Holding<B, T> {
    pub(crate) body: B,
    pub(crate) _held: T,
}

impl<B: HttpBody + Unpin, T: Unpin> HttpBody for Holding<B, T> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;

    const PACE: Pace = Pace {
        idle: Duration::from_secs(5),
        total: Duration::from_secs(60),
    };

    fn flag() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    /// A body of unknown length in pieces; then silent forever if `hang`.
    struct Pieces {
        left: VecDeque<Bytes>,
        hang: bool,
    }

    impl HttpBody for Pieces {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            let this = self.get_mut();
            match this.left.pop_front() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None if this.hang => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    fn pieces(n: u8, hang: bool) -> Pieces {
        Pieces {
            left: (0..n).map(|i| Bytes::from(vec![b'a' + i; 4])).collect(),
            hang,
        }
    }

    #[tokio::test]
    async fn a_small_body_is_held_whole_and_a_large_one_streamed_complete() {
        let out = prepare(Full::new(Bytes::from("abc")), true, 10, PACE, flag())
            .await
            .unwrap();
        assert!(matches!(out, Outgoing::Whole(ref b) if b == "abc"));

        // Unknown length, more than the cap: the pieces read so far lead the stream.
        let out = prepare(pieces(5, false), true, 10, PACE, flag())
            .await
            .unwrap();
        let Outgoing::Stream(s) = out else {
            panic!("20 bytes over a cap of 10 were held")
        };
        let got = s.collect().await.unwrap().to_bytes();
        assert_eq!(got, "aaaabbbbccccddddeeee");
    }

    #[tokio::test]
    async fn a_caller_that_stops_sending_is_cut_off() {
        let quick = Pace {
            idle: Duration::from_millis(50),
            total: Duration::from_secs(5),
        };
        let stalled = flag();
        let out = prepare(pieces(1, true), true, 10, quick, stalled.clone()).await;
        assert!(matches!(out, Err(Fault::Slow)), "{:?}", out.err());
        assert!(stalled.load(Ordering::SeqCst));

        // Streamed (no retry possible): the stream ends with an error instead.
        let stalled = flag();
        let Ok(Outgoing::Stream(s)) =
            prepare(pieces(1, true), false, 10, quick, stalled.clone()).await
        else {
            panic!("not streamed")
        };
        assert!(s.collect().await.is_err());
        assert!(stalled.load(Ordering::SeqCst));
    }
}

//! The bodies the layer hands on: [`RequestBody`] to the inner service and
//! [`ResponseBody`] back to the caller.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// A boxed error, as tower and hyper use.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// The request body the inner service receives.
    ///
    /// Usually the inspected body, held in memory. When a body is larger than the layer's
    /// limit and the policy routes such requests in-house, it is the part already read
    /// followed by the rest of the original body, streamed unread.
    pub struct RequestBody<B> {
        #[pin]
        kind: RequestKind<B>,
    }
}

pin_project! {
    #[project = RequestKindProj]
    enum RequestKind<B> {
        Full { data: Option<Bytes> },
        Chained { prefix: Option<Bytes>, rest: Pin<Box<B>> },
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn full(data: Bytes) -> RequestBody<B> {
        RequestBody {
            kind: RequestKind::Full {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    pub(crate) fn chained(prefix: Bytes, rest: Pin<Box<B>>) -> RequestBody<B> {
        RequestBody {
            kind: RequestKind::Chained {
                prefix: (!prefix.is_empty()).then_some(prefix),
                rest,
            },
        }
    }
}

impl<B> Body for RequestBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            RequestKindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            RequestKindProj::Chained { prefix, rest } => {
                if let Some(p) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(p))));
                }
                match rest.as_mut().poll_frame(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(
                        frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))
                    ))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            RequestKind::Full { data } => data.is_none(),
            RequestKind::Chained { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            RequestKind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            RequestKind::Chained { prefix, rest } => {
                let p = prefix.as_ref().map_or(0, |d| d.len() as u64);
                let r = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(p + r.lower());
                if let Some(upper) = r.upper() {
                    hint.set_upper(p + upper);
                }
                hint
            }
        }
    }
}

impl<B> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            RequestKind::Full { data } => f
                .debug_struct("RequestBody::Full")
                .field("bytes", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
            RequestKind::Chained { prefix, .. } => f
                .debug_struct("RequestBody::Chained")
                .field("prefix_bytes", &prefix.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

pin_project! {
    /// The response body: the inner service's, passed through frame by frame (server-sent
    /// event streams arrive as they are produced), or the layer's own answer to a blocked
    /// request.
    pub struct ResponseBody<B> {
        #[pin]
        kind: ResponseKind<B>,
    }
}

pin_project! {
    #[project = ResponseKindProj]
    enum ResponseKind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> ResponseBody<B> {
        ResponseBody {
            kind: ResponseKind::Inner { body },
        }
    }

    pub(crate) fn full(data: Bytes) -> ResponseBody<B> {
        ResponseBody {
            kind: ResponseKind::Full { data: Some(data) },
        }
    }

    /// A body the layer made itself, retyped for another inner body type. Only the
    /// layer's own answers (bytes) are retyped; an inner body would be lost.
    pub(crate) fn retype<C>(self) -> ResponseBody<C> {
        match self.kind {
            ResponseKind::Full { data } => ResponseBody {
                kind: ResponseKind::Full { data },
            },
            ResponseKind::Inner { .. } => ResponseBody::full(Bytes::new()),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            ResponseKindProj::Inner { body } => match body.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(
                    frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))
                ))),
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ResponseKindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            ResponseKind::Inner { body } => body.is_end_stream(),
            ResponseKind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            ResponseKind::Inner { body } => body.size_hint(),
            ResponseKind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            ResponseKind::Inner { .. } => f.write_str("ResponseBody::Inner"),
            ResponseKind::Full { data } => f
                .debug_struct("ResponseBody::Full")
                .field("bytes", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

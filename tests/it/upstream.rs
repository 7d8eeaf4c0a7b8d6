//! Real HTTP servers on 127.0.0.1 standing in for the external provider and the
//! self-hosted model. Each records every request it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use privacy_router::middleware::RequestBody;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// One request as a server saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("upstream received JSON")
    }
}

/// A server that answers every request with `{"served_by": NAME}`, or, when the request
/// body has `"stream": true`, with a server-sent event stream of three events in which
/// each event after the first is sent only once the test has seen the one before
/// ([`Upstream::next_event`]).
pub struct Upstream {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    pub next_event: Arc<Notify>,
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let next_event = Arc::new(Notify::new());
        let (rec, notify) = (Arc::clone(&received), Arc::clone(&next_event));
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rec, notify) = (Arc::clone(&rec), Arc::clone(&notify));
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (rec, notify) = (Arc::clone(&rec), Arc::clone(&notify));
                        async move { Ok::<_, Infallible>(answer(name, req, rec, notify).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            received,
            next_event,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

type Body = http_body_util::Either<Full<Bytes>, ChannelBody>;

/// A response body fed by a channel, one frame per message.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

async fn answer(
    name: &'static str,
    req: Request<Incoming>,
    rec: Arc<Mutex<Vec<Received>>>,
    notify: Arc<Notify>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let streaming = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("stream").and_then(|s| s.as_bool()))
        .unwrap_or(false);
    rec.lock().unwrap().push(Received {
        path: parts
            .uri
            .path_and_query()
            .map_or_else(String::new, |p| p.to_string()),
        headers: parts.headers,
        body,
    });
    if !streaming {
        let json = format!("{{\"served_by\":\"{name}\"}}");
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::Left(Full::new(Bytes::from(json))))
            .unwrap();
    }
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        for i in 0..3 {
            if i > 0 {
                // Wait until the client has seen the previous event: if anything in
                // between buffered the response, this would never come.
                notify.notified().await;
            }
            let event = format!("data: {{\"served_by\":\"{name}\",\"chunk\":{i}}}\n\n");
            if tx.send(Bytes::from(event)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Bytes::from_static(b"data: [DONE]\n\n")).await;
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::Right(ChannelBody(rx)))
        .unwrap()
}

/// The client stack under test: a hyper-util client.
pub type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    RequestBody<Full<Bytes>>,
>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build_http()
}

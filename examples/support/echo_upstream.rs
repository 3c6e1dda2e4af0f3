//! A small upstream HTTP/1.1 server for the proxy's demo, tests and benchmark.
//!
//! Every request gets `200` with the body `"{name} {METHOD} {path}\n{request body}"`, so a client
//! can check that each response belongs to its request. It counts TCP accepts, and offers three
//! controls for tests:
//!
//! * `/slow`: reports on [`Control::entered`] and waits for a permit on [`Control::gate`]
//!   before answering (a slow upstream, released by the test instead of a timer).
//! * `/keep-alive/N`: answers with `Keep-Alive: timeout=N`, as a server announcing how long it
//!   keeps an idle connection open.
//! * [`Control::restart_epoch`]: a connection accepted before the current epoch fails its next
//!   request by dropping the connection without a response, as a server going away does when a
//!   request races with its shutdown.
//! * [`RunningUpstream::shutdown`]: closes the listener and every connection, and returns once
//!   they are all closed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

/// Shared state and controls of an upstream.
#[derive(Debug)]
pub struct Control {
    /// Written at the start of every response body.
    pub name: String,
    /// TCP connections accepted.
    pub accepts: AtomicU64,
    /// Requests answered.
    pub requests: AtomicU64,
    /// Connections accepted before this epoch fail their next request.
    pub restart_epoch: AtomicU64,
    /// `/slow` requests wait for a permit here.
    pub gate: Semaphore,
    /// `/slow` requests report here when they arrive.
    pub entered: mpsc::UnboundedSender<()>,
}

impl Control {
    /// New controls, and the receiving end of [`Control::entered`].
    pub fn new(name: &str) -> (Arc<Self>, mpsc::UnboundedReceiver<()>) {
        let (entered, rx) = mpsc::unbounded_channel();
        (Self::reporting_to(name, entered), rx)
    }

    /// New controls whose `/slow` requests report on `entered`, which several upstreams may
    /// share.
    pub fn reporting_to(name: &str, entered: mpsc::UnboundedSender<()>) -> Arc<Self> {
        let control = Control {
            name: name.to_string(),
            accepts: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            restart_epoch: AtomicU64::new(0),
            gate: Semaphore::new(0),
            entered,
        };
        Arc::new(control)
    }
}

/// A running upstream.
#[derive(Debug)]
pub struct RunningUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its controls.
    pub control: Arc<Control>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningUpstream {
    /// Closes the listener and every connection; returns when all of them are closed.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts an upstream on `listener`.
pub fn start(listener: TcpListener, control: Arc<Control>) -> RunningUpstream {
    let addr = listener.local_addr().expect("bound listener");
    let (stop, mut stopped) = watch::channel(false);
    let ctl = control.clone();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopped.changed() => break,
            };
            let Ok((stream, _)) = accepted else { continue };
            let _ = stream.set_nodelay(true);
            ctl.accepts.fetch_add(1, Ordering::SeqCst);
            let epoch = ctl.restart_epoch.load(Ordering::SeqCst);
            let (ctl, mut stopped) = (ctl.clone(), stopped.clone());
            conns.spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| respond(ctl.clone(), epoch, req));
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    _ = conn => {}
                    _ = stopped.changed() => {}
                }
            });
            // Reap finished connection tasks as we go.
            while conns.try_join_next().is_some() {}
        }
        drop(listener);
        while conns.join_next().await.is_some() {}
    });
    RunningUpstream {
        addr,
        control,
        stop,
        task,
    }
}

/// The upstream's error: it makes hyper drop the connection without a response.
#[derive(Debug)]
pub struct GoingAway;

impl std::fmt::Display for GoingAway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection from before the restart")
    }
}

impl std::error::Error for GoingAway {}

async fn respond(
    ctl: Arc<Control>,
    epoch: u64,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, GoingAway> {
    if epoch < ctl.restart_epoch.load(Ordering::SeqCst) {
        return Err(GoingAway);
    }
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/slow" {
        let _ = ctl.entered.send(());
        if let Ok(permit) = ctl.gate.acquire().await {
            permit.forget();
        }
    }
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut out = format!("{} {} {}\n", ctl.name, parts.method, parts.uri.path()).into_bytes();
    out.extend_from_slice(&body);
    ctl.requests.fetch_add(1, Ordering::SeqCst);
    let mut response = Response::new(Full::new(Bytes::from(out)));
    // The `Host` it was sent, for tests of what a proxy forwards.
    if let Some(host) = parts.headers.get(hyper::header::HOST) {
        response.headers_mut().insert(ECHO_HOST, host.clone());
    }
    if let Some(secs) = parts.uri.path().strip_prefix("/keep-alive/") {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&format!("timeout={secs}")) {
            response.headers_mut().insert("keep-alive", value);
        }
    }
    Ok(response)
}

/// The response header in which an upstream echoes the `Host` it was sent.
pub const ECHO_HOST: &str = "x-echo-host";

/// The body an upstream named `name` answers `method path` with `body`.
pub fn expected_body(name: &str, method: &str, path: &str, body: &[u8]) -> Bytes {
    let mut out = format!("{name} {method} {path}\n").into_bytes();
    out.extend_from_slice(body);
    Bytes::from(out)
}

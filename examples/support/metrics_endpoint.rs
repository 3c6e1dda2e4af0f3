//! `GET /metrics` in the Prometheus text format, for the HTTP proxy's `--metrics-listen`
//! (`examples/http_proxy.rs`) and its end-to-end test (`tests/http_proxy.rs`). Only useful with
//! the crate's `metrics` feature: without it the pool records nothing.
//!
//! The exposition is rendered by `metrics-exporter-prometheus` from the recorder the pool was
//! built under. On every scrape the endpoint first calls [`Pool::record_metrics`], so the pool's
//! gauges are current rather than as of the last maintenance pass, and sets
//! `http_proxy_upstream_checkouts_total`: the proxy's own counter of upstream connections taken
//! from the pool (`acquired_immediately + acquired_after_wait` of [`Pool::stats`]), which the
//! crate counts but does not report through the facade.
//!
//! Its includer also includes `proxy.rs` as `crate::proxy`, whose accept loop it serves with.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use metrics::Counter;
use metrics_exporter_prometheus::PrometheusHandle;
use shadowcat_pool::Pool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::proxy::http_serve;

/// The Prometheus text exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The proxy's counter of connections taken from the pool.
pub const CHECKOUTS: &str = "http_proxy_upstream_checkouts_total";

/// What a scrape refreshes before rendering: one pool's gauges and its checkout counter.
pub struct PoolMetrics<T: Send + 'static> {
    pool: Pool<T>,
    checkouts: Counter,
}

impl<T: Send + 'static> PoolMetrics<T> {
    /// Registers the checkout counter, labelled `pool` = `name` like the pool's own metrics,
    /// with the recorder in effect now: call it where the pool was built (same recorder).
    pub fn new(pool: Pool<T>, name: &'static str) -> Self {
        PoolMetrics {
            pool,
            checkouts: metrics::counter!(CHECKOUTS, "pool" => name),
        }
    }

    fn refresh(&self) {
        self.pool.record_metrics();
        let stats = self.pool.stats();
        self.checkouts
            .absolute(stats.acquired_immediately + stats.acquired_after_wait);
    }
}

/// Serves `GET /metrics` (and `HEAD`) on `listener` until the returned task is aborted; other
/// paths get `404`, other methods `405`.
pub fn serve<T: Send + 'static>(
    listener: TcpListener,
    handle: PrometheusHandle,
    pool: PoolMetrics<T>,
) -> JoinHandle<()> {
    let pool = Arc::new(pool);
    http_serve::serve(listener, move |req: Request<Incoming>| {
        let reply = answer(&req, &handle, &pool);
        async move { reply }
    })
}

fn answer<T: Send + 'static>(
    req: &Request<Incoming>,
    handle: &PrometheusHandle,
    pool: &PoolMetrics<T>,
) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut resp = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *resp.status_mut() = status;
        resp
    };
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "only /metrics is served here\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = plain(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    pool.refresh();
    let mut resp = Response::new(Full::new(Bytes::from(handle.render())));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

//! `GET /metrics` in the Prometheus text format, for the HTTP proxy's `--metrics-listen`
//! (`examples/http_proxy.rs`) and its end-to-end test (`tests/http_proxy.rs`). Only useful with
//! the crate's `metrics` feature: without it the pool records nothing.
//!
//! The exposition is rendered by `metrics-exporter-prometheus` from the recorder the pool was
//! built under. The keyed pool reports its events (creates, destroys by reason, timeouts, wait
//! and create times) through the facade as they happen, labelled `pool="keyed"`
//! ([`proxy::POOL_NAME`](crate::proxy::POOL_NAME)). On every scrape the endpoint first calls
//! `KeyedPool::record_metrics`, so that the gauges
//! `shadowcat_pool_{size,idle,in_use,waiting,creating,keys}` are exact at scrape time, then sets
//! the proxy's own: each upstream's connections (alive plus being opened) as
//! `http_proxy_upstream_connections{upstream="http://ip:port"}`, and
//! `http_proxy_upstream_checkouts_total`, the proxy's count of connections taken from the pool.
//!
//! Its includer also includes `proxy.rs` as `crate::proxy`, whose accept loop it serves with.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::proxy::{http_serve, Proxy, POOL_NAME};

/// The Prometheus text exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The proxy's counter of connections taken from the pool.
pub const CHECKOUTS: &str = "http_proxy_upstream_checkouts_total";

/// One upstream's connections, labelled `upstream`.
pub const CONNECTIONS: &str = "http_proxy_upstream_connections";

/// What a scrape refreshes before rendering: the keyed pool's gauges, each upstream's
/// connections and the proxy's checkout counter.
pub struct PoolMetrics {
    proxy: Arc<Proxy>,
    checkouts: Counter,
    /// One gauge per upstream of the route table.
    connections: Vec<(crate::proxy::UpstreamKey, Gauge)>,
}

impl PoolMetrics {
    /// Registers the handles with the recorder in effect now: call it where the pool was built
    /// (same recorder). `None` unless the proxy is pooled.
    pub fn new(proxy: Arc<Proxy>) -> Option<Self> {
        proxy.pool()?;
        let pool = [("pool", POOL_NAME)];
        let connections = proxy
            .upstreams()
            .into_iter()
            .map(|key| {
                let gauge = metrics::gauge!(CONNECTIONS, "upstream" => key.to_string());
                (key, gauge)
            })
            .collect();
        Some(PoolMetrics {
            checkouts: metrics::counter!(CHECKOUTS, &pool),
            connections,
            proxy,
        })
    }

    fn refresh(&self) {
        let Some(pool) = self.proxy.pool() else {
            return;
        };
        pool.record_metrics();
        for (key, gauge) in &self.connections {
            gauge.set(pool.key_stats(key).map_or(0, |s| s.size) as f64);
        }
        // Relaxed: a tally read for display.
        let checkouts = self.proxy.counters().checkouts.load(Ordering::Relaxed);
        self.checkouts.absolute(checkouts);
    }
}

/// Serves `GET /metrics` (and `HEAD`) on `listener` until the returned task is aborted; other
/// paths get `404`, other methods `405`.
pub fn serve(listener: TcpListener, handle: PrometheusHandle, pool: PoolMetrics) -> JoinHandle<()> {
    let pool = Arc::new(pool);
    http_serve::serve(listener, move |req: Request<Incoming>| {
        let reply = answer(&req, &handle, &pool);
        async move { reply }
    })
}

fn answer(
    req: &Request<Incoming>,
    handle: &PrometheusHandle,
    pool: &PoolMetrics,
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

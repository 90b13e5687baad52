//! Prometheus metrics of the proxy: requests by route and outcome with their latency, open
//! connections, and connections refused by reason. Served on the admin port.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    connections_refused: Family<Labels, Counter>,
    pub connections_open: Gauge,
    worker_connections: Family<Labels, Gauge>,
    pub rules_matched: Counter,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~100 s.
    Histogram::new(exponential_buckets(0.0001, 2.5, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("palisade_waf");
        let requests = Family::<Labels, Counter>::default();
        let duration =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let connections_refused = Family::<Labels, Counter>::default();
        let connections_open = Gauge::default();
        let worker_connections = Family::<Labels, Gauge>::default();
        let rules_matched = Counter::default();
        registry.register(
            "requests",
            "Requests by route and outcome (forwarded, blocked, refused, rate_limited, ...)",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from the request head to the response, by route",
            duration.clone(),
        );
        registry.register(
            "connections_refused",
            "Client connections closed at accept, by reason",
            connections_refused.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open",
            connections_open.clone(),
        );
        registry.register(
            "worker_connections_open",
            "Client connections open, by worker (with per-core scheduling a worker keeps its connections)",
            worker_connections.clone(),
        );
        registry.register(
            "rules_matched",
            "WAF rule matches written to the error log",
            rules_matched.clone(),
        );
        Metrics {
            registry,
            requests,
            duration,
            connections_refused,
            connections_open,
            worker_connections,
            rules_matched,
        }
    }

    pub fn request(&self, route: &str, outcome: &str, seconds: f64) {
        let labels = vec![
            ("route".to_string(), route.to_string()),
            ("outcome".to_string(), outcome.to_string()),
        ];
        self.requests.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&vec![("route".to_string(), route.to_string())])
            .observe(seconds);
    }

    /// The open-connections gauge of one per-core worker (shown from the start, at 0).
    pub fn worker_connections(&self, worker: usize) -> Gauge {
        self.worker_connections
            .get_or_create(&vec![("worker".to_string(), worker.to_string())])
            .clone()
    }

    pub fn connection_refused(&self, reason: &str) {
        self.connections_refused
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    /// The count of requests with this route and outcome (for tests and the bench report).
    pub fn requests_with(&self, route: &str, outcome: &str) -> u64 {
        let labels = vec![
            ("route".to_string(), route.to_string()),
            ("outcome".to_string(), outcome.to_string()),
        ];
        self.requests.get_or_create(&labels).get()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_routes_and_outcomes() {
        let m = Metrics::new();
        m.request("shop", "blocked", 0.002);
        m.connection_refused("per_address");
        let text = m.render();
        assert!(
            text.contains("palisade_waf_requests_total{route=\"shop\",outcome=\"blocked\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("palisade_waf_connections_refused_total{reason=\"per_address\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("palisade_waf_request_duration_seconds_bucket"),
            "{text}"
        );
        assert_eq!(m.requests_with("shop", "blocked"), 1);
    }
}

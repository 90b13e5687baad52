//! Prometheus metrics of the webhook: requests by endpoint and result, evaluation latency per
//! policy, requests in flight.

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
    evaluation: Family<Labels, Histogram, fn() -> Histogram>,
    gatekeeper_decisions: Family<Labels, Counter>,
    pub in_flight: Gauge,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~3 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("palisade_admission");
        let requests = Family::<Labels, Counter>::default();
        let evaluation =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let in_flight = Gauge::default();
        let gatekeeper_decisions = Family::<Labels, Counter>::default();
        registry.register(
            "gatekeeper_decisions",
            "Gatekeeper constraint decisions by source: remembered (the decision cache) or evaluated",
            gatekeeper_decisions.clone(),
        );
        registry.register(
            "requests",
            "Admission requests by endpoint and result",
            requests.clone(),
        );
        registry.register(
            "policy_evaluation_seconds",
            "Time to evaluate one policy on one admission request",
            evaluation.clone(),
        );
        registry.register(
            "in_flight",
            "Admission requests being evaluated",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            evaluation,
            gatekeeper_decisions,
            in_flight,
        }
    }

    pub fn gatekeeper_decisions(&self, remembered: usize, evaluated: usize) {
        for (source, n) in [("remembered", remembered), ("evaluated", evaluated)] {
            if n > 0 {
                self.gatekeeper_decisions
                    .get_or_create(&vec![("source".to_string(), source.to_string())])
                    .inc_by(n as u64);
            }
        }
    }

    pub fn request(&self, endpoint: &str, result: &str) {
        let labels = vec![
            ("endpoint".to_string(), endpoint.to_string()),
            ("result".to_string(), result.to_string()),
        ];
        self.requests.get_or_create(&labels).inc();
    }

    pub fn evaluation(&self, policy: &str, seconds: f64) {
        self.evaluation
            .get_or_create(&vec![("policy".to_string(), policy.to_string())])
            .observe(seconds);
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
    fn exposition() {
        let m = Metrics::new();
        m.request("validate", "denied");
        m.evaluation("posture-catalogue", 0.001);
        m.gatekeeper_decisions(3, 1);
        let text = m.render();
        assert!(
            text.contains("palisade_admission_gatekeeper_decisions_total{source=\"remembered\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("palisade_admission_requests_total{endpoint=\"validate\",result=\"denied\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("palisade_admission_policy_evaluation_seconds_bucket{le="),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}

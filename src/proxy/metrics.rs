//! [`Metrics`]: counters and a histogram, written in the Prometheus text format by hand.
//!
//! *Rejected: the `metrics` facade and `metrics-exporter-prometheus`.* A handful of
//! series with small, known label sets do not need a registry, a recorder or an exporter's
//! HTTP stack; writing the text format is forty lines.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::audit::Auditor;

/// Upper bounds of the scan-time histogram, in seconds.
const SCAN_BUCKETS: [f64; 13] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1,
];

/// The proxy's metrics. Labels hold policy team names, actions, route names, status
/// codes and error kinds: bounded sets chosen by the operator or the code, never a value
/// from a prompt, a client-chosen string or a key.
///
/// # Performance
///
/// Counters with labels sit behind one mutex each (a `BTreeMap` update per request, tens
/// of nanoseconds); the histogram is lock-free atomics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (team, action) -> count
    decisions: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// (route, status) -> count
    http: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// kind -> count
    failures: Mutex<BTreeMap<&'static str, u64>>,
    /// upstream -> count
    upstream_errors: Mutex<BTreeMap<&'static str, u64>>,
    /// "ok" / "error" -> count
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    scan_buckets: [AtomicU64; SCAN_BUCKETS.len()],
    scan_count: AtomicU64,
    scan_sum_nanos: AtomicU64,
    in_flight: AtomicU64,
    ready: AtomicBool,
    auditor: OnceLock<Auditor>,
}

// Poisoning only means a panic elsewhere while counting; the counts are still counts.
fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(key)
        .or_insert(0) += 1;
}

impl Metrics {
    pub(crate) fn decision(&self, team: &str, action: &'static str) {
        let mut map = self.decisions.lock().unwrap_or_else(|e| e.into_inner());
        // Look up by reference first: no allocation on the hot path once a team is known.
        if let Some((_, n)) = map.iter_mut().find(|((t, a), _)| t == team && *a == action) {
            *n += 1;
        } else {
            map.insert((team.to_string(), action), 1);
        }
    }

    pub(crate) fn http(&self, route: &'static str, status: u16) {
        bump(&self.http, (route, status));
    }

    pub(crate) fn inspection_failure(&self, kind: &'static str) {
        bump(&self.failures, kind);
    }

    pub(crate) fn upstream_error(&self, upstream: &'static str) {
        bump(&self.upstream_errors, upstream);
    }

    pub(crate) fn reload(&self, ok: bool) {
        bump(&self.reloads, if ok { "ok" } else { "error" });
    }

    pub(crate) fn scan_time(&self, t: Duration) {
        let secs = t.as_secs_f64();
        if let Some(i) = SCAN_BUCKETS.iter().position(|b| secs <= *b) {
            self.scan_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.scan_count.fetch_add(1, Ordering::Relaxed);
        self.scan_sum_nanos.fetch_add(
            u64::try_from(t.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn set_auditor(&self, auditor: Auditor) {
        let _ = self.auditor.set(auditor);
    }

    pub(crate) fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether the proxy takes traffic: policies are loaded and it is not shutting down.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        header(
            &mut out,
            "privacy_router_requests_total",
            "counter",
            "Inspected requests by policy team and action (block includes refusals).",
        );
        for ((team, action), n) in self
            .decisions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "privacy_router_requests_total{{team=\"{}\",action=\"{action}\"}} {n}",
                escape(team)
            );
        }
        header(
            &mut out,
            "privacy_router_http_requests_total",
            "counter",
            "HTTP requests by route and response status.",
        );
        for ((route, status), n) in self.http.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(
                out,
                "privacy_router_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        header(
            &mut out,
            "privacy_router_inspection_failures_total",
            "counter",
            "Requests whose inspection could not complete, by kind; they got the team's on_error action.",
        );
        for (kind, n) in self
            .failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "privacy_router_inspection_failures_total{{kind=\"{kind}\"}} {n}"
            );
        }
        header(
            &mut out,
            "privacy_router_upstream_errors_total",
            "counter",
            "Requests that failed to reach their upstream (answered 502).",
        );
        for (upstream, n) in self
            .upstream_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "privacy_router_upstream_errors_total{{upstream=\"{upstream}\"}} {n}"
            );
        }
        header(
            &mut out,
            "privacy_router_policy_reloads_total",
            "counter",
            "Policy reloads by result; a failed reload keeps the last good set.",
        );
        for (result, n) in self
            .reloads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "privacy_router_policy_reloads_total{{result=\"{result}\"}} {n}"
            );
        }
        header(
            &mut out,
            "privacy_router_scan_seconds",
            "histogram",
            "Time spent extracting, scanning and deciding per inspected request.",
        );
        let mut cumulative = 0;
        for (bound, count) in SCAN_BUCKETS.iter().zip(&self.scan_buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "privacy_router_scan_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.scan_count.load(Ordering::Relaxed);
        let sum = self.scan_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "privacy_router_scan_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "privacy_router_scan_seconds_sum {sum}");
        let _ = writeln!(out, "privacy_router_scan_seconds_count {count}");
        if let Some(auditor) = self.auditor.get() {
            let stats = auditor.stats();
            header(
                &mut out,
                "privacy_router_audit_records_total",
                "counter",
                "Audit records written, failed (sink error) and rejected (queue full or closed); failed and rejected requests got on_error.",
            );
            for (result, n) in [
                ("written", stats.written),
                ("failed", stats.failed),
                ("rejected", stats.rejected),
            ] {
                let _ = writeln!(
                    out,
                    "privacy_router_audit_records_total{{result=\"{result}\"}} {n}"
                );
            }
            header(
                &mut out,
                "privacy_router_audit_queue_depth",
                "gauge",
                "Audit records waiting for the writer.",
            );
            let _ = writeln!(out, "privacy_router_audit_queue_depth {}", stats.queued);
        }
        header(
            &mut out,
            "privacy_router_in_flight_requests",
            "gauge",
            "Requests being handled now (until their response headers are sent).",
        );
        let _ = writeln!(
            out,
            "privacy_router_in_flight_requests {}",
            self.in_flight.load(Ordering::Relaxed)
        );
        header(
            &mut out,
            "privacy_router_ready",
            "gauge",
            "1 when policies are loaded and the proxy is not shutting down.",
        );
        let _ = writeln!(out, "privacy_router_ready {}", u8::from(self.is_ready()));
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let m = Metrics::default();
        m.decision("payments", "route_local");
        m.decision("payments", "route_local");
        m.http("chat_completions", 200);
        m.inspection_failure("malformed-json");
        m.scan_time(Duration::from_micros(30));
        let text = m.render();
        assert!(text.contains(
            "privacy_router_requests_total{team=\"payments\",action=\"route_local\"} 2\n"
        ));
        assert!(text.contains("privacy_router_scan_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(text.contains("privacy_router_scan_seconds_bucket{le=\"0.000025\"} 0\n"));
        assert!(text.contains("privacy_router_scan_seconds_count 1\n"));
        assert!(text.contains("# TYPE privacy_router_scan_seconds histogram\n"));
    }
}

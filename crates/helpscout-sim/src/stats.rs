//! Request accounting: counts per (method, endpoint template, status), and the journal of
//! GET requests (so that a benchmark can replay exactly what a client asked for).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Every API request (token endpoint included; admin endpoints excluded).
    pub total: u64,
    /// Answers with status 429 (real throttling and injected bursts).
    pub rate_limited: u64,
    /// Requests on which a fault was injected.
    pub faults_injected: u64,
    pub by_endpoint: Vec<EndpointStat>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStat {
    pub method: String,
    /// The endpoint template, e.g. "/v2/conversations/{id}/threads".
    pub endpoint: String,
    pub status: u16,
    pub count: u64,
}

impl RequestStats {
    /// Requests to an endpoint with any status.
    pub fn count(&self, method: &str, endpoint: &str) -> u64 {
        self.by_endpoint
            .iter()
            .filter(|e| e.method == method && e.endpoint == endpoint)
            .map(|e| e.count)
            .sum()
    }

    /// Requests to an endpoint answered with `status`.
    pub fn count_status(&self, method: &str, endpoint: &str, status: u16) -> u64 {
        self.by_endpoint
            .iter()
            .filter(|e| e.method == method && e.endpoint == endpoint && e.status == status)
            .map(|e| e.count)
            .sum()
    }
}

/// The journal keeps at most this many requests (about 200 MB of paths at worst); later ones
/// are counted but not kept, so a runaway client cannot exhaust the simulator's memory.
pub const JOURNAL_LIMIT: usize = 2_000_000;

#[derive(Debug, Default)]
pub struct StatsRecorder {
    counts: BTreeMap<(String, String, u16), u64>,
    total: u64,
    rate_limited: u64,
    faults: u64,
    journal: Vec<String>,
}

impl StatsRecorder {
    pub fn record(&mut self, method: &str, endpoint: &str, status: u16, faulted: bool) {
        *self
            .counts
            .entry((method.to_string(), endpoint.to_string(), status))
            .or_default() += 1;
        self.total += 1;
        if status == 429 {
            self.rate_limited += 1;
        }
        if faulted {
            self.faults += 1;
        }
    }

    /// Notes a GET's path and query as received, in the order requests arrive.
    pub fn journal(&mut self, path_and_query: &str) {
        if self.journal.len() < JOURNAL_LIMIT {
            self.journal.push(path_and_query.to_string());
        }
    }

    pub fn journal_entries(&self) -> &[String] {
        &self.journal
    }

    pub fn snapshot(&self) -> RequestStats {
        RequestStats {
            total: self.total,
            rate_limited: self.rate_limited,
            faults_injected: self.faults,
            by_endpoint: self
                .counts
                .iter()
                .map(|((m, e, s), c)| EndpointStat {
                    method: m.clone(),
                    endpoint: e.clone(),
                    status: *s,
                    count: *c,
                })
                .collect(),
        }
    }

    pub fn reset(&mut self) {
        *self = StatsRecorder::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_endpoint_and_status() {
        let mut r = StatsRecorder::default();
        r.record("GET", "/v2/conversations", 200, false);
        r.record("GET", "/v2/conversations", 200, false);
        r.record("GET", "/v2/conversations", 429, false);
        r.record("GET", "/v2/users", 503, true);
        let s = r.snapshot();
        assert_eq!(s.total, 4);
        assert_eq!(s.rate_limited, 1);
        assert_eq!(s.faults_injected, 1);
        assert_eq!(s.count("GET", "/v2/conversations"), 3);
        assert_eq!(s.count_status("GET", "/v2/conversations", 200), 2);
        r.reset();
        assert_eq!(r.snapshot(), RequestStats::default());
    }

    #[test]
    fn the_journal_keeps_order_is_bounded_and_resets() {
        let mut r = StatsRecorder::default();
        r.journal("/v2/users?page=2");
        r.journal("/v2/users");
        assert_eq!(r.journal_entries(), ["/v2/users?page=2", "/v2/users"]);
        r.journal.resize(JOURNAL_LIMIT, String::new());
        r.journal("/v2/tags");
        assert_eq!(r.journal_entries().len(), JOURNAL_LIMIT);
        r.reset();
        assert!(r.journal_entries().is_empty());
    }
}

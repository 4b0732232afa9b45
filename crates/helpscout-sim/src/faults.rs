//! Deterministic fault injection for API calls.

use serde::{Deserialize, Serialize};

/// A set of fault rules. The first rule whose window covers a request fires.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// Fires on the requests matching `method`/`path_prefix`: skips the first `after` of them,
/// then fires on the next `count`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// Matches request paths starting with this (e.g. "/v2/conversations"). `None` matches
    /// every API call except the token endpoint (name "/v2/oauth2" to fault that one).
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Matches this HTTP method only (case-insensitive); `None` matches all.
    #[serde(default)]
    pub method: Option<String>,
    /// Matching requests to let through before firing.
    #[serde(default)]
    pub after: u64,
    /// How many matching requests to fire on (default 1).
    #[serde(default = "one")]
    pub count: u64,
    pub kind: FaultKind,
}

fn one() -> u64 {
    1
}

impl FaultRule {
    pub fn new(path_prefix: Option<&str>, after: u64, count: u64, kind: FaultKind) -> FaultRule {
        FaultRule {
            path_prefix: path_prefix.map(str::to_string),
            method: None,
            after,
            count,
            kind,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FaultKind {
    /// Answer with this status and the API's body for it: 500 JSON `{"logRef","message"}`,
    /// 502/503/504 an HTML gateway page, anything else a JSON error.
    Status(u16),
    /// 429 with `X-RateLimit-Retry-After: 1` and a zero remaining budget, as when another
    /// app on the same account has used the budget up.
    RateLimitBurst,
    /// Wait this many milliseconds before answering (normally).
    Delay(u64),
    /// Send the status line, headers and half of the body, then cut the connection.
    DropConnection,
    /// A 200 whose JSON body is cut in half (with a matching Content-Length).
    TruncatedBody,
    /// The caller's access token dies: this request and later ones get 401.
    ExpireToken,
    /// After serving a page of conversations or customers, change this many rows (their
    /// modified time moves to now) so that offset paging shifts: in `modifiedAt asc` order
    /// the last rows of the page just served (they move to the end, and as many rows not
    /// reached yet slide back onto the page already read: the client skips them); in any
    /// other order the rows just past the page (in `desc` they jump to the front: the client
    /// sees rows twice and misses the changed ones).
    PageDrift { rows: usize },
    /// The handler runs (a POST really creates its record), then the client gets this
    /// status's error answer instead of the real one, as `Status` gives it: the write
    /// happened but its answer is lost, the case a client without an idempotency key must
    /// survive without writing twice.
    StatusAfterWrite(u16),
    /// The handler runs, then its real answer is held this many milliseconds before it is
    /// sent, so that a client timeout or a kill lands between the write and its answer.
    DelayAfter(u64),
}

#[derive(Debug, Default)]
pub struct FaultEngine {
    plan: FaultPlan,
    seen: Vec<u64>,
}

impl FaultEngine {
    pub fn new(plan: FaultPlan) -> FaultEngine {
        let seen = vec![0; plan.rules.len()];
        FaultEngine { plan, seen }
    }

    pub fn set(&mut self, plan: FaultPlan) {
        *self = FaultEngine::new(plan);
    }

    /// Counts the request against every matching rule and returns the fault to inject.
    pub fn on_request(
        &mut self,
        method: &str,
        path: &str,
        is_token_endpoint: bool,
    ) -> Option<FaultKind> {
        let mut fired = None;
        for (i, r) in self.plan.rules.iter().enumerate() {
            let path_ok = match &r.path_prefix {
                Some(p) => path.starts_with(p.as_str()),
                None => !is_token_endpoint,
            };
            let method_ok = r
                .method
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method));
            if !(path_ok && method_ok) {
                continue;
            }
            let n = self.seen[i];
            self.seen[i] += 1;
            if fired.is_none() && n >= r.after && n < r.after.saturating_add(r.count) {
                fired = Some(r.kind.clone());
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_and_count_windows() {
        let mut e = FaultEngine::new(FaultPlan {
            rules: vec![FaultRule::new(
                Some("/v2/customers"),
                2,
                2,
                FaultKind::Status(503),
            )],
        });
        let got: Vec<bool> = (0..6)
            .map(|_| e.on_request("GET", "/v2/customers", false).is_some())
            .collect();
        assert_eq!(got, vec![false, false, true, true, false, false]);
        assert!(e.on_request("GET", "/v2/users", false).is_none());
    }

    #[test]
    fn default_prefix_spares_the_token_endpoint() {
        let mut e = FaultEngine::new(FaultPlan {
            rules: vec![FaultRule::new(None, 0, 10, FaultKind::TruncatedBody)],
        });
        assert!(e.on_request("POST", "/v2/oauth2/token", true).is_none());
        assert_eq!(
            e.on_request("GET", "/v2/users", false),
            Some(FaultKind::TruncatedBody)
        );
    }

    #[test]
    fn json_form() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"rules":[{"path_prefix":"/v2/conversations","after":1,"count":2,"kind":{"Status":503}},
                         {"kind":"DropConnection"},{"kind":{"Delay":1500}},{"kind":{"PageDrift":{"rows":3}}},
                         {"method":"POST","kind":{"StatusAfterWrite":504}},{"kind":{"DelayAfter":250}}]}"#,
        )
        .unwrap();
        assert_eq!(plan.rules.len(), 6);
        assert_eq!(plan.rules[1].count, 1);
        assert_eq!(plan.rules[3].kind, FaultKind::PageDrift { rows: 3 });
        assert_eq!(plan.rules[4].kind, FaultKind::StatusAfterWrite(504));
        assert_eq!(plan.rules[4].method.as_deref(), Some("POST"));
        assert_eq!(plan.rules[5].kind, FaultKind::DelayAfter(250));
        let back: FaultPlan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert_eq!(back, plan);
    }
}

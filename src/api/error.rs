//! Every way a request can fail, and the one classification of each into what the caller does.

use std::time::Duration;

use crate::catalog::outbound::FailureReason;

/// What the caller does about an error: decided here, once, for every failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Try the same request again after a pause (the client's own retry loop does).
    Retry,
    /// The record is gone (404): leave it out; removal checks notice it.
    Gone,
    /// The record was merged into another (301 with a `Location`).
    Moved,
    /// The plan or the user's role does not allow it (403): leave it out.
    Forbidden,
    /// This table cannot be completed this run; the other tables can.
    FailTable,
    /// Nothing else can succeed either (credentials, network, our own state).
    FailRun,
}

/// Why an attempt failed in a way another attempt may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransientKind {
    /// The connection could not be made.
    Connect,
    Timeout,
    /// The connection dropped while the response was read.
    Dropped,
    /// 500, 502, 503, 504.
    Server(u16),
    /// A success status with a body that is not JSON (a cut-off page).
    BadBody(String),
}

impl std::fmt::Display for TransientKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransientKind::Connect => f.write_str("connection refused or failed"),
            TransientKind::Timeout => f.write_str("request timed out"),
            TransientKind::Dropped => f.write_str("connection dropped while reading the response"),
            TransientKind::Server(status) => write!(f, "HTTP {status}"),
            TransientKind::BadBody(reason) => write!(f, "malformed JSON body ({reason})"),
        }
    }
}

/// What became of a write that did not answer with success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Certainly not applied, for this reason.
    Refused(FailureReason),
    /// Perhaps applied (a timeout, a dropped connection, a 5xx): look before writing again.
    Unknown,
    /// Never reached Help Scout (unreachable, or our own state): try again later.
    NotSent,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{path}: {kind}")]
    Transient { path: String, kind: TransientKind },
    #[error("Rate limit exceeded on {path}")]
    Throttled { path: String, wait: Duration },
    #[error("Authentication failed: {0}")]
    Auth(String),
    #[error("Access denied to {path} (HTTP 403): the account's plan or the user's role does not allow it")]
    Forbidden { path: String },
    #[error("Not found: {path} (HTTP 404)")]
    NotFound { path: String },
    #[error("{path} moved to {location} (HTTP {status})")]
    Moved { path: String, location: String, status: u16 },
    #[error("The API rejected {path} (HTTP {status}): {message}")]
    Rejected { path: String, status: u16, message: String, fields: Vec<(String, String)> },
    #[error("{path} kept failing after {attempts} attempts; last error: {last}")]
    GaveUp { path: String, attempts: u32, last: TransientKind },
    #[error("Cannot reach the Help Scout API at {endpoint} ({request}): {reason}. Check `base_url` / `token_url` and the network.")]
    Unreachable { endpoint: String, request: String, reason: String },
    #[error("The API sent a malformed response for {path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error("Could not save the rotated refresh token to {path}: {reason}; make the state folder writable.")]
    TokenStore { path: String, reason: String },
}

impl ApiError {
    pub fn action(&self) -> Action {
        match self {
            ApiError::Transient { .. } | ApiError::Throttled { .. } => Action::Retry,
            ApiError::NotFound { .. } => Action::Gone,
            ApiError::Moved { .. } => Action::Moved,
            ApiError::Forbidden { .. } => Action::Forbidden,
            ApiError::Rejected { .. } | ApiError::GaveUp { .. } | ApiError::Malformed { .. } => Action::FailTable,
            ApiError::Auth(_) | ApiError::Unreachable { .. } | ApiError::TokenStore { .. } => Action::FailRun,
        }
    }

    /// What a failed write means for its record: decided here, once.
    pub fn write_outcome(&self) -> WriteOutcome {
        match self {
            ApiError::Auth(_) => WriteOutcome::Refused(FailureReason::AuthenticationFailed),
            ApiError::Throttled { .. } | ApiError::GaveUp { last: TransientKind::Server(429), .. } => WriteOutcome::Refused(FailureReason::RateLimitExceeded),
            ApiError::Rejected { fields, message, .. } => {
                let named = |part: &str| fields.iter().find(|(path, _)| path.to_lowercase().contains(part));
                if named("email").is_some() {
                    WriteOutcome::Refused(FailureReason::InvalidEmail)
                } else if named("mailboxid").is_some() {
                    WriteOutcome::Refused(FailureReason::MailboxNotFound)
                } else if let Some((path, _)) = fields.iter().find(|(_, m)| m.contains("may not be empty") || m.contains("may not be null")) {
                    WriteOutcome::Refused(FailureReason::RequiredFieldMissing(path.clone()))
                } else {
                    WriteOutcome::Refused(FailureReason::Rejected(message.clone()))
                }
            }
            ApiError::NotFound { .. } => WriteOutcome::Refused(FailureReason::Rejected("not found (HTTP 404)".into())),
            ApiError::Forbidden { .. } => WriteOutcome::Refused(FailureReason::Rejected("access denied (HTTP 403): the app's user may not write to this mailbox".into())),
            ApiError::Moved { location, .. } => WriteOutcome::Refused(FailureReason::Rejected(format!("moved to {location}"))),
            ApiError::Unreachable { .. } | ApiError::TokenStore { .. } => WriteOutcome::NotSent,
            ApiError::Transient { .. } | ApiError::GaveUp { .. } | ApiError::Malformed { .. } => WriteOutcome::Unknown,
        }
    }

    /// The credentials were refused: the user must fix them (not a transient outage).
    pub fn is_credentials(&self) -> bool {
        matches!(self, ApiError::Auth(_))
    }

    /// HTTP status of the failure, where there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ApiError::Forbidden { .. } => Some(403),
            ApiError::NotFound { .. } => Some(404),
            ApiError::Throttled { .. } => Some(429),
            ApiError::Moved { status, .. } | ApiError::Rejected { status, .. } => Some(*status),
            ApiError::Transient { kind: TransientKind::Server(status), .. } => Some(*status),
            ApiError::Auth(_) => Some(401),
            _ => None,
        }
    }

    /// The id a merged record now lives under (the last segment of a 301's `Location`).
    pub fn moved_to(&self) -> Option<i64> {
        match self {
            ApiError::Moved { location, .. } => location.trim_end_matches('/').rsplit('/').next()?.parse().ok(),
            _ => None,
        }
    }
}

/// `host:port` of a URL, as a user configured it.
pub fn host_and_port(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_string(),
            _ => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_one_action() {
        let path = || "/v2/x".to_string();
        let cases = [
            (ApiError::Transient { path: path(), kind: TransientKind::Server(503) }, Action::Retry),
            (ApiError::Throttled { path: path(), wait: Duration::from_secs(1) }, Action::Retry),
            (ApiError::NotFound { path: path() }, Action::Gone),
            (ApiError::Moved { path: path(), location: "/v2/conversations/9".into(), status: 301 }, Action::Moved),
            (ApiError::Forbidden { path: path() }, Action::Forbidden),
            (ApiError::GaveUp { path: path(), attempts: 6, last: TransientKind::Timeout }, Action::FailTable),
            (ApiError::Auth("no".into()), Action::FailRun),
            (ApiError::Unreachable { endpoint: "h:1".into(), request: "GET /".into(), reason: "x".into() }, Action::FailRun),
        ];
        for (error, action) in cases {
            assert_eq!(error.action(), action, "{error}");
        }
        let moved = ApiError::Moved { path: path(), location: "http://h/v2/conversations/42/".into(), status: 301 };
        assert_eq!(moved.moved_to(), Some(42));
    }

    #[test]
    fn each_failed_write_is_refused_unknown_or_not_sent() {
        let path = || "/v2/conversations".to_string();
        let rejected = |fields: &[(&str, &str)]| ApiError::Rejected {
            path: path(),
            status: 400,
            message: "Bad request".into(),
            fields: fields.iter().map(|(p, m)| (p.to_string(), m.to_string())).collect(),
        };
        let cases = [
            (rejected(&[("customer.email", "must be a well-formed email address")]), WriteOutcome::Refused(FailureReason::InvalidEmail)),
            (rejected(&[("mailboxId", "unknown mailbox")]), WriteOutcome::Refused(FailureReason::MailboxNotFound)),
            (rejected(&[("subject", "may not be empty")]), WriteOutcome::Refused(FailureReason::RequiredFieldMissing("subject".into()))),
            (rejected(&[("firstName", "size must be between 1 and 40")]), WriteOutcome::Refused(FailureReason::Rejected("Bad request".into()))),
            (ApiError::Auth("no".into()), WriteOutcome::Refused(FailureReason::AuthenticationFailed)),
            (ApiError::GaveUp { path: path(), attempts: 20, last: TransientKind::Server(429) }, WriteOutcome::Refused(FailureReason::RateLimitExceeded)),
            (ApiError::Transient { path: path(), kind: TransientKind::Timeout }, WriteOutcome::Unknown),
            (ApiError::Transient { path: path(), kind: TransientKind::Dropped }, WriteOutcome::Unknown),
            (ApiError::Transient { path: path(), kind: TransientKind::Server(500) }, WriteOutcome::Unknown),
            (ApiError::Unreachable { endpoint: "h:1".into(), request: "POST /".into(), reason: "x".into() }, WriteOutcome::NotSent),
        ];
        for (error, outcome) in cases {
            assert_eq!(error.write_outcome(), outcome, "{error}");
        }
    }

    #[test]
    fn an_unreachable_api_is_named_by_host_and_port() {
        assert_eq!(host_and_port("http://127.0.0.1:9/v2/oauth2/token"), "127.0.0.1:9");
        assert_eq!(host_and_port("https://api.helpscout.net/v2"), "api.helpscout.net:443");
        let e = ApiError::Unreachable { endpoint: host_and_port("http://127.0.0.1:9/v2"), request: "POST /v2/oauth2/token".into(), reason: "connection refused or failed".into() };
        assert!(e.to_string().starts_with("Cannot reach the Help Scout API at 127.0.0.1:9 (POST /v2/oauth2/token)"), "{e}");
    }
}

//! An API answer before it becomes an HTTP response, and the API's error bodies.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

pub const HAL_JSON: &str = "application/hal+json;charset=UTF-8";
pub const JSON: &str = "application/json;charset=UTF-8";
pub const VND_ERROR: &str = "application/vnd.error+json";
pub const HTML: &str = "text/html";

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

static LOG_REF: AtomicU64 = AtomicU64::new(1);

/// A `logRef` as the API gives one with errors.
pub fn log_ref() -> String {
    format!("sim-{:08x}", LOG_REF.fetch_add(1, Ordering::Relaxed))
}

impl Reply {
    pub fn json_with(status: u16, content_type: &'static str, v: &Value) -> Reply {
        Reply {
            status,
            content_type: Some(content_type),
            headers: vec![],
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    pub fn hal(v: &Value) -> Reply {
        Reply::json_with(200, HAL_JSON, v)
    }

    pub fn json(status: u16, v: &Value) -> Reply {
        Reply::json_with(status, JSON, v)
    }

    pub fn empty(status: u16) -> Reply {
        Reply {
            status,
            content_type: None,
            headers: vec![],
            body: vec![],
        }
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply {
            status,
            content_type: Some(HTML),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    /// 400 with a vnd.error body naming the offending field(s).
    pub fn validation(errors: Vec<FieldError>) -> Reply {
        let errs: Vec<Value> = errors
            .into_iter()
            .map(|e| json!({"path": e.path, "message": e.message, "rejectedValue": e.rejected, "source": e.source}))
            .collect();
        Reply::json_with(
            400,
            VND_ERROR,
            &json!({"logRef": log_ref(), "message": "Bad request", "_embedded": {"errors": errs}}),
        )
    }

    pub fn bad_param(path: &str, message: &str, rejected: &str) -> Reply {
        Reply::validation(vec![FieldError::param(path, message, rejected)])
    }

    pub fn not_found(message: &str) -> Reply {
        Reply::json(404, &json!({"logRef": log_ref(), "message": message}))
    }

    pub fn internal_error() -> Reply {
        Reply::json(
            500,
            &json!({"logRef": log_ref(), "message": "Internal error"}),
        )
    }

    pub fn unauthorized() -> Reply {
        Reply::json(401, &json!({"error": "invalid_token", "error_description": "The access token is missing, invalid or expired"}))
            .header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
    }

    pub fn rate_limited(retry_after: u64) -> Reply {
        Reply::json(429, &json!({"message": "API rate limit exceeded"}))
            .header("X-RateLimit-Retry-After", retry_after.to_string())
    }

    /// A gateway error page (not JSON), as load balancers send for 502/503/504.
    pub fn gateway(status: u16) -> Reply {
        let reason = match status {
            502 => "Bad Gateway",
            503 => "Service Temporarily Unavailable",
            504 => "Gateway Time-out",
            _ => "Error",
        };
        Reply::html(
            status,
            &format!(
                "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n</body>\r\n</html>\r\n"
            ),
        )
    }
}

#[derive(Debug, Clone)]
pub struct FieldError {
    pub path: String,
    pub message: String,
    pub rejected: Value,
    pub source: &'static str,
}

impl FieldError {
    pub fn param(path: &str, message: &str, rejected: &str) -> FieldError {
        FieldError {
            path: path.to_string(),
            message: message.to_string(),
            rejected: json!(rejected),
            source: "PARAMETER",
        }
    }

    pub fn body(path: &str, message: &str, rejected: Value) -> FieldError {
        FieldError {
            path: path.to_string(),
            message: message.to_string(),
            rejected,
            source: "JSON",
        }
    }
}

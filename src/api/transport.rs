//! Small facts about URLs and transport failures that every request needs.

use serde_json::Value;
use url::Url;

use super::error::TransientKind;

/// Path and query of a URL (what the log shows of a request).
pub fn display_path(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => match u.query() {
            Some(q) => format!("{}?{}", u.path(), q),
            None => u.path().to_string(),
        },
        Err(_) => url.to_string(),
    }
}

/// The same URL with its `page` parameter set to `n` (links keep their other parameters).
pub fn with_page(url: &str, n: u64) -> String {
    let Ok(mut u) = Url::parse(url) else { return url.to_string() };
    let pairs: Vec<(String, String)> = u.query_pairs().filter(|(k, _)| k != "page").map(|(k, v)| (k.into(), v.into())).collect();
    {
        let mut q = u.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("page", &n.to_string());
    }
    u.to_string()
}

/// What kind of transport failure a reqwest error is.
pub fn transient_kind(e: &reqwest::Error) -> TransientKind {
    if e.is_timeout() {
        TransientKind::Timeout
    } else if e.is_connect() {
        TransientKind::Connect
    } else {
        TransientKind::Dropped
    }
}

/// The API's explanation of a rejected request (`message` and the `_embedded.errors` list).
pub fn error_message(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    };
    let mut message = v.get("message").and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(errors) = v.pointer("/_embedded/errors").and_then(Value::as_array) {
        for e in errors {
            let path = e.get("path").and_then(Value::as_str).unwrap_or("");
            let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
            message.push_str(&format!("; {path}: {msg}"));
        }
    }
    message
}

/// The fields a validation error names: `(path, message)` from `_embedded.errors`.
pub fn field_errors(body: &[u8]) -> Vec<(String, String)> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    let Some(errors) = v.pointer("/_embedded/errors").and_then(Value::as_array) else { return Vec::new() };
    errors
        .iter()
        .map(|e| {
            let get = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            (get("path"), get("message"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_keep_their_parameters() {
        let u = with_page("http://h/v2/conversations?status=all&page=2&embed=threads", 5);
        assert_eq!(u, "http://h/v2/conversations?status=all&embed=threads&page=5");
        assert_eq!(display_path(&u), "/v2/conversations?status=all&embed=threads&page=5");
    }

    #[test]
    fn rejections_read_the_apis_own_explanation() {
        let body = br#"{"message": "Bad request", "_embedded": {"errors": [{"path": "email", "message": "invalid"}]}}"#;
        assert_eq!(error_message(body), "Bad request; email: invalid");
        assert_eq!(error_message(b"<html>oops</html>"), "<html>oops</html>");
    }
}

/// The API's date format for query parameters (`2024-06-01T00:00:00Z`).
pub fn api_date(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

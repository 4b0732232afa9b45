//! HAL list envelopes: `_embedded`, `_links` (absolute, keeping every query parameter but
//! `page`) and `page`.

use serde_json::{Map, Value, json};
use url::form_urlencoded;

/// Page size of List Conversations.
pub const CONVERSATIONS_PAGE: usize = 25;
/// Page size of every other list.
pub const DEFAULT_PAGE: usize = 50;

/// Where a list request came from: absolute path and its query parameters (in order).
#[derive(Clone, Debug)]
pub struct ListRequest {
    /// e.g. "http://127.0.0.1:4000"
    pub origin: String,
    /// e.g. "/v2/conversations"
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl ListRequest {
    fn query_without_page(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            if k != "page" {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    pub fn href(&self, page: usize) -> String {
        let q = self.query_without_page();
        if q.is_empty() {
            format!("{}{}?page={page}", self.origin, self.path)
        } else {
            format!("{}{}?{q}&page={page}", self.origin, self.path)
        }
    }

    pub fn template(&self) -> String {
        let q = self.query_without_page();
        if q.is_empty() {
            format!("{}{}{{?page}}", self.origin, self.path)
        } else {
            format!("{}{}?{q}{{&page}}", self.origin, self.path)
        }
    }
}

pub fn total_pages(total: usize, size: usize) -> usize {
    total.div_ceil(size)
}

/// Offset of a 1-based page.
pub fn offset(page: usize, size: usize) -> usize {
    page.saturating_sub(1).saturating_mul(size)
}

/// Builds the envelope of one page. `items` is that page's objects.
pub fn envelope(
    req: &ListRequest,
    key: &str,
    items: Vec<Value>,
    page: usize,
    size: usize,
    total: usize,
) -> Value {
    let pages = total_pages(total, size);
    let number = if total == 0 { 0 } else { page };
    let mut links = Map::new();
    links.insert("self".into(), json!({"href": req.href(page)}));
    links.insert("first".into(), json!({"href": req.href(1)}));
    if page > 1 && pages > 0 {
        links.insert(
            "previous".into(),
            json!({"href": req.href((page - 1).min(pages))}),
        );
    }
    if page < pages {
        links.insert("next".into(), json!({"href": req.href(page + 1)}));
    }
    if pages > 0 {
        links.insert("last".into(), json!({"href": req.href(pages)}));
    }
    links.insert(
        "page".into(),
        json!({"href": req.template(), "templated": true}),
    );
    let mut m = Map::new();
    if !items.is_empty() {
        m.insert("_embedded".into(), json!({ key: items }));
    }
    m.insert("_links".into(), Value::Object(links));
    m.insert(
        "page".into(),
        json!({"size": size, "totalElements": total, "totalPages": pages, "number": number}),
    );
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(params: &[(&str, &str)]) -> ListRequest {
        ListRequest {
            origin: "http://127.0.0.1:9".into(),
            path: "/v2/conversations".into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn page_math() {
        assert_eq!(total_pages(0, 25), 0);
        assert_eq!(total_pages(25, 25), 1);
        assert_eq!(total_pages(26, 25), 2);
        assert_eq!(offset(1, 25), 0);
        assert_eq!(offset(3, 50), 100);
    }

    #[test]
    fn links_keep_parameters_and_replace_page() {
        let r = req(&[
            ("status", "all"),
            ("page", "2"),
            ("modifiedSince", "2024-01-01T00:00:00Z"),
        ]);
        let v = envelope(&r, "conversations", vec![json!({"id": 1})], 2, 25, 60);
        assert_eq!(
            v["_links"]["next"]["href"],
            "http://127.0.0.1:9/v2/conversations?status=all&modifiedSince=2024-01-01T00%3A00%3A00Z&page=3"
        );
        assert_eq!(
            v["_links"]["previous"]["href"],
            "http://127.0.0.1:9/v2/conversations?status=all&modifiedSince=2024-01-01T00%3A00%3A00Z&page=1"
        );
        assert_eq!(
            v["_links"]["page"]["href"],
            "http://127.0.0.1:9/v2/conversations?status=all&modifiedSince=2024-01-01T00%3A00%3A00Z{&page}"
        );
        assert_eq!(
            v["page"],
            json!({"size": 25, "totalElements": 60, "totalPages": 3, "number": 2})
        );
        let last = envelope(&r, "conversations", vec![json!({"id": 1})], 3, 25, 60);
        assert!(last["_links"].get("next").is_none());
    }

    #[test]
    fn empty_and_past_the_end() {
        let r = req(&[]);
        let v = envelope(&r, "conversations", vec![], 1, 25, 0);
        assert!(v.get("_embedded").is_none());
        assert_eq!(v["page"]["number"], 0);
        assert!(v["_links"].get("next").is_none());
        assert_eq!(
            v["_links"]["page"]["href"],
            "http://127.0.0.1:9/v2/conversations{?page}"
        );
        let past = envelope(&r, "conversations", vec![], 9, 25, 30);
        assert!(past.get("_embedded").is_none());
        assert!(past["_links"].get("next").is_none());
        assert_eq!(past["page"]["number"], 9);
    }
}

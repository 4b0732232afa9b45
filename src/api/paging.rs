//! Paging: one paginator per paging style (`Paging` in the catalog), each owning its rules for
//! reading a page and finding the next, and a listing that reads every page of a list in order,
//! several requests at a time once the page count is known.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::client::Client;
use super::error::ApiError;
use super::transport::{display_path, with_page};
use crate::catalog::Paging;

/// One page of a list.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    pub number: u64,
    pub total_pages: u64,
    /// Records in the whole list (HAL `page.totalElements`, the report's `count`).
    pub total_elements: Option<u64>,
    pub next: Option<String>,
    pub server_date: Option<DateTime<Utc>>,
}

impl Page {
    /// Whether a listing ends with this page.
    fn is_last(&self) -> bool {
        self.items.is_empty() || self.next.is_none() || (self.total_pages > 0 && self.number >= self.total_pages)
    }
}

fn malformed(shown: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Malformed { path: shown.to_string(), reason: reason.into() }
}

/// How one paging style reads a page and finds the next.
pub trait Paginator: Sync {
    /// The page in `body` (of the list under `list_key`), requested at `url`.
    fn parse(&self, body: Value, list_key: &str, url: &str) -> Result<Page, ApiError>;
}

/// HAL+JSON: `_embedded.{list_key}`, `page{number,totalPages,totalElements}`, `_links.next`.
/// An empty result omits `_embedded`.
pub struct Hal;

/// The reports' paging: `{results, page, pages, count}`; the next page is `page + 1` while
/// `page < pages`.
pub struct Report;

impl Paginator for Hal {
    fn parse(&self, body: Value, list_key: &str, url: &str) -> Result<Page, ApiError> {
        let shown = display_path(url);
        let Value::Object(mut obj) = body else { return Err(malformed(&shown, "not a JSON object")) };
        let items = match obj.get_mut("_embedded").and_then(|e| e.get_mut(list_key)).map(Value::take) {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(malformed(&shown, format!("`_embedded.{list_key}` is not a list"))),
            None if obj.get("_embedded").and_then(Value::as_object).is_some_and(|e| !e.is_empty()) => {
                return Err(malformed(&shown, format!("no `_embedded.{list_key}` list")));
            }
            None => Vec::new(),
        };
        let page = obj.get("page");
        let number = |key: &str| page.and_then(|p| p.get(key)).and_then(Value::as_u64);
        let next = obj.get("_links").and_then(|l| l.get("next")).and_then(|n| n.get("href")).and_then(Value::as_str).map(String::from);
        Ok(Page {
            items,
            number: number("number").unwrap_or(0),
            total_pages: number("totalPages").unwrap_or(0),
            total_elements: number("totalElements"),
            next,
            server_date: None,
        })
    }
}

impl Paginator for Report {
    fn parse(&self, body: Value, list_key: &str, url: &str) -> Result<Page, ApiError> {
        let shown = display_path(url);
        let Value::Object(mut obj): Value = body else { return Err(malformed(&shown, "not a JSON object")) };
        let items = match obj.get_mut(list_key).map(Value::take) {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(malformed(&shown, format!("`{list_key}` is not a list"))),
        };
        let obj: &Map<String, Value> = &obj;
        let number = obj.get("page").and_then(Value::as_u64).unwrap_or(1);
        let total_pages = obj.get("pages").and_then(Value::as_u64).unwrap_or(number);
        let next = (number < total_pages && !items.is_empty()).then(|| with_page(url, number + 1));
        Ok(Page { items, number, total_pages, total_elements: obj.get("count").and_then(Value::as_u64), next, server_date: None })
    }
}

/// The paginator of a paging style.
pub fn paginator(paging: Paging) -> &'static dyn Paginator {
    match paging {
        Paging::Hal => &Hal,
        Paging::Report => &Report,
    }
}

/// Where listed pages go.
pub trait PageSink {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ApiError>> + Send;
}

/// Collects every record.
impl PageSink for Vec<Value> {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        self.extend(page.items);
        std::future::ready(Ok(()))
    }
}

/// Hands pages to a consumer; a full channel holds the listing back, so pages are never
/// buffered beyond it.
impl PageSink for tokio::sync::mpsc::Sender<Result<Page, ApiError>> {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        async move {
            // The receiver only goes away when the table already failed.
            let _ = self.send(Ok(page)).await;
            Ok(())
        }
    }
}

/// Keeps only the records' ids (a scan for removals over a large list).
#[derive(Debug, Default)]
pub struct IdCollector(pub std::collections::HashSet<i64>);

impl PageSink for IdCollector {
    fn accept(&mut self, page: Page) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        self.0.extend(page.items.iter().filter_map(|r| r.get("id").and_then(Value::as_i64)));
        std::future::ready(Ok(()))
    }
}

/// A list of one table's endpoint, read page by page.
#[derive(Clone, Copy)]
pub struct Listing {
    pub list_key: &'static str,
    pub paging: Paging,
}

/// A page request running as its own task; stopped when the listing no longer wants it.
struct InFlight(tokio::task::JoinHandle<Result<Page, ApiError>>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Listing {
    /// One page of the list.
    pub async fn page(&self, client: &Client, url: &str) -> Result<Page, ApiError> {
        let response = client.get(url).await?;
        let mut page = paginator(self.paging).parse(response.body, self.list_key, &client.url(url))?;
        page.server_date = response.server_date;
        Ok(page)
    }

    /// Every page of the list, in order, `concurrency` requests at a time once the page count is
    /// known; `sink` sees each page as it arrives. Returns the server date of the first page.
    pub async fn all_pages<S: PageSink + Send>(
        self,
        client: &Arc<Client>,
        first_url: &str,
        sink: &mut S,
    ) -> Result<Option<DateTime<Utc>>, ApiError> {
        let first = self.page(client, first_url).await?;
        let server_date = first.server_date;
        let (total_pages, first_number) = (first.total_pages, first.number.max(1));
        let mut next = first.next.clone();
        let last = first.items.is_empty();
        sink.accept(first).await?;
        if last {
            return Ok(server_date);
        }
        let concurrency = client.config().concurrency;
        // Pages 2..=total are known up front: fetch them concurrently, in order.
        if let Some(template) = next.clone()
            && total_pages > first_number + 1
            && concurrency > 1
        {
            // Each page is its own task: a sink that holds the listing back must not stop the
            // requests already under way from being driven (they may hold a shared resource).
            let mut numbers = first_number + 1..=total_pages;
            let spawn = |n: u64| {
                let client = Arc::clone(client);
                let url = with_page(&template, n);
                InFlight(tokio::spawn(async move { self.page(&client, &url).await }))
            };
            let mut in_flight: VecDeque<InFlight> = numbers.by_ref().take(concurrency).map(spawn).collect();
            next = None;
            while let Some(mut task) = in_flight.pop_front() {
                let page = (&mut task.0).await.map_err(|e| malformed(&display_path(&client.url(first_url)), format!("a page request stopped: {e}")))??;
                in_flight.extend(numbers.next().map(spawn));
                let done = page.items.is_empty();
                next = page.next.clone();
                sink.accept(page).await?;
                if done {
                    return Ok(server_date);
                }
            }
        }
        // Then follow `next` links as given (the list may have grown while it was paged).
        while let Some(url) = next.take() {
            let page = self.page(client, &url).await?;
            next = if page.is_last() { None } else { page.next.clone() };
            sink.accept(page).await?;
        }
        Ok(server_date)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hal_pages_parse_with_and_without_embedded() {
        let body = json!({"_embedded": {"users": [{"id": 1}]}, "page": {"number": 1, "totalPages": 2, "totalElements": 51},
            "_links": {"next": {"href": "http://h/v2/users?page=2"}}});
        let page = Hal.parse(body, "users", "http://h/v2/users").unwrap();
        assert_eq!((page.items.len(), page.total_elements), (1, Some(51)));
        assert_eq!(page.next.as_deref(), Some("http://h/v2/users?page=2"));
        assert!(!page.is_last());
        let empty = Hal.parse(json!({"page": {"number": 0, "totalPages": 0}}), "users", "http://h/v2/users").unwrap();
        assert!(empty.items.is_empty() && empty.next.is_none() && empty.is_last());
        assert!(Hal.parse(json!({"_embedded": {"users": 3}}), "users", "http://h/x").is_err());
        assert!(Hal.parse(json!({"_embedded": {"teams": []}}), "users", "http://h/x").is_err());
    }

    #[test]
    fn report_pages_follow_page_and_pages() {
        let url = "http://h/v2/reports/happiness/ratings?start=2024-01-01T00:00:00Z&end=2024-02-01T00:00:00Z";
        let page = Report.parse(json!({"results": [{"id": 1}], "page": 1, "pages": 2, "count": 60}), "results", url).unwrap();
        assert_eq!(page.total_elements, Some(60));
        let next = page.next.unwrap();
        assert!(next.contains("start=2024-01-01T00%3A00%3A00Z") && next.ends_with("page=2"), "{next}");
        let last = Report.parse(json!({"results": [{"id": 1}], "page": 2, "pages": 2}), "results", url).unwrap();
        assert!(last.next.is_none() && last.is_last());
        assert!(Report.parse(json!({"results": {}}), "results", url).is_err());
    }
}

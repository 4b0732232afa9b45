//! The log events a run writes itself (row events are the store's): what its requests call
//! for (throttling, authentication, failed attempts) and each table's closing event.

use crate::catalog::Table;
use crate::catalog::log::{EventType, LogEvent, Purpose, RequestRecord, RetryTarget, Status};

use super::report::TableReport;

/// Events that the request records call for: throttling, authentication, failed attempts.
pub(crate) fn from_requests(records: &[RequestRecord], table: Option<&'static Table>) -> Vec<LogEvent> {
    let mut events = Vec::new();
    for r in records {
        let base = |event_type, status, details: &str| LogEvent {
            timestamp: r.at,
            http_status: r.status,
            request: Some(format!("{} {}", r.method.as_str(), r.request)),
            attempt: Some(r.attempt),
            duration_ms: Some(r.duration_ms),
            table_name: table.map(|t| t.name),
            ..LogEvent::new(event_type, status, details)
        };
        match (r.purpose, r.status, &r.error) {
            (Purpose::Token, _, None) => events.push(base(EventType::Authentication, Status::Success, "Access token obtained")),
            (Purpose::Token, _, Some(reason)) => {
                events.push(base(EventType::Authentication, Status::Failed, "Access token refused").error(format!("Authentication failed: {reason}")));
            }
            (_, Some(429), _) => events.push(
                base(EventType::RateLimited, Status::Pending, "Throttled by the API; waited the advertised time and retried").error("Rate limit exceeded"),
            ),
            // Answers, not failures: their meaning (merged, deleted, not on this plan, mailbox
            // not found) is logged by the table or record they concern.
            (_, Some(301 | 403 | 404), _) => {}
            // What is left to retry after the client's own retries is logged by the table or
            // record that failed, not by each attempt.
            (_, _, Some(err)) => events.push(base(EventType::Error, Status::Failed, &format!("Request failed (attempt {})", r.attempt)).error(err.clone())),
            (_, _, None) => {}
        }
    }
    events
}

/// A table's closing event: its outcome, rows and requests. `retry_table`: a retry syncs the
/// whole table again (records that failed are retried one by one instead).
pub(crate) fn table_synced(table: &'static Table, report: &TableReport, retry_table: bool) -> LogEvent {
    let details = format!("{} rows received, {} removed, {} API requests ({})", report.rows, report.removed, report.requests, report.method);
    let mut e = LogEvent::new(EventType::TableSynced, report.status, details).table(table);
    e.duration_ms = Some(report.duration_ms);
    if let Some(err) = &report.error {
        e.error_message = Some(err.clone());
        if retry_table {
            e.retry_target = Some(RetryTarget { table, id: None });
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::log::Method;
    use chrono::Utc;

    fn record(purpose: Purpose, status: Option<u16>, error: Option<&str>) -> RequestRecord {
        RequestRecord {
            at: Utc::now(),
            method: if purpose == Purpose::Token { Method::Post } else { Method::Get },
            purpose,
            request: "/v2/x".into(),
            status,
            attempt: 1,
            duration_ms: 3,
            rate_limit_remaining: None,
            error: error.map(String::from),
        }
    }

    #[test]
    fn requests_become_the_events_the_log_page_expects() {
        let records = [
            record(Purpose::Token, Some(200), None),
            record(Purpose::Token, Some(401), Some("the token endpoint answered HTTP 401")),
            record(Purpose::Api, Some(429), Some("Rate limit exceeded")),
            record(Purpose::Api, Some(404), Some("Not found")),
            record(Purpose::Api, Some(500), Some("HTTP 500")),
            record(Purpose::Api, Some(200), None),
        ];
        let events = from_requests(&records, Some(&crate::catalog::USERS));
        let kinds: Vec<(EventType, Status)> = events.iter().map(|e| (e.event_type, e.status)).collect();
        assert_eq!(
            kinds,
            [
                (EventType::Authentication, Status::Success),
                (EventType::Authentication, Status::Failed),
                (EventType::RateLimited, Status::Pending),
                (EventType::Error, Status::Failed),
            ]
        );
        assert_eq!(events[1].error_message.as_deref(), Some("Authentication failed: the token endpoint answered HTTP 401"));
        assert_eq!(events[3].request.as_deref(), Some("GET /v2/x"));
        assert!(events.iter().all(|e| e.table_name == Some("users")));
    }
}

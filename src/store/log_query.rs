//! Searching the integration log the way the log page does: a time range, event types,
//! status, direction, table, and one search box for a customer email, a conversation id or a
//! conversation number; the page's Summary Dashboard; the failed events a retry re-attempts.

use chrono::{DateTime, Utc};
use duckdb::types::Value as DbValue;
use serde::Serialize;
use serde_json::Value;

use super::grid::Grid;
use super::log::{LOG_COLUMNS, LOG_TABLE};
use super::{Reader, StoreError, db};
use crate::catalog::log::{EventType, RetryTarget, Status};
use crate::catalog;

/// Which events to show.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Event type names (case-insensitive; any of them).
    pub event_types: Vec<String>,
    pub status: Option<String>,
    pub direction: Option<String>,
    pub table: Option<String>,
    /// A customer email (or part of one), a conversation id or number, or a conversation link.
    pub search: Option<String>,
    pub event_id: Option<i64>,
    /// Exactly this error message (a group of failures).
    pub error_message: Option<String>,
    /// Only events older than this place in the log's order (the next page).
    pub before: Option<Cursor>,
}

/// A place in the log's order, newest first: the page after it holds the events older than it.
/// Pages cut this way stay the same while new events arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub micros: i64,
    pub event_id: i64,
}

impl Cursor {
    /// `1717416000000000.42`, as a page link carries it.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (micros, id) = s.split_once('.')?;
        Some(Cursor { micros: micros.parse().ok()?, event_id: id.parse().ok()? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.micros, self.event_id)
    }
}

/// A `WHERE` clause and its parameters.
pub(super) struct Where {
    clauses: Vec<String>,
    pub(super) params: Vec<DbValue>,
}

impl Where {
    pub(super) fn push(&mut self, clause: &str, params: impl IntoIterator<Item = DbValue>) {
        self.clauses.push(clause.to_string());
        self.params.extend(params);
    }

    pub(super) fn sql(&self) -> String {
        if self.clauses.is_empty() { "true".into() } else { self.clauses.join(" AND ") }
    }
}

impl LogFilter {
    pub(super) fn to_sql(&self) -> Where {
        let mut w = Where { clauses: Vec::new(), params: Vec::new() };
        let micros = |t: DateTime<Utc>| DbValue::BigInt(t.timestamp_micros());
        if let Some(from) = self.from {
            w.push(&format!("\"timestamp\" >= {AT}"), [micros(from)]);
        }
        if let Some(to) = self.to {
            w.push(&format!("\"timestamp\" < {AT}"), [micros(to)]);
        }
        if !self.event_types.is_empty() {
            let marks = vec!["lower(?)"; self.event_types.len()].join(", ");
            w.push(&format!("lower(event_type) IN ({marks})"), self.event_types.iter().map(|t| DbValue::Text(t.trim().to_string())));
        }
        if let Some(status) = &self.status {
            w.push("lower(status) = lower(?)", [DbValue::Text(status.clone())]);
        }
        if let Some(direction) = &self.direction {
            w.push("lower(direction) = lower(?)", [DbValue::Text(direction.clone())]);
        }
        if let Some(table) = &self.table {
            w.push("table_name = ?", [DbValue::Text(table.clone())]);
        }
        if let Some(search) = self.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            match search.trim_start_matches('#').parse::<i64>() {
                Ok(n) => w.push("(conversation_id = ? OR conversation_number = ?)", [DbValue::BigInt(n), DbValue::BigInt(n)]),
                // A conversation's link, pasted.
                Err(_) if search.starts_with("http") => w.push("conversation_url = ?", [DbValue::Text(search.to_string())]),
                // A submission's or customer record's id as the log shows it (`forms/contact/…`).
                Err(_) if super::outbox::is_source_id(search) => w.push("source_id = ?", [DbValue::Text(search.to_string())]),
                // ILIKE is much faster without an ESCAPE clause, needed only for `%`, `_`, `\`.
                Err(_) if !search.contains(['%', '_', '\\']) => w.push("customer_email ILIKE ?", [DbValue::Text(format!("%{search}%"))]),
                Err(_) => w.push("customer_email ILIKE ? ESCAPE '\\'", [DbValue::Text(format!("%{}%", like_escaped(search)))]),
            }
        }
        if let Some(id) = self.event_id {
            w.push("event_id = ?", [DbValue::BigInt(id)]);
        }
        if let Some(message) = &self.error_message {
            w.push("error_message = ?", [DbValue::Text(message.clone())]);
        }
        if let Some(c) = self.before {
            w.push(
                // The first condition alone lets whole row groups be skipped.
                &format!("\"timestamp\" <= {AT} AND (\"timestamp\" < {AT} OR event_id < ?)"),
                [DbValue::BigInt(c.micros), DbValue::BigInt(c.micros), DbValue::BigInt(c.event_id)],
            );
        }
        w
    }
}

/// `%` and `_` in a search are letters, not wildcards.
fn like_escaped(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A time parameter (µs since the epoch) compared with the `timestamp` column as it is, so
/// that row groups outside the range are skipped by their min/max.
const AT: &str = "make_timestamp(?::BIGINT)::TIMESTAMPTZ";

/// The Summary Dashboard of a period.
#[derive(Debug, Serialize, PartialEq)]
pub struct Summary {
    pub total_events: i64,
    pub successes: i64,
    pub failures: i64,
    pub pending: i64,
    /// Successes among events that finished (Success or Failed), in percent.
    pub success_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub new_tickets: i64,
    pub customers_synced: i64,
}

/// A failed event that a retry can re-attempt.
#[derive(Debug, Clone)]
pub struct PendingRetry {
    pub event_id: i64,
    pub event_type: EventType,
    pub target: RetryTarget,
}

fn column_list() -> String {
    LOG_COLUMNS
        .iter()
        .filter(|(name, _)| !name.starts_with("retried_"))
        .map(|(name, ty)| match *name {
            _ if ty.starts_with("TIMESTAMPTZ") => format!("strftime(make_timestamp(epoch_us(\"{name}\")), '%Y-%m-%dT%H:%M:%SZ') AS \"{name}\""),
            _ => format!("\"{name}\""),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Reader {
    /// The matching events, newest first (`limit` 0: all).
    pub fn log_events(&self, filter: &LogFilter, limit: usize) -> Result<Grid, StoreError> {
        let w = filter.to_sql();
        let limit = if limit == 0 { String::new() } else { format!(" LIMIT {limit}") };
        let sql = format!("SELECT {} FROM {LOG_TABLE} WHERE {} ORDER BY \"timestamp\" DESC, event_id DESC{limit}", column_list(), w.sql());
        self.grid(&sql, &w.params, "searching the integration log")
    }

    pub fn log_summary(&self, filter: &LogFilter) -> Result<Summary, StoreError> {
        let w = filter.to_sql();
        let status = |s: Status| format!("count(*) FILTER (status = '{}')", s.as_str());
        let succeeded = |event: EventType| format!("count(*) FILTER (event_type = '{}' AND status = '{}')", event.as_str(), Status::Success.as_str());
        let sql = format!(
            "SELECT count(*), {}, {}, {}, {}, {} FROM {LOG_TABLE} WHERE {}",
            status(Status::Success),
            status(Status::Failed),
            status(Status::Pending),
            succeeded(EventType::TicketCreated),
            succeeded(EventType::CustomerSynced),
            w.sql()
        );
        let (total, ok, failed, pending, tickets, customers): (i64, i64, i64, i64, i64, i64) = self
            .conn
            .query_row(&sql, duckdb::params_from_iter(w.params.iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .map_err(db("summarising the integration log"))?;
        let finished = ok + failed;
        let rate = |n: i64| (finished > 0).then(|| (n as f64 * 1000.0 / finished as f64).round() / 10.0);
        Ok(Summary {
            total_events: total,
            successes: ok,
            failures: failed,
            pending,
            success_rate: rate(ok),
            error_rate: rate(failed),
            new_tickets: tickets,
            customers_synced: customers,
        })
    }

    /// Failed events among the matching ones that carry a retry target and were not retried.
    fn failed_targets(&self, filter: &LogFilter) -> Result<Vec<(i64, String, Value)>, StoreError> {
        let doing = "reading the failed events";
        let mut w = filter.to_sql();
        w.push(&format!("status = '{}' AND retry_target IS NOT NULL AND retried_at IS NULL", Status::Failed.as_str()), []);
        let sql = format!("SELECT event_id, event_type, retry_target FROM {LOG_TABLE} WHERE {} ORDER BY event_id", w.sql());
        let mut stmt = self.conn.prepare(&sql).map_err(db(doing))?;
        let rows: Vec<(i64, String, String)> = stmt
            .query_map(duckdb::params_from_iter(w.params.iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db(doing))?
            .collect::<Result<_, _>>()
            .map_err(db(doing))?;
        Ok(rows.into_iter().filter_map(|(id, ty, target)| Some((id, ty, serde_json::from_str(&target).ok()?))).collect())
    }

    /// Failed From-HelpScout events a retry re-fetches (a table, or one record of it).
    pub fn pending_retries(&self, filter: &LogFilter) -> Result<Vec<PendingRetry>, StoreError> {
        Ok(self
            .failed_targets(filter)?
            .into_iter()
            .filter_map(|(event_id, event_type, target)| {
                let table = catalog::by_name(target.get("table")?.as_str()?)?;
                let id = target.get("id").and_then(Value::as_i64);
                Some(PendingRetry { event_id, event_type: EventType::parse(&event_type).unwrap_or(EventType::Error), target: RetryTarget { table, id } })
            })
            .collect())
    }

    /// Failed To-HelpScout events a retry sends again: their source ids.
    pub fn pending_outbound_retries(&self, filter: &LogFilter) -> Result<Vec<String>, StoreError> {
        Ok(self.failed_targets(filter)?.into_iter().filter_map(|(_, _, target)| Some(target.get("outbound")?.as_str()?.to_string())).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::log::LogEvent;
    use crate::store::Warehouse;

    #[test]
    fn the_search_box_matches_emails_in_part_and_in_any_case_and_its_wildcards_are_letters() {
        let dir = tempfile::tempdir().unwrap();
        let warehouse = Warehouse::new(dir.path().join("log.duckdb"));
        let event = |email: &str, conversation: Option<i64>| {
            let mut e = LogEvent::new(EventType::TicketCreated, Status::Success, "a ticket");
            e.customer_email = Some(email.into());
            e.conversation_id = conversation;
            e.conversation_number = conversation.map(|c| c % 1000);
            e
        };
        warehouse
            .commit(&mut Default::default(), |tx| {
                tx.ensure_log()?;
                tx.append_events("run", &[event("Ann_Lee@x.io", Some(2100000007)), event("annxlee@x.io", None), event("50%off@x.io", None)])
            })
            .unwrap();
        let reader = warehouse.read().unwrap();
        let found = |search: &str| -> Vec<Option<String>> {
            let filter = LogFilter { search: Some(search.into()), ..Default::default() };
            reader.log_rows(&filter, 10).unwrap().into_iter().map(|r| r.customer_email).collect()
        };
        assert_eq!(found("ANN_"), [Some("Ann_Lee@x.io".to_string())], "`_` is a letter, case is ignored");
        assert_eq!(found("lee@"), [Some("annxlee@x.io".to_string()), Some("Ann_Lee@x.io".to_string())]);
        assert_eq!(found("50%"), [Some("50%off@x.io".to_string())]);
        assert_eq!(found("#7").len(), 1, "a ticket number");
        assert_eq!(found("2100000007").len(), 1, "a conversation id");
        assert_eq!(found("https://secure.helpscout.net/conversation/2100000007/7").len(), 1, "a pasted link");
        assert!(found("nobody").is_empty());
    }
}

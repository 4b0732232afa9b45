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
}

/// A `WHERE` clause and its parameters.
struct Where {
    clauses: Vec<String>,
    params: Vec<DbValue>,
}

impl Where {
    fn push(&mut self, clause: &str, params: impl IntoIterator<Item = DbValue>) {
        self.clauses.push(clause.to_string());
        self.params.extend(params);
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() { "true".into() } else { self.clauses.join(" AND ") }
    }
}

impl LogFilter {
    fn to_sql(&self) -> Where {
        let mut w = Where { clauses: Vec::new(), params: Vec::new() };
        let micros = |t: DateTime<Utc>| DbValue::BigInt(t.timestamp_micros());
        if let Some(from) = self.from {
            w.push("epoch_us(\"timestamp\") >= ?", [micros(from)]);
        }
        if let Some(to) = self.to {
            w.push("epoch_us(\"timestamp\") < ?", [micros(to)]);
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
                Err(_) => w.push(
                    "(customer_email ILIKE ? ESCAPE '\\' OR conversation_url = ?)",
                    [DbValue::Text(format!("%{}%", like_escaped(search))), DbValue::Text(search.to_string())],
                ),
            }
        }
        if let Some(id) = self.event_id {
            w.push("event_id = ?", [DbValue::BigInt(id)]);
        }
        w
    }
}

/// `%` and `_` in a search are letters, not wildcards.
fn like_escaped(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

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
        .filter(|(name, _)| *name != "retried_at")
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
    pub fn pending_retries(&self, filter: &LogFilter) -> Result<Vec<PendingRetry>, StoreError> {
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
        Ok(rows
            .into_iter()
            .filter_map(|(event_id, event_type, target)| {
                let target: Value = serde_json::from_str(&target).ok()?;
                let table = catalog::by_name(target.get("table")?.as_str()?)?;
                let id = target.get("id").and_then(Value::as_i64);
                Some(PendingRetry { event_id, event_type: EventType::parse(&event_type).unwrap_or(EventType::Error), target: RetryTarget { table, id } })
            })
            .collect())
    }
}

//! What the log's web page reads: events as typed rows, one event and its neighbours, the
//! failures grouped by message, outcomes per hour, and the log in chunks for exports.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use duckdb::types::Value as DbValue;
use serde::Serialize;

use super::log::{LOG_COLUMNS, LOG_TABLE};
use super::log_query::{Cursor, LogFilter};
use super::{Reader, StoreError, db};
use crate::catalog::log::{EventType, Status};

/// One event, every column.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LogRow {
    pub event_id: i64,
    /// UTC, `2026-06-01T12:00:00Z`.
    pub timestamp: String,
    #[serde(skip)]
    pub micros: i64,
    pub event_type: String,
    pub customer_email: Option<String>,
    pub conversation_id: Option<i64>,
    pub conversation_number: Option<i64>,
    pub conversation_url: Option<String>,
    pub status: String,
    pub direction: String,
    pub details: Option<String>,
    pub error_message: Option<String>,
    pub run_id: Option<String>,
    pub table_name: Option<String>,
    pub http_status: Option<i64>,
    pub request: Option<String>,
    pub attempt: Option<i64>,
    pub duration_ms: Option<i64>,
    pub retry_target: Option<String>,
    pub retried_at: Option<String>,
    pub retried_by: Option<String>,
    /// The business's record a To-HelpScout row is about (`forms/contact/{id}`, `customers/…`).
    pub source_id: Option<String>,
}

impl LogRow {
    /// Where the page after this row starts.
    pub fn cursor(&self) -> Cursor {
        Cursor { micros: self.micros, event_id: self.event_id }
    }

    /// A failure a retry can re-attempt.
    pub fn retryable(&self) -> bool {
        self.status == Status::Failed.as_str() && self.retry_target.is_some() && self.retried_at.is_none()
    }
}

/// Failures sharing one error message.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FailureGroup {
    pub error_message: Option<String>,
    pub event_types: String,
    pub failures: i64,
    /// Of which a retry can re-attempt (a target, not retried yet).
    pub retryable: i64,
    pub last_at: String,
}

/// Finished events of one hour (attempt-level types left out, as the health view does).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HourOutcome {
    /// `2026-06-01T12:00:00Z`, the hour's start.
    pub hour: String,
    pub successes: i64,
    pub failures: i64,
}

const ISO: &str = "'%Y-%m-%dT%H:%M:%SZ'";

fn select_rows() -> String {
    let columns: Vec<String> = LOG_COLUMNS
        .iter()
        .map(|(name, ty)| match *name {
            _ if ty.starts_with("TIMESTAMPTZ") => format!("strftime(make_timestamp(epoch_us(\"{name}\")), {ISO})"),
            _ => format!("\"{name}\""),
        })
        .collect();
    format!("SELECT {}, epoch_us(\"timestamp\") FROM {LOG_TABLE}", columns.join(", "))
}

fn row(r: &duckdb::Row<'_>) -> duckdb::Result<LogRow> {
    Ok(LogRow {
        event_id: r.get(0)?,
        timestamp: r.get(1)?,
        event_type: r.get(2)?,
        customer_email: r.get(3)?,
        conversation_id: r.get(4)?,
        conversation_number: r.get(5)?,
        conversation_url: r.get(6)?,
        status: r.get(7)?,
        direction: r.get(8)?,
        details: r.get(9)?,
        error_message: r.get(10)?,
        run_id: r.get(11)?,
        table_name: r.get(12)?,
        http_status: r.get(13)?,
        request: r.get(14)?,
        attempt: r.get(15)?,
        duration_ms: r.get(16)?,
        retry_target: r.get(17)?,
        retried_at: r.get(18)?,
        retried_by: r.get(19)?,
        source_id: r.get(20)?,
        micros: r.get(21)?,
    })
}

/// Event types that are counted as outcomes (the others count request attempts).
fn outcome_types() -> String {
    let attempt_level = [EventType::Error, EventType::RateLimited];
    attempt_level.iter().map(|e| format!("'{}'", e.as_str())).collect::<Vec<_>>().join(", ")
}

impl Reader {
    fn rows(&self, sql: &str, params: &[DbValue], doing: &str) -> Result<Vec<LogRow>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(db(doing))?;
        let rows = stmt.query_map(duckdb::params_from_iter(params.iter()), row).map_err(db(doing))?.collect::<Result<_, _>>().map_err(db(doing))?;
        Ok(rows)
    }

    /// The matching events, newest first, at most `limit` (from the filter's cursor on).
    pub fn log_rows(&self, filter: &LogFilter, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        let w = filter.to_sql();
        let sql = format!("{} WHERE {} ORDER BY \"timestamp\" DESC, event_id DESC LIMIT {limit}", select_rows(), w.sql());
        self.rows(&sql, &w.params, "reading the integration log")
    }

    pub fn event(&self, event_id: i64) -> Result<Option<LogRow>, StoreError> {
        let rows = self.rows(&format!("{} WHERE event_id = ?", select_rows()), &[DbValue::BigInt(event_id)], "reading an event")?;
        Ok(rows.into_iter().next())
    }

    /// The other events of the same conversation or customer, newest first.
    pub fn related_events(&self, event: &LogRow, limit: usize) -> Result<Vec<LogRow>, StoreError> {
        if event.conversation_id.is_none() && event.customer_email.is_none() {
            return Ok(vec![]);
        }
        let sql = format!(
            "{} WHERE event_id <> ? AND (conversation_id = ? OR lower(customer_email) = lower(?)) ORDER BY \"timestamp\" DESC, event_id DESC LIMIT {limit}",
            select_rows()
        );
        let params = [
            DbValue::BigInt(event.event_id),
            event.conversation_id.map_or(DbValue::Null, DbValue::BigInt),
            event.customer_email.clone().map_or(DbValue::Null, DbValue::Text),
        ];
        self.rows(&sql, &params, "reading related events")
    }

    /// The filter's failures grouped by error message, the most frequent first.
    pub fn failure_groups(&self, filter: &LogFilter) -> Result<Vec<FailureGroup>, StoreError> {
        let doing = "grouping failures";
        let mut w = filter.to_sql();
        w.push(&format!("status = '{}'", Status::Failed.as_str()), []);
        let sql = format!(
            "SELECT error_message, string_agg(DISTINCT event_type, ', ' ORDER BY event_type), count(*), \
                    count(*) FILTER (retry_target IS NOT NULL AND retried_at IS NULL), \
                    strftime(make_timestamp(max(epoch_us(\"timestamp\"))), {ISO}) \
             FROM {LOG_TABLE} WHERE {} GROUP BY error_message ORDER BY count(*) DESC, max(\"timestamp\") DESC",
            w.sql()
        );
        let mut stmt = self.conn.prepare(&sql).map_err(db(doing))?;
        let groups = stmt
            .query_map(duckdb::params_from_iter(w.params.iter()), |r| {
                Ok(FailureGroup { error_message: r.get(0)?, event_types: r.get(1)?, failures: r.get(2)?, retryable: r.get(3)?, last_at: r.get(4)? })
            })
            .map_err(db(doing))?
            .collect::<Result<_, _>>()
            .map_err(db(doing))?;
        Ok(groups)
    }

    /// Successes and failures per hour over the last `hours` hours (hours without events left out).
    pub fn hourly_outcomes(&self, hours: i64) -> Result<Vec<HourOutcome>, StoreError> {
        let doing = "counting outcomes per hour";
        let sql = format!(
            "SELECT strftime(date_trunc('hour', make_timestamp(epoch_us(\"timestamp\"))), {ISO}) AS hour, \
                    count(*) FILTER (status = '{ok}'), count(*) FILTER (status = '{failed}') \
             FROM {LOG_TABLE} \
             WHERE epoch_us(\"timestamp\") >= epoch_us(now()) - {hours} * 3600000000 AND event_type NOT IN ({}) \
             GROUP BY 1 ORDER BY 1",
            outcome_types(),
            ok = Status::Success.as_str(),
            failed = Status::Failed.as_str(),
        );
        let mut stmt = self.conn.prepare(&sql).map_err(db(doing))?;
        let rows = stmt
            .query_map([], |r| Ok(HourOutcome { hour: r.get(0)?, successes: r.get(1)?, failures: r.get(2)? }))
            .map_err(db(doing))?
            .collect::<Result<_, _>>()
            .map_err(db(doing))?;
        Ok(rows)
    }

    /// Up to `limit` matching events as Arrow (newest first, from the filter's cursor on), for
    /// exports that write Parquet: their schema, the batches, and the cursor after the last.
    pub fn log_batches(&self, filter: &LogFilter, limit: usize) -> Result<(SchemaRef, Vec<RecordBatch>, Option<Cursor>), StoreError> {
        let doing = "exporting the integration log";
        let w = filter.to_sql();
        let columns: Vec<String> = LOG_COLUMNS.iter().map(|(name, _)| format!("\"{name}\"")).collect();
        let sql = format!("SELECT {} FROM {LOG_TABLE} WHERE {} ORDER BY \"timestamp\" DESC, event_id DESC LIMIT {limit}", columns.join(", "), w.sql());
        let mut stmt = self.conn.prepare(&sql).map_err(db(doing))?;
        let arrow = stmt.query_arrow(duckdb::params_from_iter(w.params.iter())).map_err(db(doing))?;
        let schema = arrow.get_schema();
        let batches: Vec<RecordBatch> = arrow.collect();
        let last = batches.iter().rev().find(|b| b.num_rows() > 0).and_then(last_cursor);
        Ok((schema, batches, last))
    }
}

/// The cursor after the last row of a batch of log rows.
fn last_cursor(batch: &RecordBatch) -> Option<Cursor> {
    use arrow::array::{AsArray, Int64Array};
    use arrow::datatypes::TimestampMicrosecondType;
    let i = batch.num_rows().checked_sub(1)?;
    let ids = batch.column_by_name("event_id")?.as_any().downcast_ref::<Int64Array>()?;
    let at = batch.column_by_name("timestamp")?.as_primitive_opt::<TimestampMicrosecondType>()?;
    Some(Cursor { micros: at.value(i), event_id: ids.value(i) })
}

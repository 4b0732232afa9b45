//! The integration log ("HelpScout Log"): one row per sync event, written in the same
//! transaction as the data it describes, plus one row per API request for the API-usage view.
//! Neither ever holds a token or a secret: requests are recorded as method and path only.

use chrono::{DateTime, Utc};
use duckdb::params;
use serde::Serialize;

use crate::client::RequestRecord;
use crate::schema::quote_ident;
use crate::sinks::duckdb::{Tx, WarehouseError};
use crate::tables::{Source, Table};

pub const LOG_TABLE: &str = "helpscout_log";
pub const REQUESTS_TABLE: &str = "helpscout_api_requests";

/// Events flow from Help Scout into the warehouse; writes would go the other way.
pub const FROM_HELPSCOUT: &str = "From HelpScout";
pub const TO_HELPSCOUT: &str = "To HelpScout";

pub const WEB_LINK_PREFIX: &str = "https://secure.helpscout.net/conversation/";

pub const DDL: &str = r#"
CREATE SEQUENCE IF NOT EXISTS helpscout_log_seq;
CREATE TABLE IF NOT EXISTS helpscout_log (
  event_id BIGINT PRIMARY KEY DEFAULT nextval('helpscout_log_seq'),
  "timestamp" TIMESTAMPTZ NOT NULL,
  event_type VARCHAR NOT NULL,
  customer_email VARCHAR,
  conversation_id BIGINT,
  conversation_number BIGINT,
  conversation_url VARCHAR,
  status VARCHAR NOT NULL,
  direction VARCHAR NOT NULL,
  details VARCHAR,
  error_message VARCHAR,
  run_id VARCHAR,
  table_name VARCHAR,
  http_status BIGINT,
  request VARCHAR,
  attempt BIGINT,
  duration_ms BIGINT,
  retry_target VARCHAR,
  retried_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS helpscout_api_requests (
  "timestamp" TIMESTAMPTZ NOT NULL,
  run_id VARCHAR,
  table_name VARCHAR,
  method VARCHAR,
  request VARCHAR,
  status BIGINT,
  attempt BIGINT,
  duration_ms BIGINT,
  rate_limit_remaining BIGINT,
  error VARCHAR
);
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Status {
    Success,
    Failed,
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "Success",
            Status::Failed => "Failed",
            Status::Pending => "Pending",
        }
    }
}

pub mod event {
    pub const TICKET_CREATED: &str = "Ticket Created";
    pub const CONVERSATION_UPDATED: &str = "Conversation Updated";
    pub const CONVERSATION_MERGED: &str = "Conversation Merged";
    pub const CONVERSATION_DELETED: &str = "Conversation Deleted";
    pub const CUSTOMER_SYNCED: &str = "Customer Synced";
    pub const CUSTOMER_UPDATED: &str = "Customer Updated";
    pub const TABLE_SYNCED: &str = "Table Synced";
    pub const RATE_LIMITED: &str = "Rate Limited";
    pub const AUTHENTICATION: &str = "Authentication";
    pub const ERROR: &str = "Error";
    pub const ALL: &[&str] = &[
        TICKET_CREATED,
        CONVERSATION_UPDATED,
        CONVERSATION_MERGED,
        CONVERSATION_DELETED,
        CUSTOMER_SYNCED,
        CUSTOMER_UPDATED,
        TABLE_SYNCED,
        RATE_LIMITED,
        AUTHENTICATION,
        ERROR,
    ];
}

/// One event, built in Rust (row events are built in SQL, see `row_events`).
#[derive(Debug, Clone, Serialize)]
pub struct LogEvent {
    pub timestamp: DateTime<Utc>,
    pub event_type: &'static str,
    pub customer_email: Option<String>,
    pub conversation_id: Option<i64>,
    pub status: Status,
    pub details: String,
    pub error_message: Option<String>,
    pub table_name: Option<String>,
    pub http_status: Option<u16>,
    pub request: Option<String>,
    pub attempt: Option<u32>,
    pub duration_ms: Option<u64>,
    /// What a retry needs (JSON): the table and the request that failed.
    pub retry_target: Option<String>,
}

impl LogEvent {
    pub fn new(event_type: &'static str, status: Status, details: impl Into<String>) -> Self {
        LogEvent {
            timestamp: Utc::now(),
            event_type,
            customer_email: None,
            conversation_id: None,
            status,
            details: details.into(),
            error_message: None,
            table_name: None,
            http_status: None,
            request: None,
            attempt: None,
            duration_ms: None,
            retry_target: None,
        }
    }

    pub fn table(mut self, table: &str) -> Self {
        self.table_name = Some(table.to_string());
        self
    }

    pub fn error(mut self, message: impl Into<String>) -> Self {
        self.error_message = Some(message.into());
        self
    }
}

/// A record that could not be synced (its table's bookmark stays put until it is).
#[derive(Debug, Clone)]
pub struct RecordFailure {
    pub id: Option<i64>,
    pub error: String,
    pub http_status: Option<u16>,
    pub request: Option<String>,
}

/// Events that the request records call for: throttling, authentication, failed attempts.
pub fn events_from_requests(records: &[RequestRecord], table: Option<&str>) -> Vec<LogEvent> {
    let mut events = Vec::new();
    for r in records {
        let base = |event_type, status, details: String| LogEvent {
            timestamp: r.at,
            http_status: r.status,
            request: Some(format!("{} {}", r.method, r.request)),
            attempt: Some(r.attempt),
            duration_ms: Some(r.duration_ms),
            table_name: table.map(String::from),
            ..LogEvent::new(event_type, status, details)
        };
        if r.method == "POST" && r.request.ends_with("/oauth2/token") {
            let ok = r.error.is_none();
            let mut e = base(
                event::AUTHENTICATION,
                if ok { Status::Success } else { Status::Failed },
                if ok { "Access token obtained".into() } else { "Access token refused".into() },
            );
            if let Some(err) = &r.error {
                e.error_message = Some(if err.starts_with("Authentication failed") {
                    err.clone()
                } else {
                    format!("Authentication failed: {err}")
                });
            }
            events.push(e);
        } else if r.status == Some(429) {
            events.push(
                base(event::RATE_LIMITED, Status::Pending, "Throttled by the API; waited the advertised time and retried".into())
                    .error("Rate limit exceeded"),
            );
        } else if matches!(r.status, Some(301 | 403 | 404)) {
            // Answers, not failures: their meaning (merged, deleted, not on this plan, mailbox
            // not found) is logged by the table or record they concern.
        } else if let Some(err) = &r.error {
            // What is left to retry after the client's own retries is logged by the table or
            // record that failed, not by each attempt.
            let mut e = base(event::ERROR, Status::Failed, format!("Request failed (attempt {})", r.attempt));
            e.error_message = Some(err.clone());
            events.push(e);
        }
    }
    events
}

impl Tx<'_> {
    pub fn append_events(&self, run_id: &str, events: &[LogEvent]) -> Result<(), WarehouseError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut stmt = self
            .conn
            .prepare(&format!(
                "INSERT INTO {LOG_TABLE} (\"timestamp\", event_type, customer_email, conversation_id, conversation_url, status, direction, details, error_message, run_id, table_name, http_status, request, attempt, duration_ms, retry_target) \
                 VALUES (make_timestamp(?::BIGINT)::TIMESTAMPTZ, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .map_err(|source| WarehouseError::Db { doing: "writing the integration log".into(), source })?;
        for e in events {
            stmt.execute(params![
                e.timestamp.timestamp_micros(),
                e.event_type,
                e.customer_email,
                e.conversation_id,
                e.conversation_id.map(|id| format!("{WEB_LINK_PREFIX}{id}")),
                e.status.as_str(),
                FROM_HELPSCOUT,
                e.details,
                e.error_message,
                run_id,
                e.table_name,
                e.http_status,
                e.request,
                e.attempt,
                e.duration_ms,
                e.retry_target,
            ])
            .map_err(|source| WarehouseError::Db { doing: "writing the integration log".into(), source })?;
        }
        Ok(())
    }

    pub fn append_requests(&self, run_id: &str, table: Option<&str>, records: &[RequestRecord]) -> Result<(), WarehouseError> {
        if records.is_empty() {
            return Ok(());
        }
        let db = |source| WarehouseError::Db { doing: "recording API requests".into(), source };
        let mut appender = self.conn.appender(REQUESTS_TABLE).map_err(db)?;
        for r in records {
            appender
                .append_row(params![
                    r.at.to_rfc3339(),
                    run_id,
                    table,
                    r.method,
                    r.request,
                    r.status,
                    r.attempt,
                    r.duration_ms,
                    r.rate_limit_remaining,
                    r.error,
                ])
                .map_err(db)?;
        }
        appender.flush().map_err(db)
    }

    /// One Failed event per record that could not be synced, typed as the table's row events
    /// (created or updated, by whether the key is already held), with what a retry needs.
    pub fn append_record_failures(&self, table: &Table, failures: &[RecordFailure], run_id: &str) -> Result<(), WarehouseError> {
        let (created, updated) = match table.row_events {
            Some(ev) => (ev.created, ev.updated),
            None => (event::ERROR, event::ERROR),
        };
        let conversation = table.row_events.and_then(|ev| ev.conversation_id).is_some();
        let db = |source| WarehouseError::Db { doing: "logging failed records".into(), source };
        for f in failures {
            let held = match f.id {
                Some(id) => self
                    .conn
                    .query_row(&format!("SELECT count(*) FROM {} WHERE id = ?", quote_ident(table.name)), [id], |r| r.get::<_, i64>(0))
                    .map_err(db)?
                    > 0,
                None => false,
            };
            let mut e = LogEvent::new(if held { updated } else { created }, Status::Failed, format!("{} record {} could not be synced", table.name, f.id.map(|i| i.to_string()).unwrap_or_else(|| "(no id)".into())))
                .table(table.name)
                .error(f.error.clone());
            e.http_status = f.http_status;
            e.request = f.request.clone();
            if conversation {
                e.conversation_id = f.id;
            }
            e.retry_target = Some(serde_json::json!({"table": table.name, "id": f.id}).to_string());
            self.append_events(run_id, &[e])?;
        }
        Ok(())
    }

    /// One event per staged row that is new or changed (per the table's declaration);
    /// must run before the rows are upserted.
    pub fn append_row_events(&self, table: &Table, stage: &str, run_id: &str) -> Result<usize, WarehouseError> {
        let Some(ev) = table.row_events else { return Ok(0) };
        // With column selection some declared columns are absent: what reads them is NULL.
        let present = self.column_names(table.name)?;
        let usable = |expr: &'static str| -> String {
            let reads_absent = expr
                .split("s.")
                .skip(1)
                .map(|rest| rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or(""))
                .any(|col| !present.iter().any(|p| p == col));
            if reads_absent { "NULL".to_string() } else { expr.to_string() }
        };
        let join: Vec<String> = table
            .primary_key
            .iter()
            .map(|k| format!("s.{k} = t.{k}", k = quote_ident(k)))
            .collect();
        let first_key = quote_ident(table.primary_key[0]);
        let changed: Vec<String> = table
            .columns
            .iter()
            .filter(|c| !matches!(c.source, Source::ParentId) && present.iter().any(|p| p == c.name))
            .map(|c| {
                let q = quote_ident(c.name);
                format!("CASE WHEN s.{q} IS DISTINCT FROM t.{q} THEN '{}' END", c.name)
            })
            .collect();
        let changed = format!("concat_ws(', ', {})", changed.join(", "));
        let cid = ev.conversation_id.map(usable).unwrap_or_else(|| "NULL".into());
        let number = ev.conversation_number.map(usable).unwrap_or_else(|| "NULL".into());
        let (problem, problem_message) = match ev.problem {
            Some((condition, message)) if usable(condition) != "NULL" => (condition.to_string(), usable(message)),
            _ => ("false".to_string(), "NULL".to_string()),
        };
        let email = usable(ev.customer_email);
        let details = match usable(ev.details) {
            d if d == "NULL" => format!("'{} row'", table.name),
            d => d,
        };
        let sql = format!(
            "INSERT INTO {LOG_TABLE} (\"timestamp\", event_type, customer_email, conversation_id, conversation_number, conversation_url, status, direction, details, error_message, run_id, table_name, retry_target) \
             SELECT now(), CASE WHEN t.{first_key} IS NULL THEN '{created}' ELSE '{updated}' END, {email}, {cid}, {number}, \
                    CASE WHEN {cid} IS NOT NULL THEN '{WEB_LINK_PREFIX}' || {cid} || '/' || coalesce({number}::VARCHAR, '') END, \
                    CASE WHEN {problem} THEN 'Failed' ELSE 'Success' END, '{FROM_HELPSCOUT}', \
                    {details} || CASE WHEN t.{first_key} IS NULL THEN '' ELSE '; changed: ' || {changed} END, \
                    CASE WHEN {problem} THEN {problem_message} END, ?, ?, NULL \
             FROM {stage} s LEFT JOIN {target} t ON {on} \
             WHERE t.{first_key} IS NULL OR {changed} <> ''",
            created = ev.created,
            updated = ev.updated,
            stage = quote_ident(stage),
            target = quote_ident(table.name),
            on = join.join(" AND "),
        );
        self.conn
            .execute(&sql, params![run_id, table.name])
            .map_err(|source| WarehouseError::Db { doing: format!("logging {} events", table.name), source })
    }
}

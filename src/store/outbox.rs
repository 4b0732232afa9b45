//! The outbox: what is on its way to Help Scout, in a SQLite file in the state folder. SQLite
//! because the intake must be durable at once even while a sync holds the DuckDB file, and
//! because `serve` and `push` may use it at the same moment (WAL, one writer at a time, each
//! commit fsynced before it returns).
//!
//! A submission moves `queued → sending → delivered | failed`. `sending` is written (and
//! fsynced) before every POST, so a process that dies or loses the answer leaves it `sending`,
//! and whoever picks it up next looks the ticket's marker up before posting again.
//!
//! Every change also writes the submission's log row (`log_rows`, one per source id, with a
//! version that only grows): the mirror copies rows past the DuckDB file's mark into the
//! integration log, in the transaction that moves the mark.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::catalog::log::{EventType, Status};
use crate::catalog::outbound::{CustomerRecord, Submission};

/// One row of the integration log written by the To-HelpScout direction, keyed by the record
/// it is about (`source_id`): later changes replace it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundEvent {
    pub source_id: String,
    pub timestamp: DateTime<Utc>,
    pub event_type: EventType,
    pub customer_email: Option<String>,
    pub conversation_id: Option<i64>,
    pub conversation_number: Option<i64>,
    pub status: Status,
    pub details: String,
    pub error_message: Option<String>,
    pub http_status: Option<u16>,
    pub request: Option<String>,
    pub attempt: u32,
    /// A failure an Administrator can retry.
    pub retryable: bool,
    pub retried_by: Option<String>,
}

/// Where a submission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeliveryState {
    Queued,
    /// An attempt was made and its answer is not known: look the marker up before posting.
    Sending,
    Delivered,
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sending => "sending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> DeliveryState {
        match s {
            "sending" => DeliveryState::Sending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Queued,
        }
    }
}

/// A submission as the outbox holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued<T> {
    pub source_id: String,
    pub record: T,
    pub state: DeliveryState,
    pub attempts: u32,
    pub received_at: DateTime<Utc>,
    pub conversation_id: Option<i64>,
    pub error: Option<String>,
    pub retried_by: Option<String>,
}

/// What the intake made of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    New { source_id: String },
    /// The same submission came again (same id, or the same content within the window).
    Duplicate { source_id: String, of: String },
}

impl Received {
    /// The key of the log row this arrival writes.
    pub fn source_id(&self) -> &str {
        match self {
            Received::New { source_id } | Received::Duplicate { source_id, .. } => source_id,
        }
    }
}

/// The counts `push` and the tests report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    pub queued: u64,
    pub sending: u64,
    pub delivered: u64,
    pub failed: u64,
}

pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions (
  source_id TEXT PRIMARY KEY,
  content_hash TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  record TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before INTEGER NOT NULL DEFAULT 0,
  conversation_id INTEGER,
  error TEXT,
  retried_by TEXT
);
CREATE INDEX IF NOT EXISTS submissions_due ON submissions (state, not_before);
CREATE INDEX IF NOT EXISTS submissions_content ON submissions (content_hash, received_at);
CREATE TABLE IF NOT EXISTS customer_records (
  source_id TEXT PRIMARY KEY,
  received_at INTEGER NOT NULL,
  record TEXT NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  not_before INTEGER NOT NULL DEFAULT 0,
  customer_id INTEGER,
  error TEXT,
  retried_by TEXT
);
CREATE INDEX IF NOT EXISTS customer_records_due ON customer_records (state, not_before);
CREATE TABLE IF NOT EXISTS log_rows (source_id TEXT PRIMARY KEY, version INTEGER NOT NULL UNIQUE, event TEXT NOT NULL);
"#;

/// The two queues, named once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Submissions,
    CustomerRecords,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Submissions => "submissions",
            Queue::CustomerRecords => "customer_records",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Queue::Submissions => "conversation_id",
            Queue::CustomerRecords => "customer_id",
        }
    }

    /// The queue a source id belongs to.
    pub fn of(source_id: &str) -> Queue {
        if source_id.starts_with(CUSTOMERS_PREFIX) { Queue::CustomerRecords } else { Queue::Submissions }
    }
}

/// How the outbox spells the ids of its records (and so of their log rows).
const FORMS_PREFIX: &str = "forms/";
const CUSTOMERS_PREFIX: &str = "customers/";

/// Whether a text is spelled like an outbox record's id (what the log search looks for).
pub fn is_source_id(text: &str) -> bool {
    text.starts_with(FORMS_PREFIX) || text.starts_with(CUSTOMERS_PREFIX)
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// A submission's key in the outbox and the log: `forms/{form}/{id}`.
pub fn submission_source_id(form: &str, id: &str) -> String {
    format!("{FORMS_PREFIX}{form}/{id}")
}

fn content_hash(s: &Submission) -> String {
    use sha2::{Digest, Sha256};
    let text = format!("{}\0{}\0{}\0{}", s.form, s.email.trim().to_lowercase(), s.subject.trim(), s.message.trim());
    Sha256::digest(text.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl Outbox {
    /// The outbox of these outputs (created on first use).
    pub fn open(path: impl Into<PathBuf>) -> Result<Outbox, StoreError> {
        let path = path.into();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::StateDir { path: dir.display().to_string(), reason: e.to_string() })?;
        }
        let fail = |e: rusqlite::Error| StoreError::Outbox { path: path.display().to_string(), reason: e.to_string() };
        let conn = Connection::open(&path).map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(30)).map_err(fail)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;").map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        let outbox = Outbox { conn, path };
        outbox.id()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // The outbox holds customers' messages: the owner's only.
            let _ = std::fs::set_permissions(&outbox.path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(outbox)
    }

    fn fail(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |e| StoreError::Outbox { path: self.path.display().to_string(), reason: e.to_string() }
    }

    /// This outbox's identity: the DuckDB file keeps one mark per outbox.
    pub fn id(&self) -> Result<String, StoreError> {
        let existing: Option<String> = self.conn.query_row("SELECT value FROM meta WHERE key = 'id'", [], |r| r.get(0)).optional().map_err(self.fail())?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let id: String = rand::random::<[u8; 8]>().iter().map(|b| format!("{b:02x}")).collect();
        self.conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('id', ?1)", params![id]).map_err(self.fail())?;
        let id = self.conn.query_row("SELECT value FROM meta WHERE key = 'id'", [], |r| r.get(0)).map_err(self.fail())?;
        Ok(id)
    }

    /// One write transaction (`BEGIN IMMEDIATE`: the writer lock is taken first, so the
    /// duplicate check and the insert cannot interleave with another process).
    fn write<T>(&mut self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let path = self.path.display().to_string();
        let fail = |e: rusqlite::Error| StoreError::Outbox { path: path.clone(), reason: e.to_string() };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        let value = f(&tx).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(value)
    }

    /// Records a submission durably (and its Pending log row); a repeat of one already here is
    /// recorded as a duplicate instead. `window`: how close the same content counts as a repeat
    /// when the caller gave no id.
    pub fn receive(&mut self, submission: &Submission, caller_gave_id: bool, window: Duration, event: impl Fn(&Received) -> OutboundEvent) -> Result<Received, StoreError> {
        let source_id = submission_source_id(&submission.form, &submission.id);
        let hash = content_hash(submission);
        let now = micros(Utc::now());
        let record = serde_json::to_string(submission).expect("a submission serialises");
        let window_us = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
        self.write(|tx| {
            let same_id: Option<String> = tx.query_row("SELECT source_id FROM submissions WHERE source_id = ?1", params![source_id], |r| r.get(0)).optional()?;
            let earlier = match same_id {
                Some(id) => Some(id),
                None if !caller_gave_id => tx
                    .query_row(
                        "SELECT source_id FROM submissions WHERE content_hash = ?1 AND received_at >= ?2 ORDER BY received_at DESC LIMIT 1",
                        params![hash, now.saturating_sub(window_us)],
                        |r| r.get(0),
                    )
                    .optional()?,
                None => None,
            };
            if let Some(of) = earlier {
                let repeat = Received::Duplicate { source_id: format!("{of}#repeat-{now}"), of };
                put_log_row(tx, &event(&repeat))?;
                return Ok(repeat);
            }
            tx.execute(
                "INSERT INTO submissions (source_id, content_hash, received_at, record, state) VALUES (?1, ?2, ?3, ?4, 'queued')",
                params![source_id, hash, now, record],
            )?;
            let new = Received::New { source_id: source_id.clone() };
            put_log_row(tx, &event(&new))?;
            Ok(new)
        })
    }

    /// Records a customer record durably; its id is given here.
    pub fn receive_customer(&mut self, record: &CustomerRecord, event: impl Fn(&str) -> OutboundEvent) -> Result<String, StoreError> {
        let now = Utc::now();
        let source_id = format!("{CUSTOMERS_PREFIX}{}-{:08x}", now.format("%Y%m%dT%H%M%S%6fZ"), rand::random::<u32>());
        let json = serde_json::to_string(record).expect("a customer record serialises");
        self.write(|tx| {
            tx.execute(
                "INSERT INTO customer_records (source_id, received_at, record, state) VALUES (?1, ?2, ?3, 'queued')",
                params![source_id, micros(now), json],
            )?;
            put_log_row(tx, &event(&source_id))?;
            Ok(source_id.clone())
        })
    }

    /// Records waiting for an attempt (queued, or sending with an unknown answer), oldest first.
    pub fn due<T: serde::de::DeserializeOwned>(&self, queue: Queue, now: DateTime<Utc>, limit: usize) -> Result<Vec<Queued<T>>, StoreError> {
        let sql = format!(
            "SELECT source_id, record, state, attempts, received_at, {}, error, retried_by FROM {} \
             WHERE state IN ('queued', 'sending') AND not_before <= ?1 ORDER BY received_at, source_id LIMIT ?2",
            queue.id_column(),
            queue.table()
        );
        self.select(&sql, params![micros(now), limit as i64])
    }

    /// One record, by its source id.
    pub fn get<T: serde::de::DeserializeOwned>(&self, source_id: &str) -> Result<Option<Queued<T>>, StoreError> {
        let queue = Queue::of(source_id);
        let sql = format!("SELECT source_id, record, state, attempts, received_at, {}, error, retried_by FROM {} WHERE source_id = ?1", queue.id_column(), queue.table());
        Ok(self.select(&sql, params![source_id])?.into_iter().next())
    }

    fn select<T: serde::de::DeserializeOwned>(&self, sql: &str, p: impl rusqlite::Params) -> Result<Vec<Queued<T>>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(self.fail())?;
        let rows = stmt
            .query_map(p, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .map_err(self.fail())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.fail())?;
        rows.into_iter()
            .map(|(source_id, record, state, attempts, received, id, error, retried_by)| {
                let record = serde_json::from_str(&record).map_err(|e| StoreError::Outbox { path: self.path.display().to_string(), reason: format!("{source_id} cannot be read: {e}") })?;
                Ok(Queued { source_id, record, state: DeliveryState::parse(&state), attempts: attempts as u32, received_at: from_micros(received), conversation_id: id, error, retried_by })
            })
            .collect()
    }

    /// Marks an attempt as begun, durably, before anything is sent.
    pub fn begin_attempt(&mut self, source_id: &str) -> Result<u32, StoreError> {
        let queue = Queue::of(source_id);
        self.write(|tx| {
            tx.execute(&format!("UPDATE {} SET state = 'sending', attempts = attempts + 1 WHERE source_id = ?1", queue.table()), params![source_id])?;
            tx.query_row(&format!("SELECT attempts FROM {} WHERE source_id = ?1", queue.table()), params![source_id], |r| r.get::<_, i64>(0)).map(|a| a as u32)
        })
    }

    /// Records where an attempt ended and the log row that says so.
    pub fn settle(&mut self, source_id: &str, state: DeliveryState, help_scout_id: Option<i64>, error: Option<&str>, not_before: Option<DateTime<Utc>>, event: &OutboundEvent) -> Result<(), StoreError> {
        let queue = Queue::of(source_id);
        self.write(|tx| {
            tx.execute(
                &format!("UPDATE {} SET state = ?2, {} = coalesce(?3, {1}), error = ?4, not_before = ?5 WHERE source_id = ?1", queue.table(), queue.id_column()),
                params![source_id, state.as_str(), help_scout_id, error, not_before.map_or(0, micros)],
            )?;
            put_log_row(tx, event)
        })
    }

    /// Puts a failed record back in the queue (after a correction, if any), keeping its
    /// attempts, so that its marker is looked up before it is sent again.
    pub fn requeue<T: Serialize>(&mut self, source_id: &str, corrected: Option<&T>, asked_by: Option<&str>, event: &OutboundEvent) -> Result<bool, StoreError> {
        let queue = Queue::of(source_id);
        let record = corrected.map(|r| serde_json::to_string(r).expect("a record serialises"));
        self.write(|tx| {
            let changed = tx.execute(
                &format!("UPDATE {} SET state = 'queued', not_before = 0, error = NULL, retried_by = ?2, record = coalesce(?3, record) WHERE source_id = ?1 AND state = 'failed'", queue.table()),
                params![source_id, asked_by, record],
            )?;
            if changed > 0 {
                put_log_row(tx, event)?;
            }
            Ok(changed > 0)
        })
    }

    pub fn counts(&self, queue: Queue) -> Result<OutboxCounts, StoreError> {
        let mut stmt = self.conn.prepare(&format!("SELECT state, count(*) FROM {} GROUP BY state", queue.table())).map_err(self.fail())?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(self.fail())?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let (state, n) = row.map_err(self.fail())?;
            let n = n as u64;
            match DeliveryState::parse(&state) {
                DeliveryState::Queued => counts.queued = n,
                DeliveryState::Sending => counts.sending = n,
                DeliveryState::Delivered => counts.delivered = n,
                DeliveryState::Failed => counts.failed = n,
            }
        }
        Ok(counts)
    }

    /// Log rows changed after `version`, in order, at most `limit`.
    pub fn log_rows_after(&self, version: i64, limit: usize) -> Result<Vec<(i64, OutboundEvent)>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT version, event FROM log_rows WHERE version > ?1 ORDER BY version LIMIT ?2").map_err(self.fail())?;
        let rows = stmt.query_map(params![version, limit as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))).map_err(self.fail())?;
        let mut out = Vec::new();
        for row in rows {
            let (v, json) = row.map_err(self.fail())?;
            let event = serde_json::from_str(&json).map_err(|e| StoreError::Outbox { path: self.path.display().to_string(), reason: format!("log row {v} cannot be read: {e}") })?;
            out.push((v, event));
        }
        Ok(out)
    }

    /// The version the log was last copied up to, as this outbox remembers it (the DuckDB file's
    /// own mark is the truth; this only spares opening the file when nothing is new).
    pub fn copied_hint(&self) -> Result<i64, StoreError> {
        let v: Option<String> = self.conn.query_row("SELECT value FROM meta WHERE key = 'copied'", [], |r| r.get(0)).optional().map_err(self.fail())?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    pub fn set_copied_hint(&self, version: i64) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT INTO meta (key, value) VALUES ('copied', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", params![version.to_string()])
            .map_err(self.fail())?;
        Ok(())
    }

    /// The newest log row version.
    pub fn log_version(&self) -> Result<i64, StoreError> {
        self.conn.query_row("SELECT coalesce(max(version), 0) FROM log_rows", [], |r| r.get(0)).map_err(self.fail())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes (or replaces) a record's log row with the next version.
fn put_log_row(tx: &rusqlite::Transaction<'_>, event: &OutboundEvent) -> rusqlite::Result<()> {
    let json = serde_json::to_string(event).expect("an event serialises");
    tx.execute(
        "INSERT INTO log_rows (source_id, version, event) VALUES (?1, (SELECT coalesce(max(version), 0) + 1 FROM log_rows), ?2) \
         ON CONFLICT (source_id) DO UPDATE SET version = excluded.version, event = excluded.event",
        params![event.source_id, json],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submission(id: &str) -> Submission {
        Submission {
            id: id.into(),
            form: "contact".into(),
            email: "jane@example.com".into(),
            name: "Jane".into(),
            subject: "Help".into(),
            message: "It broke".into(),
            extra: vec![],
        }
    }

    fn event(source_id: &str) -> OutboundEvent {
        OutboundEvent {
            source_id: source_id.into(),
            timestamp: Utc::now(),
            event_type: EventType::TicketCreated,
            customer_email: Some("jane@example.com".into()),
            conversation_id: None,
            conversation_number: None,
            status: Status::Pending,
            details: "received".into(),
            error_message: None,
            http_status: None,
            request: None,
            attempt: 0,
            retryable: false,
            retried_by: None,
        }
    }

    #[test]
    fn a_submission_is_received_once_and_its_repeats_are_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path().join("outbox.sqlite")).unwrap();
        let window = Duration::from_secs(600);
        assert_eq!(outbox.receive(&submission("a"), true, window, |r| event(r.source_id())).unwrap(), Received::New { source_id: "forms/contact/a".into() });
        assert!(matches!(outbox.receive(&submission("a"), true, window, |r| event(r.source_id())).unwrap(), Received::Duplicate { of, .. } if of == "forms/contact/a"));
        // Same content without a caller's id, within the window: a double click.
        assert!(matches!(outbox.receive(&submission("generated-1"), false, window, |r| event(r.source_id())).unwrap(), Received::Duplicate { of, .. } if of == "forms/contact/a"));
        // The caller's own new id is trusted: two real submissions with the same words.
        assert!(matches!(outbox.receive(&submission("b"), true, window, |r| event(r.source_id())).unwrap(), Received::New { .. }));
        assert_eq!(outbox.counts(Queue::Submissions).unwrap().queued, 2);
        // Two received, two duplicates: four log rows, versions in order.
        let rows = outbox.log_rows_after(0, 100).unwrap();
        assert_eq!(rows.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 2, 3, 4]);
        // The outbox survives reopening, with its identity.
        let id = outbox.id().unwrap();
        drop(outbox);
        let outbox = Outbox::open(dir.path().join("outbox.sqlite")).unwrap();
        assert_eq!(outbox.id().unwrap(), id);
        assert_eq!(outbox.due::<Submission>(Queue::Submissions, Utc::now(), 10).unwrap().len(), 2);
    }

    #[test]
    fn an_attempt_is_durable_before_sending_and_a_failed_one_can_be_requeued_with_a_correction() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path().join("outbox.sqlite")).unwrap();
        outbox.receive(&submission("a"), true, Duration::ZERO, |r| event(r.source_id())).unwrap();
        assert_eq!(outbox.begin_attempt("forms/contact/a").unwrap(), 1);
        let seen: Queued<Submission> = outbox.get("forms/contact/a").unwrap().unwrap();
        assert_eq!((seen.state, seen.attempts), (DeliveryState::Sending, 1));
        // A sending record is still due: its answer was never recorded.
        assert_eq!(outbox.due::<Submission>(Queue::Submissions, Utc::now(), 10).unwrap().len(), 1);
        outbox.settle("forms/contact/a", DeliveryState::Failed, None, Some("Invalid email address"), None, &event("forms/contact/a")).unwrap();
        assert!(outbox.due::<Submission>(Queue::Submissions, Utc::now(), 10).unwrap().is_empty());
        let mut fixed = submission("a");
        fixed.email = "jane@example.org".into();
        assert!(outbox.requeue("forms/contact/a", Some(&fixed), Some("admin"), &event("forms/contact/a")).unwrap());
        // Only a failed record is requeued.
        assert!(!outbox.requeue::<Submission>("forms/contact/a", None, None, &event("forms/contact/a")).unwrap());
        let again: Queued<Submission> = outbox.get("forms/contact/a").unwrap().unwrap();
        assert_eq!((again.state, again.attempts, again.record.email.as_str(), again.retried_by.as_deref()), (DeliveryState::Queued, 1, "jane@example.org", Some("admin")));
        outbox.settle("forms/contact/a", DeliveryState::Delivered, Some(77), None, None, &event("forms/contact/a")).unwrap();
        let done: Queued<Submission> = outbox.get("forms/contact/a").unwrap().unwrap();
        assert_eq!((done.state, done.conversation_id), (DeliveryState::Delivered, Some(77)));
        // The row was rewritten each time: one row, the latest version.
        let rows = outbox.log_rows_after(0, 100).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, outbox.log_version().unwrap());
    }
}

//! The integration log ("HelpScout Log") in the file: one row per sync event, written in the
//! transaction of the data it describes, and one row per API request for the API-usage view.
//! Neither ever holds a token or a secret: requests are recorded as method and path only.

use duckdb::params;

use super::ddl::{STALE_ROWS_TABLE, literal, quote_ident};
use super::rows::Stage;
use super::outbox::OutboundEvent;
use super::{StoreError, Tx, db};
use crate::catalog::log::{CONVERSATION_LINK_PREFIX, Direction, EventType, LogEvent, RecordFailure, RequestRecord, RetryTarget, Status};
use crate::catalog::{Check, Field, Source, Table};

pub use super::ddl::LOG_TABLE;
pub(super) const REQUESTS_TABLE: &str = "helpscout_api_requests";

/// The log's columns, in order, with their DuckDB types: the one list its DDL, its writes and
/// its queries are made from.
pub(super) const LOG_COLUMNS: &[(&str, &str)] = &[
    // Unique by its sequence; not a PRIMARY KEY, whose index each checkpoint would rewrite whole.
    ("event_id", "BIGINT NOT NULL DEFAULT nextval('helpscout_log_seq')"),
    ("timestamp", "TIMESTAMPTZ NOT NULL"),
    ("event_type", "VARCHAR NOT NULL"),
    ("customer_email", "VARCHAR"),
    ("conversation_id", "BIGINT"),
    ("conversation_number", "BIGINT"),
    ("conversation_url", "VARCHAR"),
    ("status", "VARCHAR NOT NULL"),
    ("direction", "VARCHAR NOT NULL"),
    ("details", "VARCHAR"),
    ("error_message", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("table_name", "VARCHAR"),
    ("http_status", "BIGINT"),
    ("request", "VARCHAR"),
    ("attempt", "BIGINT"),
    ("duration_ms", "BIGINT"),
    ("retry_target", "VARCHAR"),
    ("retried_at", "TIMESTAMPTZ"),
    ("retried_by", "VARCHAR"),
    ("source_id", "VARCHAR"),
];

/// Columns an extractor's event is written with (not the id, the retry marks or the source id
/// of a To-HelpScout row).
const WRITTEN: std::ops::Range<usize> = 1..LOG_COLUMNS.len() - 3;

/// Columns added since the log was first created, for files an older version wrote.
const ADDED_COLUMNS: &[&str] = &["retried_by", "source_id"];

/// How far each outbox's log rows have been copied into this file.
const OUTBOX_MARKS: &str = "helpscout_outbox_marks";

const REQUESTS_DDL: &str = r#"
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

fn log_ddl() -> String {
    let columns: Vec<String> = LOG_COLUMNS.iter().map(|(name, ty)| format!("  {} {ty}", quote_ident(name))).collect();
    format!(
        "CREATE SEQUENCE IF NOT EXISTS helpscout_log_seq;\nCREATE TABLE IF NOT EXISTS {LOG_TABLE} (\n{}\n);\n{REQUESTS_DDL}\n\
         CREATE TABLE IF NOT EXISTS {OUTBOX_MARKS} (outbox_id VARCHAR PRIMARY KEY, version BIGINT NOT NULL);\n",
        columns.join(",\n")
    )
}

fn written_columns() -> String {
    LOG_COLUMNS[WRITTEN].iter().map(|(name, _)| quote_ident(name)).collect::<Vec<_>>().join(", ")
}

/// The conversation's web link, as SQL over its id and number.
fn conversation_url_sql(id: &str, number: &str) -> String {
    format!("CASE WHEN {id} IS NOT NULL THEN {} || {id} || coalesce('/' || {number}, '') END", literal(CONVERSATION_LINK_PREFIX))
}

fn retry_target_json(target: &RetryTarget) -> String {
    serde_json::to_string(target).unwrap_or_default()
}

impl Tx<'_> {
    /// Creates the log and the request record tables (adding columns a newer version needs).
    pub fn ensure_log(&self) -> Result<(), StoreError> {
        let mut sql = log_ddl();
        for name in ADDED_COLUMNS {
            let (_, ty) = LOG_COLUMNS.iter().find(|(c, _)| c == name).expect("an added column is a log column");
            sql.push_str(&format!("ALTER TABLE {LOG_TABLE} ADD COLUMN IF NOT EXISTS {} {ty};\n", quote_ident(name)));
        }
        sql.push_str(super::ddl::STALE_ROWS_DDL);
        self.conn.execute_batch(&sql).map_err(db("creating the integration log"))
    }

    pub fn append_events(&self, run_id: &str, events: &[LogEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let doing = "writing the integration log";
        // The values in the log's column order, except the link, which the same SQL as for row
        // events makes from the conversation's id and number.
        let names: Vec<&str> = LOG_COLUMNS[WRITTEN].iter().map(|(name, _)| *name).filter(|n| *n != "conversation_url").collect();
        let placeholders: Vec<String> = names
            .iter()
            .map(|n| match LOG_COLUMNS.iter().find(|(c, _)| c == n).map(|(_, ty)| ty.split(' ').next().unwrap_or("VARCHAR")) {
                Some("TIMESTAMPTZ") => "?::BIGINT".to_string(),
                Some(ty) => format!("?::{ty}"),
                None => "?".to_string(),
            })
            .collect();
        let selected: Vec<String> = LOG_COLUMNS[WRITTEN]
            .iter()
            .map(|(name, ty)| match *name {
                "conversation_url" => conversation_url_sql("v.conversation_id", "v.conversation_number"),
                _ if ty.starts_with("TIMESTAMPTZ") => format!("make_timestamp(v.{})::TIMESTAMPTZ", quote_ident(name)),
                _ => format!("v.{}", quote_ident(name)),
            })
            .collect();
        let sql = format!(
            "INSERT INTO {LOG_TABLE} ({}) SELECT {} FROM (VALUES ({})) v({})",
            written_columns(),
            selected.join(", "),
            placeholders.join(", "),
            names.iter().map(|n| quote_ident(n)).collect::<Vec<_>>().join(", ")
        );
        let mut stmt = self.conn.prepare(&sql).map_err(db(doing))?;
        for e in events {
            stmt.execute(params![
                e.timestamp.timestamp_micros(),
                e.event_type.as_str(),
                e.customer_email,
                e.conversation_id,
                e.conversation_number,
                e.status.as_str(),
                e.direction.as_str(),
                e.details,
                e.error_message,
                run_id,
                e.table_name,
                e.http_status,
                e.request,
                e.attempt,
                e.duration_ms,
                e.retry_target.as_ref().map(retry_target_json),
            ])
            .map_err(db(doing))?;
        }
        Ok(())
    }

    /// Installs the bundled views where this file has none yet (a file only `push` or `serve`
    /// wrote): the duplicate views read the To-HelpScout rows.
    pub fn ensure_views(&self) -> Result<(), StoreError> {
        let doing = "looking for the bundled views";
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'main' AND table_name = 'form_repeat_submitters'", [], |r| r.get(0))
            .map_err(db(doing))?;
        if n == 0 {
            self.install_views()?;
        }
        Ok(())
    }

    /// How far the outbox `outbox_id`'s log rows are copied into this file.
    pub fn outbox_mark(&self, outbox_id: &str) -> Result<i64, StoreError> {
        let doing = "reading the outbox mark";
        let mark: Option<i64> = self
            .conn
            .query_row(&format!("SELECT version FROM {OUTBOX_MARKS} WHERE outbox_id = ?"), [outbox_id], |r| r.get(0))
            .map(Some)
            .or_else(|e| if matches!(e, duckdb::Error::QueryReturnedNoRows) { Ok(None) } else { Err(e) })
            .map_err(db(doing))?;
        Ok(mark.unwrap_or(0))
    }

    /// Copies To-HelpScout log rows (each replacing the row of the same source id) and moves
    /// the outbox's mark to `version`, in this one transaction: a crash copies them again,
    /// onto the same rows. The rows are staged first, so the log is joined once per batch, not
    /// scanned once per row.
    pub fn apply_outbound(&self, outbox_id: &str, events: &[OutboundEvent], version: i64) -> Result<(), StoreError> {
        let doing = "copying the outbox's events into the integration log";
        self.conn
            .execute_batch(
                "CREATE OR REPLACE TABLE _helpscout_outbound_stage (ts BIGINT, event_type VARCHAR, customer_email VARCHAR, conversation_id BIGINT, \
                 conversation_number BIGINT, status VARCHAR, details VARCHAR, error_message VARCHAR, http_status BIGINT, request VARCHAR, \
                 attempt BIGINT, retry_target VARCHAR, retried_by VARCHAR, source_id VARCHAR)",
            )
            .map_err(db(doing))?;
        {
            // Appended, not inserted row by row: a prepared INSERT costs about half a millisecond.
            let mut stage = self.conn.appender("_helpscout_outbound_stage").map_err(db(doing))?;
            for e in events {
                let target = e.retryable.then(|| serde_json::json!({ "outbound": e.source_id }).to_string());
                // Retried marks only on a success after a retry: a new failure is retryable again.
                let retried_by = e.retried_by.as_deref().filter(|_| e.status == Status::Success);
                stage
                    .append_row(params![
                        e.timestamp.timestamp_micros(),
                        e.event_type.as_str(),
                        e.customer_email,
                        e.conversation_id,
                        e.conversation_number,
                        e.status.as_str(),
                        e.details,
                        e.error_message,
                        e.http_status,
                        e.request,
                        e.attempt,
                        target,
                        retried_by,
                        e.source_id
                    ])
                    .map_err(db(doing))?;
            }
        }
        // The lake's copy of the rows these events touch goes stale, where they are (an update
        // may move a row to another day) and where they will be.
        let touched = format!("SELECT event_id, \"timestamp\" FROM {LOG_TABLE} WHERE source_id IN (SELECT source_id FROM _helpscout_outbound_stage)");
        self.mark_log_stale(&touched)?;
        let url = conversation_url_sql("s.conversation_id", "s.conversation_number");
        let retried_at = "CASE WHEN s.retried_by IS NULL THEN NULL ELSE now() END";
        let sql = format!(
            "UPDATE {LOG_TABLE} AS l SET \"timestamp\" = make_timestamp(s.ts)::TIMESTAMPTZ, event_type = s.event_type, customer_email = s.customer_email, \
               conversation_id = s.conversation_id, conversation_number = s.conversation_number, conversation_url = {url}, status = s.status, \
               details = s.details, error_message = s.error_message, http_status = s.http_status, request = s.request, attempt = s.attempt, \
               retry_target = s.retry_target, retried_at = {retried_at}, retried_by = s.retried_by \
             FROM _helpscout_outbound_stage s WHERE l.source_id = s.source_id;\n\
             INSERT INTO {LOG_TABLE} (\"timestamp\", event_type, customer_email, conversation_id, conversation_number, conversation_url, status, direction, \
               details, error_message, http_status, request, attempt, retry_target, retried_at, retried_by, source_id) \
             SELECT make_timestamp(s.ts)::TIMESTAMPTZ, s.event_type, s.customer_email, s.conversation_id, s.conversation_number, {url}, s.status, {direction}, \
               s.details, s.error_message, s.http_status, s.request, s.attempt, s.retry_target, {retried_at}, s.retried_by, s.source_id \
             FROM _helpscout_outbound_stage s WHERE NOT EXISTS (SELECT 1 FROM {LOG_TABLE} l WHERE l.source_id = s.source_id);\n\
",
            direction = literal(Direction::ToHelpScout.as_str())
        );
        self.conn.execute_batch(&sql).map_err(db(doing))?;
        self.mark_log_stale(&touched)?;
        self.conn.execute_batch("DROP TABLE _helpscout_outbound_stage").map_err(db(doing))?;
        self.conn
            .execute(
                &format!("INSERT INTO {OUTBOX_MARKS} VALUES (?, ?) ON CONFLICT (outbox_id) DO UPDATE SET version = excluded.version"),
                params![outbox_id, version],
            )
            .map_err(db(doing))?;
        Ok(())
    }

    pub fn append_requests(&self, run_id: &str, table: Option<&Table>, records: &[RequestRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let doing = "recording API requests";
        let mut appender = self.conn.appender(REQUESTS_TABLE).map_err(db(doing))?;
        for r in records {
            appender
                .append_row(params![
                    r.at.to_rfc3339(),
                    run_id,
                    table.map(|t| t.name),
                    r.method.as_str(),
                    r.request,
                    r.status,
                    r.attempt,
                    r.duration_ms,
                    r.rate_limit_remaining,
                    r.error,
                ])
                .map_err(db(doing))?;
        }
        appender.flush().map_err(db(doing))
    }

    /// One Failed event per record that could not be synced, typed as the table's row events
    /// (created or updated, by whether the record is already held), with what a retry needs.
    pub fn append_record_failures(&self, table: &'static Table, failures: &[RecordFailure], run_id: &str) -> Result<(), StoreError> {
        let keyed_by_id = table.primary_key == ["id"];
        let mut events = Vec::with_capacity(failures.len());
        for f in failures {
            let held = match f.id {
                Some(id) if keyed_by_id => self.holds_id(table, id)?,
                _ => false,
            };
            let event_type = match table.row_events {
                Some(ev) if held => ev.updated,
                Some(ev) => ev.created,
                None => EventType::Error,
            };
            let shown = f.id.map(|i| i.to_string()).unwrap_or_else(|| "(no id)".into());
            let mut e = LogEvent::new(event_type, Status::Failed, format!("{} record {shown} could not be synced", table.name))
                .table(table)
                .error(f.error.clone());
            e.http_status = f.http_status;
            if table.rows_are_conversations() {
                e.conversation_id = f.id;
            }
            e.retry_target = Some(RetryTarget { table, id: f.id });
            events.push(e);
        }
        self.append_events(run_id, &events)
    }

    /// One event per staged row that is new or changed (per the table's declaration); must run
    /// before the rows are upserted. Staged rows are compared with the rows the stage found
    /// held under their keys; with none held (a fresh table's append) every one is new.
    pub fn append_row_events(&self, stage: &Stage, run_id: &str) -> Result<u64, StoreError> {
        let table = stage.table;
        let Some(ev) = table.row_events else { return Ok(0) };
        // With column selection some declared columns are absent: what reads them is NULL.
        let present = self.column_names(table)?;
        let has = |column: &str| present.iter().any(|p| p == column);
        let field = |f: Field| -> String {
            if !has(f.column()) {
                return "NULL".into();
            }
            match f {
                Field::Column(c) => format!("s.{}", quote_ident(c)),
                Field::Member(c, m) => format!("s.{}.{}", quote_ident(c), quote_ident(m)),
                Field::FirstItemMember(c, m) => format!("s.{}[1].{}", quote_ident(c), quote_ident(m)),
            }
        };
        let keys: Vec<String> = table.primary_key.iter().map(|k| format!("s.{k} = t.{k}", k = quote_ident(k))).collect();
        let first_key = quote_ident(table.primary_key[0]);
        let changed: Vec<String> = table
            .columns
            .iter()
            .filter(|c| c.source != Source::ParentId && has(c.name))
            .map(|c| format!("CASE WHEN s.{q} IS DISTINCT FROM t.{q} THEN {} END", literal(c.name), q = quote_ident(c.name)))
            .collect();
        let changed = format!("concat_ws(', ', {})", changed.join(", "));
        // What makes a row new, what changed in it, and what it is compared with.
        let (is_new, changed, join) = match &stage.held {
            Some(held) => (format!("t.{first_key} IS NULL"), changed, format!("LEFT JOIN {held} t ON {}", keys.join(" AND "))),
            None => ("true".to_string(), "''".to_string(), String::new()),
        };
        let (cid, number) = match ev.conversation {
            Some((id, number)) => (field(Field::Column(id)), field(Field::Column(number))),
            None => ("NULL".into(), "NULL".into()),
        };
        let details: Vec<String> = ev
            .details
            .iter()
            .filter(|d| d.columns.iter().any(|c| has(c)))
            .map(|d| {
                let values: Vec<String> = d.columns.iter().filter(|c| has(c)).map(|c| format!("s.{}::VARCHAR", quote_ident(c))).collect();
                format!("{} || trim(concat_ws(' ', {}))", literal(&format!("{}: ", d.label)), values.join(", "))
            })
            .collect();
        let details = if details.is_empty() { literal(&format!("{} row", table.name)) } else { details.join(" || '; ' || ") };
        let (problem, problem_message) = match ev.check {
            Some(Check::ValidEmails { list, member }) if has(list) => {
                let invalid = format!(
                    "list_filter(coalesce(s.{l}, []), lambda e: NOT regexp_full_match(coalesce(e.{m}, ''), '[^@\\s]+@[^@\\s]+\\.[^@\\s]+'))",
                    l = quote_ident(list),
                    m = quote_ident(member)
                );
                (
                    format!("len({invalid}) > 0"),
                    format!("'Invalid email address: ' || {invalid}[1].{} || ' (the {} is stored as received; correct the address in Help Scout)'", quote_ident(member), table.noun),
                )
            }
            _ => ("false".into(), "NULL".into()),
        };
        let sql = format!(
            "INSERT INTO {LOG_TABLE} (\"timestamp\", event_type, customer_email, conversation_id, conversation_number, conversation_url, status, direction, details, error_message, run_id, table_name) \
             SELECT now(), CASE WHEN {is_new} THEN {created} ELSE {updated} END, {email}, {cid}, {number}, {url}, \
                    CASE WHEN {problem} THEN {failed} ELSE {success} END, {direction}, \
                    {details} || CASE WHEN {is_new} THEN '' ELSE '; changed: ' || {changed} END, \
                    CASE WHEN {problem} THEN {problem_message} END, ?, ? \
             FROM {stage} s {join} \
             WHERE {is_new} OR {changed} <> ''",
            created = literal(ev.created.as_str()),
            updated = literal(ev.updated.as_str()),
            email = field(ev.customer_email),
            url = conversation_url_sql(&cid, &number),
            failed = literal(Status::Failed.as_str()),
            success = literal(Status::Success.as_str()),
            direction = literal(Direction::FromHelpScout.as_str()),
            stage = quote_ident(&stage.name),
        );
        let n = self.conn.execute(&sql, params![run_id, table.name]).map_err(db(format!("logging {} events", table.name)))?;
        Ok(n as u64)
    }

    /// Marks an event as retried successfully, and by whom (None: the command line).
    pub fn mark_retried(&self, event_id: i64, by: Option<&str>) -> Result<(), StoreError> {
        self.conn
            .execute(&format!("UPDATE {LOG_TABLE} SET retried_at = now(), retried_by = ? WHERE event_id = ?"), params![by, event_id])
            .map_err(db("marking a retried event"))?;
        self.mark_log_stale(&format!("SELECT event_id, \"timestamp\" FROM {LOG_TABLE} WHERE event_id = {event_id}"))
    }

    /// Records the lake blocks of the log rows `rows` selects (`event_id, "timestamp"`) as
    /// stale, for the next log export: rows changed outside a sync's own events.
    fn mark_log_stale(&self, rows: &str) -> Result<(), StoreError> {
        self.conn
            .execute_batch(&format!(
                "INSERT INTO {STALE_ROWS_TABLE} SELECT DISTINCT {}, {}, event_id // {} FROM ({rows})",
                literal(LOG_TABLE),
                super::lake::LOG_DAY_SQL,
                super::lake::LOG_BLOCK
            ))
            .map_err(db("recording stale blocks of the log's lake copy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LogFilter, Warehouse};

    fn event(i: usize, status: Status) -> OutboundEvent {
        OutboundEvent {
            source_id: format!("forms/contact/{i}"),
            timestamp: chrono::Utc::now(),
            event_type: EventType::TicketCreated,
            customer_email: Some(format!("c{i}@example.com")),
            conversation_id: (status == Status::Success).then_some(100 + i as i64),
            conversation_number: None,
            status,
            details: "a submission".into(),
            error_message: None,
            http_status: None,
            request: None,
            attempt: 1,
            retryable: status == Status::Failed,
            retried_by: None,
        }
    }

    #[test]
    fn outbound_rows_replace_their_own_row_and_a_repeated_copy_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let w = Warehouse::new(dir.path().join("log.duckdb"));
        let copy = |events: &[OutboundEvent], version: i64| {
            w.commit(&mut Default::default(), |tx| {
                tx.ensure_log()?;
                tx.apply_outbound("o1", events, version)?;
                tx.outbox_mark("o1")
            })
            .unwrap()
        };
        let pending: Vec<_> = (0..3).map(|i| event(i, Status::Pending)).collect();
        assert_eq!(copy(&pending, 3), 3);
        // Copied again (a crash before the outbox heard of the first copy): the same rows.
        assert_eq!(copy(&pending, 3), 3);
        let done = [event(0, Status::Success), event(1, Status::Failed)];
        assert_eq!(copy(&done, 5), 5);
        let rows = w.read().unwrap().log_rows(&LogFilter::default(), 10).unwrap();
        assert_eq!(rows.len(), 3, "one row per submission");
        let of = |i: usize| rows.iter().find(|r| r.source_id.as_deref() == Some(&format!("forms/contact/{i}"))).unwrap();
        assert_eq!((of(0).status.as_str(), of(0).conversation_id, of(0).conversation_url.as_deref()), ("Success", Some(100), Some("https://secure.helpscout.net/conversation/100")));
        assert_eq!((of(1).status.as_str(), of(1).retry_target.as_deref()), ("Failed", Some(r#"{"outbound":"forms/contact/1"}"#)));
        assert_eq!((of(2).status.as_str(), of(2).direction.as_str()), ("Pending", "To HelpScout"));
    }
}

//! `retry`: re-attempts failed events that carry a retry target — one record (a conversation
//! or a customer whose threads or data could not be read) or a whole table — and logs the
//! outcome next to the original event, which is marked as retried.

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::Utc;
use serde_json::Value;

use crate::cli::EXIT_PARTIAL;
use crate::config::table_named;
use crate::integration_log::{LOG_TABLE, LogEvent, Status, event};
use crate::log_command::{RetryArgs, build_filter};
use crate::progress::Progress;
use crate::sinks::duckdb::Warehouse;
use crate::sync::{self, RecordOutcome, RunStatus};

struct Pending {
    event_id: i64,
    event_type: String,
    table: String,
    id: Option<i64>,
}

pub async fn run(args: RetryArgs) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::settings(args.sync.output.config.as_ref(), &args.sync.overrides())?;
    let warehouse = Warehouse::new(&settings.outputs.duckdb);
    let mut filter = build_filter(&args.filters, Utc::now())?;
    filter.clauses.push("status = 'Failed' AND retry_target IS NOT NULL AND retried_at IS NULL".into());
    if let Some(id) = args.event {
        filter.clauses.push(format!("event_id = {id}"));
    }
    let pending: Vec<Pending> = {
        let conn = warehouse.connect_read_only()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT event_id, event_type, retry_target FROM {LOG_TABLE} WHERE {} ORDER BY event_id",
            filter.sql()
        ))?;
        let rows = stmt.query_map(duckdb::params_from_iter(filter.params.iter()), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut pending = Vec::new();
        for row in rows {
            let (event_id, event_type, target) = row?;
            let target: Value = serde_json::from_str(&target).unwrap_or(Value::Null);
            let Some(table) = target.get("table").and_then(Value::as_str) else { continue };
            pending.push(Pending { event_id, event_type, table: table.to_string(), id: target.get("id").and_then(Value::as_i64) });
        }
        pending
    };
    if pending.is_empty() {
        println!("No failed events to retry.");
        return Ok(ExitCode::SUCCESS);
    }

    // (original event, outcome event)
    let mut results: Vec<(i64, LogEvent)> = Vec::new();
    let mut by_table: BTreeMap<String, Vec<&Pending>> = BTreeMap::new();
    for p in &pending {
        by_table.entry(p.table.clone()).or_default().push(p);
    }
    let mut whole_tables: Vec<String> = Vec::new();
    for (name, events) in &by_table {
        let table = table_named(name)?;
        let mut ids: Vec<i64> = events.iter().filter_map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if events.iter().any(|p| p.id.is_none()) || table.record_path.is_none() {
            whole_tables.push(name.clone());
            continue;
        }
        let outcomes = sync::retry_records(&settings, table, &ids).await?;
        for p in events {
            let outcome = outcomes.iter().find(|(id, _)| Some(*id) == p.id).map(|(_, o)| o.clone());
            let (status, details, error) = match outcome {
                Some(RecordOutcome::Synced) => (Status::Success, format!("Retry of event {}: {} record {} synced", p.event_id, name, p.id.unwrap_or(0)), None),
                Some(RecordOutcome::Removed) => (Status::Success, format!("Retry of event {}: {} record {} was merged or deleted upstream; removed here", p.event_id, name, p.id.unwrap_or(0)), None),
                Some(RecordOutcome::Failed(e)) => (Status::Failed, format!("Retry of event {} failed", p.event_id), Some(e)),
                None => (Status::Failed, format!("Retry of event {} was not attempted", p.event_id), None),
            };
            results.push((p.event_id, outcome_event(p, name, status, details, error)));
        }
    }
    if !whole_tables.is_empty() {
        let mut settings = settings.clone();
        // A table's embedded children come with it (they are committed with their parent).
        settings.tables.retain(|c| {
            whole_tables.iter().any(|t| t == c.table.name || c.table.parent() == Some(t.as_str()) && crate::convert::embedded_in(c.table, t))
        });
        let report = sync::run(&settings, &Progress::Quiet).await?;
        for name in &whole_tables {
            let table_report = report.tables.iter().find(|t| &t.table == name);
            let (status, error) = match table_report.and_then(|t| t.error.clone()) {
                None if report.status != RunStatus::Failed => (Status::Success, None),
                None => (Status::Failed, report.error.clone()),
                Some(e) => (Status::Failed, Some(e)),
            };
            for p in &by_table[name] {
                let details = format!("Retry of event {}: table {name} synced again", p.event_id);
                results.push((p.event_id, outcome_event(p, name, status, details, error.clone())));
            }
        }
    }

    let run_id = format!("retry-{}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    let mut stats = Default::default();
    warehouse.commit(&mut stats, |tx| {
        for (original, event) in &results {
            tx.append_events(&run_id, std::slice::from_ref(event))?;
            if event.status == Status::Success {
                tx.execute_batch(&format!("UPDATE {LOG_TABLE} SET retried_at = now() WHERE event_id = {original}"), "marking a retried event")?;
            }
        }
        Ok::<_, crate::sinks::duckdb::WarehouseError>(())
    })?;
    let failed = results.iter().filter(|(_, e)| e.status == Status::Failed).count();
    for (_, e) in &results {
        println!("{} {}{}", e.status.as_str(), e.details, e.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default());
    }
    println!("{} retried, {} still failing.", results.len() - failed, failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTIAL) })
}

fn outcome_event(p: &Pending, table: &str, status: Status, details: String, error: Option<String>) -> LogEvent {
    let kind = event::ALL.iter().copied().find(|k| *k == p.event_type).unwrap_or(event::ERROR);
    let mut e = LogEvent::new(kind, status, details).table(table);
    e.error_message = error;
    let about_conversations = table_named(table).ok().and_then(|t| t.row_events).is_some_and(|ev| ev.conversation_id.is_some());
    if about_conversations {
        e.conversation_id = p.id;
    }
    e
}

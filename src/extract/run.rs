//! One sync run: every selected table brought up to date by its strategy, committed with its
//! log events, bookmarks last; then the run's record and the log's lake export.

use std::time::Instant;

use chrono::Utc;

use super::context::{Ledger, Run, Synced};
use super::progress::Observer;
use super::report::{FailureCause, RunStatus, SyncReport, TableReport};
use super::settings::{Method, SyncSettings, TableChoice};
use super::{SyncError, events, modified, per_parent, removals, whole};
use crate::api::Client;
use crate::catalog::log::Status;
use crate::catalog::{self, Strategy, Table};
use crate::store::Lake;
use crate::store::{Outputs, Scope};

/// What the report and `status` say of a table the account's plan refuses.
fn unavailable_sentence(table: &'static Table, run: &Run<'_>) -> String {
    let others: Vec<&str> = run.settings.tables.iter().map(|c| c.table.name).filter(|n| *n != table.name).collect();
    format!(
        "{} is not available on this Help Scout plan (HTTP 403; reports need the Plus or Pro plan): nothing failed; to stop asking, leave it out of `[sync] tables` or pass `--tables {}`.",
        table.name,
        others.join(",")
    )
}

/// Runs one sync. Problems before any work (the lock, the state folder, the client) are
/// errors; everything after is in the report (status Partial or Failed).
pub async fn sync(outputs: &Outputs, settings: &SyncSettings, observer: &dyn Observer) -> Result<SyncReport, SyncError> {
    let _lock = outputs.lock()?;
    let client = Client::new(settings.client.clone())?;
    let lake = Lake::open(&outputs.lake, &crate::store::lake::process_env)?;
    let run = Run::new(outputs, settings, client, lake, observer);
    let mut ledger = Ledger::default();
    let outcome = async {
        prepare(&run, &mut ledger)?;
        execute(&run, &mut ledger).await
    }
    .await;
    // The connection kept across commits is closed whatever happened.
    run.store.release();
    outcome
}

/// Creates the tables, the log and the views, reads the bookmarks and records the run's start.
pub(crate) fn prepare(run: &Run<'_>, ledger: &mut Ledger) -> Result<(), SyncError> {
    let tables: Vec<(&'static Table, Vec<catalog::SchemaColumn>)> = catalog::ALL
        .iter()
        .copied()
        .filter(|t| run.selected(t))
        .map(|t| (t, run.converter(t).schema_columns().to_vec()))
        .collect();
    let (run_id, started) = (&run.stamp.run_id, run.stamp.extracted_at);
    let stored: Vec<&'static Table> = tables.iter().map(|(t, _)| *t).collect();
    let (bookmarks, empty) = ledger.commit(&run.store, |tx| {
        tx.ensure_tables(&tables)?;
        tx.ensure_log()?;
        tx.install_views()?;
        tx.start_run(run_id, started)?;
        Ok((tx.bookmarks()?, tx.empty_tables(&stored)?))
    })?;
    ledger.bookmarks = bookmarks;
    run.appendable.set(empty);
    Ok(())
}

/// How a table is reported: a full refresh, or what its strategy does.
fn method_of(choice: &TableChoice) -> &'static str {
    match choice.method {
        Method::Full => "full",
        Method::Incremental => choice.table.strategy().describe(),
    }
}

fn skipped(table: &'static Table, reason: &str) -> TableReport {
    TableReport {
        table: table.name,
        status: Status::Failed,
        method: "skipped",
        rows: 0,
        removed: 0,
        requests: 0,
        duration_ms: 0,
        error: Some(format!("not synced: the run stopped earlier ({reason})")),
        failure_cause: None,
        unavailable: None,
    }
}

/// Brings one table up to date by its strategy, then rewrites its stale lake partitions.
pub(crate) async fn sync_table(run: &Run<'_>, ledger: &mut Ledger, choice: &TableChoice) -> Result<Synced, SyncError> {
    let table = choice.table;
    let full = choice.method == Method::Full;
    let synced = match table.strategy() {
        Strategy::ModifiedSince => {
            let mut synced = modified::sync(run, ledger, table, full).await?;
            if !full {
                synced.removed += removals::check(run, ledger, table).await?;
            }
            synced
        }
        Strategy::WholeList | Strategy::ReportWindow => whole::sync(run, ledger, table, full).await?,
        Strategy::PerParent => per_parent::sync(run, ledger, table).await?,
        // Selected without its parent: the parent is listed, only the children are stored.
        Strategy::Embedded => {
            let parent = table.parent().ok_or_else(|| SyncError::Internal(format!("{} is embedded in nothing", table.name)))?;
            modified::sync(run, ledger, parent, full).await?
        }
    };
    for t in std::iter::once(table).chain(run.selected_embedded(table)) {
        ledger.export_lake(run, t)?;
    }
    Ok(synced)
}

pub(crate) async fn execute(run: &Run<'_>, ledger: &mut Ledger) -> Result<SyncReport, SyncError> {
    let started_at = run.stamp.extracted_at;
    // Partitions left stale by an interrupted run are rewritten first.
    for table in catalog::ALL.iter().copied().filter(|t| run.selected(t)) {
        ledger.export_lake(run, table)?;
    }
    let mut reports = Vec::new();
    let mut fatal: Option<(String, FailureCause)> = None;
    for choice in &run.settings.tables {
        let table = choice.table;
        // Embedded children are committed with their parent.
        if table.strategy() == Strategy::Embedded && table.parent().is_some_and(|p| run.selected(p)) {
            continue;
        }
        if let Some((reason, _)) = &fatal {
            reports.push(skipped(table, reason));
            continue;
        }
        run.observer.table_started(table);
        let started = Instant::now();
        let outcome = sync_table(run, ledger, choice).await;
        let records = run.client.take_records();
        let mut report = TableReport {
            table: table.name,
            status: Status::Success,
            method: method_of(choice),
            rows: 0,
            removed: 0,
            requests: ledger.usage.note(&records),
            duration_ms: 0,
            error: None,
            failure_cause: None,
            unavailable: None,
        };
        // Records that failed are retried one by one; anything else retries the table.
        let mut retry_table = false;
        match outcome {
            Ok(synced) => {
                report.rows = synced.rows;
                report.removed = synced.removed;
            }
            Err(e) if e.is_unavailable() => {
                report.method = "unavailable";
                report.unavailable = Some(unavailable_sentence(table, run));
            }
            Err(e) => {
                retry_table = !matches!(e, SyncError::RecordsFailed { .. });
                report.status = Status::Failed;
                report.error = Some(e.to_string());
                report.failure_cause = Some(e.cause());
                if e.stops_run() {
                    fatal = Some((e.to_string(), e.cause()));
                }
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        // The table's closing record: its outcome, requests and log events.
        let mut log = events::from_requests(&records, Some(table));
        // An unavailable table is logged when it becomes so, not on every run after.
        let was_unavailable = ledger.bookmarks.get(table, Scope::Unavailable).is_some();
        let unavailable = report.unavailable.is_some();
        if !(unavailable && was_unavailable) {
            log.push(events::table_synced(table, &report, retry_table));
        }
        let failures = ledger.failures.remove(table).unwrap_or_default();
        let run_id = &run.stamp.run_id;
        let now = run.server_now();
        let logged = ledger.commit(&run.store, |tx| {
            tx.append_requests(run_id, Some(table), &records)?;
            tx.append_events(run_id, &log)?;
            match (unavailable, was_unavailable) {
                (true, false) => tx.set_bookmark(table, Scope::Unavailable, Some(now), run_id)?,
                (false, true) if report.status == Status::Success => tx.clear_bookmark(table, Scope::Unavailable)?,
                _ => {}
            }
            tx.append_record_failures(table, &failures, run_id)
        });
        if logged.is_ok() && unavailable && !was_unavailable {
            ledger.bookmarks.set(table, Scope::Unavailable, now);
        }
        if let Err(e) = logged {
            fatal.get_or_insert((e.to_string(), e.cause()));
        }
        run.observer.table_finished(&report);
        reports.push(report);
    }
    finish(run, ledger, started_at, reports, fatal)
}

/// Records the run's end and exports the log beside the tables.
fn finish(run: &Run<'_>, ledger: &mut Ledger, started_at: chrono::DateTime<Utc>, tables: Vec<TableReport>, fatal: Option<(String, FailureCause)>) -> Result<SyncReport, SyncError> {
    let status = if fatal.is_some() {
        RunStatus::Failed
    } else if tables.iter().any(|r| r.status == Status::Failed) {
        RunStatus::Partial
    } else {
        RunStatus::Success
    };
    let (error, failure_cause) = fatal.map_or((None, None), |(e, c)| (Some(e), Some(c)));
    let mut report = SyncReport {
        run_id: run.stamp.run_id.clone(),
        status,
        started_at,
        finished_at: Utc::now(),
        duckdb: run.outputs.duckdb.display().to_string(),
        parquet: run.lake.files().describe(""),
        lake: run.lake.spec.format.name(),
        tables,
        requests: ledger.usage.requests,
        rate_limited: ledger.usage.rate_limited,
        lowest_rate_limit_remaining: ledger.usage.lowest_remaining,
        commits: 0,
        longest_commit_window_ms: 0,
        parquet_partitions_written: ledger.partitions_written,
        parquet_bytes_written: ledger.bytes_written,
        error,
        failure_cause,
    };
    let run_id = &run.stamp.run_id;
    let json = serde_json::to_string(&report).unwrap_or_default();
    let status = report.status.as_str();
    let recorded = ledger.export_log(run, |tx| tx.finish_run(run_id, status, &json));
    match recorded {
        Ok(bytes) => report.parquet_bytes_written += bytes,
        Err(e) => {
            report.status = RunStatus::Failed;
            report.error.get_or_insert(e.to_string());
            report.failure_cause.get_or_insert(FailureCause::Storage);
        }
    }
    // The file is let go now; the longest stretch it was held open is the commit window other
    // processes saw (several commits may share one).
    let held = run.store.release();
    report.commits = ledger.windows.commits;
    report.longest_commit_window_ms = ledger.windows.longest.max(held).as_millis() as u64;
    Ok(report)
}

//! `retry`: re-attempts failed events that carry a retry target — one record (a conversation
//! or a customer whose threads or data could not be read) or a whole table — and logs each
//! outcome next to the original event, which is marked as retried when it succeeded.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;

use super::commit::Chunk;
use super::context::{Ledger, Run};
use super::progress::Quiet;
use super::report::RunStatus;
use super::settings::SyncSettings;
use super::{SyncError, events, removals, run};
use crate::api::{Action, Client};
use crate::catalog::Table;
use crate::catalog::log::{LogEvent, Status};
use crate::store::{Outputs, PendingRetry, StoreError, Warehouse};

/// What became of one record a retry re-fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Synced,
    /// Merged or deleted upstream: removed (and tombstoned) here.
    Removed,
    Failed(String),
}

/// Re-fetches single records of `table` (its `record_path`) with their embedded children and
/// commits them as a sync would, under the same lock. The table's bookmark is left alone: the
/// next sync re-reads its window anyway.
pub async fn retry_records(outputs: &Outputs, settings: &SyncSettings, table: &'static Table, ids: &[i64]) -> Result<Vec<(i64, RecordOutcome)>, SyncError> {
    let Some(record_path) = table.record_path else {
        return Ok(ids.iter().map(|id| (*id, RecordOutcome::Failed(format!("{} records cannot be fetched one by one", table.name)))).collect());
    };
    let _lock = outputs.lock()?;
    let lake = crate::store::Lake::open(&outputs.lake, &crate::store::lake::process_env)?;
    let run = Run::new(outputs, settings, Client::new(settings.client.clone())?, lake, &Quiet);
    let mut ledger = Ledger::default();
    run::prepare(&run, &mut ledger)?;
    let mut outcomes = Vec::new();
    for &id in ids {
        let outcome = match run.client.get(&record_path.replace("{id}", &id.to_string())).await {
            Ok(response) => {
                let mut chunk = Chunk::new();
                let (mut seen, mut repeats) = (HashSet::new(), 0);
                super::gather::gather(&run, &mut ledger, table, vec![response.body], &mut chunk, &mut seen, &mut repeats).await?;
                match ledger.failures.remove(table).and_then(|f| f.into_iter().next()) {
                    Some(failure) => RecordOutcome::Failed(failure.error),
                    None if chunk.len() == 0 && run.selected(table) => RecordOutcome::Failed("the record could not be read".into()),
                    None => {
                        let losing = ledger.finish_commit(run.spawn_commit(table, chunk)).await?;
                        removals::resolve(&run, &mut ledger, table, losing).await?;
                        RecordOutcome::Synced
                    }
                }
            }
            Err(e) => match e.action() {
                Action::Moved | Action::Gone => {
                    removals::resolve(&run, &mut ledger, table, vec![id]).await?;
                    RecordOutcome::Removed
                }
                Action::FailRun => return Err(e.into()),
                _ => RecordOutcome::Failed(e.to_string()),
            },
        };
        outcomes.push((id, outcome));
    }
    for t in std::iter::once(table).chain(run.selected_embedded(table)) {
        if run.selected(t) {
            ledger.export_lake(&run, t)?;
        }
    }
    let records = run.client.take_records();
    let log = events::from_requests(&records, Some(table));
    let failed = outcomes.iter().any(|(_, o)| matches!(o, RecordOutcome::Failed(_)));
    let status = if failed { RunStatus::Partial } else { RunStatus::Success };
    let run_id = &run.stamp.run_id;
    ledger.commit(&run.store, |tx| {
        tx.append_requests(run_id, Some(table), &records)?;
        tx.append_events(run_id, &log)?;
        tx.finish_run(run_id, status.as_str(), "{}")
    })?;
    Ok(outcomes)
}

fn outcome_event(p: &PendingRetry, status: Status, details: String, error: Option<String>, asked_by: Option<&str>) -> LogEvent {
    let table = p.target.table;
    let details = match asked_by {
        Some(user) => format!("{details} (asked by {user})"),
        None => details,
    };
    let mut e = LogEvent::new(p.event_type, status, details).table(table);
    e.error_message = error;
    if table.rows_are_conversations() {
        e.conversation_id = p.target.id;
    }
    e
}

/// Retries the pending events, logs each outcome (marking successful originals as retried, by
/// `asked_by` when someone signed in asked) and returns the outcome events, in the order of the
/// originals' tables.
pub async fn retry(outputs: &Outputs, settings: &SyncSettings, pending: &[PendingRetry], asked_by: Option<&str>) -> Result<Vec<LogEvent>, SyncError> {
    let mut by_table: BTreeMap<&'static str, (&'static Table, Vec<&PendingRetry>)> = BTreeMap::new();
    for p in pending {
        by_table.entry(p.target.table.name).or_insert_with(|| (p.target.table, Vec::new())).1.push(p);
    }
    // (original event, outcome event)
    let mut results: Vec<(i64, LogEvent)> = Vec::new();
    let mut whole_tables: Vec<(&'static Table, Vec<&PendingRetry>)> = Vec::new();
    for (table, events) in by_table.into_values() {
        if events.iter().any(|p| p.target.id.is_none()) || table.record_path.is_none() {
            whole_tables.push((table, events));
            continue;
        }
        let mut ids: Vec<i64> = events.iter().filter_map(|p| p.target.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let outcomes = retry_records(outputs, settings, table, &ids).await?;
        for p in events {
            let id = p.target.id.unwrap_or_default();
            let (status, details, error) = match outcomes.iter().find(|(i, _)| *i == id).map(|(_, o)| o.clone()) {
                Some(RecordOutcome::Synced) => (Status::Success, format!("Retry of event {}: {} record {id} synced", p.event_id, table.name), None),
                Some(RecordOutcome::Removed) => {
                    (Status::Success, format!("Retry of event {}: {} record {id} was merged or deleted upstream; removed here", p.event_id, table.name), None)
                }
                Some(RecordOutcome::Failed(e)) => (Status::Failed, format!("Retry of event {} failed", p.event_id), Some(e)),
                None => (Status::Failed, format!("Retry of event {} was not attempted", p.event_id), None),
            };
            results.push((p.event_id, outcome_event(p, status, details, error, asked_by)));
        }
    }
    if !whole_tables.is_empty() {
        let mut settings = settings.clone();
        // A table's embedded children come with it (they are committed with their parent).
        settings.tables.retain(|c| whole_tables.iter().any(|(t, _)| c.table == *t || c.table.parent() == Some(*t) && t.embedded_children().any(|e| e == c.table)));
        let report = run::sync(outputs, &settings, &Quiet).await?;
        for (table, events) in &whole_tables {
            let (status, error) = match report.tables.iter().find(|t| t.table == table.name).and_then(|t| t.error.clone()) {
                None if report.status != RunStatus::Failed => (Status::Success, None),
                None => (Status::Failed, report.error.clone()),
                Some(e) => (Status::Failed, Some(e)),
            };
            for p in events {
                let details = format!("Retry of event {}: table {} synced again", p.event_id, table.name);
                results.push((p.event_id, outcome_event(p, status, details, error.clone(), asked_by)));
            }
        }
    }
    let run_id = format!("retry-{}", Utc::now().format("%Y%m%dT%H%M%SZ"));
    Warehouse::new(&outputs.duckdb).commit(&mut Default::default(), |tx| {
        for (original, event) in &results {
            tx.append_events(&run_id, std::slice::from_ref(event))?;
            if event.status == Status::Success {
                tx.mark_retried(*original, asked_by)?;
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(results.into_iter().map(|(_, e)| e).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CONVERSATIONS, CONVERSATION_THREADS, MAILBOXES};
    use crate::extract::testing::Fixture;
    use helpscout_sim::MutationPlan;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_are_refetched_one_by_one_and_a_removed_one_is_removed_here() {
        let mut f = Fixture::new(20, 2).await;
        f.select(&[&CONVERSATIONS, &CONVERSATION_THREADS]);
        let report = run::sync(&f.outputs, &f.settings, &Quiet).await.unwrap();
        assert_eq!(report.status, RunStatus::Success);
        let ids: Vec<i64> = f.sim.ground_truth_table("conversations").unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
        f.sim.advance_clock(chrono::Duration::hours(1));
        let changed = f.sim.mutate(&MutationPlan { seed: 5, deletions: 1, ..Default::default() });
        let deleted = changed.deleted[0];
        let kept = *ids.iter().find(|id| **id != deleted).unwrap();
        let outcomes = retry_records(&f.outputs, &f.settings, &CONVERSATIONS, &[kept, deleted]).await.unwrap();
        assert_eq!(outcomes, [(kept, RecordOutcome::Synced), (deleted, RecordOutcome::Removed)]);
        assert_eq!(f.rows(&CONVERSATIONS), f.truth_count("conversations"));
        // A table without a record path cannot be retried record by record.
        let outcomes = retry_records(&f.outputs, &f.settings, &MAILBOXES, &[1]).await.unwrap();
        assert!(matches!(&outcomes[0].1, RecordOutcome::Failed(e) if e.contains("one by one")));
    }
}

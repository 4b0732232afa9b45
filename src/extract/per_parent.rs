//! Tables listed once per parent record (mailbox fields and folders, team members): each
//! parent's list replaces that parent's rows. A parent gone since it was listed keeps its
//! previous rows until it is seen gone, and fails the table with a clear reason.

use futures::StreamExt;
use serde_json::Value;

use super::SyncError;
use super::commit::Chunk;
use super::context::{Ledger, Run, Synced};
use crate::api::{Action, ApiError};
use crate::catalog::log::RecordFailure;
use crate::catalog::Table;

/// The parents of `table`: as listed earlier in this run, or listed now.
async fn parent_ids(run: &Run<'_>, ledger: &mut Ledger, parent: &'static Table) -> Result<Vec<i64>, SyncError> {
    if let Some(ids) = ledger.listed.get(parent) {
        return Ok(ids.clone());
    }
    let records = run.list_all(parent, &run.url_for(parent, None, &[])).await?;
    let ids: Vec<i64> = records.iter().filter_map(|r| r.get("id").and_then(Value::as_i64)).collect();
    ledger.listed.insert(parent, ids.clone());
    Ok(ids)
}

/// Why one parent's list is missing, in the log's words ("Mailbox not found").
fn parent_failure(parent: &Table, id: i64, e: &ApiError) -> RecordFailure {
    let error = match e.action() {
        Action::Gone => format!("{} not found", capitalised(parent.noun)),
        _ => e.to_string(),
    };
    RecordFailure { id: Some(id), error, http_status: e.http_status() }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

pub(crate) async fn sync(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table) -> Result<Synced, SyncError> {
    let parent = table.parent().ok_or_else(|| SyncError::Internal(format!("{} has no parent to list it under", table.name)))?;
    let ids = parent_ids(run, ledger, parent).await?;
    let lists: Vec<(i64, Result<Vec<Value>, ApiError>)> = futures::stream::iter(ids.iter().map(|&id| {
        let url = run.url_for(table, Some(id), &[]);
        async move { (id, run.list_all(table, &url).await) }
    }))
    .buffered(run.concurrency())
    .collect()
    .await;
    let conv = run.converter(table);
    let mut chunk = Chunk::new();
    let mut listed = Vec::new();
    let mut missing = Vec::new();
    for (id, result) in lists {
        match result {
            Ok(items) => {
                listed.push(id);
                for record in &items {
                    let row = conv.row(record, Some(id), &run.stamp)?;
                    chunk.push(conv.key_of(&row), row, None);
                }
            }
            Err(e) if matches!(e.action(), Action::Gone | Action::Moved | Action::Forbidden) => missing.push(parent_failure(parent, id, &e)),
            Err(e) => return Err(e.into()),
        }
    }
    let rows = chunk.len() as u64;
    let removed = ledger.replace_rows(run, table, chunk.rows, Some(&listed))?;
    if !missing.is_empty() {
        let failed = missing.len();
        for failure in missing {
            ledger.failed(table, failure);
        }
        return Err(SyncError::RecordsFailed { table: table.name, failed });
    }
    Ok(Synced { rows, removed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{MAILBOXES, TEAMS};

    #[test]
    fn a_gone_parent_is_named_in_the_logs_words() {
        let f = parent_failure(&MAILBOXES, 7, &ApiError::NotFound { path: "/v2/mailboxes/7/fields".into() });
        assert_eq!((f.id, f.error.as_str(), f.http_status), (Some(7), "Mailbox not found", Some(404)));
        let f = parent_failure(&TEAMS, 3, &ApiError::Forbidden { path: "/v2/teams/3/members".into() });
        assert!(f.error.starts_with("Access denied"), "{}", f.error);
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::catalog::{EventType, MAILBOX_FIELDS, MAILBOX_FOLDERS, MAILBOXES};
    use crate::extract::testing::Fixture;
    use helpscout_sim::{FaultKind, FaultPlan, FaultRule};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_parents_list_replaces_its_rows_and_a_gone_parent_keeps_its_own() {
        let mut f = Fixture::new(10, 4).await;
        f.select(&[&MAILBOX_FIELDS, &MAILBOX_FOLDERS]);
        let (run, mut ledger) = f.start();
        let synced = sync(&run, &mut ledger, &MAILBOX_FIELDS).await.unwrap();
        assert_eq!(synced.rows as i64, f.truth_count("mailbox_fields"));
        let parents = ledger.listed[&MAILBOXES].clone();
        assert_eq!(parents.len(), 3, "the parents were listed once, for both children");
        sync(&run, &mut ledger, &MAILBOX_FOLDERS).await.unwrap();
        assert_eq!(f.rows(&MAILBOX_FOLDERS), f.truth_count("mailbox_folders"));

        // One mailbox's folders answer 404: the table fails with the reason, its rows stay.
        f.sim.set_faults(FaultPlan {
            rules: vec![FaultRule { path_prefix: Some(format!("/v2/mailboxes/{}/folders", parents[0])), method: None, after: 0, count: 10, kind: FaultKind::Status(404) }],
        });
        let (run, mut ledger) = f.start();
        match sync(&run, &mut ledger, &MAILBOX_FOLDERS).await {
            Err(SyncError::RecordsFailed { failed: 1, .. }) => {}
            other => panic!("expected one failed parent, got {other:?}"),
        }
        assert_eq!(ledger.failures[&MAILBOX_FOLDERS][0].error, "Mailbox not found");
        assert_eq!(f.rows(&MAILBOX_FOLDERS), f.truth_count("mailbox_folders"), "the gone parent's rows are kept until it is seen gone");
        assert_eq!(f.events(EventType::Error), 0, "a 404 is an answer, logged by the table, not a failed request");
    }
}

//! Records that vanish upstream. A list by modification time cannot show removals; the
//! unfiltered list's size can: when more rows are held than the API counts, a scan of the
//! list's ids finds the missing ones. Merges also show as children moving to another parent.
//! Every candidate is confirmed at the table's record path (301 merged, 404 deleted) before it
//! is removed with its children, remembered as a tombstone and logged.

use futures::StreamExt;

use super::SyncError;
use super::context::{Ledger, Run};
use crate::api::{Action, ApiError, IdCollector};
use crate::catalog::log::{LogEvent, Status};
use crate::catalog::{Removal, Table};
use crate::store::Scope;

/// The periodic size check of `table`'s list, at most once per `removal_check` of the server's
/// clock. Returns the rows removed.
pub(crate) async fn check(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table) -> Result<u64, SyncError> {
    let Some(removals) = table.removals else { return Ok(0) };
    if !run.selected(table) {
        return Ok(0);
    }
    let now = run.server_now();
    if !ledger.whole_pass_due(run, table, now) {
        return Ok(0);
    }
    // The plain list: without what only adds embedded data.
    let mut url = url::Url::parse(&run.url_for(table, None, &[])).expect("a valid URL");
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !removals.scan_omits.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let url = url.to_string();
    let listing = Run::listing(table);
    let live = listing.page(&run.client, &url).await?.total_elements;
    let held = ledger.commit(&run.store, |tx| tx.held_ids(table))?;
    let Some(live) = live else { return Ok(0) };
    if held.len() as u64 <= live {
        ledger.mark(run, table, &[Scope::RemovalCheck], now)?;
        return Ok(0);
    }
    tracing::info!(table = table.name, held = held.len(), live, "rows held that the API no longer lists; scanning ids");
    let mut listed = IdCollector::default();
    listing.all_pages(&run.client, &url, &mut listed).await?;
    let missing: Vec<i64> = held.into_iter().filter(|id| !listed.0.contains(id)).collect();
    let removed = resolve(run, ledger, table, missing).await?;
    ledger.mark(run, table, &[Scope::RemovalCheck], now)?;
    Ok(removed)
}

/// What the record path answers for one candidate.
fn removal_of(result: Result<(), ApiError>) -> Result<Option<Removal>, ApiError> {
    match result {
        Ok(()) => Ok(None),
        Err(e) => match e.action() {
            Action::Moved => Ok(Some(Removal::Merged { into: e.moved_to() })),
            Action::Gone => Ok(Some(Removal::Deleted)),
            _ => Err(e),
        },
    }
}

/// The event that says a record was removed.
fn removal_event(table: &'static Table, id: i64, removal: Removal) -> Option<LogEvent> {
    let removals = table.removals?;
    let (kind, details) = match removal {
        Removal::Merged { into: Some(t) } => (removals.merged, format!("Merged into {} {t}; removed from {}", table.noun, table.name)),
        Removal::Merged { into: None } => (removals.merged, format!("Merged; removed from {}", table.name)),
        Removal::Deleted => (removals.deleted, format!("Deleted in Help Scout; removed from {}", table.name)),
    };
    let mut e = LogEvent::new(kind, Status::Success, details).table(table);
    if table.rows_are_conversations() {
        e.conversation_id = Some(id);
    }
    Some(e)
}

/// Confirms candidates at the table's record path and removes those merged or deleted, with
/// their children, a tombstone and a log event each, in one commit. Returns the number removed.
pub(crate) async fn resolve(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, mut candidates: Vec<i64>) -> Result<u64, SyncError> {
    let (Some(_), Some(record_path)) = (table.removals, table.record_path) else { return Ok(0) };
    if candidates.is_empty() || !run.selected(table) {
        return Ok(0);
    }
    candidates.sort_unstable();
    candidates.dedup();
    let probes: Vec<(i64, Result<(), ApiError>)> = futures::stream::iter(candidates.into_iter().map(|id| {
        let path = record_path.replace("{id}", &id.to_string());
        async move { (id, run.client.get(&path).await.map(|_| ())) }
    }))
    .buffer_unordered(run.concurrency())
    .collect()
    .await;
    let mut removed: Vec<(i64, Removal)> = Vec::new();
    for (id, result) in probes {
        if let Some(removal) = removal_of(result)? {
            removed.push((id, removal));
        }
    }
    if removed.is_empty() {
        return Ok(0);
    }
    let children: Vec<&'static Table> = table.children().filter(|c| run.selected(c)).collect();
    let ids: Vec<i64> = removed.iter().map(|r| r.0).collect();
    let events: Vec<LogEvent> = removed.iter().filter_map(|(id, removal)| removal_event(table, *id, *removal)).collect();
    let run_id = &run.stamp.run_id;
    ledger.commit(&run.store, |tx| {
        for child in &children {
            tx.delete_children(child, &ids)?;
        }
        tx.delete_ids(table, &ids)?;
        for (id, removal) in &removed {
            tx.tombstone(table, *id, *removal, run_id)?;
        }
        tx.append_events(run_id, &events)
    })?;
    Ok(removed.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::log::EventType;
    use crate::catalog::{CONVERSATIONS, USERS};

    #[test]
    fn a_probe_tells_merged_deleted_and_present_apart() {
        let moved = ApiError::Moved { path: "/v2/conversations/1".into(), location: "/v2/conversations/7".into(), status: 301 };
        assert_eq!(removal_of(Err(moved)).unwrap(), Some(Removal::Merged { into: Some(7) }));
        assert_eq!(removal_of(Err(ApiError::NotFound { path: "/v2/conversations/1".into() })).unwrap(), Some(Removal::Deleted));
        assert_eq!(removal_of(Ok(())).unwrap(), None);
        assert!(removal_of(Err(ApiError::Auth("no".into()))).is_err(), "anything else is not a removal");
    }

    #[test]
    fn removal_events_come_from_the_tables_declaration() {
        let e = removal_event(&CONVERSATIONS, 5, Removal::Merged { into: Some(9) }).unwrap();
        assert_eq!((e.event_type, e.conversation_id), (EventType::ConversationMerged, Some(5)));
        assert_eq!(e.details, "Merged into conversation 9; removed from conversations");
        let e = removal_event(&CONVERSATIONS, 5, Removal::Deleted).unwrap();
        assert_eq!(e.event_type, EventType::ConversationDeleted);
        assert!(removal_event(&USERS, 5, Removal::Deleted).is_none(), "users declare no removals");
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;
    use crate::catalog::log::EventType;
    use crate::catalog::{CONVERSATIONS, CONVERSATION_THREADS};
    use crate::extract::modified;
    use crate::extract::testing::Fixture;
    use helpscout_sim::MutationPlan;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_size_check_finds_deletions_confirms_them_and_runs_at_most_once_an_interval() {
        let mut f = Fixture::new(50, 6).await;
        f.select(&[&CONVERSATIONS, &CONVERSATION_THREADS]);
        let (run, mut ledger) = f.start();
        modified::sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        assert_eq!(check(&run, &mut ledger, &CONVERSATIONS).await.unwrap(), 0, "nothing removed yet");
        let checked = ledger.bookmarks.get(&CONVERSATIONS, Scope::RemovalCheck).unwrap();

        // The check follows the server's clock, which the run's listing tells it.
        f.sim.advance_clock(chrono::Duration::minutes(30));
        f.sim.mutate(&MutationPlan { seed: 1, deletions: 2, ..Default::default() });
        let (run, mut ledger) = f.start();
        modified::sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        assert_eq!(check(&run, &mut ledger, &CONVERSATIONS).await.unwrap(), 0, "within the interval the check is not due");
        f.sim.advance_clock(chrono::Duration::minutes(31));
        let (run, mut ledger) = f.start();
        modified::sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        assert_eq!(check(&run, &mut ledger, &CONVERSATIONS).await.unwrap(), 2);
        assert!(ledger.bookmarks.get(&CONVERSATIONS, Scope::RemovalCheck).unwrap() > checked);
        assert_eq!(f.rows(&CONVERSATIONS), f.truth_count("conversations"));
        assert_eq!(f.rows(&CONVERSATION_THREADS), f.truth_count("conversation_threads"), "their threads went with them");
        assert_eq!(f.events(EventType::ConversationDeleted), 2);
        // Candidates that still exist are kept.
        let held = ledger.commit(&run.store, |tx| tx.held_ids(&CONVERSATIONS)).unwrap();
        assert_eq!(resolve(&run, &mut ledger, &CONVERSATIONS, held[..3].to_vec()).await.unwrap(), 0);
    }
}

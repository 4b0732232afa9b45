//! Records that vanish upstream. A list by modification time cannot show removals; counts
//! can: the unfiltered list's size against the rows held, then (where fewer are listed than
//! held) a census by spans of creation time narrows the difference to a few small spans, whose
//! ids are listed. Merges also show as children moving to another parent. Every candidate is
//! confirmed at the table's record path (301 merged, 404 deleted) before it is removed with its
//! children and its referrers (repointed to the survivor, or removed), remembered as a
//! tombstone and logged: a count that moves while it is taken removes nothing that exists.

use futures::StreamExt;

use super::SyncError;
use super::census::{self, Follow, Span};
use super::context::{Ledger, Run};
use crate::api::{Action, ApiError, IdCollector, api_date};
use crate::catalog::log::{LogEvent, Status};
use crate::catalog::{Removal, Table};
use crate::store::Scope;

/// Spans of at most this many held rows are listed id by id (a page or two).
const LEAF_ROWS: usize = 50;

/// The `query` term that selects a span of the search field (both ends inclusive, whole seconds).
pub(crate) fn span_query(field: &str, span: Span) -> String {
    let bound = |s: Option<i64>| s.and_then(|s| chrono::DateTime::from_timestamp(s, 0)).map_or("*".to_string(), api_date);
    format!("({field}:[{} TO {}])", bound(span.from), bound(span.to.map(|t| t - 1)))
}

/// The removal check of `table`'s list, on every run unless `removal_check` asks for less
/// often (the server's clock). Returns the rows removed.
pub(crate) async fn check(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table) -> Result<u64, SyncError> {
    let Some(removals) = table.removals else { return Ok(0) };
    if !run.selected(table) {
        return Ok(0);
    }
    let now = run.server_now();
    if !ledger.removal_check_due(run, table, now) {
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
    let base = url.to_string();
    let in_span = |span: Span| {
        let mut u = url::Url::parse(&base).expect("a valid URL");
        if span != Span::ALL {
            u.query_pairs_mut().append_pair("query", &span_query(removals.counted_by.1, span));
        }
        u.to_string()
    };
    let listing = Run::listing(table);
    let live = listing.page(&run.client, &base).await?.total_elements;
    let (column, _) = removals.counted_by;
    let held = ledger.commit(&run.store, |tx| tx.held_times(table, column, Some("id")))?;
    let Some(live) = live else { return Ok(0) };
    let times: Vec<i64> = held.iter().map(|h| h.0).collect();
    let count = |span: Span| {
        let url = in_span(span);
        async move {
            let page = listing.page(&run.client, &url).await?;
            page.total_elements.ok_or_else(|| ApiError::Malformed { path: url.clone(), reason: "the list gives no `page.totalElements`".into() })
        }
    };
    let found = census::narrow(&times, Span::ALL, live, LEAF_ROWS, Follow::Fewer, run.concurrency(), count).await?;
    if !found.spans.is_empty() {
        tracing::info!(table = table.name, held = held.len(), live, spans = found.spans.len(), counts = found.requests, "fewer rows listed than held; listing the differing spans");
    }
    // Each small span's ids, listed; what is held there and not listed is a candidate.
    let listed: Vec<Result<(Span, IdCollector), ApiError>> = futures::stream::iter(found.spans.iter().map(|span| {
        let url = in_span(*span);
        async move {
            let mut ids = IdCollector::default();
            listing.all_pages(&run.client, &url, &mut ids).await.map(|_| (*span, ids))
        }
    }))
    .buffer_unordered(run.concurrency())
    .collect()
    .await;
    let mut missing = Vec::new();
    for result in listed {
        let (span, ids) = result?;
        missing.extend(held.iter().filter(|(t, id)| span.contains(*t) && !ids.0.contains(id)).map(|h| h.1));
    }
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
    let referrers: Vec<(&'static Table, &'static str)> = table.referrers().filter(|(t, _)| run.selected(t)).collect();
    let ids: Vec<i64> = removed.iter().map(|r| r.0).collect();
    let events: Vec<LogEvent> = removed.iter().filter_map(|(id, removal)| removal_event(table, *id, *removal)).collect();
    let run_id = &run.stamp.run_id;
    ledger.commit(&run.store, |tx| {
        for child in &children {
            tx.delete_children(child, &ids, None)?;
        }
        tx.delete_ids(table, &ids)?;
        for (id, removal) in &removed {
            // What pointed at the record points at the survivor, or goes with it.
            for (referrer, column) in &referrers {
                match removal {
                    Removal::Merged { into: Some(survivor) } => tx.repoint(referrer, column, *id, *survivor)?,
                    _ => tx.delete_referring(referrer, column, &[*id])?,
                };
            }
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
    use crate::catalog::{CONVERSATIONS, CONVERSATION_THREADS, HAPPINESS_RATINGS_REPORT};
    use crate::extract::testing::Fixture;
    use crate::extract::{modified, whole};
    use helpscout_sim::MutationPlan;

    /// Requests the simulator answered since its stats were reset.
    fn requests(f: &Fixture) -> u64 {
        f.sim.request_stats().by_endpoint.iter().filter(|e| e.endpoint != "/v2/oauth2/token").map(|e| e.count).sum()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deletions_and_merges_go_on_the_next_run_in_requests_that_grow_with_the_log_of_the_account() {
        let mut f = Fixture::new(900, 6).await;
        f.select(&[&CONVERSATIONS, &CONVERSATION_THREADS, &HAPPINESS_RATINGS_REPORT]);
        let (run, mut ledger) = f.start();
        modified::sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        whole::sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, false).await.unwrap();
        f.sim.reset_request_stats();
        assert_eq!(check(&run, &mut ledger, &CONVERSATIONS).await.unwrap(), 0, "nothing removed yet");
        assert_eq!(requests(&f), 1, "equal counts: one request");

        // Deletions, and merges until one merges a rated conversation, whose ratings must follow it.
        let mut changes = f.sim.mutate(&MutationPlan { seed: 1, deletions: 3, merges: 2, ..Default::default() });
        for seed in 2..60 {
            let sources: Vec<String> = changes.merged.iter().map(|m| m.source.to_string()).collect();
            if f.ints(&format!("SELECT count(*) FROM happiness_ratings_report WHERE conversation_id IN ({})", sources.join(",")))[0] > 0 {
                break;
            }
            changes.merged.extend(f.sim.mutate(&MutationPlan { seed, merges: 1, ..Default::default() }).merged);
        }
        let sources: Vec<String> = changes.merged.iter().map(|m| m.source.to_string()).collect();
        let moving = f.ints(&format!("SELECT count(*) FROM happiness_ratings_report WHERE conversation_id IN ({})", sources.join(",")));
        assert!(moving[0] > 0, "a rated conversation was merged");
        let (run, mut ledger) = f.start();
        // Merges show in the listing as threads moving; deletions only to the check.
        let listed = modified::sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        f.sim.reset_request_stats();
        let removed = check(&run, &mut ledger, &CONVERSATIONS).await.unwrap();
        assert_eq!(listed.removed + removed, (changes.deleted.len() + changes.merged.len()) as u64);
        let d = changes.deleted.len() as u64;
        assert_eq!(removed, d);
        // Per removal: a count per level of halving down to 50 rows, a page or two of ids, a probe.
        let held = f.truth_count("conversations") as f64 + d as f64;
        let levels = (held / 50.0).log2().ceil() as u64 + 1;
        let bound = 1 + d * (levels + 2 + 1);
        assert!(requests(&f) <= bound, "{} requests for {d} removals among {held} (bound {bound})", requests(&f));
        assert_eq!(f.rows(&CONVERSATIONS), f.truth_count("conversations"));
        assert_eq!(f.rows(&CONVERSATION_THREADS), f.truth_count("conversation_threads"), "their threads went with them");
        assert_eq!(f.events(EventType::ConversationDeleted), changes.deleted.len());
        assert_eq!(f.events(EventType::ConversationMerged), changes.merged.len());
        // No rating points into nothing; a merged one points at the survivor, as the report says.
        let dangling = f.ints("SELECT count(*) FROM happiness_ratings_report WHERE conversation_id NOT IN (SELECT id FROM conversations)");
        assert_eq!(dangling, [0]);
        let truth = f.sim.ground_truth_table("happiness_ratings_report").unwrap();
        for m in &changes.merged {
            let expected = truth.iter().filter(|r| r["conversation_id"] == m.target).count() as i64;
            let held = f.ints(&format!("SELECT count(*) FROM happiness_ratings_report WHERE conversation_id = {}", m.target));
            assert_eq!(held, [expected], "ratings of {} now under {}", m.source, m.target);
        }
        // Candidates that still exist are kept.
        let held = ledger.commit(&run.store, |tx| tx.held_ids(&CONVERSATIONS)).unwrap();
        assert_eq!(resolve(&run, &mut ledger, &CONVERSATIONS, held[..3].to_vec()).await.unwrap(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conversations_created_while_the_check_runs_are_not_removed() {
        let mut f = Fixture::new(300, 11).await;
        f.select(&[&CONVERSATIONS, &CONVERSATION_THREADS]);
        let (run, mut ledger) = f.start();
        modified::sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        // After this run's listing: one deletion, and new conversations the counts now include.
        let changes = f.sim.mutate(&MutationPlan { seed: 4, deletions: 1, new_conversations: 3, ..Default::default() });
        assert_eq!(check(&run, &mut ledger, &CONVERSATIONS).await.unwrap(), 0, "the counts match: nothing removed");
        let (run, mut ledger) = f.start();
        modified::sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        assert_eq!(check(&run, &mut ledger, &CONVERSATIONS).await.unwrap(), 1, "the next run finds it");
        assert_eq!(f.rows(&CONVERSATIONS), f.truth_count("conversations"));
        for id in changes.new_conversations {
            assert_eq!(f.ints(&format!("SELECT count(*) FROM conversations WHERE id = {id}")), [1]);
        }
    }
}

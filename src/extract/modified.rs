//! Lists the API filters by modification time (`modifiedSince`), with their embedded children.
//!
//! The cursor comes from the SERVER's clock: the `Date` of the previous run's first page, less
//! an overlap, because records carry no modification time of their own. Lists are read newest
//! modified first, so offset paging repeats rows that change meanwhile but never skips one;
//! when repeats show that rows moved, what changed during the pass is read again from the
//! pass's own start. Chunks commit as they fill; the bookmark moves only after the last one.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use super::SyncError;
use super::commit::{Chunk, PendingCommit};
use super::context::{Ledger, Run, Synced};
use super::gather::gather;
use super::progress::ListingProgress;
use super::removals;
use crate::api::api_date;
use crate::catalog::Table;
use crate::store::Scope;

/// What one pass over a listing found.
struct Pass {
    rows: u64,
    /// Rows this pass had already seen (they moved while it was paged).
    repeats: u64,
    /// The server's date of the pass's first page.
    server_date: Option<DateTime<Utc>>,
    /// Parents whose children moved to another parent (merge candidates).
    losing_children: Vec<i64>,
}

/// Lists `table` since its bookmark (everything when `full`), commits it with its selected
/// embedded children, resolves what was merged or (on a full pass) removed, then moves the
/// bookmark of the table and of its embedded children.
pub(crate) async fn sync(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, full: bool) -> Result<Synced, SyncError> {
    let cursor = if full { None } else { Some(ledger.bookmarks.get(table, Scope::Cursor).unwrap_or(run.settings.start_date)) };
    let overlap = chrono::Duration::from_std(run.settings.overlap).unwrap_or_default();
    let mut synced = Synced::default();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut bookmark: Option<DateTime<Utc>> = None;
    let mut losing = Vec::new();
    let mut pass_cursor = cursor;
    for pass in 0..3 {
        let extra: Vec<(&str, String)> = match (table.request.modified_since, pass_cursor) {
            (Some(param), Some(c)) => vec![(param, api_date(c))],
            _ => vec![],
        };
        let url = run.url_for(table, None, &extra);
        let found = list_into_chunks(run, ledger, table, &url, &mut seen).await?;
        synced.rows += found.rows;
        losing.extend(found.losing_children);
        let start = found.server_date.unwrap_or(run.stamp.extracted_at);
        bookmark.get_or_insert(start - overlap);
        if found.repeats == 0 || full {
            break;
        }
        pass_cursor = Some(start - overlap);
        tracing::info!(table = table.name, repeats = found.repeats, pass, "rows moved while paging; reading the changes again");
    }
    if full && run.selected(table) {
        // Rows received unchanged keep their `_run_id`: what was not listed is what `seen` lacks.
        let held = ledger.commit(&run.store, |tx| tx.held_ids(table))?;
        let unseen: Vec<i64> = held.into_iter().filter(|id| !seen.contains(id)).collect();
        synced.removed += removals::resolve(run, ledger, table, unseen).await?;
    }
    synced.removed += removals::resolve(run, ledger, table, losing).await?;
    if let Some(failed) = ledger.failures.get(table).map(Vec::len).filter(|n| *n > 0) {
        return Err(SyncError::RecordsFailed { table: table.name, failed });
    }
    // The bookmark moves only once everything up to it is committed.
    let run_id = &run.stamp.run_id;
    let children = run.selected_embedded(table);
    let selected = run.selected(table);
    ledger.commit(&run.store, |tx| {
        if selected {
            tx.set_bookmark(table, Scope::Cursor, bookmark, run_id)?;
        }
        children.iter().try_for_each(|child| tx.set_bookmark(child, Scope::Cursor, bookmark, run_id))
    })?;
    if let Some(at) = bookmark {
        ledger.bookmarks.set(table, Scope::Cursor, at);
    }
    ledger.listed.insert(table, seen.into_iter().collect());
    Ok(synced)
}

/// Reads a listing page by page, committing every `chunk_rows` parents; one chunk is written
/// while the next is fetched and converted.
async fn list_into_chunks(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, url: &str, seen: &mut HashSet<i64>) -> Result<Pass, SyncError> {
    let mut pages = run.spawn_listing(url.to_string(), table);
    let mut chunk = Chunk::new();
    let mut pass = Pass { rows: 0, repeats: 0, server_date: None, losing_children: Vec::new() };
    let mut progress: Option<ListingProgress> = None;
    let mut pass_seen: HashSet<i64> = HashSet::new();
    let mut writing: Option<PendingCommit> = None;
    let listed: Result<(), SyncError> = async {
        while let Some(page) = pages.recv().await {
            let page = page?;
            let p = progress.get_or_insert(ListingProgress {
                rows: 0,
                total: page.total_elements,
                pages: 0,
                total_pages: page.total_pages,
                usage: run.client.usage(),
            });
            pass.server_date = pass.server_date.or(page.server_date);
            pass.rows += page.items.len() as u64;
            gather(run, ledger, table, page.items, &mut chunk, &mut pass_seen, &mut pass.repeats).await?;
            p.rows = pass.rows;
            p.pages += 1;
            p.usage = run.client.usage();
            run.observer.listing(table, p);
            if chunk.len() >= run.settings.chunk_rows {
                if let Some(previous) = writing.take() {
                    pass.losing_children.extend(ledger.finish_commit(previous).await?);
                }
                writing = Some(run.spawn_commit(table, std::mem::replace(&mut chunk, Chunk::new())));
            }
        }
        Ok(())
    }
    .await;
    // A chunk already handed over is written (or fails) before anything else happens.
    let written = match writing.take() {
        Some(previous) => ledger.finish_commit(previous).await,
        None => Ok(vec![]),
    };
    listed?;
    pass.losing_children.extend(written?);
    pass.losing_children.extend(ledger.finish_commit(run.spawn_commit(table, chunk)).await?);
    seen.extend(pass_seen);
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CONVERSATIONS, CONVERSATION_THREADS, EventType};
    use crate::extract::testing::Fixture;
    use helpscout_sim::{FaultKind, FaultPlan, FaultRule, MutationPlan};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backfill_then_a_refresh_since_the_server_clock_less_the_overlap() {
        let mut f = Fixture::new(60, 3).await;
        f.select(&[&CONVERSATIONS, &CONVERSATION_THREADS]);
        let (run, mut ledger) = f.start();
        let before = f.sim.now();
        let synced = sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        let after = f.sim.now();
        assert_eq!(synced, Synced { rows: 60, removed: 0 });
        assert_eq!(f.rows(&CONVERSATIONS), f.truth_count("conversations"));
        assert_eq!(f.rows(&CONVERSATION_THREADS), f.truth_count("conversation_threads"), "chats' threads were refetched");
        assert_eq!(f.events(EventType::TicketCreated), 60);
        // The bookmark: the server's date of the first page, less the overlap.
        let bookmark = ledger.bookmarks.get(&CONVERSATIONS, Scope::Cursor).unwrap();
        let overlap = chrono::Duration::seconds(300);
        assert!(bookmark >= before - overlap - chrono::Duration::seconds(1) && bookmark <= after - overlap, "{bookmark} in {before}..{after}");
        assert_eq!(ledger.listed[&CONVERSATIONS].len(), 60);

        let held: HashSet<i64> = ledger.listed[&CONVERSATIONS].iter().copied().collect();
        f.sim.advance_clock(chrono::Duration::hours(1));
        let changed = f.sim.mutate(&MutationPlan { seed: 4, new_conversations: 3, replies: 2, merges: 2, ..Default::default() });
        let (run, mut ledger) = f.start();
        let synced = sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        assert!(synced.rows >= 3 && synced.rows < 60, "only what changed is read: {synced:?} for {changed:?}");
        let merged_held = changed.merged.iter().filter(|m| held.contains(&m.source)).count();
        assert_eq!(synced.removed as usize, merged_held, "merged conversations lost their threads to their targets: {changed:?}");
        assert_eq!(f.rows(&CONVERSATIONS), f.truth_count("conversations"));
        assert_eq!(f.rows(&CONVERSATION_THREADS), f.truth_count("conversation_threads"));
        assert_eq!(f.events(EventType::ConversationMerged), merged_held);
        assert!(ledger.bookmarks.get(&CONVERSATIONS, Scope::Cursor).unwrap() > bookmark);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_that_move_while_paging_are_read_again_and_a_failed_record_holds_the_bookmark() {
        let mut f = Fixture::new(80, 5).await;
        // Conversations alone (no thread refetches share the path), one page at a time, so
        // that the drift lands between the list's pages.
        f.select(&[&CONVERSATIONS]);
        f.settings.client.concurrency = 1;
        f.sim.set_faults(FaultPlan {
            rules: vec![FaultRule { path_prefix: Some("/v2/conversations".into()), method: None, after: 1, count: 2, kind: FaultKind::PageDrift { rows: 4 } }],
        });
        let (run, mut ledger) = f.start();
        let synced = sync(&run, &mut ledger, &CONVERSATIONS, false).await.unwrap();
        assert!(synced.rows > 80, "the pass was repeated: {synced:?}");
        assert_eq!(f.rows(&CONVERSATIONS), f.truth_count("conversations"));
        f.select(&[&CONVERSATIONS, &CONVERSATION_THREADS]);

        // A chat whose thread list stays broken: its conversation is left out and logged, the
        // others commit, and the bookmark stays where it was.
        f.sim.advance_clock(chrono::Duration::hours(1));
        f.sim.mutate(&MutationPlan { seed: 6, replies: 10, ..Default::default() });
        f.sim.set_faults(FaultPlan {
            rules: vec![FaultRule { path_prefix: Some("/v2/conversations/".into()), method: None, after: 0, count: 1_000, kind: FaultKind::TruncatedBody }],
        });
        let (run, mut ledger) = f.start();
        let kept = ledger.bookmarks.get(&CONVERSATIONS, Scope::Cursor);
        match sync(&run, &mut ledger, &CONVERSATIONS, false).await {
            Err(SyncError::RecordsFailed { table, failed }) => assert!(table == "conversations" && failed >= 1),
            other => panic!("expected failed records, got {other:?}"),
        }
        assert_eq!(ledger.bookmarks.get(&CONVERSATIONS, Scope::Cursor), kept);
        assert!(!ledger.failures[&CONVERSATIONS].is_empty());
    }
}

//! Lists the API cannot filter by time, read whole: their rows replace the table's, which also
//! removes what was deleted upstream. A windowed report (`start`/`end`) is read whole once
//! (committed chunk by chunk as its pages arrive, the rows it did not list removed at the end);
//! after that each run reads the window since the last one's end (less the overlap) and checks
//! the rest by counts: a census of spans of the window's column finds the spans whose counts
//! differ from the rows held (ratings removed with their conversation, or moved), and only
//! those are read again and replace what is held in them.

use chrono::{DateTime, Utc};

use super::SyncError;
use super::census::{self, Follow, Span};
use super::commit::{Chunk, row_id};
use super::context::{Ledger, Run, Synced};
use crate::api::{ApiError, api_date};
use crate::catalog::{Table, Window as ReportWindow};
use crate::store::Scope;

/// Spans of at most this many held rows are read again whole (a page or two of the report).
const LEAF_ROWS: usize = 50;

/// The report window a run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// None: from the start date, the whole report.
    pub since: Option<DateTime<Utc>>,
    pub until: DateTime<Utc>,
}

impl Window {
    pub fn whole(&self) -> bool {
        self.since.is_none()
    }
}

/// The window of `table`'s report this run reads, ending at the server's clock now.
pub(crate) fn window(run: &Run<'_>, ledger: &Ledger, table: &'static Table, full: bool, now: DateTime<Utc>) -> Window {
    let overlap = chrono::Duration::from_std(run.settings.overlap).unwrap_or_default();
    let since = match ledger.bookmarks.get(table, Scope::WindowEnd) {
        Some(last_end) if !full => Some((last_end - overlap).max(run.settings.start_date)),
        _ => None,
    };
    Window { since, until: now }
}

/// The server's clock, asked of the report itself (a window of no time) when no request of
/// this run has told it yet: the window's end is a bookmark, and the local clock may differ.
async fn server_clock(run: &Run<'_>, table: &'static Table, w: ReportWindow) -> Result<DateTime<Utc>, SyncError> {
    if let Some(now) = run.client.server_now() {
        return Ok(now);
    }
    let instant = api_date(run.settings.start_date);
    let url = run.url_for(table, None, &[(w.start, instant.clone()), (w.end, instant)]);
    run.client.get(&url).await?;
    Ok(run.server_now())
}

/// The URL of the report between two instants.
fn window_url(run: &Run<'_>, table: &'static Table, w: ReportWindow, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    run.url_for(table, None, &[(w.start, api_date(from)), (w.end, api_date(to))])
}

fn instant(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

pub(crate) async fn sync(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, full: bool) -> Result<Synced, SyncError> {
    let window = match table.request.window {
        Some(params) => Some((params, window(run, ledger, table, full, server_clock(run, table, params).await?))),
        None => None,
    };
    let url = match window {
        Some((params, w)) => window_url(run, table, params, w.since.unwrap_or(run.settings.start_date), w.until + chrono::Duration::seconds(1)),
        None => run.url_for(table, None, &[]),
    };
    let (rows, removed);
    match window {
        // A part of the report: merged with what is held, then the rest checked by counts.
        Some((params, w)) if !w.whole() => {
            let chunk = list_chunk(run, ledger, table, &url).await?;
            let listed = chunk.len() as u64;
            ledger.finish_commit(run.spawn_commit(table, chunk)).await?;
            ledger.mark(run, table, &[Scope::WindowEnd], w.until)?;
            let since = w.since.unwrap_or(run.settings.start_date);
            let (read, dropped) = verify(run, ledger, table, params, run.settings.start_date, since).await?;
            rows = listed + read;
            removed = dropped;
        }
        Some((_, w)) => {
            let (read, dropped) = read_whole(run, ledger, table, &url).await?;
            rows = read;
            removed = dropped;
            ledger.mark(run, table, &[Scope::WindowEnd], w.until)?;
        }
        None => {
            let chunk = list_chunk(run, ledger, table, &url).await?;
            rows = chunk.len() as u64;
            removed = ledger.replace_rows(run, table, chunk.rows, None)?;
        }
    }
    Ok(Synced { rows, removed })
}

/// The rows `url` lists, in one chunk; their ids are the table's listed ones.
async fn list_chunk(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, url: &str) -> Result<Chunk, SyncError> {
    let chunk = chunk_of(run, table, &run.list_all(table, url).await?)?;
    ledger.listed.insert(table, chunk.parent_ids.clone());
    Ok(chunk)
}

/// Reads a whole report window page by page, committing every `chunk_rows` rows, then
/// deletes the rows it did not list: a large account's report never sits in memory whole.
/// Every row is written again (none kept as unchanged), so that the rows this run did not
/// write are exactly those the report no longer lists. Returns the rows read and removed.
async fn read_whole(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, url: &str) -> Result<(u64, u64), SyncError> {
    let mut pages = run.spawn_listing(url.to_string(), table);
    let mut chunk = Chunk::new();
    let (mut rows, mut ids) = (0, Vec::new());
    loop {
        let page = pages.recv().await.transpose()?;
        if let Some(page) = &page {
            rows += page.items.len() as u64;
            push_rows(run, table, &page.items, &mut chunk)?;
        }
        if chunk.len() >= run.settings.chunk_rows || (page.is_none() && chunk.len() > 0) {
            let full = std::mem::replace(&mut chunk, Chunk::new());
            ids.extend_from_slice(&full.parent_ids);
            ledger.upsert_rows(run, table, full.rows)?;
        }
        if page.is_none() {
            break;
        }
    }
    ledger.listed.insert(table, ids);
    let removed = ledger.remove_unwritten(run, table)?;
    Ok((rows, removed))
}

/// The rows of listed records, in one chunk.
fn chunk_of(run: &Run<'_>, table: &'static Table, items: &[serde_json::Value]) -> Result<Chunk, SyncError> {
    let mut chunk = Chunk::new();
    push_rows(run, table, items, &mut chunk)?;
    Ok(chunk)
}

/// Adds the rows of listed records to a chunk.
fn push_rows(run: &Run<'_>, table: &'static Table, items: &[serde_json::Value], chunk: &mut Chunk) -> Result<(), SyncError> {
    let conv = run.converter(table);
    for record in items {
        let row = conv.row(record, None, &run.stamp)?;
        let id = row_id(&row);
        chunk.push(conv.key_of(&row), row, id);
    }
    Ok(())
}

/// Checks the report between `from` and `to` (the part this run did not read) against the
/// rows held there by counts, and reads again only the spans that differ; each replaces what
/// is held in it. Returns the rows read and the rows that went.
async fn verify(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, params: ReportWindow, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(u64, u64), SyncError> {
    if to <= from {
        return Ok((0, 0));
    }
    let listing = Run::listing(table);
    let count = |span: Span| {
        let url = window_url(run, table, params, span.from.map_or(from, instant), span.to.map_or(to, instant));
        async move {
            let page = listing.page(&run.client, &url).await?;
            page.total_elements.ok_or_else(|| ApiError::Malformed { path: url.clone(), reason: "the report gives no `count`".into() })
        }
    };
    let root = Span { from: Some(from.timestamp()), to: Some(to.timestamp()) };
    let live = count(root).await?;
    let held: Vec<i64> = ledger.commit(&run.store, |tx| tx.held_times(table, params.column, None))?.into_iter().map(|h| h.0).collect();
    let found = census::narrow(&held, root, live, LEAF_ROWS, Follow::Any, run.concurrency(), count).await?;
    let (mut read, mut removed) = (0, 0);
    for span in found.spans {
        let (a, b) = (span.from.map_or(from, instant), span.to.map_or(to, instant));
        let chunk = chunk_of(run, table, &run.list_all(table, &window_url(run, table, params, a, b)).await?)?;
        read += chunk.len() as u64;
        removed += ledger.replace_span(run, table, params.column, span, chunk.rows)?;
    }
    Ok((read, removed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{HAPPINESS_RATINGS_REPORT, USERS, WORKFLOWS};
    use crate::extract::testing::Fixture;
    use helpscout_sim::MutationPlan;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_report_is_read_whole_once_then_by_window_with_the_rest_checked_by_counts() {
        let mut f = Fixture::new(2_000, 8).await;
        f.select(&[&HAPPINESS_RATINGS_REPORT]);
        let (run, mut ledger) = f.start();
        let now = f.sim.now();
        assert!(window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, false, now).whole(), "first run");
        let synced = sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, false).await.unwrap();
        assert_eq!(synced.rows as i64, f.truth_count("happiness_ratings_report"));
        let end = ledger.bookmarks.get(&HAPPINESS_RATINGS_REPORT, Scope::WindowEnd).unwrap();
        assert!(end <= f.sim.now() && end > f.sim.now() - chrono::Duration::minutes(1), "the window ends on the server's clock");

        let (run, mut ledger) = f.start();
        let w = window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, false, f.sim.now());
        assert_eq!(w.since, Some(end - chrono::Duration::seconds(300)), "since the last window, less the overlap");
        assert!(window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, true, f.sim.now()).whole(), "a full refresh reads it whole");
        f.sim.reset_request_stats();
        sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, false).await.unwrap();
        let asked: u64 = f.sim.request_stats().by_endpoint.iter().filter(|e| e.endpoint.contains("reports")).map(|e| e.count).sum();
        assert_eq!(asked, 3, "nothing changed: the server's clock (no other table asked first), the window and one count");

        // New ratings land in the window; deleted conversations take old ratings with them.
        f.sim.advance_clock(chrono::Duration::hours(2));
        let changes = f.sim.mutate(&MutationPlan { seed: 2, new_ratings: 3, replies: 3, deletions: 12, ..Default::default() });
        let before = f.rows(&HAPPINESS_RATINGS_REPORT);
        let deleted: Vec<String> = changes.deleted.iter().map(i64::to_string).collect();
        let rated = f.ints(&format!("SELECT count(DISTINCT conversation_id) FROM happiness_ratings_report WHERE conversation_id IN ({})", deleted.join(",")))[0] as u64;
        assert!(rated > 0, "the seed deletes rated conversations");
        let (run, mut ledger) = f.start();
        assert!(!window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, false, f.sim.now()).whole(), "never whole again by itself");
        f.sim.reset_request_stats();
        sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, false).await.unwrap();
        let truth = f.truth_count("happiness_ratings_report");
        assert_eq!(f.rows(&HAPPINESS_RATINGS_REPORT), truth, "held rows equal the report's again");
        let asked: u64 = f.sim.request_stats().by_endpoint.iter().filter(|e| e.endpoint.contains("reports")).map(|e| e.count).sum();
        // The window, the root count, then per differing span a count per level and a page or two.
        let levels = (before as f64 / 50.0).log2().ceil() as u64 + 1;
        let bound = 2 + rated * (levels + 2);
        assert!(asked <= bound, "{asked} requests for {rated} changed spans (bound {bound})");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_whole_report_is_committed_chunk_by_chunk_and_what_it_no_longer_lists_goes() {
        let mut f = Fixture::new(2_000, 8).await;
        f.select(&[&HAPPINESS_RATINGS_REPORT]);
        f.settings.chunk_rows = 10;
        let truth = f.truth_count("happiness_ratings_report");
        assert!(truth > 50, "the seed rates enough conversations for several chunks ({truth})");
        let (run, mut ledger) = f.start();
        let synced = sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, false).await.unwrap();
        assert_eq!(synced.rows as i64, truth);
        assert_eq!(f.rows(&HAPPINESS_RATINGS_REPORT), truth);
        // Chunks of `chunk_rows` (here less than a page): a commit per page, then the removal;
        // the report is never held in memory whole.
        let pages = (truth as u64).div_ceil(helpscout_sim::REPORT_PAGE as u64);
        assert!(pages >= 3 && ledger.windows.commits > pages, "{} commits for {pages} pages", ledger.windows.commits);

        // Deleted conversations take their ratings with them; a full refresh reads the report
        // whole again, and what it no longer lists goes once it has been read to the end.
        f.sim.advance_clock(chrono::Duration::hours(2));
        let changes = f.sim.mutate(&MutationPlan { seed: 2, deletions: 12, ..Default::default() });
        let deleted: Vec<String> = changes.deleted.iter().map(i64::to_string).collect();
        let gone = f.ints(&format!("SELECT count(*) FROM happiness_ratings_report WHERE conversation_id IN ({})", deleted.join(",")))[0];
        assert!(gone > 0, "the seed deletes rated conversations");
        let (run, mut ledger) = f.start();
        let synced = sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, true).await.unwrap();
        assert_eq!(synced.removed as i64, gone);
        assert_eq!(f.rows(&HAPPINESS_RATINGS_REPORT), f.truth_count("happiness_ratings_report"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_whole_list_replaces_the_table_and_keeps_a_marker_bookmark() {
        let mut f = Fixture::new(10, 9).await;
        f.select(&[&USERS, &WORKFLOWS]);
        let (run, mut ledger) = f.start();
        let synced = sync(&run, &mut ledger, &USERS, false).await.unwrap();
        assert_eq!(synced.rows as i64, f.truth_count("users"));
        f.sim.advance_clock(chrono::Duration::hours(1));
        f.sim.mutate(&MutationPlan { seed: 3, user_edits: 2, workflow_edits: 2, ..Default::default() });
        let (run, mut ledger) = f.start();
        assert_eq!(sync(&run, &mut ledger, &WORKFLOWS, false).await.unwrap().rows as i64, f.truth_count("workflows"));
        assert_eq!(f.rows(&WORKFLOWS), f.truth_count("workflows"));
        assert!(ledger.bookmarks.get(&USERS, Scope::Cursor).is_some(), "the cursor is the newest updated_at held");
    }
}

//! Lists the API cannot filter by time, read whole: their rows replace the table's, which also
//! removes what was deleted upstream. A windowed report (`start`/`end`) is read whole once;
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
    let items = run.list_all(table, &url).await?;
    let chunk = chunk_of(run, table, &items)?;
    ledger.listed.insert(table, chunk.parent_ids.clone());
    let mut rows = chunk.len() as u64;
    let mut removed = 0;
    match window {
        // A part of the report: merged with what is held, then the rest checked by counts.
        Some((params, w)) if !w.whole() => {
            ledger.finish_commit(run.spawn_commit(table, chunk)).await?;
            ledger.mark(run, table, &[Scope::WindowEnd], w.until)?;
            let since = w.since.unwrap_or(run.settings.start_date);
            let (read, dropped) = verify(run, ledger, table, params, run.settings.start_date, since).await?;
            rows += read;
            removed += dropped;
        }
        Some((_, w)) => {
            removed = ledger.replace_rows(run, table, chunk.rows, None)?;
            ledger.mark(run, table, &[Scope::WindowEnd], w.until)?;
        }
        None => removed = ledger.replace_rows(run, table, chunk.rows, None)?,
    }
    Ok(Synced { rows, removed })
}

fn chunk_of(run: &Run<'_>, table: &'static Table, items: &[serde_json::Value]) -> Result<Chunk, SyncError> {
    let conv = run.converter(table);
    let mut chunk = Chunk::new();
    for record in items {
        let row = conv.row(record, None, &run.stamp)?;
        let id = row_id(&row);
        chunk.push(conv.key_of(&row), row, id);
    }
    Ok(chunk)
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
        let items = run.list_all(table, &window_url(run, table, params, a, b)).await?;
        let chunk = chunk_of(run, table, &items)?;
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

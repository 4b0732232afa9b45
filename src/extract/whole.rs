//! Lists the API cannot filter by time, read whole: their rows replace the table's, which also
//! removes what was deleted upstream. A windowed report (`start`/`end`) is read whole at most
//! once per `removal_check` of the server's clock (what changed or vanished in it is replaced
//! then); in between, only the window since the last one's end (less the overlap) is read and
//! merged.

use chrono::{DateTime, Utc};

use super::SyncError;
use super::commit::{Chunk, row_id};
use super::context::{Ledger, Run, Synced};
use super::modified::api_date;
use crate::catalog::Table;
use crate::store::Scope;

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
        Some(last_end) if !full && !ledger.whole_pass_due(run, table, now) => Some((last_end - overlap).max(run.settings.start_date)),
        _ => None,
    };
    Window { since, until: now }
}

/// The server's clock, asked of the report itself (a window of no time) when no request of
/// this run has told it yet: the window's end is a bookmark, and the local clock may differ.
async fn server_clock(run: &Run<'_>, table: &'static Table, (start, end): (&str, &str)) -> Result<DateTime<Utc>, SyncError> {
    if let Some(now) = run.client.server_now() {
        return Ok(now);
    }
    let instant = api_date(run.settings.start_date);
    let url = run.url_for(table, None, &[(start, instant.clone()), (end, instant)]);
    run.client.get(&url).await?;
    Ok(run.server_now())
}

pub(crate) async fn sync(run: &Run<'_>, ledger: &mut Ledger, table: &'static Table, full: bool) -> Result<Synced, SyncError> {
    let window = match table.request.window {
        Some(params) => Some((params, window(run, ledger, table, full, server_clock(run, table, params).await?))),
        None => None,
    };
    let extra: Vec<(&str, String)> = match window {
        Some(((start, end), w)) => {
            vec![(start, api_date(w.since.unwrap_or(run.settings.start_date))), (end, api_date(w.until + chrono::Duration::seconds(1)))]
        }
        None => vec![],
    };
    let url = run.url_for(table, None, &extra);
    let items = run.list_all(table, &url).await?;
    let conv = run.converter(table);
    let mut chunk = Chunk::new();
    for record in &items {
        let row = conv.row(record, None, &run.stamp)?;
        let id = row_id(&row);
        chunk.push(conv.key_of(&row), row, id);
    }
    ledger.listed.insert(table, chunk.parent_ids.clone());
    let rows = chunk.len() as u64;
    let removed = match window {
        // A part of the report: merged with what is held.
        Some((_, w)) if !w.whole() => {
            ledger.finish_commit(run.spawn_commit(table, chunk)).await?;
            0
        }
        _ => ledger.replace_rows(run, table, chunk.rows, None)?,
    };
    match window {
        Some((_, w)) if w.whole() => ledger.mark(run, table, &[Scope::WindowEnd, Scope::RemovalCheck], w.until)?,
        Some((_, w)) => ledger.mark(run, table, &[Scope::WindowEnd], w.until)?,
        None => {}
    }
    Ok(Synced { rows, removed })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{HAPPINESS_RATINGS_REPORT, USERS, WORKFLOWS};
    use crate::extract::testing::Fixture;
    use helpscout_sim::MutationPlan;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_report_is_read_whole_first_then_by_window_then_whole_again_past_the_interval() {
        let mut f = Fixture::new(40, 8).await;
        f.select(&[&HAPPINESS_RATINGS_REPORT]);
        let (run, mut ledger) = f.start();
        let now = f.sim.now();
        assert!(window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, false, now).whole(), "first run");
        let synced = sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, false).await.unwrap();
        assert_eq!(synced.rows as i64, f.truth_count("happiness_ratings_report"));
        let end = ledger.bookmarks.get(&HAPPINESS_RATINGS_REPORT, Scope::WindowEnd).unwrap();
        assert_eq!(ledger.bookmarks.get(&HAPPINESS_RATINGS_REPORT, Scope::RemovalCheck), Some(end));

        assert!(end <= f.sim.now() && end > f.sim.now() - chrono::Duration::minutes(1), "the window ends on the server's clock");
        let (run, mut ledger) = f.start();
        let w = window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, false, f.sim.now());
        assert_eq!(w.since, Some(end - chrono::Duration::seconds(300)), "since the last window, less the overlap");
        assert!(window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, true, f.sim.now()).whole(), "a full refresh reads it whole");
        f.sim.mutate(&MutationPlan { seed: 2, new_ratings: 3, replies: 3, ..Default::default() });
        let synced = sync(&run, &mut ledger, &HAPPINESS_RATINGS_REPORT, false).await.unwrap();
        assert!(synced.rows >= 1 && synced.rows < 10, "only the window: {synced:?}");
        assert_eq!(f.rows(&HAPPINESS_RATINGS_REPORT), f.truth_count("happiness_ratings_report"), "merged with what is held");

        f.sim.advance_clock(chrono::Duration::minutes(61));
        let (run, ledger) = f.start();
        assert!(window(&run, &ledger, &HAPPINESS_RATINGS_REPORT, false, f.sim.now()).whole(), "whole again past removal_check");
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

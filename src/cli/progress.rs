//! How a sync shows its progress: a bar per table on a terminal (rows of the list's total,
//! requests, the remaining rate budget, an ETA), plain lines otherwise (cron, systemd,
//! orchestrators: one every half minute per table), nothing when quiet.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::catalog::Table;
use crate::extract::{ListingProgress, Observer, TableReport};

/// Seconds between two progress lines of one table when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(30);

pub enum Progress {
    Bars { multi: MultiProgress, bars: Mutex<HashMap<&'static str, (ProgressBar, Instant)>> },
    Lines { started: Mutex<HashMap<&'static str, (Instant, Instant)>> },
    Quiet,
}

/// The time left: the larger of what the rows' pace so far and the rate limit allow (one
/// request per remaining page, spaced to the plan's limit). A 200,000-conversation backfill
/// under the Plus plan takes hours, and the pace of the first pages does not show it.
pub fn eta(p: &ListingProgress, elapsed: Duration) -> Option<Duration> {
    let total = p.total?;
    let left = total.saturating_sub(p.rows);
    if left == 0 {
        return Some(Duration::ZERO);
    }
    let by_limit = p.usage.spacing * p.total_pages.saturating_sub(p.pages) as u32;
    let by_pace = (p.rows > 0).then(|| elapsed.mul_f64(left as f64 / p.rows as f64)).unwrap_or_default();
    Some(by_limit.max(by_pace))
}

fn rounded(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

/// "1,200 of 20,000 rows, 52 requests, 340 left this minute, about 3m 20s left"
fn describe(p: &ListingProgress, elapsed: Duration) -> String {
    let rows = match p.total {
        Some(total) => format!("{} of {} rows", p.rows, total),
        None => format!("{} rows", p.rows),
    };
    let budget = p.usage.remaining.map(|r| format!(", {r} left this minute")).unwrap_or_default();
    let eta = eta(p, elapsed).map(|d| format!(", about {} left", rounded(d))).unwrap_or_default();
    format!("{rows}, {} requests{budget}{eta}", p.usage.requests)
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Progress::Bars { multi: MultiProgress::new(), bars: Mutex::new(HashMap::new()) }
        } else {
            Progress::Lines { started: Mutex::new(HashMap::new()) }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Observer for Progress {
    fn table_started(&self, table: &'static Table) {
        match self {
            Progress::Bars { multi, bars } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(ProgressStyle::with_template("{spinner} {prefix:<26} {wide_bar} {msg}").expect("a valid template"));
                bar.set_prefix(table.name);
                bar.enable_steady_tick(Duration::from_millis(120));
                lock(bars).insert(table.name, (bar, Instant::now()));
            }
            Progress::Lines { started } => {
                eprintln!("{}: started", table.name);
                let now = Instant::now();
                lock(started).insert(table.name, (now, now));
            }
            Progress::Quiet => {}
        }
    }

    fn listing(&self, table: &'static Table, p: &ListingProgress) {
        match self {
            Progress::Bars { bars, .. } => {
                if let Some((bar, started)) = lock(bars).get(table.name) {
                    if let Some(total) = p.total {
                        bar.set_length(total.max(p.rows));
                        bar.set_position(p.rows);
                    }
                    bar.set_message(describe(p, started.elapsed()));
                }
            }
            Progress::Lines { started } => {
                if let Some((since, last)) = lock(started).get_mut(table.name)
                    && last.elapsed() >= LINE_EVERY
                {
                    *last = Instant::now();
                    eprintln!("{}: {}", table.name, describe(p, since.elapsed()));
                }
            }
            Progress::Quiet => {}
        }
    }

    fn table_finished(&self, report: &TableReport) {
        let line = match &report.error {
            None => format!(
                "{}: {} rows, {} removed, {} requests, {:.1} s",
                report.table,
                report.rows,
                report.removed,
                report.requests,
                report.duration_ms as f64 / 1000.0
            ),
            Some(e) => format!("{}: FAILED — {e}", report.table),
        };
        match self {
            Progress::Bars { bars, .. } => {
                if let Some((bar, _)) = lock(bars).remove(report.table) {
                    bar.finish_and_clear();
                }
                eprintln!("{line}");
            }
            Progress::Lines { .. } => eprintln!("{line}"),
            Progress::Quiet => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Usage;

    fn at(rows: u64, pages: u64) -> ListingProgress {
        ListingProgress {
            rows,
            total: Some(200_000),
            pages,
            total_pages: 8_000,
            usage: Usage { requests: pages, remaining: Some(300), spacing: Duration::from_millis(150) },
        }
    }

    #[test]
    fn the_eta_follows_the_rate_limit_when_the_first_pages_came_fast() {
        // 100 pages in 2 s, but 7,900 more at one per 150 ms: about 20 minutes, not 2 minutes.
        let p = at(2_500, 100);
        let eta = eta(&p, Duration::from_secs(2)).unwrap();
        assert_eq!(eta, Duration::from_millis(150) * 7_900);
        let shown = describe(&p, Duration::from_secs(2));
        assert!(shown.starts_with("2500 of 200000 rows, 100 requests, 300 left this minute, about 19m"), "{shown}");
        // …and the pace when it is slower than the limit.
        assert_eq!(super::eta(&at(100_000, 4_000), Duration::from_secs(3_600)).unwrap(), Duration::from_secs(3_600));
        assert_eq!(super::eta(&ListingProgress { total: None, ..p }, Duration::from_secs(1)), None);
    }
}

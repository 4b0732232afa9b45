//! What a sync shows while it runs: a bar per table on a terminal (rows, requests, remaining
//! rate budget), plain lines otherwise (cron, systemd, orchestrators), nothing when quiet.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::sync::TableReport;

pub enum Progress {
    Bars { multi: MultiProgress, bars: Mutex<HashMap<String, ProgressBar>> },
    Lines,
    Quiet,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines otherwise.
    pub fn auto() -> Self {
        if std::io::stderr().is_terminal() {
            Progress::Bars { multi: MultiProgress::new(), bars: Mutex::new(HashMap::new()) }
        } else {
            Progress::Lines
        }
    }

    pub fn table_started(&self, table: &str) {
        match self {
            Progress::Bars { multi, bars } => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {prefix:<26} {msg}").expect("a valid template"),
                );
                bar.set_prefix(table.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.lock().unwrap_or_else(|e| e.into_inner()).insert(table.to_string(), bar);
            }
            Progress::Lines => eprintln!("{table}: started"),
            Progress::Quiet => {}
        }
    }

    pub fn rows(&self, table: &str, rows: u64, requests: u64, remaining: Option<i64>) {
        if let Progress::Bars { bars, .. } = self
            && let Some(bar) = bars.lock().unwrap_or_else(|e| e.into_inner()).get(table)
        {
            let budget = remaining.map(|r| format!(", {r} requests left this minute")).unwrap_or_default();
            bar.set_message(format!("{rows} rows, {requests} requests{budget}"));
        }
    }

    pub fn table_finished(&self, report: &TableReport) {
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
                if let Some(bar) = bars.lock().unwrap_or_else(|e| e.into_inner()).remove(&report.table) {
                    bar.finish_and_clear();
                }
                eprintln!("{line}");
            }
            Progress::Lines => eprintln!("{line}"),
            Progress::Quiet => {}
        }
    }
}

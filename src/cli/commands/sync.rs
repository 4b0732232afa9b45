//! `sync`: one run, then its one-screen summary (or the JSON report).

use std::io::Write;

use crate::cli::args::SyncArgs;
use crate::cli::config;
use crate::cli::exit::Exit;
use crate::cli::progress::Progress;
use crate::cli::render;
use crate::extract::{self, SyncReport};
use crate::store::{Cell, Grid};

pub async fn run(args: &SyncArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let settings = config::load(args.output.config.as_deref(), &args.overrides())?;
    let progress = if args.quiet || args.output.json { Progress::Quiet } else { Progress::auto() };
    let report = extract::sync(&settings.outputs, &settings.sync, &progress).await?;
    write_report(out, &report, args.output.json)?;
    Ok(Exit::of_run(&report))
}

/// The summary of a run: a line per table, the run's figures, and every error in full.
pub fn write_report(out: &mut dyn Write, report: &SyncReport, json: bool) -> std::io::Result<()> {
    if json {
        return write!(out, "{}", render::json(report));
    }
    writeln!(out, "Run {} — {}", report.run_id, report.status.as_str())?;
    let grid = Grid {
        columns: ["table", "rows", "removed", "requests", "seconds", "synced as", "status"].map(String::from).to_vec(),
        rows: report
            .tables
            .iter()
            .map(|t| {
                vec![
                    Cell::Text(t.table.into()),
                    Cell::Int(t.rows.into()),
                    Cell::Int(t.removed.into()),
                    Cell::Int(t.requests.into()),
                    Cell::Float((t.duration_ms as f64 / 100.0).round() / 10.0),
                    Cell::Text(t.method.into()),
                    Cell::Text(if t.error.is_some() {
                        "FAILED".into()
                    } else if t.unavailable.is_some() {
                        "unavailable".into()
                    } else {
                        "ok".into()
                    }),
                ]
            })
            .collect(),
    };
    write!(out, "{}", render::text(&grid))?;
    for t in report.tables.iter().filter(|t| t.error.is_some()) {
        writeln!(out, "{}: FAILED — {}", t.table, t.error.as_deref().unwrap_or_default())?;
    }
    for t in report.tables.iter().filter_map(|t| t.unavailable.as_deref()) {
        writeln!(out, "{t}")?;
    }
    let elapsed = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
    writeln!(
        out,
        "{} API requests ({} rate-limited, lowest remaining budget {}), {:.1} s; {} commits, longest {} ms; {} Parquet partitions written ({:.1} MB).",
        report.requests,
        report.rate_limited,
        report.lowest_rate_limit_remaining.map(|r| r.to_string()).unwrap_or_else(|| "unknown".into()),
        elapsed,
        report.commits,
        report.longest_commit_window_ms,
        report.parquet_partitions_written,
        report.parquet_bytes_written as f64 / 1e6
    )?;
    writeln!(out, "DuckDB: {}   Lake ({}): {}", report.duckdb, report.lake, report.parquet)?;
    if let Some(e) = &report.error {
        writeln!(out, "error: {e}")?;
    }
    Ok(())
}

//! `log`: the integration log searched the way the log page does, as a table, CSV or JSON;
//! `log summary`: the page's Summary Dashboard. `retry`: re-attempt failed events.

use std::io::Write;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};

use crate::cli::args::{Format, LogArgs, LogFilters, RetryArgs};
use crate::cli::config::{self, parse_time};
use crate::cli::exit::Exit;
use crate::catalog::log::Status;
use crate::cli::render;
use crate::{deliver, extract};
use crate::store::{Cell, Grid, LogFilter, Warehouse};

fn time_flag(value: &str, flag: &str) -> anyhow::Result<DateTime<Utc>> {
    parse_time(value).ok_or_else(|| anyhow::anyhow!(bad_input(format!("--{flag} {value:?} is not a time: use YYYY-MM-DD or RFC 3339 (2024-06-03T12:00:00Z)."))))
}

fn bad_input(message: String) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::InvalidValue, message)
}

/// The flags as a log filter; `now` anchors `--since`.
pub fn filter(f: &LogFilters, now: DateTime<Utc>) -> anyhow::Result<LogFilter> {
    let mut filter = LogFilter {
        event_types: f.event_types.clone(),
        status: f.status.clone(),
        direction: f.direction.clone(),
        table: f.table.clone(),
        search: f.search.clone(),
        ..Default::default()
    };
    if let Some(since) = &f.since {
        filter.from = Some(if since == "today" {
            now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc()
        } else {
            let d = humantime::parse_duration(since)
                .map_err(|_| bad_input(format!("--since {since:?} is not a duration: use e.g. 48h, 7d, 30m or `today`.")))?;
            now - Duration::from_std(d).context("--since is too long")?
        });
    }
    if let Some(from) = &f.from {
        let from = time_flag(from, "from")?;
        filter.from = Some(filter.from.map_or(from, |since| since.max(from)));
    }
    if let Some(to) = &f.to {
        filter.to = Some(time_flag(to, "to")?);
    }
    Ok(filter)
}

/// The events as the plain table shows them: the error before the details, the link last.
fn readable(events: &Grid) -> Grid {
    let text = |row: usize, c: &str| events.cell(row, c).map(Cell::plain).unwrap_or_default();
    let rows = (0..events.rows.len())
        .map(|i| {
            let what = match text(i, "error_message") {
                err if err.is_empty() => text(i, "details"),
                err => format!("{err} — {}", text(i, "details")),
            };
            ["timestamp", "event_type", "status", "customer_email", "conversation_id"]
                .iter()
                .map(|c| events.cell(i, c).cloned().unwrap_or(Cell::Null))
                .chain([Cell::Text(what), Cell::Text(text(i, "conversation_url"))])
                .collect()
        })
        .collect();
    Grid { columns: ["timestamp", "event", "status", "customer", "conversation", "details / error", "link"].map(String::from).to_vec(), rows }
}

pub fn run(args: &LogArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.output.config.as_deref(), &args.output.overrides())?;
    let reader = Warehouse::new(&outputs.duckdb).read()?;
    let filter = filter(&args.filters, Utc::now())?;
    let json = args.output.json || args.format == Format::Json;
    if args.view.as_deref() == Some("summary") {
        let s = reader.log_summary(&filter)?;
        if json {
            write!(out, "{}", render::json(&s))?;
        } else {
            let pct = |v: Option<f64>| v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "n/a".into());
            writeln!(out, "Total sync events   {}", s.total_events)?;
            writeln!(
                out,
                "Success vs error    {} succeeded, {} failed, {} pending — {} success, {} errors",
                s.successes,
                s.failures,
                s.pending,
                pct(s.success_rate),
                pct(s.error_rate)
            )?;
            writeln!(out, "New tickets created {}", s.new_tickets)?;
            writeln!(out, "Customers synced    {}", s.customers_synced)?;
        }
        return Ok(Exit::Success);
    }
    if args.view.as_deref() == Some("duplicates") {
        let repeats = reader.form_repeat_submitters()?;
        // Tickets per marker need the conversations table (a sync of it).
        let tickets = match reader.form_duplicate_tickets() {
            Ok(grid) => Some(grid),
            Err(crate::store::StoreError::ViewMissing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        if json {
            write!(out, "{}", render::json(&serde_json::json!({ "repeat_submitters": repeats.json_rows(), "duplicate_tickets": tickets.as_ref().map(|t| t.json_rows()) })))?;
        } else {
            writeln!(out, "Customers who submitted several forms within an hour:")?;
            write!(out, "{}", if repeats.rows.is_empty() { "  none\n".to_string() } else { render::text(&repeats) })?;
            writeln!(out, "Submissions with more than one ticket (must be none):")?;
            match &tickets {
                None => writeln!(out, "  unknown until `helpscout-etl sync` has read the conversations table")?,
                Some(t) if t.rows.is_empty() => writeln!(out, "  none")?,
                Some(t) => write!(out, "{}", render::text(t))?,
            }
        }
        let doubled = tickets.is_some_and(|t| !t.rows.is_empty());
        return Ok(if doubled { Exit::Partial } else { Exit::Success });
    }
    let events = reader.log_events(&filter, args.limit)?;
    let shown = match (json, args.format) {
        (true, _) => render::grid_json(&events),
        (false, Format::Csv) => render::csv(&events),
        (false, _) if events.rows.is_empty() => "No events match.\n".into(),
        (false, _) => render::text(&readable(&events)),
    };
    write!(out, "{shown}")?;
    Ok(Exit::Success)
}

pub async fn retry(args: &RetryArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let settings = config::load(args.sync.output.config.as_deref(), &args.sync.overrides())?;
    let mut filter = filter(&args.filters, Utc::now())?;
    filter.event_id = args.event;
    let reader = Warehouse::new(&settings.outputs.duckdb).read()?;
    let pending = reader.pending_retries(&filter)?;
    let outbound = reader.pending_outbound_retries(&filter)?;
    drop(reader);
    if pending.is_empty() && outbound.is_empty() {
        writeln!(out, "No failed events to retry.")?;
        return Ok(Exit::Success);
    }
    let mut exit = Exit::Success;
    if !pending.is_empty() {
        let results = extract::retry(&settings.outputs, &settings.sync, &pending, None).await?;
        for e in &results {
            writeln!(out, "{} {}{}", e.status.as_str(), e.details, e.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())?;
        }
        let failed = results.iter().filter(|e| e.status == Status::Failed).count();
        writeln!(out, "{} retried, {} still failing.", results.len() - failed, failed)?;
        if failed > 0 {
            exit = Exit::Partial;
        }
    }
    if !outbound.is_empty() {
        let push = config::load_push(args.sync.output.config.as_deref(), None)?;
        let correction = deliver::Correction { email: args.email.clone(), name: args.name.clone() };
        let client = crate::api::Client::new(settings.sync.client.clone())?;
        let report = deliver::retry(&settings.outputs, client, &push, &outbound, &correction, None).await?;
        writeln!(out, "Sent again to Help Scout: {}.", outbound.join(", "))?;
        super::push::describe(&report, out)?;
        if exit == Exit::Success {
            exit = super::push::exit_of(&report);
        }
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_from_and_to_make_one_range_and_bad_times_are_bad_input() {
        let now = DateTime::parse_from_rfc3339("2026-06-03T12:00:00Z").unwrap().with_timezone(&Utc);
        let f = |l: LogFilters| filter(&l, now);
        let today = f(LogFilters { since: Some("today".into()), ..Default::default() }).unwrap();
        assert_eq!(today.from.unwrap().to_rfc3339(), "2026-06-03T00:00:00+00:00");
        let day = f(LogFilters { since: Some("24h".into()), to: Some("2026-06-03".into()), ..Default::default() }).unwrap();
        assert_eq!((day.from.unwrap().to_rfc3339(), day.to.unwrap().to_rfc3339()), ("2026-06-02T12:00:00+00:00".into(), "2026-06-03T00:00:00+00:00".into()));
        let err = f(LogFilters { since: Some("yesterday".into()), ..Default::default() }).unwrap_err();
        assert_eq!(Exit::of_error(&err), Exit::BadInput, "{err}");
        assert!(f(LogFilters { from: Some("2026-13-01".into()), ..Default::default() }).is_err());
    }
}

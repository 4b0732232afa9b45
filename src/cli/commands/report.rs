//! `report happiness | productivity | health | api-usage`: the bundled views, printed as aligned text tables,
//! JSON (`--json`) or CSV (`--csv`). `report health` exits 4 when any event type's success rate
//! in the last 24 hours is below 95 % (the `integration_health` view's `below_threshold`), so
//! that a scheduler can alert; 0 otherwise (also when the last 24 hours hold no event).

use std::io::Write;

use crate::cli::args::{By, ReportArgs, ReportKind};
use crate::cli::config;
use crate::cli::exit::Exit;
use crate::cli::render;
use crate::store::grid::{fmt_duration, fmt_json_number};
use crate::store::{Grid, HappinessBy, ProductivityBy, Reader, UsageBy, Warehouse};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Csv,
}

fn bad_grouping(message: String) -> anyhow::Error {
    clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{message}\n")).into()
}

pub fn run(args: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let outputs = config::load_outputs(args.output.config.as_deref(), &args.output.overrides())?;
    let format = match (args.output.json, args.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Text,
    };
    // The grouping is checked before the file is opened: bad input is bad input.
    let reader = || Warehouse::new(&outputs.duckdb).read();
    match args.report {
        ReportKind::Happiness => {
            let by = match args.by.unwrap_or(By::Month) {
                By::Day => HappinessBy::Day,
                By::Week => HappinessBy::Week,
                By::Month => HappinessBy::Month,
                By::Mailbox => HappinessBy::Mailbox,
                By::User => HappinessBy::User,
                By::Team => HappinessBy::Team,
                By::Comments => HappinessBy::Comments,
                By::Hour => return Err(bad_grouping("`report happiness --by` takes day, week, month, mailbox, user, team or comments".into())),
            };
            happiness(&reader()?, args.by.unwrap_or(By::Month), by, args.limit, format, out)
        }
        ReportKind::Productivity => {
            let by = match args.by.unwrap_or(By::Month) {
                By::Day => ProductivityBy::Day,
                By::Week => ProductivityBy::Week,
                By::Month => ProductivityBy::Month,
                By::Mailbox => ProductivityBy::Mailbox,
                By::User => ProductivityBy::User,
                By::Team => ProductivityBy::Team,
                other => {
                    return Err(bad_grouping(format!(
                        "`report productivity --by` takes day, week, month, mailbox, user or team (got {})",
                        other.name()
                    )));
                }
            };
            productivity(&reader()?, by, args.limit, format, out)
        }
        ReportKind::Health => {
            if let Some(by) = args.by {
                return Err(bad_grouping(format!("`report health` takes no --by (got {})", by.name())));
            }
            health(&reader()?, format, out)
        }
        ReportKind::ApiUsage => {
            let (by, name) = match args.by.unwrap_or(By::Day) {
                By::Hour => (UsageBy::Hour, "hour"),
                By::Day => (UsageBy::Day, "day"),
                other => return Err(bad_grouping(format!("`report api-usage --by` takes hour or day (got {})", other.name()))),
            };
            api_usage(&reader()?, by, name, args.limit, format, out)
        }
    }
}

fn first_row(grid: &Grid) -> serde_json::Map<String, serde_json::Value> {
    grid.json_rows().into_iter().next().unwrap_or_default()
}

fn happiness(reader: &Reader, by: By, grouping: HappinessBy, limit: Option<usize>, format: Format, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let (grid, overall) = reader.happiness(grouping, limit)?;
    let file = reader.path().display().to_string();
    match format {
        Format::Json => write!(
            out,
            "{}",
            render::json(&serde_json::json!({
                "report": "happiness",
                "by": by.name(),
                "duckdb": file,
                "overall": overall.json_rows().into_iter().next(),
                "rows": grid.json_rows(),
            }))
        )?,
        Format::Csv => write!(out, "{}", render::csv(&grid))?,
        Format::Text => {
            let title = match grouping {
                HappinessBy::Comments => "Happiness ratings with comments, newest first (UTC)".to_string(),
                HappinessBy::Team => "Happiness by team (a user in several teams counts in each)".to_string(),
                HappinessBy::Mailbox | HappinessBy::User => format!("Happiness by {}; happiness score = % great − % not good", by.name()),
                _ => format!("Happiness by {} (UTC); happiness score = % great − % not good", by.name()),
            };
            writeln!(out, "{title}")?;
            write!(out, "{}", render::text(&grid))?;
            let o = first_row(&overall);
            let n = |k: &str| o.get(k).map(|v| v.to_string()).unwrap_or_else(|| "null".into());
            if o.get("ratings").and_then(|v| v.as_i64()).unwrap_or(0) == 0 {
                writeln!(out, "Overall: no ratings.")?;
            } else {
                writeln!(
                    out,
                    "Overall: {} ratings: {} great, {} okay, {} not good; happiness score {}",
                    n("ratings"),
                    n("great"),
                    n("okay"),
                    n("not_good"),
                    o.get("happiness_score").map(fmt_json_number).unwrap_or_default()
                )?;
            }
        }
    }
    Ok(Exit::Success)
}

fn productivity(reader: &Reader, by: ProductivityBy, limit: Option<usize>, format: Format, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let (grid, overall) = (reader.productivity(by, limit)?, reader.productivity_overall()?);
    let busiest = reader.busiest_day()?;
    match format {
        Format::Json => write!(
            out,
            "{}",
            render::json(&serde_json::json!({
                "report": "productivity",
                "by": by.name(),
                "duckdb": reader.path().display().to_string(),
                "overall": overall.json_rows().into_iter().next(),
                "busiest_day": busiest.json_rows().into_iter().next(),
                "rows": grid.json_rows(),
            }))
        )?,
        Format::Csv => write!(out, "{}", render::csv(&grid))?,
        Format::Text => {
            let scope = match by {
                ProductivityBy::Mailbox | ProductivityBy::User | ProductivityBy::Team => format!("by {}, everything synced", by.name()),
                _ => format!("by {} (UTC), all mailboxes", by.name()),
            };
            writeln!(out, "Productivity {scope}; durations are wall-clock (no office hours): means, medians and 90th percentiles.")?;
            write!(out, "{}", render::text(&grid.with_durations()))?;
            let o = first_row(&overall);
            let n = |k: &str| o.get(k).map(fmt_json_number).unwrap_or_else(|| "n/a".into());
            let d = |k: &str| o.get(k).and_then(|v| v.as_f64()).map(fmt_duration).unwrap_or_else(|| "n/a".into());
            writeln!(
                out,
                "Overall: {} conversations, {} replies sent, median first response {}, median resolution {}, {} % resolved on first reply.",
                n("new_conversations"),
                n("replies_sent"),
                d("median_first_response_seconds"),
                d("median_resolution_seconds"),
                n("resolved_on_first_reply_pct"),
            )?;
            match busiest.json_rows().into_iter().next() {
                Some(b) => writeln!(
                    out,
                    "Busiest day: {} ({} % of new conversations; busiest hour {:02}:00 UTC).",
                    b.get("day_name").and_then(|v| v.as_str()).unwrap_or(""),
                    b.get("share_pct").map(fmt_json_number).unwrap_or_default(),
                    b.get("busiest_hour").and_then(|v| v.as_i64()).unwrap_or(0),
                )?,
                None => writeln!(out, "Busiest day: no conversation yet.")?,
            }
        }
    }
    Ok(Exit::Success)
}

fn health(reader: &Reader, format: Format, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let grid = reader.health()?;
    let rows = grid.json_rows();
    let below: Vec<&serde_json::Map<String, serde_json::Value>> = rows.iter().filter(|r| r["window_hours"] == 24 && r["below_threshold"] == true).collect();
    let events_24h = rows
        .iter()
        .find(|r| r["window_hours"] == 24 && r["event_type"] == "All outcomes")
        .and_then(|r| r["events"].as_i64())
        .unwrap_or(0);
    let exit = if below.is_empty() { Exit::Success } else { Exit::Unhealthy };
    match format {
        Format::Json => write!(
            out,
            "{}",
            render::json(&serde_json::json!({
                "report": "health",
                "duckdb": reader.path().display().to_string(),
                "threshold_pct": 95.0,
                "alert": exit == Exit::Unhealthy,
                "exit_code": exit as u8,
                "below_threshold_24h": below.iter().map(|r| r["event_type"].clone()).collect::<Vec<_>>(),
                "rows": rows,
            }))
        )?,
        Format::Csv => write!(out, "{}", render::csv(&grid))?,
        Format::Text => {
            writeln!(out, "Integration health: success rate per event type over the last 24 and 48 hours (threshold 95 %).")?;
            writeln!(out, "'Error' and 'Rate Limited' count request attempts: listed, never rated.")?;
            write!(out, "{}", render::text(&reader.health_table()?))?;
            if exit == Exit::Unhealthy {
                let list: Vec<String> = below
                    .iter()
                    .map(|r| {
                        format!(
                            "{} {} % ({} of {} succeeded)",
                            r["event_type"].as_str().unwrap_or(""),
                            fmt_json_number(&r["success_rate_pct"]),
                            r["successes"],
                            r["successes"].as_i64().unwrap_or(0) + r["failures"].as_i64().unwrap_or(0)
                        )
                    })
                    .collect();
                writeln!(out, "ALERT: below 95 % in the last 24 hours: {} (exit code {}).", list.join("; "), Exit::Unhealthy as u8)?;
            } else if events_24h == 0 {
                writeln!(out, "No sync event in the last 24 hours.")?;
            } else {
                writeln!(out, "OK: every event type at or above 95 % in the last 24 hours.")?;
            }
        }
    }
    Ok(exit)
}

fn api_usage(reader: &Reader, by: UsageBy, name: &str, limit: Option<usize>, format: Format, out: &mut dyn Write) -> anyhow::Result<Exit> {
    let (grid, totals) = reader.api_usage(by, limit)?;
    match format {
        Format::Json => write!(
            out,
            "{}",
            render::json(&serde_json::json!({
                "report": "api-usage",
                "by": name,
                "duckdb": reader.path().display().to_string(),
                "totals": totals.json_rows().into_iter().next(),
                "rows": grid.json_rows(),
            }))
        )?,
        Format::Csv => write!(out, "{}", render::csv(&grid))?,
        Format::Text => {
            writeln!(out, "API usage by {name} (UTC): requests, throttled (429), failed, lowest X-RateLimit-Remaining-Minute seen.")?;
            write!(out, "{}", render::text(&grid))?;
            let t = first_row(&totals);
            let n = |k: &str| match t.get(k) {
                Some(serde_json::Value::Null) | None => "unknown".to_string(),
                Some(v) => fmt_json_number(v),
            };
            writeln!(
                out,
                "All recorded: {} requests, {} throttled (429), {} failed; lowest remaining budget seen: {}.",
                n("requests"),
                n("rate_limited"),
                n("failed"),
                n("lowest_remaining")
            )?;
        }
    }
    Ok(Exit::Success)
}

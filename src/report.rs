//! `report happiness | health | api-usage`: the bundled views, printed as aligned text tables,
//! JSON (`--json`) or CSV (`--csv`). The DuckDB file is opened read-only.
//!
//! `report health` exits with code 4 (`EXIT_UNHEALTHY`) when any event type's success rate in
//! the last 24 hours is below 95 % (the `integration_health` view's `below_threshold`), so that a
//! scheduler can alert; 0 otherwise (also when the last 24 hours hold no event).

use std::process::ExitCode;

use anyhow::Context;
use duckdb::Connection;
use duckdb::types::{TimeUnit, Value};

/// `report health`: some event type is below 95 % over the last 24 hours.
pub const EXIT_UNHEALTHY: u8 = 4;

#[derive(Debug, clap::Args, Clone)]
pub struct ReportArgs {
    /// happiness (ratings and score), health (success rate per event type; exits 4 below 95 %
    /// in the last 24 h), api-usage (requests, 429s, lowest remaining budget).
    #[arg(value_enum)]
    pub report: ReportKind,
    /// Grouping. happiness: day, week, month (default), mailbox, user, team, or comments (the
    /// ratings that came with one, newest first). api-usage: hour or day (default).
    #[arg(long, value_enum)]
    pub by: Option<By>,
    /// Only the latest N rows (periods, hours, days, comments); mailbox, user and team lists are
    /// cut after N rows.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print CSV instead of text.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    #[command(flatten)]
    pub output: crate::cli::OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    Happiness,
    Health,
    ApiUsage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Hour,
    Day,
    Week,
    Month,
    Mailbox,
    User,
    Team,
    Comments,
}

impl By {
    fn name(self) -> &'static str {
        match self {
            By::Hour => "hour",
            By::Day => "day",
            By::Week => "week",
            By::Month => "month",
            By::Mailbox => "mailbox",
            By::User => "user",
            By::Team => "team",
            By::Comments => "comments",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
    Csv,
}

pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::settings_for_outputs(&args.output)?;
    let path = settings.outputs.duckdb.clone();
    let conn = crate::sinks::duckdb::Warehouse::new(&path).connect_read_only()?;
    let format = if args.output.json {
        Format::Json
    } else if args.csv {
        Format::Csv
    } else {
        Format::Text
    };
    let file = path.display().to_string();
    match args.report {
        ReportKind::Happiness => happiness(&conn, &file, args.by, args.limit, format),
        ReportKind::Health => health(&conn, &file, args.by, format),
        ReportKind::ApiUsage => api_usage(&conn, &file, args.by, args.limit, format),
    }
}

fn happiness(conn: &Connection, file: &str, by: Option<By>, limit: Option<usize>, format: Format) -> anyhow::Result<ExitCode> {
    let by = by.unwrap_or(By::Month);
    let (view, sql, latest_first) = match by {
        By::Day | By::Week | By::Month => (
            "happiness_by_period",
            format!(
                "SELECT period_start AS {b}, ratings, great, okay, not_good, great_pct, okay_pct, not_good_pct, happiness_score \
                 FROM happiness_by_period WHERE period = '{b}' ORDER BY period_start DESC{}",
                limit_sql(limit),
                b = by.name()
            ),
            true,
        ),
        By::Mailbox => ("happiness_by_mailbox", format!("SELECT * FROM happiness_by_mailbox{}", limit_sql(limit)), false),
        By::User => ("happiness_by_user", format!("SELECT * FROM happiness_by_user{}", limit_sql(limit)), false),
        By::Team => ("happiness_by_team", format!("SELECT * FROM happiness_by_team{}", limit_sql(limit)), false),
        By::Comments => (
            "happiness_comments",
            format!(
                "SELECT rated_at_utc, rating, comments, customer_name, customer_email, user_name, conversation_number, \
                 conversation_subject, mailbox_name, conversation_url FROM happiness_comments{}",
                limit_sql(limit)
            ),
            false,
        ),
        By::Hour => anyhow::bail!(clap_error("`report happiness --by` takes day, week, month, mailbox, user, team or comments")),
    };
    let mut grid = fetch(conn, file, view, &sql)?;
    if latest_first {
        grid.rows.reverse();
    }
    let overall = fetch(conn, file, "happiness_summary", "SELECT * FROM happiness_summary")?;
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "report": "happiness",
                "by": by.name(),
                "duckdb": file,
                "overall": overall.json_rows().into_iter().next(),
                "rows": grid.json_rows(),
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Format::Csv => print!("{}", grid.csv()),
        Format::Text => {
            let title = match by {
                By::Comments => "Happiness ratings with comments, newest first (UTC)".to_string(),
                By::Team => "Happiness by team (a user in several teams counts in each)".to_string(),
                By::Mailbox | By::User => format!("Happiness by {}; happiness score = % great − % not good", by.name()),
                _ => format!("Happiness by {} (UTC); happiness score = % great − % not good", by.name()),
            };
            println!("{title}");
            print!("{}", grid.text());
            let o = overall.json_rows().into_iter().next().unwrap_or_default();
            let n = |k: &str| o.get(k).map(|v| v.to_string()).unwrap_or_else(|| "null".into());
            if o.get("ratings").and_then(|v| v.as_i64()).unwrap_or(0) == 0 {
                println!("Overall: no ratings.");
            } else {
                println!(
                    "Overall: {} ratings: {} great, {} okay, {} not good; happiness score {}",
                    n("ratings"),
                    n("great"),
                    n("okay"),
                    n("not_good"),
                    o.get("happiness_score").map(fmt_json_number).unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn health(conn: &Connection, file: &str, by: Option<By>, format: Format) -> anyhow::Result<ExitCode> {
    if let Some(by) = by {
        anyhow::bail!(clap_error(&format!("`report health` takes no --by (got {})", by.name())));
    }
    let grid = fetch(conn, file, "integration_health", "SELECT * FROM integration_health")?;
    let rows = grid.json_rows();
    let below: Vec<&serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .filter(|r| r["window_hours"] == 24 && r["below_threshold"] == true)
        .collect();
    let events_24h = rows
        .iter()
        .find(|r| r["window_hours"] == 24 && r["event_type"] == "All outcomes")
        .and_then(|r| r["events"].as_i64())
        .unwrap_or(0);
    let alert = !below.is_empty();
    let code = if alert { EXIT_UNHEALTHY } else { 0 };
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "report": "health",
                "duckdb": file,
                "threshold_pct": 95.0,
                "alert": alert,
                "exit_code": code,
                "below_threshold_24h": below.iter().map(|r| r["event_type"].clone()).collect::<Vec<_>>(),
                "rows": rows,
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Format::Csv => print!("{}", grid.csv()),
        Format::Text => {
            let shaped = fetch(
                conn,
                file,
                "integration_health",
                "SELECT window_hours || ' h' AS \"window\", event_type, events, successes, failures, pending, \
                 success_rate_pct AS \"success %\", CASE WHEN below_threshold THEN 'BELOW 95 %' ELSE '' END AS flag, \
                 last_failure_utc, last_error FROM integration_health",
            )?;
            println!("Integration health: success rate per event type over the last 24 and 48 hours (threshold 95 %).");
            println!("'Error' and 'Rate Limited' count request attempts: listed, never rated.");
            print!("{}", shaped.text());
            if alert {
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
                println!("ALERT: below 95 % in the last 24 hours: {} (exit code {EXIT_UNHEALTHY}).", list.join("; "));
            } else if events_24h == 0 {
                println!("No sync event in the last 24 hours.");
            } else {
                println!("OK: every event type at or above 95 % in the last 24 hours.");
            }
        }
    }
    Ok(ExitCode::from(code))
}

fn api_usage(conn: &Connection, file: &str, by: Option<By>, limit: Option<usize>, format: Format) -> anyhow::Result<ExitCode> {
    let by = by.unwrap_or(By::Day);
    let (view, key) = match by {
        By::Hour => ("api_usage_hourly", "hour"),
        By::Day => ("api_usage_daily", "day"),
        other => anyhow::bail!(clap_error(&format!("`report api-usage --by` takes hour or day (got {})", other.name()))),
    };
    let sql = format!("SELECT * FROM {view} ORDER BY {key} DESC{}", limit_sql(limit));
    let mut grid = fetch(conn, file, view, &sql)?;
    grid.rows.reverse();
    let totals = fetch(
        conn,
        file,
        "api_usage_daily",
        "SELECT sum(requests) AS requests, sum(rate_limited) AS rate_limited, sum(failed) AS failed, \
         min(lowest_remaining) AS lowest_remaining FROM api_usage_daily",
    )?;
    match format {
        Format::Json => {
            let value = serde_json::json!({
                "report": "api-usage",
                "by": by.name(),
                "duckdb": file,
                "totals": totals.json_rows().into_iter().next(),
                "rows": grid.json_rows(),
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        }
        Format::Csv => print!("{}", grid.csv()),
        Format::Text => {
            println!("API usage by {} (UTC): requests, throttled (429), failed, lowest X-RateLimit-Remaining-Minute seen.", by.name());
            print!("{}", grid.text());
            let t = totals.json_rows().into_iter().next().unwrap_or_default();
            let n = |k: &str| match t.get(k) {
                Some(serde_json::Value::Null) | None => "unknown".to_string(),
                Some(v) => fmt_json_number(v),
            };
            println!(
                "All recorded: {} requests, {} throttled (429), {} failed; lowest remaining budget seen: {}.",
                n("requests"),
                n("rate_limited"),
                n("failed"),
                n("lowest_remaining")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn clap_error(message: &str) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{message}\n"))
}

fn limit_sql(limit: Option<usize>) -> String {
    limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
}

/// A query's result, cell by cell.
#[derive(Debug, Default)]
struct Grid {
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// A number kept in its decimal spelling.
    Decimal(String),
    Text(String),
}

impl Cell {
    fn from_value(v: Value) -> Cell {
        match v {
            Value::Null => Cell::Null,
            Value::Boolean(b) => Cell::Bool(b),
            Value::TinyInt(i) => Cell::Int(i.into()),
            Value::SmallInt(i) => Cell::Int(i.into()),
            Value::Int(i) => Cell::Int(i.into()),
            Value::BigInt(i) => Cell::Int(i.into()),
            Value::HugeInt(i) => Cell::Int(i),
            Value::UTinyInt(i) => Cell::Int(i.into()),
            Value::USmallInt(i) => Cell::Int(i.into()),
            Value::UInt(i) => Cell::Int(i.into()),
            Value::UBigInt(i) => Cell::Int(i.into()),
            Value::Float(f) => Cell::Float(f.into()),
            Value::Double(f) => Cell::Float(f),
            Value::Decimal(d) => Cell::Decimal(d.to_string()),
            Value::Text(s) => Cell::Text(s),
            Value::Enum(s) => Cell::Text(s),
            Value::Date32(days) => Cell::Text(
                chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163)
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| days.to_string()),
            ),
            Value::Timestamp(unit, v) => {
                let micros = match unit {
                    TimeUnit::Second => v.saturating_mul(1_000_000),
                    TimeUnit::Millisecond => v.saturating_mul(1_000),
                    TimeUnit::Microsecond => v,
                    TimeUnit::Nanosecond => v / 1_000,
                };
                Cell::Text(
                    chrono::DateTime::from_timestamp_micros(micros)
                        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| micros.to_string()),
                )
            }
            other => Cell::Text(format!("{other:?}")),
        }
    }

    fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Float(_) | Cell::Decimal(_))
    }

    fn plain(&self) -> String {
        match self {
            Cell::Null => String::new(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(i) => i.to_string(),
            Cell::Float(f) => fmt_float(*f),
            Cell::Decimal(d) => d.clone(),
            Cell::Text(s) => s.clone(),
        }
    }

    fn json(&self) -> serde_json::Value {
        match self {
            Cell::Null => serde_json::Value::Null,
            Cell::Bool(b) => (*b).into(),
            Cell::Int(i) => i64::try_from(*i).map(Into::into).unwrap_or_else(|_| i.to_string().into()),
            Cell::Float(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number).unwrap_or(serde_json::Value::Null),
            Cell::Decimal(d) => d
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| d.clone().into()),
            Cell::Text(s) => s.clone().into(),
        }
    }
}

/// 40 → "40.0", 57.14 → "57.14": a float always shows it is one.
fn fmt_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 { format!("{f:.1}") } else { f.to_string() }
}

fn fmt_json_number(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => fmt_float(n.as_f64().unwrap_or_default()),
        serde_json::Value::Null => "n/a".into(),
        other => other.to_string().trim_matches('"').to_string(),
    }
}

impl Grid {
    fn json_rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows
            .iter()
            .map(|row| self.columns.iter().cloned().zip(row.iter().map(Cell::json)).collect())
            .collect()
    }

    fn csv(&self) -> String {
        fn field(s: &str) -> String {
            if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
        }
        let mut out = self.columns.iter().map(|c| field(c)).collect::<Vec<_>>().join(",") + "\n";
        for row in &self.rows {
            out += &(row.iter().map(|c| field(&c.plain())).collect::<Vec<_>>().join(",") + "\n");
        }
        out
    }

    /// Aligned columns: numbers to the right, text to the left; long text cut at 60 characters.
    fn text(&self) -> String {
        const WIDEST: usize = 60;
        if self.rows.is_empty() {
            return "(no rows)\n".into();
        }
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|c| {
                        let s: String = c.plain().split_whitespace().collect::<Vec<_>>().join(" ");
                        if s.chars().count() > WIDEST { s.chars().take(WIDEST - 1).collect::<String>() + "…" } else { s }
                    })
                    .collect()
            })
            .collect();
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|i| self.rows.iter().any(|r| r[i].is_number()) && self.rows.iter().all(|r| r[i].is_number() || r[i] == Cell::Null))
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| cells.iter().map(|r| r[i].chars().count()).chain([self.columns[i].chars().count()]).max().unwrap_or(0))
            .collect();
        let line = |values: Vec<&str>| -> String {
            let parts: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let pad = widths[i].saturating_sub(v.chars().count());
                    if numeric[i] { format!("{}{v}", " ".repeat(pad)) } else { format!("{v}{}", " ".repeat(pad)) }
                })
                .collect();
            parts.join("  ").trim_end().to_string() + "\n"
        };
        let mut out = line(self.columns.iter().map(String::as_str).collect());
        out += &line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect());
        for row in &cells {
            out += &line(row.iter().map(String::as_str).collect());
        }
        out
    }
}

/// Runs a query over a bundled view, saying how to get the view when it is missing.
fn fetch(conn: &Connection, file: &str, view: &str, sql: &str) -> anyhow::Result<Grid> {
    let present: i64 = conn
        .query_row(
            "SELECT count(*) FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'main' AND view_name = ?",
            [view],
            |r| r.get(0),
        )
        .context("reading the list of views")?;
    if present == 0 {
        let reason: Option<String> = conn
            .query_row(
                &format!(
                    "SELECT note FROM {} WHERE list_contains(string_split(objects, ', '), ?) AND NOT installed LIMIT 1",
                    crate::views::VIEWS_TABLE
                ),
                [view],
                |r| r.get(0),
            )
            .ok()
            .flatten();
        match reason {
            Some(reason) => anyhow::bail!(
                "The view {view} is not installed in {file}: {reason}. Sync the tables it reads (see `SELECT * FROM {}`), then run `helpscout-etl views`.",
                crate::views::VIEWS_TABLE
            ),
            None => anyhow::bail!(
                "The view {view} is not installed in {file}; run `helpscout-etl views` (or a sync) to install the bundled views."
            ),
        }
    }
    let mut stmt = conn.prepare(sql).with_context(|| format!("querying {view}"))?;
    let mut rows = stmt.query([]).with_context(|| format!("querying {view}"))?;
    let columns: Vec<String> = rows.as_ref().map(|s| s.column_names()).unwrap_or_default();
    let mut grid = Grid { columns, rows: Vec::new() };
    while let Some(row) = rows.next().with_context(|| format!("reading {view}"))? {
        let mut cells = Vec::with_capacity(grid.columns.len());
        for i in 0..grid.columns.len() {
            cells.push(Cell::from_value(row.get::<_, Value>(i).with_context(|| format!("reading {view}"))?));
        }
        grid.rows.push(cells);
    }
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tables_align_numbers_right_and_floats_show_a_decimal() {
        let grid = Grid {
            columns: vec!["name".into(), "score".into(), "n".into()],
            rows: vec![
                vec![Cell::Text("Support".into()), Cell::Float(40.0), Cell::Int(5)],
                vec![Cell::Text("Billing ·1".into()), Cell::Float(-12.5), Cell::Null],
            ],
        };
        assert_eq!(
            grid.text(),
            "name        score  n\n----------  -----  -\nSupport      40.0  5\nBilling ·1  -12.5\n"
        );
        assert_eq!(grid.csv(), "name,score,n\nSupport,40.0,5\nBilling ·1,-12.5,\n");
        assert_eq!(grid.json_rows()[0]["score"], serde_json::json!(40.0));
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let grid = Grid { columns: vec!["c".into()], rows: vec![vec![Cell::Text("a, \"b\"\nc".into())]] };
        assert_eq!(grid.csv(), "c\n\"a, \"\"b\"\"\nc\"\n");
    }
}

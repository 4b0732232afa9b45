//! `log`: search the integration log the way the log page does (date range, event type,
//! status, direction, a search box for a customer email, a conversation id or number), as a
//! table, CSV or JSON; `log summary`: the page's Summary Dashboard. `retry`: re-attempt failed
//! events and log the outcome.

use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use clap::ValueEnum;
use duckdb::types::Value as DbValue;
use serde_json::{Map, Value};

use crate::cli::{OutputArgs, settings_for_outputs};
use crate::integration_log::LOG_TABLE;
use crate::sinks::duckdb::Warehouse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

#[derive(Debug, clap::Args, Clone, Default)]
pub struct LogFilters {
    /// Events in the last DURATION (`48h`, `7d`, `30m`) or `today` (since 00:00 UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Events at or after this time (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub from: Option<String>,
    /// Events before this time (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Event type(s), e.g. "Ticket Created" (repeat or comma-separate).
    #[arg(long = "type", value_delimiter = ',')]
    pub event_types: Vec<String>,
    /// Success, Failed or Pending.
    #[arg(long)]
    pub status: Option<String>,
    /// "From HelpScout" or "To HelpScout".
    #[arg(long)]
    pub direction: Option<String>,
    /// Table the event concerns.
    #[arg(long)]
    pub table: Option<String>,
    /// A customer email (or part of one), a conversation id or a conversation number.
    #[arg(long, short)]
    pub search: Option<String>,
}

#[derive(Debug, clap::Args, Clone)]
pub struct LogArgs {
    /// `summary` for the dashboard figures (totals, success rate, new tickets, customers synced).
    #[arg(value_parser = ["summary"])]
    pub view: Option<String>,
    #[command(flatten)]
    pub filters: LogFilters,
    /// Most recent events shown (0: all).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, clap::Args, Clone)]
pub struct RetryArgs {
    #[command(flatten)]
    pub filters: LogFilters,
    /// Only this event (its `event_id`).
    #[arg(long)]
    pub event: Option<i64>,
    #[command(flatten)]
    pub sync: crate::cli::SyncArgs,
}

/// A `WHERE` clause and its parameters.
#[derive(Debug, Default)]
pub struct Filter {
    pub clauses: Vec<String>,
    pub params: Vec<DbValue>,
}

impl Filter {
    fn push(&mut self, clause: &str, params: impl IntoIterator<Item = DbValue>) {
        self.clauses.push(clause.to_string());
        self.params.extend(params);
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() { "true".into() } else { self.clauses.join(" AND ") }
    }
}

fn parse_time(value: &str, flag: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    anyhow::bail!("--{flag} {value:?} is not a time: use YYYY-MM-DD or RFC 3339 (2024-06-03T12:00:00Z).")
}

/// The filters as SQL over the log table; `now` anchors `--since`.
pub fn build_filter(f: &LogFilters, now: DateTime<Utc>) -> anyhow::Result<Filter> {
    let mut filter = Filter::default();
    let micros = |t: DateTime<Utc>| DbValue::BigInt(t.timestamp_micros());
    if let Some(since) = &f.since {
        let start = if since == "today" {
            now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc()
        } else {
            let d = humantime::parse_duration(since).map_err(|_| {
                anyhow::anyhow!("--since {since:?} is not a duration: use e.g. 48h, 7d, 30m or `today`.")
            })?;
            now - Duration::from_std(d).context("--since is too long")?
        };
        filter.push("epoch_us(\"timestamp\") >= ?", [micros(start)]);
    }
    if let Some(from) = &f.from {
        filter.push("epoch_us(\"timestamp\") >= ?", [micros(parse_time(from, "from")?)]);
    }
    if let Some(to) = &f.to {
        filter.push("epoch_us(\"timestamp\") < ?", [micros(parse_time(to, "to")?)]);
    }
    if !f.event_types.is_empty() {
        let marks = vec!["lower(?)"; f.event_types.len()].join(", ");
        filter.push(
            &format!("lower(event_type) IN ({marks})"),
            f.event_types.iter().map(|t| DbValue::Text(t.trim().to_string())),
        );
    }
    if let Some(status) = &f.status {
        filter.push("lower(status) = lower(?)", [DbValue::Text(status.clone())]);
    }
    if let Some(direction) = &f.direction {
        filter.push("lower(direction) = lower(?)", [DbValue::Text(direction.clone())]);
    }
    if let Some(table) = &f.table {
        filter.push("table_name = ?", [DbValue::Text(table.clone())]);
    }
    if let Some(search) = &f.search {
        let search = search.trim();
        match search.trim_start_matches('#').parse::<i64>() {
            Ok(n) => filter.push("(conversation_id = ? OR conversation_number = ?)", [DbValue::BigInt(n), DbValue::BigInt(n)]),
            Err(_) => filter.push(
                "(customer_email ILIKE ? OR conversation_url = ?)",
                [DbValue::Text(format!("%{search}%")), DbValue::Text(search.to_string())],
            ),
        }
    }
    Ok(filter)
}

const COLUMNS: &str = "event_id, strftime(make_timestamp(epoch_us(\"timestamp\")), '%Y-%m-%dT%H:%M:%SZ') AS \"timestamp\", event_type, customer_email, conversation_id, conversation_number, conversation_url, status, direction, details, error_message, run_id, table_name, http_status, request, attempt, duration_ms, retry_target";

/// The output names of `COLUMNS`, in order.
const NAMES: [&str; 18] = [
    "event_id", "timestamp", "event_type", "customer_email", "conversation_id", "conversation_number",
    "conversation_url", "status", "direction", "details", "error_message", "run_id", "table_name",
    "http_status", "request", "attempt", "duration_ms", "retry_target",
];

/// The matching events, newest first.
pub fn query_events(conn: &duckdb::Connection, filter: &Filter, limit: usize) -> anyhow::Result<Vec<Map<String, Value>>> {
    let limit = if limit == 0 { String::new() } else { format!(" LIMIT {limit}") };
    let sql = format!("SELECT {COLUMNS} FROM {LOG_TABLE} WHERE {} ORDER BY \"timestamp\" DESC, event_id DESC{limit}", filter.sql());
    let mut stmt = conn.prepare(&sql)?;
    let names = NAMES;
    let rows = stmt.query_map(duckdb::params_from_iter(filter.params.iter()), |row| {
        let mut map = Map::new();
        for (i, name) in names.iter().enumerate() {
            let value = match row.get::<_, DbValue>(i)? {
                DbValue::Null => Value::Null,
                DbValue::BigInt(n) => Value::from(n),
                DbValue::Int(n) => Value::from(n),
                DbValue::Text(s) => Value::from(s),
                other => Value::from(format!("{other:?}")),
            };
            map.insert(name.to_string(), value);
        }
        Ok(map)
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[derive(Debug, serde::Serialize, PartialEq)]
pub struct Summary {
    pub total_events: i64,
    pub successes: i64,
    pub failures: i64,
    pub pending: i64,
    /// Successes among events that finished (Success or Failed), in percent.
    pub success_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub new_tickets: i64,
    pub customers_synced: i64,
}

pub fn summary(conn: &duckdb::Connection, filter: &Filter) -> anyhow::Result<Summary> {
    let sql = format!(
        "SELECT count(*), count(*) FILTER (status = 'Success'), count(*) FILTER (status = 'Failed'), count(*) FILTER (status = 'Pending'),
                count(*) FILTER (event_type = 'Ticket Created' AND status = 'Success'),
                count(*) FILTER (event_type = 'Customer Synced' AND status = 'Success')
         FROM {LOG_TABLE} WHERE {}",
        filter.sql()
    );
    let (total, ok, failed, pending, tickets, customers) = conn.query_row(&sql, duckdb::params_from_iter(filter.params.iter()), |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    })?;
    let finished = ok + failed;
    let rate = |n: i64| (finished > 0).then(|| (n as f64 * 1000.0 / finished as f64).round() / 10.0);
    Ok(Summary {
        total_events: total,
        successes: ok,
        failures: failed,
        pending,
        success_rate: rate(ok),
        error_rate: rate(failed),
        new_tickets: tickets,
        customers_synced: customers,
    })
}

pub fn run(args: LogArgs) -> anyhow::Result<ExitCode> {
    let settings = settings_for_outputs(&args.output)?;
    let conn = Warehouse::new(&settings.outputs.duckdb).connect_read_only()?;
    let filter = build_filter(&args.filters, Utc::now())?;
    let json = args.output.json || args.format == Format::Json;
    if args.view.as_deref() == Some("summary") {
        let s = summary(&conn, &filter)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            let pct = |v: Option<f64>| v.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "n/a".into());
            println!("Total sync events   {}", s.total_events);
            println!("Success vs error    {} succeeded, {} failed, {} pending — {} success, {} errors", s.successes, s.failures, s.pending, pct(s.success_rate), pct(s.error_rate));
            println!("New tickets created {}", s.new_tickets);
            println!("Customers synced    {}", s.customers_synced);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let events = query_events(&conn, &filter, args.limit)?;
    match (json, args.format) {
        (true, _) => println!("{}", serde_json::to_string_pretty(&events)?),
        (false, Format::Csv) => {
            let mut w = csv::Writer::from_writer(std::io::stdout());
            w.write_record(NAMES)?;
            for e in &events {
                w.write_record(NAMES.iter().map(|k| match e.get(*k) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                }))?;
            }
            w.flush()?;
        }
        (false, _) => print_table(&events),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(events: &[Map<String, Value>]) {
    if events.is_empty() {
        println!("No events match.");
        return;
    }
    let text = |e: &Map<String, Value>, k: &str| match e.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    println!("{:<20} {:<21} {:<8} {:<28} {:<12} details / error", "timestamp", "event", "status", "customer", "conversation");
    for e in events {
        let what = match text(e, "error_message") {
            err if err.is_empty() => text(e, "details"),
            err => format!("{err} — {}", text(e, "details")),
        };
        println!(
            "{:<20} {:<21} {:<8} {:<28} {:<12} {}",
            text(e, "timestamp"),
            text(e, "event_type"),
            text(e, "status"),
            text(e, "customer_email"),
            text(e, "conversation_id"),
            what
        );
        let url = text(e, "conversation_url");
        if !url.is_empty() {
            println!("{:<20} {url}", "");
        }
    }
}

pub async fn retry(args: RetryArgs) -> anyhow::Result<ExitCode> {
    crate::retry::run(args).await
}

//! The command line's words: every command, its arguments and flags.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::config::Overrides;

#[derive(Debug, Parser)]
#[command(name = "helpscout-etl", version, about = "Replicate a Help Scout account into DuckDB and hive-partitioned Parquet.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Extract the selected tables (incrementally where possible) into DuckDB and Parquet.
    Sync(SyncArgs),
    /// Start the built-in simulator, sync it, change it, sync again, into ./helpscout-demo/.
    #[cfg(feature = "simulator")]
    Demo(DemoArgs),
    /// Bookmarks, last run and row counts per table, and what a sync does for each.
    Status(OutputArgs),
    /// Forget tables (rows, bookmarks, Parquet folders) so the next sync reloads them.
    Reset(ResetArgs),
    /// Delete Delta files that no snapshot within the retention needs (a Delta lake only).
    Vacuum(VacuumArgs),
    /// Search the integration log (the "HelpScout Log"); `log summary` for the dashboard figures.
    Log(LogArgs),
    /// Re-attempt failed events (a table, a conversation or a customer whose sync failed).
    Retry(RetryArgs),
    /// To HelpScout: queue form submissions or customer records from a file (JSON Lines or
    /// CSV) and deliver everything queued, each exactly once. Without a file: deliver the queue.
    Push(PushArgs),
    /// Install (or reinstall) the bundled SQL views into an existing DuckDB file.
    Views(OutputArgs),
    /// Print a bundled report: happiness, productivity, health (exits 4 below 95 %), api-usage.
    Report(ReportArgs),
    /// Serve the HelpScout Log as a web page (sign-in required; see `users`).
    Serve(ServeArgs),
    /// Who may sign in to the web page: add, remove, list users, change a password.
    Users(UsersArgs),
    /// Print the table catalog generated from the table declarations (Markdown, or JSON).
    Tables {
        #[arg(long)]
        json: bool,
    },
    /// Serve the built-in Help Scout API simulator on 127.0.0.1 until stopped.
    #[cfg(feature = "simulator")]
    Simulate(helpscout_sim::cli::SimulateArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Configuration file: TOML, or a tap-helpscout config.json.
    #[arg(long, short, env = "HELPSCOUT_ETL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output folder (DuckDB file `helpscout.duckdb` and `parquet/` inside).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// DuckDB file (default: OUTPUT/helpscout.duckdb).
    #[arg(long)]
    pub duckdb: Option<PathBuf>,
    /// The lake's format: parquet (hive folders, the default) or delta.
    #[arg(long, value_name = "parquet|delta")]
    pub lake: Option<String>,
    /// Where the lake is: a folder or s3://bucket/prefix (default: OUTPUT/parquet or OUTPUT/delta).
    #[arg(long, value_name = "URI", alias = "parquet")]
    pub lake_uri: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SyncArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Tables to sync (comma-separated; default: all 11).
    #[arg(long, value_delimiter = ',')]
    pub tables: Option<Vec<String>>,
    /// Tables to reload in full this run, finding removals (comma-separated, or `all`).
    #[arg(long, value_delimiter = ',')]
    pub full_refresh: Option<Vec<String>>,
    /// Earliest modification time to extract on a first run (YYYY-MM-DD or RFC 3339).
    #[arg(long)]
    pub start_date: Option<String>,
    /// API base URL (default https://api.helpscout.net/v2).
    #[arg(long)]
    pub base_url: Option<String>,
    /// OAuth token URL (default https://api.helpscout.net/v2/oauth2/token).
    #[arg(long)]
    pub token_url: Option<String>,
    /// Requests in flight at once.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// The plan's rate limit per minute (Standard 200, Plus 400, Pro 800).
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
}

#[cfg(feature = "simulator")]
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Where the demo writes (DuckDB file and Parquet folder).
    #[arg(long, default_value = "helpscout-demo")]
    pub dir: PathBuf,
    /// Conversations in the simulated account.
    #[arg(long, default_value_t = 500)]
    pub conversations: usize,
    /// Seed of the simulated account.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The lake's format: parquet (hive folders in DIR/parquet) or delta (Delta tables in DIR/delta).
    #[arg(long, value_name = "parquet|delta", default_value = "parquet")]
    pub lake: String,
    /// Then serve the log page on the demo's outputs, with a demo Administrator (its one-time
    /// password is printed).
    #[arg(long)]
    pub serve: bool,
    /// Where `--serve` listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Address to listen on (loopback by default; put a TLS proxy in front to serve others).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

#[derive(Debug, Args, Clone)]
pub struct UsersArgs {
    /// add, remove, list or passwd. Passwords are asked for (or read from standard input), never
    /// arguments; a removed user's sessions end at their next request.
    #[arg(value_enum)]
    pub action: UsersAction,
    /// The user (add, remove, passwd).
    #[arg(required_if_eq_any = [("action", "add"), ("action", "remove"), ("action", "passwd")])]
    pub name: Option<String>,
    /// manager (view, export) or administrator (also retry, manage users); for `add`.
    #[arg(long, value_enum, required_if_eq("action", "add"))]
    pub role: Option<RoleArg>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UsersAction {
    Add,
    Remove,
    List,
    Passwd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Manager,
    Administrator,
}

#[derive(Debug, Args, Clone)]
pub struct ResetArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Tables to reset (or `all`).
    #[arg(required = true)]
    pub tables: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct VacuumArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// How far back readers may travel (time travel, long queries): files any snapshot of that
    /// span needs are kept (`7d`, `36h`, `0s`).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub retain: std::time::Duration,
}

/// How a list of rows is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args, Clone, Default)]
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

#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// `summary` for the dashboard figures (totals, success rate, new tickets, customers synced);
    /// `duplicates` for repeat form submitters and any submission with more than one ticket.
    #[arg(value_parser = ["summary", "duplicates"])]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PushKind {
    /// Contact-form submissions: email, name, subject, message, optional submission_id, any other fields.
    Forms,
    /// Customer records: email, first_name, last_name, job_title, organization, location, background.
    Customers,
}

#[derive(Debug, Args, Clone)]
pub struct PushArgs {
    #[arg(value_enum)]
    pub kind: Option<PushKind>,
    /// The file (JSON Lines, one object a line, or CSV with a header row).
    pub file: Option<PathBuf>,
    /// The form the submissions came from (default: the only configured form).
    #[arg(long)]
    pub form: Option<String>,
    /// The mailbox id for this run's form, instead of the configured one.
    #[arg(long)]
    pub mailbox: Option<i64>,
    #[command(flatten)]
    pub sync: SyncArgs,
}

#[derive(Debug, Args, Clone)]
pub struct RetryArgs {
    #[command(flatten)]
    pub filters: LogFilters,
    /// Only this event (its `event_id`).
    #[arg(long)]
    pub event: Option<i64>,
    /// A To-HelpScout failure: the corrected customer email to send it with.
    #[arg(long, requires = "event")]
    pub email: Option<String>,
    /// A To-HelpScout failure: the corrected customer name to send it with.
    #[arg(long, requires = "event")]
    pub name: Option<String>,
    #[command(flatten)]
    pub sync: SyncArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// happiness (ratings and score), productivity (first response, resolution, replies, busiest
    /// day), health (success rate per event type; exits 4 below 95 % in the last 24 h), api-usage
    /// (requests, 429s, lowest remaining budget).
    #[arg(value_enum)]
    pub report: ReportKind,
    /// Grouping. happiness: day, week, month (default), mailbox, user, team, or comments (the
    /// ratings that came with one, newest first). productivity: day, week, month (default),
    /// mailbox, user or team. api-usage: hour or day (default).
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
    pub output: OutputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportKind {
    Happiness,
    Productivity,
    Health,
    ApiUsage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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
    pub fn name(self) -> &'static str {
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

impl OutputArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides { output_dir: self.output.clone(), duckdb: self.duckdb.clone(), lake: self.lake.clone(), lake_uri: self.lake_uri.clone(), ..Default::default() }
    }
}

impl SyncArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            tables: self.tables.clone(),
            full_refresh: self.full_refresh.clone(),
            start_date: self.start_date.clone(),
            base_url: self.base_url.clone(),
            token_url: self.token_url.clone(),
            concurrency: self.concurrency,
            rate_limit: self.rate_limit,
            ..self.output.overrides()
        }
    }
}

//! The command line: `sync`, `demo`, `status`, `reset`, `tables`, `simulate`.
//!
//! Exit codes tell outcomes apart for schedulers: 0 success, 1 failed, 2 bad input
//! (configuration, credentials, arguments), 3 partial (some tables failed, the rest complete),
//! 4 unhealthy (`report health`: an event type below 95 % in the last 24 hours).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Overrides, Settings};
use crate::progress::Progress;
use crate::sync::{RunStatus, SyncError, SyncReport};

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_BAD_INPUT: u8 = 2;
pub const EXIT_PARTIAL: u8 = 3;

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
    Demo(DemoArgs),
    /// Bookmarks, last run and row counts per table.
    Status(OutputArgs),
    /// Forget tables (rows, bookmarks, Parquet folders) so the next sync reloads them.
    Reset(ResetArgs),
    /// Search the integration log (the "HelpScout Log"); `log summary` for the dashboard figures.
    Log(crate::log_command::LogArgs),
    /// Re-attempt failed events (a table, a conversation or a customer whose sync failed).
    Retry(crate::log_command::RetryArgs),
    /// Install (or reinstall) the bundled SQL views into an existing DuckDB file.
    Views(OutputArgs),
    /// Print a bundled report: happiness, health (exits 4 below 95 %), api-usage.
    Report(crate::report::ReportArgs),
    /// Print the table catalog generated from the table declarations (Markdown, or JSON).
    Tables {
        #[arg(long)]
        json: bool,
    },
    /// Serve the built-in Help Scout API simulator on 127.0.0.1 until stopped.
    Simulate(crate::simulator::cli::SimulateArgs),
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
    /// Parquet folder (default: OUTPUT/parquet).
    #[arg(long)]
    pub parquet: Option<PathBuf>,
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
}

#[derive(Debug, Args, Clone)]
pub struct ResetArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Tables to reset (or `all`).
    #[arg(required = true)]
    pub tables: Vec<String>,
}

impl OutputArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            output_dir: self.output.clone(),
            duckdb: self.duckdb.clone(),
            parquet: self.parquet.clone(),
            ..Default::default()
        }
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

/// Settings from the file named on the command line (if any), the environment and flags.
pub fn settings(config_file: Option<&PathBuf>, overrides: &Overrides) -> Result<Settings, config::ConfigError> {
    let file = match config_file {
        Some(path) => config::read_file(path)?,
        None => config::FileConfig::default(),
    };
    config::resolve(file, &|k| std::env::var(k).ok(), overrides)
}

/// The entry point `main.rs` calls.
pub fn main() -> ExitCode {
    // Output piped into `head` and the like ends quietly, as with other command-line tools.
    #[cfg(unix)]
    // SAFETY: restoring the default action of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HELPSCOUT_ETL_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            let code = exit_code_for(&e);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

fn exit_code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.downcast_ref::<config::ConfigError>().is_some() || cause.downcast_ref::<clap::Error>().is_some() {
            return EXIT_BAD_INPUT;
        }
        if let Some(SyncError::Client(crate::client::ClientError::Auth(_))) = cause.downcast_ref::<SyncError>() {
            return EXIT_BAD_INPUT;
        }
    }
    EXIT_FAILED
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Sync(args) => {
            let settings = settings(args.output.config.as_ref(), &args.overrides())?;
            let progress = if args.quiet || args.output.json { Progress::Quiet } else { Progress::auto() };
            let report = crate::sync::run(&settings, &progress).await?;
            print_report(&report, args.output.json)?;
            Ok(run_exit_code(&report))
        }
        Command::Demo(args) => crate::demo::run(&args).await,
        Command::Status(args) => {
            let settings = settings_for_outputs(&args)?;
            crate::status::print_status(&settings.outputs, args.json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset(args) => {
            let settings = settings_for_outputs(&args.output)?;
            let names = crate::status::reset(&settings.outputs, &args.tables)?;
            println!("Reset {}: the next sync reloads {}.", names.join(", "), if names.len() == 1 { "it" } else { "them" });
            Ok(ExitCode::SUCCESS)
        }
        Command::Tables { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&crate::status::table_catalog_json())?);
            } else {
                print!("{}", crate::status::table_catalog());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Log(args) => crate::log_command::run(args),
        Command::Retry(args) => crate::log_command::retry(args).await,
        Command::Views(args) => {
            let settings = settings_for_outputs(&args)?;
            crate::views::install_into(&settings.outputs)?;
            println!("Installed {} view files into {}.", crate::views::VIEWS.len(), settings.outputs.duckdb.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => crate::report::run(args),
        Command::Simulate(args) => {
            crate::simulator::cli::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Commands that only read outputs need no credentials.
pub fn settings_for_outputs(args: &OutputArgs) -> anyhow::Result<Settings> {
    let file = match &args.config {
        Some(path) => config::read_file(path)?,
        None => config::FileConfig::default(),
    };
    let env = |k: &str| match k {
        "HELPSCOUT_CLIENT_ID" | "HELPSCOUT_CLIENT_SECRET" => Some("unused".to_string()),
        _ => std::env::var(k).ok(),
    };
    config::resolve(file, &env, &args.overrides()).context("reading the configuration")
}

pub fn run_exit_code(report: &SyncReport) -> ExitCode {
    match report.status {
        RunStatus::Success => ExitCode::SUCCESS,
        RunStatus::Partial => ExitCode::from(EXIT_PARTIAL),
        RunStatus::Failed => ExitCode::from(
            if report.error.as_deref().is_some_and(|e| e.starts_with("Authentication failed")) {
                EXIT_BAD_INPUT
            } else {
                EXIT_FAILED
            },
        ),
    }
}

/// The one-screen summary (or the JSON report).
pub fn print_report(report: &SyncReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!("Run {} — {:?}", report.run_id, report.status);
    println!("{:<26} {:>9} {:>8} {:>9} {:>9}  status", "table", "rows", "removed", "requests", "seconds");
    for t in &report.tables {
        println!(
            "{:<26} {:>9} {:>8} {:>9} {:>9.1}  {}",
            t.table,
            t.rows,
            t.removed,
            t.requests,
            t.duration_ms as f64 / 1000.0,
            match &t.error {
                None => "ok".to_string(),
                Some(e) => format!("FAILED: {e}"),
            }
        );
    }
    let elapsed = (report.finished_at - report.started_at).num_milliseconds() as f64 / 1000.0;
    println!(
        "{} API requests ({} rate-limited, lowest remaining budget {}), {:.1} s; {} commits, longest {} ms; {} Parquet partitions written.",
        report.requests,
        report.rate_limited,
        report.lowest_rate_limit_remaining.map(|r| r.to_string()).unwrap_or_else(|| "unknown".into()),
        elapsed,
        report.commits,
        report.longest_commit_window_ms,
        report.parquet_partitions_written
    );
    println!("DuckDB: {}   Parquet: {}", report.duckdb, report.parquet);
    if let Some(e) = &report.error {
        println!("error: {e}");
    }
    Ok(())
}

//! The command line: arguments (`args`), configuration (`config`), one renderer (`render`),
//! progress on a terminal (`progress`), exit codes (`exit`), and one module per command
//! (`commands`). Commands write through the renderer to the writer they are given and return
//! how the process exits; only this module talks to the process.

pub mod args;
pub mod commands;
pub mod config;
pub mod exit;
pub mod progress;
pub mod render;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};
use exit::Exit;

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
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("HELPSCOUT_ETL_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let mut stdout = std::io::stdout().lock();
    let outcome = runtime.block_on(dispatch(cli.command, &mut stdout));
    let _ = stdout.flush();
    match outcome {
        Ok(exit) => exit.into(),
        Err(e) => {
            // One line, whatever the error: its causes joined.
            // A usage error raised by a command renders its own "error: " prefix.
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {}", message.trim_end().strip_prefix("error: ").unwrap_or(message.trim_end()));
            Exit::of_error(&e).into()
        }
    }
}

async fn dispatch(command: Command, out: &mut dyn Write) -> anyhow::Result<Exit> {
    match command {
        Command::Sync(args) => commands::sync::run(&args, out).await,
        #[cfg(feature = "simulator")]
        Command::Demo(args) => commands::demo::run(&args, out).await,
        Command::Status(args) => commands::outputs::status(&args, out),
        Command::Reset(args) => commands::outputs::reset(&args, out),
        Command::Vacuum(args) => commands::outputs::vacuum(&args, out),
        Command::Views(args) => commands::outputs::views(&args, out),
        Command::Tables { json } => commands::tables::run(json, out),
        Command::Serve(args) => commands::serve::run(&args, out).await,
        Command::Users(args) => commands::users::run(&args, out),
        Command::Log(args) => commands::log::run(&args, out),
        Command::Retry(args) => commands::log::retry(&args, out).await,
        Command::Push(args) => commands::push::run(&args, out).await,
        Command::Report(args) => commands::report::run(&args, out),
        #[cfg(feature = "simulator")]
        Command::Simulate(args) => {
            helpscout_sim::cli::run(args).await?;
            Ok(Exit::Success)
        }
    }
}

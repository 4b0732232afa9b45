use clap::{Parser, Subcommand};
use helpscout_etl::simulator::cli::{SimulateArgs, run};

/// Replicate a Help Scout account into DuckDB and Parquet.
#[derive(Parser, Debug)]
#[command(name = "helpscout-etl", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve a simulated Help Scout account on 127.0.0.1 (for tests, demos and benchmarks).
    Simulate(SimulateArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => run(args).await,
    }
}

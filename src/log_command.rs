//! `log` (search the integration log, `log summary`) and `retry`.

use std::process::ExitCode;

#[derive(Debug, clap::Args, Clone)]
pub struct LogArgs {
    #[command(flatten)]
    pub output: crate::cli::OutputArgs,
}

#[derive(Debug, clap::Args, Clone)]
pub struct RetryArgs {
    #[command(flatten)]
    pub output: crate::cli::OutputArgs,
}

pub fn run(_args: LogArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

pub async fn retry(_args: RetryArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

//! `report happiness | health | api-usage`: the bundled views, printed.

use std::process::ExitCode;

#[derive(Debug, clap::Args, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub output: crate::cli::OutputArgs,
}

pub fn run(_args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

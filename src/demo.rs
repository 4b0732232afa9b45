//! `demo`: the built-in simulator, synced, changed and synced again.
pub async fn run(_args: &crate::cli::DemoArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("not yet")
}

//! Placeholder until the simulator lands.
#[derive(Debug, clap::Args, Clone)]
pub struct SimulateArgs {}
pub async fn run(_args: SimulateArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}

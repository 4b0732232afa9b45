//! `helpscout-etl simulate`: run the simulator as a standalone server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{FaultPlan, Plan, SimConfig, Simulator};

/// Serve a simulated Help Scout account on 127.0.0.1 until Ctrl-C or SIGTERM.
#[derive(Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, default_value_t = 0, env = "HELPSCOUT_SIM_PORT")]
    pub port: u16,
    /// Seed of the generated account (same seed, same account).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Number of conversations (about 5.4 threads each).
    #[arg(long, default_value_t = 200)]
    pub conversations: usize,
    /// Number of customers (default: 60 % of the conversations, at least 20).
    #[arg(long)]
    pub customers: Option<usize>,
    /// Number of mailboxes (each with its folders, custom fields and workflows).
    #[arg(long, default_value_t = 3)]
    pub mailboxes: usize,
    /// Number of users (agents).
    #[arg(long, default_value_t = 12)]
    pub users: usize,
    /// Number of teams.
    #[arg(long, default_value_t = 3)]
    pub teams: usize,
    /// Account plan: the reports endpoint answers 403 on standard.
    #[arg(long, value_enum, default_value_t = Plan::Plus)]
    pub plan: Plan,
    /// Requests per rate-limit window (writes count 2).
    #[arg(long = "rate-limit", default_value_t = 400)]
    pub rate_limit: u32,
    /// Length of the rate-limit window in seconds.
    #[arg(long = "rate-window-secs", default_value_t = 60)]
    pub rate_window_secs: u64,
    /// `expires_in` of access tokens, in simulated seconds.
    #[arg(long = "token-ttl-secs", default_value_t = 172_800)]
    pub token_ttl_secs: u64,
    /// A fault plan (JSON) to apply from the start.
    #[arg(long)]
    pub faults: Option<PathBuf>,
    /// OAuth client id the simulator accepts.
    #[arg(long = "client-id", default_value = "demo-client-id")]
    pub client_id: String,
    /// OAuth client secret the simulator accepts.
    #[arg(long = "client-secret", default_value = "demo-client-secret")]
    pub client_secret: String,
    /// The first valid refresh token (refresh tokens rotate on every use).
    #[arg(long = "refresh-token", default_value = "demo-refresh-token")]
    pub refresh_token: String,
}

impl SimulateArgs {
    pub fn to_config(&self) -> anyhow::Result<SimConfig> {
        let faults = match &self.faults {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the fault plan {}", p.display()))?;
                serde_json::from_str::<FaultPlan>(&text)
                    .with_context(|| format!("parsing the fault plan {}", p.display()))?
            }
            None => FaultPlan::default(),
        };
        Ok(SimConfig {
            seed: self.seed,
            conversations: self.conversations,
            customers: self.customers,
            mailboxes: self.mailboxes,
            users: self.users,
            teams: self.teams,
            plan: self.plan,
            rate_limit_per_minute: self.rate_limit,
            rate_window: Duration::from_secs(self.rate_window_secs.max(1)),
            token_ttl_secs: self.token_ttl_secs,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            refresh_token: self.refresh_token.clone(),
            faults,
            port: self.port,
            ..SimConfig::default()
        })
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let cfg = args.to_config()?;
    let started = std::time::Instant::now();
    let sim = Simulator::start(cfg.clone())
        .await
        .context("starting the simulator")?;
    println!(
        "simulator: {} conversations generated in {:.2?} (seed {})",
        cfg.conversations,
        started.elapsed(),
        cfg.seed
    );
    println!("port: {}", sim.addr().port());
    println!("base URL: {}", sim.base_url());
    println!("token URL: {}", sim.token_url());
    println!("admin URL: {}", sim.admin_url());
    println!("client id: {}", cfg.client_id);
    println!("client secret: {}", cfg.client_secret);
    println!("refresh token: {}", cfg.refresh_token);
    println!("simulated now: {}", sim.now().format("%Y-%m-%dT%H:%M:%SZ"));
    println!("press Ctrl-C to stop");
    shutdown_signal().await;
    sim.stop().await;
    println!("simulator stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: SimulateArgs,
    }

    #[test]
    fn flags_become_a_config() {
        let path = std::env::temp_dir().join(format!("sim-faults-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"rules":[{"path_prefix":"/v2/users","count":2,"kind":{"Status":503}}]}"#,
        )
        .unwrap();
        let w = Wrap::try_parse_from([
            "x",
            "--port",
            "4100",
            "--seed",
            "9",
            "--conversations",
            "50",
            "--customers",
            "70",
            "--plan",
            "standard",
            "--rate-limit",
            "10",
            "--rate-window-secs",
            "5",
            "--token-ttl-secs",
            "60",
            "--faults",
            path.to_str().unwrap(),
            "--client-secret",
            "s3",
        ])
        .unwrap();
        let c = w.args.to_config().unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(
            (c.port, c.seed, c.conversations, c.customers),
            (4100, 9, 50, Some(70))
        );
        assert_eq!(c.plan, Plan::Standard);
        assert_eq!(
            (c.rate_limit_per_minute, c.rate_window, c.token_ttl_secs),
            (10, Duration::from_secs(5), 60)
        );
        assert_eq!(c.faults.rules.len(), 1);
        assert_eq!(c.faults.rules[0].count, 2);
        assert_eq!(c.client_secret, "s3");
        assert_eq!(c.client_id, "demo-client-id");
    }

    #[test]
    fn defaults() {
        let c = Wrap::try_parse_from(["x"])
            .unwrap()
            .args
            .to_config()
            .unwrap();
        let d = SimConfig::default();
        assert_eq!(
            (
                c.port,
                c.conversations,
                c.customers,
                c.plan,
                c.rate_limit_per_minute
            ),
            (0, d.conversations, None, Plan::Plus, 400)
        );
        assert_eq!(c.refresh_token, "demo-refresh-token");
    }

    #[test]
    fn a_broken_fault_file_is_an_error() {
        let path = std::env::temp_dir().join(format!("sim-faults-bad-{}.json", std::process::id()));
        std::fs::write(&path, "{not json").unwrap();
        let w = Wrap::try_parse_from(["x", "--faults", path.to_str().unwrap()]).unwrap();
        assert!(w.args.to_config().is_err());
        std::fs::remove_file(&path).ok();
    }
}

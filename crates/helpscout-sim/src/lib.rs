//! A faithful, in-memory simulator of the Help Scout Mailbox API 2.0.
//!
//! It generates a deterministic account from a seed, serves it over HTTP on 127.0.0.1 with
//! the API's paging, OAuth, rate limits and errors, lets time move (mutations, clock
//! advances), injects faults on demand, counts and journals requests, and knows the exact
//! rows of the data contract's 11 tables (`ground_truth`) so that an extractor can be checked.

mod api;
mod auth;
pub mod cli;
mod clock;
mod created;
pub mod contract;
pub mod dates;
mod faults;
mod generator;
mod index;
mod model;
mod mutate;
mod paging;
mod rate_limit;
mod render;
mod reply;
mod server;
mod state;
mod stats;
mod text;
mod truth;
mod writes;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use api::{MERGE_REDIRECT_SECS, REPORT_PAGE};
pub use faults::{FaultKind, FaultPlan, FaultRule};
pub use mutate::{Merge, MutationPlan, MutationReport, TeamMemberChange};
pub use paging::{CONVERSATIONS_PAGE, DEFAULT_PAGE};
pub use render::CHAT_EMBED_LIMIT;
pub use stats::{EndpointStat, JOURNAL_LIMIT, RequestStats};
pub use contract::{contract_columns, joins, primary_key};
pub use truth::path as row_path;
pub use created::{Created, CreatedConversation, CreatedCustomer, CustomerUpdate};

/// The account's plan: the reports endpoints answer 403 on Standard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Standard,
    #[default]
    Plus,
    Pro,
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Number of conversations (about 5.4 threads each).
    pub conversations: usize,
    /// Default: 60 % of the conversations, at least 20.
    pub customers: Option<usize>,
    pub mailboxes: usize,
    pub users: usize,
    pub teams: usize,
    pub plan: Plan,
    pub rate_limit_per_minute: u32,
    pub rate_window: Duration,
    /// `expires_in` of access tokens, judged on the simulated clock.
    pub token_ttl_secs: u64,
    /// The simulated "now" at start; the generated history ends before it.
    pub start_time: DateTime<Utc>,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    pub faults: FaultPlan,
    /// 0 = an ephemeral port.
    pub port: u16,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            conversations: 200,
            customers: None,
            mailboxes: 3,
            users: 12,
            teams: 3,
            plan: Plan::Plus,
            rate_limit_per_minute: 400,
            rate_window: Duration::from_secs(60),
            token_ttl_secs: 172_800,
            start_time: Utc
                .with_ymd_and_hms(2026, 6, 1, 12, 0, 0)
                .single()
                .expect("valid date"),
            client_id: "demo-client-id".into(),
            client_secret: "demo-client-secret".into(),
            refresh_token: "demo-refresh-token".into(),
            faults: FaultPlan::default(),
            port: 0,
        }
    }
}

impl SimConfig {
    pub fn customer_count(&self) -> usize {
        self.customers
            .unwrap_or_else(|| (self.conversations * 6 / 10).max(20))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("invalid simulator configuration: {0}")]
    Config(String),
    #[error("account generation failed: {0}")]
    Generation(String),
}

/// Why a conversation is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Removal {
    Deleted,
    MergedInto(i64),
}

/// The rows the data contract's tables must hold for the current account.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// All 11 tables by contract name; rows ordered by primary key.
    pub tables: BTreeMap<String, Vec<serde_json::Map<String, serde_json::Value>>>,
    pub removed_conversations: BTreeMap<i64, Removal>,
}

pub(crate) struct Inner {
    pub cfg: SimConfig,
    pub clock: clock::SimClock,
    pub state: Mutex<state::State>,
    pub auth: Mutex<auth::Auth>,
    pub limiter: Mutex<rate_limit::RateLimiter>,
    pub faults: Mutex<faults::FaultEngine>,
    pub stats: Mutex<stats::StatsRecorder>,
    pub addr: SocketAddr,
}

/// Locks a mutex, recovering from a poisoned one (a panicking handler must not take the
/// simulator down with it).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn base_url(&self) -> String {
        format!("{}/v2", self.origin())
    }

    pub fn ground_truth(&self) -> GroundTruth {
        let st = lock(&self.state);
        GroundTruth {
            tables: truth::tables(&st),
            removed_conversations: removed_of(&st),
        }
    }

    pub fn removed(&self) -> BTreeMap<i64, Removal> {
        removed_of(&lock(&self.state))
    }

    pub fn mutate(&self, plan: &MutationPlan) -> MutationReport {
        let now = self.clock.now_ts();
        mutate::apply(&mut lock(&self.state), plan, now)
    }
}

fn removed_of(st: &state::State) -> BTreeMap<i64, Removal> {
    st.removed
        .iter()
        .map(|(id, r)| {
            (
                *id,
                r.merged_into
                    .map(Removal::MergedInto)
                    .unwrap_or(Removal::Deleted),
            )
        })
        .collect()
}

/// A running simulator. Cheap to clone; `stop` shuts it down.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
    shutdown: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Simulator {
    /// Generates the account and serves it on 127.0.0.1:`cfg.port`.
    pub async fn start(cfg: SimConfig) -> Result<Simulator, SimError> {
        if cfg.mailboxes == 0 || cfg.users == 0 {
            return Err(SimError::Config(
                "at least one mailbox and one user are needed".into(),
            ));
        }
        if cfg.rate_limit_per_minute == 0 || cfg.rate_window.is_zero() {
            return Err(SimError::Config(
                "the rate limit and its window must be positive".into(),
            ));
        }
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", cfg.port))
            .await
            .map_err(|source| SimError::Bind {
                port: cfg.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            port: cfg.port,
            source,
        })?;
        let params = generator::GenParams {
            seed: cfg.seed,
            conversations: cfg.conversations,
            customers: cfg.customer_count(),
            mailboxes: cfg.mailboxes,
            users: cfg.users,
            teams: cfg.teams,
            start: cfg.start_time.timestamp() - 1,
        };
        let st = tokio::task::spawn_blocking(move || generator::generate(&params))
            .await
            .map_err(|e| SimError::Generation(e.to_string()))?;
        let inner = Arc::new(Inner {
            clock: clock::SimClock::new(cfg.start_time.timestamp()),
            state: Mutex::new(st),
            auth: Mutex::new(auth::Auth::new(
                &cfg.client_id,
                &cfg.client_secret,
                &cfg.refresh_token,
                cfg.token_ttl_secs,
                cfg.seed,
            )),
            limiter: Mutex::new(rate_limit::RateLimiter::new(
                cfg.rate_limit_per_minute,
                cfg.rate_window.as_millis() as i64,
            )),
            faults: Mutex::new(faults::FaultEngine::new(cfg.faults.clone())),
            stats: Mutex::new(stats::StatsRecorder::default()),
            addr,
            cfg,
        });
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server::serve(listener, inner.clone(), rx));
        Ok(Simulator {
            inner,
            shutdown: Arc::new(Mutex::new(Some(tx))),
            task: Arc::new(Mutex::new(Some(task))),
        })
    }

    /// `http://127.0.0.1:PORT/v2`
    pub fn base_url(&self) -> String {
        self.inner.base_url()
    }

    /// `http://127.0.0.1:PORT/v2/oauth2/token`
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/token", self.inner.base_url())
    }

    /// `http://127.0.0.1:PORT/_admin`
    pub fn admin_url(&self) -> String {
        format!("{}/_admin", self.inner.origin())
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.cfg
    }

    /// The simulated clock (second precision).
    pub fn now(&self) -> DateTime<Utc> {
        dates::to_datetime(self.inner.clock.now_ts())
    }

    pub fn advance_clock(&self, by: chrono::Duration) {
        self.inner.clock.advance_ms(by.num_milliseconds());
    }

    /// Applies changes at the simulated "now".
    pub fn mutate(&self, plan: &MutationPlan) -> MutationReport {
        self.inner.mutate(plan)
    }

    /// Replaces the fault plan (rule counters restart).
    pub fn set_faults(&self, plan: FaultPlan) {
        lock(&self.inner.faults).set(plan);
    }

    pub fn request_stats(&self) -> RequestStats {
        lock(&self.inner.stats).snapshot()
    }

    /// Clears the counters and the request journal.
    pub fn reset_request_stats(&self) {
        lock(&self.inner.stats).reset();
    }

    /// Every API GET's path and query as received, in order (the token endpoint and the admin
    /// endpoints excluded; at most [`JOURNAL_LIMIT`] kept). Also `GET /_admin/requests`.
    pub fn request_journal(&self) -> Vec<String> {
        lock(&self.inner.stats).journal_entries().to_vec()
    }

    pub fn ground_truth(&self) -> GroundTruth {
        self.inner.ground_truth()
    }

    /// Every conversation and customer the API's writes created and every customer update
    /// they applied, in order (also `GET /_admin/created`). Unlike the answers, which faults
    /// can lose, this is what really happened.
    pub fn created(&self) -> Created {
        lock(&self.inner.state).created.clone()
    }

    /// One table of the ground truth (rows ordered by primary key); `None` for a name that is
    /// not one of [`contract::TABLES`]. Cheaper than [`Simulator::ground_truth`] on large accounts.
    pub fn ground_truth_table(
        &self,
        table: &str,
    ) -> Option<Vec<serde_json::Map<String, serde_json::Value>>> {
        truth::table(&lock(&self.inner.state), table)
    }

    /// Streams one table of the ground truth, row by row in primary-key order, without
    /// materialising the whole table (the large tables are built one row at a time). The
    /// account is locked while it runs: `f` must not call the simulator. False for an unknown
    /// table name.
    pub fn for_each_truth_row(
        &self,
        table: &str,
        mut f: impl FnMut(serde_json::Map<String, serde_json::Value>),
    ) -> bool {
        truth::for_each_row(&lock(&self.inner.state), table, &mut f)
    }

    /// Removed conversations (deleted or merged away) and why.
    pub fn removed_conversations(&self) -> BTreeMap<i64, Removal> {
        self.inner.removed()
    }

    /// Every access token issued so far becomes invalid (401).
    pub fn expire_tokens(&self) {
        lock(&self.inner.auth).expire_all();
    }

    /// Graceful shutdown; the port is free when this returns.
    pub async fn stop(self) {
        if let Some(tx) = lock(&self.shutdown).take() {
            let _ = tx.send(());
        }
        let task = lock(&self.task).take();
        if let Some(mut task) = task {
            // In-flight requests (e.g. an injected delay) get a moment, then are cut.
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

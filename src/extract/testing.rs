//! For the strategies' own tests: a simulated account on 127.0.0.1, outputs in a temporary
//! folder, and a run over them that a test drives strategy by strategy.

use std::time::Duration;

use helpscout_sim::{SimConfig, Simulator};

use super::context::{Ledger, Run};
use super::progress::Quiet;
use super::run::prepare;
use super::settings::{Method, SyncSettings, TableChoice};
use crate::api::{Client, ClientConfig, Credentials};
use crate::catalog::{self, Table};
use crate::catalog::EventType;
use crate::store::{Lake, LogFilter, Outputs, Warehouse};

pub(crate) struct Fixture {
    pub sim: Simulator,
    pub outputs: Outputs,
    pub settings: SyncSettings,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A simulated account of `conversations`, every table selected.
    pub async fn new(conversations: usize, seed: u64) -> Fixture {
        let sim = Simulator::start(SimConfig { conversations, seed, rate_window: Duration::from_secs(1), ..Default::default() })
            .await
            .expect("simulator starts");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let outputs = Outputs::under(dir.path());
        let credentials = Credentials::ClientCredentials { client_id: sim.config().client_id.clone(), client_secret: sim.config().client_secret.clone() };
        let mut client = ClientConfig::new(sim.base_url().parse().unwrap(), sim.token_url().parse().unwrap(), credentials);
        client.rate_limit = sim.config().rate_limit_per_minute;
        client.rate_window = sim.config().rate_window;
        client.request_timeout = Duration::from_secs(2);
        client.backoff_min = Duration::from_millis(10);
        client.backoff_max = Duration::from_millis(100);
        let settings = SyncSettings {
            client,
            start_date: "2015-01-01T00:00:00Z".parse().unwrap(),
            tables: catalog::ALL.iter().map(|t| TableChoice { table: t, method: Method::Incremental, columns: None }).collect(),
            overlap: Duration::from_secs(300),
            chunk_rows: 2_000,
            lock_timeout: Duration::from_secs(10),
            removal_check: Duration::ZERO,
        };
        Fixture { sim, outputs, settings, _dir: dir }
    }

    /// Only these tables selected.
    pub fn select(&mut self, tables: &[&'static Table]) {
        self.settings.tables =
            catalog::ALL.iter().copied().filter(|t| tables.contains(t)).map(|table| TableChoice { table, method: Method::Incremental, columns: None }).collect();
    }

    /// A run with its tables created and its bookmarks read.
    pub fn start(&self) -> (Run<'_>, Ledger) {
        let lake = Lake::open(&self.outputs.lake, &|_| None).unwrap();
        let run = Run::new(&self.outputs, &self.settings, Client::new(self.settings.client.clone()).unwrap(), lake, &Quiet);
        let mut ledger = Ledger::default();
        prepare(&run, &mut ledger).expect("the run starts");
        (run, ledger)
    }

    /// The rows a table holds in the DuckDB file.
    pub fn rows(&self, table: &Table) -> i64 {
        let status = Warehouse::new(&self.outputs.duckdb).read().unwrap().status(Lake::open(&self.outputs.lake, &|_| None).ok().as_ref()).unwrap();
        status.tables.iter().find(|t| t.table == table.name).and_then(|t| t.rows).unwrap_or(0)
    }

    /// The log's events of a type.
    pub fn events(&self, event_type: EventType) -> usize {
        let filter = LogFilter { event_types: vec![event_type.as_str().into()], ..Default::default() };
        Warehouse::new(&self.outputs.duckdb).read().unwrap().log_events(&filter, 0).unwrap().rows.len()
    }

    /// The first column of a query on the DuckDB file, as integers.
    pub fn ints(&self, sql: &str) -> Vec<i64> {
        let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).unwrap();
        let conn = duckdb::Connection::open_with_flags(&self.outputs.duckdb, config).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get::<_, i64>(0)).unwrap().map(Result::unwrap).collect()
    }

    /// The ground truth's row count of a table.
    pub fn truth_count(&self, table: &str) -> i64 {
        self.sim.ground_truth_table(table).unwrap().len() as i64
    }
}

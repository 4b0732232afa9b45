//! Inputs and pipeline shared by the benches: real API pages served by the simulator, and the
//! decode-and-load path a sync runs on them (JSON page → rows → Arrow → DuckDB / Parquet).
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use chrono::{DateTime, Utc};
use helpscout_etl::catalog::{CONVERSATIONS, CONVERSATION_THREADS, CUSTOMERS, Table};
use helpscout_etl::convert::{Row, RunStamp, TableConverter};
use helpscout_etl::store::{StoreError, Warehouse, WindowStats};
use helpscout_sim::{SimConfig, Simulator};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use serde_json::Value;

/// Raw response bodies, as the client receives them.
pub struct Pages {
    /// `/v2/conversations?status=all&embed=threads&page=N`
    pub conversations: Vec<Vec<u8>>,
    /// `/v2/customers?page=N`
    pub customers: Vec<Vec<u8>>,
}

impl Pages {
    pub fn conversation_bytes(&self) -> u64 {
        self.conversations.iter().map(|p| p.len() as u64).sum()
    }
    pub fn customer_bytes(&self) -> u64 {
        self.customers.iter().map(|p| p.len() as u64).sum()
    }
}

/// Starts the simulator with enough conversations for `conversation_pages` full pages (25 each)
/// and fetches them, with every customers page, over HTTP.
pub fn fetch_pages(conversation_pages: usize, seed: u64) -> Pages {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    rt.block_on(async move {
        let sim = Simulator::start(SimConfig {
            seed,
            conversations: conversation_pages * 25,
            rate_limit_per_minute: 100_000,
            rate_window: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .expect("simulator starts");
        let http = reqwest::Client::new();
        let token: Value = http
            .post(sim.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=demo-client-id&client_secret=demo-client-secret")
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token body");
        let token = token["access_token"].as_str().expect("access_token").to_string();
        let base = sim.base_url();
        let get = |url: String| {
            let http = http.clone();
            let token = token.clone();
            async move {
                let resp = http.get(&url).bearer_auth(&token).send().await.expect("page request");
                assert!(resp.status().is_success(), "{url}: {}", resp.status());
                resp.bytes().await.expect("page body").to_vec()
            }
        };
        let mut conversations = Vec::new();
        for page in 1..=conversation_pages {
            conversations.push(get(format!("{base}/conversations?status=all&embed=threads&page={page}")).await);
        }
        let mut customers = Vec::new();
        for page in 1.. {
            let body = get(format!("{base}/customers?page={page}")).await;
            let v: Value = serde_json::from_slice(&body).expect("customers page");
            let total = v["page"]["totalPages"].as_u64().unwrap_or(0);
            customers.push(body);
            if page as u64 >= total {
                break;
            }
        }
        sim.stop().await;
        Pages { conversations, customers }
    })
}

pub struct Converters {
    pub conversations: TableConverter,
    pub threads: TableConverter,
    pub customers: TableConverter,
    pub stamp: RunStamp,
}

impl Converters {
    /// As a sync builds them: every column, conversations knowing their embedded threads.
    pub fn new() -> Self {
        Converters {
            conversations: TableConverter::new(&CONVERSATIONS, None),
            threads: TableConverter::new(&CONVERSATION_THREADS, None),
            customers: TableConverter::new(&CUSTOMERS, None),
            stamp: RunStamp {
                run_id: "20260601T120000Z-bench".into(),
                extracted_at: DateTime::<Utc>::from_timestamp(1_780_000_000, 0).expect("time"),
            },
        }
    }
}

/// One batch per table.
pub struct Batches {
    pub tables: Vec<(&'static Table, RecordBatch)>,
}

impl Batches {
    pub fn rows(&self) -> usize {
        self.tables.iter().map(|(_, b)| b.num_rows()).sum()
    }
}

fn records<'v>(page: &'v Value, key: &str) -> &'v [Value] {
    page.get("_embedded").and_then(|e| e.get(key)).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// Conversation pages → conversation rows and their embedded thread rows → two batches.
pub fn convert_conversations(conv: &Converters, pages: &[Vec<u8>]) -> Batches {
    let mut rows: Vec<Row> = Vec::new();
    let mut thread_rows: Vec<Row> = Vec::new();
    for body in pages {
        let page: Value = serde_json::from_slice(body).expect("conversations page");
        for record in records(&page, "conversations") {
            let row = conv.conversations.row(record, None, &conv.stamp).expect("conversation row");
            let id = row.get("id").and_then(Value::as_i64);
            if let Some(threads) = record.get("_embedded").and_then(|e| e.get("threads")).and_then(Value::as_array) {
                for t in threads {
                    thread_rows.push(conv.threads.row(t, id, &conv.stamp).expect("thread row"));
                }
            }
            rows.push(row);
        }
    }
    Batches {
        tables: vec![
            (&CONVERSATIONS, conv.conversations.batch(&rows).expect("conversations batch")),
            (&CONVERSATION_THREADS, conv.threads.batch(&thread_rows).expect("threads batch")),
        ],
    }
}

/// Customer pages → one batch.
pub fn convert_customers(conv: &Converters, pages: &[Vec<u8>]) -> Batches {
    let mut rows: Vec<Row> = Vec::new();
    for body in pages {
        let page: Value = serde_json::from_slice(body).expect("customers page");
        for record in records(&page, "customers") {
            rows.push(conv.customers.row(record, None, &conv.stamp).expect("customer row"));
        }
    }
    Batches { tables: vec![(&CUSTOMERS, conv.customers.batch(&rows).expect("customers batch"))] }
}

/// Batches → one Parquet file per table in memory, snappy as the Parquet sink writes them.
/// Returns the bytes written.
pub fn write_parquet(batches: &Batches) -> usize {
    let mut total = 0;
    for (_, batch) in &batches.tables {
        let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
        let mut writer = ArrowWriter::try_new(Vec::new(), batch.schema(), Some(props)).expect("writer");
        writer.write(batch).expect("write");
        total += writer.into_inner().expect("close").len();
    }
    total
}

/// Where the time of one commit goes, in seconds.
#[derive(Debug, Default, Clone, Copy)]
pub struct CommitTimes {
    /// Opening the file and `ensure_tables` (DDL, join-key catalog, column checks).
    pub open_and_ensure: f64,
    /// `Tx::stage`: temp table + Arrow appender.
    pub stage: f64,
    /// `Tx::upsert`: stale-partition marks, delete by key, insert.
    pub upsert: f64,
    /// Transaction commit and closing the file (checkpoint).
    pub commit_and_close: f64,
}

/// One commit of the batches into the DuckDB file at `path`, as a sync commits a chunk:
/// tables ensured, each batch staged through the Arrow appender, then upserted.
pub fn commit_duckdb(conv: &Converters, path: &Path, batches: &[&Batches]) -> CommitTimes {
    let warehouse = Warehouse::new(path);
    let mut stats = WindowStats::default();
    let converter = |t: &Table| match t.name {
        "conversations" => &conv.conversations,
        "conversation_threads" => &conv.threads,
        "customers" => &conv.customers,
        other => panic!("no converter for {other}"),
    };
    let tables: Vec<(&'static Table, _)> = batches
        .iter()
        .flat_map(|b| b.tables.iter())
        .map(|(t, _)| (*t, converter(t).schema_columns().to_vec()))
        .collect();
    let started = Instant::now();
    let mut times = CommitTimes::default();
    let mut inner_done = started;
    warehouse
        .commit(&mut stats, |tx| {
            tx.ensure_tables(&tables)?;
            let mut t = Instant::now();
            times.open_and_ensure = (t - started).as_secs_f64();
            for b in batches {
                for (table, batch) in &b.tables {
                    let stage = tx.stage(table, vec![batch.clone()])?;
                    let staged = Instant::now();
                    times.stage += (staged - t).as_secs_f64();
                    tx.upsert(&stage)?;
                    t = Instant::now();
                    times.upsert += (t - staged).as_secs_f64();
                }
            }
            inner_done = t;
            Ok::<_, StoreError>(())
        })
        .expect("commit");
    times.commit_and_close = inner_done.elapsed().as_secs_f64();
    times
}

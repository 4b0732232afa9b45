//! Shared helpers for the integration tests: a simulator on 127.0.0.1, settings pointing at it,
//! and comparisons of what a sync wrote (DuckDB and Parquet) with the simulator's ground truth.
//! Tables, columns and keys come from the simulator's own copy of the data contract, never from
//! the product's declarations, so that a wrong declaration shows as a difference.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use arrow::array::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};
use helpscout_etl::cli::config::{self, FileConfig, Overrides, Settings};
use helpscout_etl::extract::{self, Quiet, RunStatus, SyncReport};
use helpscout_sim::contract::{self, ContractTable};
use helpscout_sim::{SimConfig, Simulator};
use serde_json::{Map, Value};

pub type Rows = BTreeMap<String, Value>;

pub async fn simulator(conversations: usize, seed: u64) -> Simulator {
    // A one-second rate window: the limit holds, but tests are not throttled to 400 a minute.
    Simulator::start(SimConfig { conversations, seed, rate_window: Duration::from_secs(1), ..Default::default() })
        .await
        .expect("simulator starts")
}

/// Settings for a sync of `sim` into `dir`, with quick retries and timeouts.
pub fn settings(sim: &Simulator, dir: &Path) -> Settings {
    settings_with(sim, dir, |_| {})
}

pub fn settings_with(sim: &Simulator, dir: &Path, tweak: impl FnOnce(&mut FileConfig)) -> Settings {
    let mut file = FileConfig::default();
    file.helpscout.client_id = Some(sim.config().client_id.clone());
    file.helpscout.client_secret = Some(sim.config().client_secret.clone());
    file.helpscout.base_url = Some(sim.base_url());
    file.helpscout.token_url = Some(sim.token_url());
    file.helpscout.request_timeout_secs = Some(2.0);
    file.helpscout.rate_window_secs = Some(sim.config().rate_window.as_secs_f64());
    file.helpscout.rate_limit_per_minute = Some(sim.config().rate_limit_per_minute);
    file.start_date = Some("2015-01-01".into());
    file.output.dir = Some(dir.to_path_buf());
    tweak(&mut file);
    let mut s = config::resolve(file, &|_| None, &Overrides::default()).expect("valid settings");
    s.sync.client.backoff_min = Duration::from_millis(10);
    s.sync.client.backoff_max = Duration::from_millis(100);
    s
}

pub async fn sync(settings: &Settings) -> SyncReport {
    extract::sync(&settings.outputs, &settings.sync, &Quiet).await.expect("sync runs")
}

pub async fn sync_ok(settings: &Settings) -> SyncReport {
    let report = sync(settings).await;
    assert_eq!(report.status, RunStatus::Success, "{report:#?}");
    report
}

pub fn duckdb_path(dir: &Path) -> PathBuf {
    dir.join("helpscout.duckdb")
}

pub fn connect(dir: &Path) -> duckdb::Connection {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).unwrap();
    duckdb::Connection::open_with_flags(duckdb_path(dir), config).expect("DuckDB file opens")
}

/// A table of the contract, by name.
pub fn contract_table(name: &str) -> &'static ContractTable {
    contract::table(name).unwrap_or_else(|| panic!("{name} is not a table of the contract"))
}

/// A table's contract columns (metadata columns left out), as JSON rows keyed by primary key.
pub fn duckdb_rows(dir: &Path, table: &str) -> Rows {
    let table = contract_table(table);
    let conn = connect(dir);
    let cols: Vec<String> = table.columns.iter().map(|c| format!("\"{c}\"")).collect();
    let mut stmt = conn.prepare(&format!("SELECT {} FROM \"{}\"", cols.join(", "), table.name)).unwrap();
    let batches: Vec<RecordBatch> = stmt.query_arrow([]).unwrap().collect();
    keyed(table, batches_to_json(&batches))
}

/// The same from the Parquet folder, every partition file read.
pub fn parquet_rows(dir: &Path, table: &str) -> Rows {
    let table = contract_table(table);
    let mut files = Vec::new();
    collect_parquet(&dir.join("parquet").join(table.name), &mut files);
    let mut batches = Vec::new();
    for file in files {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let names: Vec<usize> = table
                .columns
                .iter()
                .map(|c| batch.schema().index_of(c).expect("contract column in Parquet"))
                .collect();
            batches.push(batch.project(&names).unwrap());
        }
    }
    let rows = batches_to_json(&batches);
    let count = rows.len();
    let keyed = keyed(table, rows);
    assert_eq!(keyed.len(), count, "{}: duplicate primary keys in Parquet", table.name);
    keyed
}

fn collect_parquet(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_parquet(&p, out);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
}

fn batches_to_json(batches: &[RecordBatch]) -> Vec<Map<String, Value>> {
    let mut writer = arrow_json::ArrayWriter::new(Vec::new());
    for b in batches {
        writer.write(b).unwrap();
    }
    writer.finish().unwrap();
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return vec![];
    }
    serde_json::from_slice(&bytes).unwrap()
}

pub fn truth_rows(sim: &Simulator, table: &str) -> Rows {
    let rows = sim.ground_truth_table(table).expect("a truth for every table");
    keyed(contract_table(table), rows)
}

fn keyed(table: &ContractTable, rows: Vec<Map<String, Value>>) -> Rows {
    rows.into_iter()
        .map(|row| {
            let row = normalize(Value::Object(row));
            let key = table
                .primary_key
                .iter()
                .map(|k| row.get(*k).map(Value::to_string).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|");
            (key, row)
        })
        .collect()
}

/// One spelling for equal values: timestamps as `…Z` seconds, absent = null, an object whose
/// fields are all null = null.
pub fn normalize(v: Value) -> Value {
    match v {
        Value::String(s) => match DateTime::parse_from_rfc3339(&s) {
            Ok(t) => Value::String(t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Err(_) => Value::String(s),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        Value::Object(obj) => {
            let obj: Map<String, Value> = obj.into_iter().map(|(k, v)| (k, normalize(v))).filter(|(_, v)| !v.is_null()).collect();
            if obj.is_empty() { Value::Null } else { Value::Object(obj) }
        }
        other => other,
    }
}

/// Asserts that DuckDB and Parquet hold exactly the simulator's rows for every table.
pub fn assert_matches_truth(sim: &Simulator, dir: &Path) {
    if let Some(mismatch) = truth_mismatch(sim, dir) {
        panic!("{mismatch}");
    }
}

/// The first difference between the outputs and the truth, if any.
pub fn truth_mismatch(sim: &Simulator, dir: &Path) -> Option<String> {
    for table in contract::TABLES.iter().map(|t| t.name) {
        let truth = truth_rows(sim, table);
        let found = [("DuckDB", duckdb_rows(dir, table)), ("Parquet", parquet_rows(dir, table))];
        for (what, got) in found {
            if let Some(m) = difference(table, what, &truth, &got) {
                return Some(m);
            }
        }
    }
    None
}

pub fn difference(table: &str, what: &str, truth: &Rows, got: &Rows) -> Option<String> {
    let missing: Vec<&String> = truth.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !truth.contains_key(*k)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Some(format!(
            "{what} {table}: {} rows missing (e.g. {:?}), {} unexpected (e.g. {:?}); truth has {}, got {}",
            missing.len(),
            missing.iter().take(3).collect::<Vec<_>>(),
            extra.len(),
            extra.iter().take(3).collect::<Vec<_>>(),
            truth.len(),
            got.len()
        ));
    }
    truth
        .iter()
        .find(|(key, want)| &&got[*key] != want)
        .map(|(key, want)| format!("{what} {table} row {key} differs:\n  got   {}\n  truth {want}", got[key]))
}

pub fn query_i64(dir: &Path, sql: &str) -> i64 {
    connect(dir).query_row(sql, [], |r| r.get(0)).unwrap()
}

pub fn query_strings(dir: &Path, sql: &str) -> Vec<String> {
    let conn = connect(dir);
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().collect::<Result<_, _>>().unwrap()
}

// ---- The views: a database shaped like a sync's, and query results as text ----

/// Creates the given tables the way a sync does (all columns), the integration log, and the views.
pub fn prepare(path: &Path, names: &[&str]) -> Vec<helpscout_etl::store::ViewFileStatus> {
    let chosen: Vec<(&'static helpscout_etl::catalog::Table, Vec<helpscout_etl::catalog::SchemaColumn>)> = helpscout_etl::catalog::ALL
        .iter()
        .copied()
        .filter(|t| names.contains(&t.name))
        .map(|t| (t, helpscout_etl::convert::TableConverter::new(t, None).schema_columns().to_vec()))
        .collect();
    let mut stats = Default::default();
    helpscout_etl::store::Warehouse::new(path)
        .commit(&mut stats, |tx| {
            tx.ensure_tables(&chosen)?;
            tx.ensure_log()?;
            tx.install_views()
        })
        .map_err(|e: helpscout_etl::store::StoreError| e)
        .expect("views install")
}

pub fn all_tables() -> Vec<&'static str> {
    helpscout_sim::contract::TABLES.iter().map(|t| t.name).collect()
}

pub fn read_only(path: &Path) -> duckdb::Connection {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).unwrap();
    duckdb::Connection::open_with_flags(path, config).unwrap()
}

/// Rows of a query, every cell as text ('' for NULL), for compact comparisons.
pub fn rows(path: &Path, sql: &str) -> Vec<Vec<String>> {
    let conn = read_only(path);
    let wrapped = format!("SELECT COLUMNS(*)::VARCHAR FROM ({sql})");
    let mut stmt = conn.prepare(&wrapped).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    let mut out = Vec::new();
    let mut result = stmt.query([]).unwrap();
    let n = result.as_ref().unwrap().column_count();
    while let Some(row) = result.next().unwrap() {
        out.push((0..n).map(|i| row.get::<_, Option<String>>(i).unwrap().unwrap_or_default()).collect());
    }
    out
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `helpscout-etl report ARGS --duckdb PATH`: exit code, stdout, stderr.
pub fn report(path: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_helpscout-etl"))
        .arg("report")
        .args(args)
        .arg("--duckdb")
        .arg(path)
        .env_remove("HELPSCOUT_ETL_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The current snapshot of a Delta table under `lake` (a local folder), read with the Delta
/// kernel itself: every data file its log names, as JSON rows keyed by primary key. None when
/// there is no table.
pub fn delta_rows(lake: &Path, table: &str) -> Option<Rows> {
    let contract = contract_table(table);
    let (_version, files) = delta_snapshot(lake, table, None)?;
    let rows = parquet_files_rows(&files, &contract.columns.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    let count = rows.len();
    let keyed = keyed(contract, rows);
    assert_eq!(keyed.len(), count, "{table}: duplicate primary keys in the Delta snapshot");
    Some(keyed)
}

/// A Delta table's version and data files (local paths), latest or `at` a version.
pub fn delta_snapshot(lake: &Path, table: &str, at: Option<u64>) -> Option<(u64, Vec<PathBuf>)> {
    use delta_kernel_default_engine::DefaultEngineBuilder;
    use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
    let dir = lake.join(table);
    if !dir.join("_delta_log").exists() {
        return None;
    }
    let url = url::Url::from_directory_path(std::fs::canonicalize(&dir).unwrap()).unwrap();
    // The kernel blocks on a runtime of its own; a plain thread keeps it off the test's.
    std::thread::scope(|s| {
        s.spawn(|| {
            let executor = TokioMultiThreadExecutor::new_owned_runtime(Some(1), None).unwrap();
            let engine = DefaultEngineBuilder::new(std::sync::Arc::new(object_store::local::LocalFileSystem::new())).with_task_executor(std::sync::Arc::new(executor)).build();
            let mut builder = delta_kernel::Snapshot::builder_for(url.as_str());
            if let Some(v) = at {
                builder = builder.at_version(v);
            }
            let snapshot = builder.build(&engine).expect("the Delta table reads");
            let version = snapshot.version();
            let scan = snapshot.scan_builder().build().unwrap();
            let mut paths: Vec<String> = Vec::new();
            for item in scan.scan_metadata(&engine).unwrap() {
                fn push(out: &mut Vec<String>, f: delta_kernel::scan::state::ScanFile) {
                    out.push(f.path);
                }
                paths = item.unwrap().visit_scan_files(paths, push).unwrap();
            }
            let files = paths.iter().map(|p| url.join(p).unwrap().to_file_path().unwrap()).collect();
            Some((version, files))
        })
        .join()
        .unwrap()
    })
}

/// The rows of Parquet files, projected to `columns`.
pub fn parquet_files_rows(files: &[PathBuf], columns: &[String]) -> Vec<Map<String, Value>> {
    let mut batches = Vec::new();
    for file in files {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(file).unwrap()).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let idx: Vec<usize> = columns.iter().map(|c| batch.schema().index_of(c).expect("contract column in the file")).collect();
            batches.push(batch.project(&idx).unwrap());
        }
    }
    batches_to_json(&batches)
}

/// JSON rows keyed by the contract's primary key of `table`.
pub fn keyed_by_contract(table: &str, rows: Vec<Map<String, Value>>) -> Rows {
    keyed(contract_table(table), rows)
}

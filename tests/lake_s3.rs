//! The lake on S3-compatible storage: moto's S3 server on 127.0.0.1 (installed from PyPI into
//! the build folder by the test itself), which honours conditional writes as S3 does. A sync to
//! Delta and to hive Parquet in a bucket; the objects read back equal the DuckDB tables; a
//! second writer is stopped; the credentials appear nowhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::*;
use object_store::{ObjectStore, ObjectStoreExt};

/// moto's S3 server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Moto {
        // Installed once (the tests of this file start in parallel), into the build folder.
        static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        let server = INSTALLED.get_or_init(|| {
            let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("moto-venv");
            let server = venv.join("bin/moto_server");
            if !server.exists() {
                assert!(Command::new("python3").args(["-m", "venv", "--clear"]).arg(&venv).status().unwrap().success(), "python3 -m venv");
                let pip = Command::new(venv.join("bin/pip")).args(["install", "-q", "moto[server]"]).status().unwrap();
                assert!(pip.success(), "pip install moto[server]");
            }
            server
        });
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(server).args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        // Ready when it answers a request (it takes a second or two to import).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Moto { child, endpoint }
    }

    async fn bucket(&self, name: &str) {
        let status = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.unwrap().status();
        assert!(status.is_success(), "creating the bucket: {status}");
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "AKIAHELPSCOUTTEST".into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
        ]
    }

    fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id("AKIAHELPSCOUTTEST")
            .with_secret_access_key(SECRET)
            .build()
            .unwrap();
        Arc::new(s3)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SECRET: &str = "s3cr3t-never-shown-0123456789";

fn config(sim: &helpscout_sim::Simulator, dir: &Path, lake: &str, uri: &str) -> PathBuf {
    let path = dir.join(format!("{lake}.toml"));
    std::fs::write(
        &path,
        format!(
            "start_date = \"2015-01-01\"\n[helpscout]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nbase_url = \"{}\"\ntoken_url = \"{}\"\nrequest_timeout_secs = 2\nrate_window_secs = {}\n[output]\ndir = \"{}\"\nlake = \"{lake}\"\nlake_uri = \"{uri}\"\n",
            sim.config().client_id,
            sim.config().client_secret,
            sim.base_url(),
            sim.token_url(),
            sim.config().rate_window.as_secs_f64(),
            dir.join(lake).display()
        ),
    )
    .unwrap();
    path
}

fn run(moto: &Moto, args: &[&str], config: &Path) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_helpscout-etl"));
    c.args(args).arg("--config").arg(config).env_remove("HELPSCOUT_CLIENT_ID").env_remove("HELPSCOUT_CLIENT_SECRET").stdin(Stdio::null());
    for (k, v) in moto.env() {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Every object under `prefix` of the bucket, with its bytes.
async fn objects(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<(String, bytes::Bytes)> {
    use futures::TryStreamExt;
    let listed: Vec<object_store::ObjectMeta> = store.list(Some(&object_store::path::Path::from(prefix))).try_collect().await.unwrap();
    let mut out = Vec::new();
    for meta in listed {
        let body = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
        out.push((meta.location.to_string(), body));
    }
    out
}

fn parquet_bytes_rows(files: &[bytes::Bytes], columns: &[String]) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let p = dir.path().join(format!("{i}.parquet"));
            std::fs::write(&p, b).unwrap();
            p
        })
        .collect();
    parquet_files_rows(&paths, columns)
}

/// The data files of a Delta table's current snapshot in the bucket, read with the kernel.
fn delta_files_in(store: Arc<dyn ObjectStore>, url: &str) -> Vec<String> {
    use delta_kernel_default_engine::DefaultEngineBuilder;
    use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
    std::thread::scope(|s| {
        s.spawn(|| {
            let executor = TokioMultiThreadExecutor::new_owned_runtime(Some(1), None).unwrap();
            let engine = DefaultEngineBuilder::new(store).with_task_executor(Arc::new(executor)).build();
            let snapshot = delta_kernel::Snapshot::builder_for(url).build(&engine).expect("the Delta table reads");
            let mut paths: Vec<String> = Vec::new();
            for item in snapshot.scan_builder().build().unwrap().scan_metadata(&engine).unwrap() {
                fn push(out: &mut Vec<String>, f: delta_kernel::scan::state::ScanFile) {
                    out.push(f.path);
                }
                paths = item.unwrap().visit_scan_files(paths, push).unwrap();
            }
            paths
        })
        .join()
        .unwrap()
    })
}

fn keyed_rows(table: &str, rows: Vec<serde_json::Map<String, serde_json::Value>>) -> Rows {
    let n = rows.len();
    let keyed = keyed_by_contract(table, rows);
    assert_eq!(keyed.len(), n, "{table}: a key twice");
    keyed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_and_hive_lakes_in_a_bucket_hold_the_tables_and_never_the_credentials() {
    let moto = Moto::start();
    moto.bucket("lake").await;
    let store = moto.store("lake");
    let sim = simulator(80, 31).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Delta in s3://lake/delta, twice (a backfill, then a refresh after changes).
    let delta = config(&sim, dir, "delta", "s3://lake/delta");
    for round in 0..2 {
        let o = run(&moto, &["sync", "--json"], &delta);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for out in [&o.stdout, &o.stderr] {
            assert!(!String::from_utf8_lossy(out).contains(SECRET), "the secret key in the output");
        }
        for table in ["conversations", "conversation_threads", "customers", "users", "helpscout_log"] {
            let url = format!("s3://lake/delta/{table}/");
            let files = delta_files_in(Arc::clone(&store), &url);
            let mut bodies = Vec::new();
            for f in files {
                let path = object_store::path::Path::from(format!("delta/{table}/{}", percent_decode(&f)));
                bodies.push(store.get(&path).await.unwrap().bytes().await.unwrap());
            }
            if table == "helpscout_log" {
                let n = parquet_bytes_rows(&bodies, &["event_id".into()]).len() as i64;
                assert_eq!(n, query_i64(&dir.join("delta"), "SELECT count(*) FROM helpscout_log"));
                continue;
            }
            let columns: Vec<String> = contract_table(table).columns.iter().map(|c| c.to_string()).collect();
            let got = keyed_rows(table, parquet_bytes_rows(&bodies, &columns));
            if let Some(m) = difference(table, "Delta on S3", &duckdb_rows(&dir.join("delta"), table), &got) {
                panic!("round {round}: {m}");
            }
        }
        sim.advance_clock(chrono::Duration::hours(2));
        sim.mutate(&helpscout_sim::MutationPlan { seed: 9, replies: 10, new_conversations: 3, deletions: 1, merges: 1, ..Default::default() });
    }

    // Hive Parquet in s3://lake/hive: the folder layout readers list, the same rows.
    let hive = config(&sim, dir, "parquet", "s3://lake/hive");
    let o = run(&moto, &["sync"], &hive);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = objects(&store, "hive/conversations").await;
    assert!(listed.iter().all(|(k, _)| k.starts_with("hive/conversations/created_at_month=") && k.ends_with(".parquet")), "{:?}", listed.iter().map(|l| &l.0).collect::<Vec<_>>());
    let columns: Vec<String> = contract_table("conversations").columns.iter().map(|c| c.to_string()).collect();
    let got = keyed_rows("conversations", parquet_bytes_rows(&listed.iter().map(|l| l.1.clone()).collect::<Vec<_>>(), &columns));
    assert!(difference("conversations", "Parquet on S3", &truth_rows(&sim, "conversations"), &got).is_none());
    let status = run(&moto, &["status"], &hive);
    assert!(String::from_utf8_lossy(&status.stdout).contains("s3://lake/hive"));

    // The secret is in no file the tool wrote, and in no object of the bucket.
    for file in walk(dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret key in {}", file.display());
    }
    for (key, body) in objects(&store, "").await {
        assert!(!body.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()), "the secret key in s3://lake/{key}");
    }

    // Plain http to another machine is refused before anything is sent.
    let mut c = Command::new(env!("CARGO_BIN_EXE_helpscout-etl"));
    c.args(["sync", "--config"]).arg(&delta).env("AWS_ACCESS_KEY_ID", "AKIAHELPSCOUTTEST").env("AWS_SECRET_ACCESS_KEY", SECRET).env("AWS_ENDPOINT_URL", "http://192.0.2.1:9000");
    let refused = c.output().unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && err.contains("loopback") && !err.contains(SECRET), "{err}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_on_the_same_bucket_is_stopped_and_the_table_stays_whole() {
    use helpscout_etl::store::lake::{FIRST, Partition, pieces};
    use helpscout_etl::store::{Lake, LakeFormat, LakeLocation, LakeSpec};
    let moto = Moto::start();
    moto.bucket("race").await;
    let env = moto.env();
    let get = move |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
    let spec = LakeSpec { format: LakeFormat::Delta, location: LakeLocation::S3 { bucket: "race".into(), prefix: "lake".into() } };
    let (a, b) = (Lake::open(&spec, &get).unwrap(), Lake::open(&spec, &get).unwrap());
    // Hundreds of requests from inside one task (as a sync's export makes them): each waits on
    // the lake's runtime without spending this task's cooperative budget (it used to spin).
    for i in 0..300 {
        a.files().put(&format!("budget/{i}"), vec![1]).unwrap();
    }
    assert_eq!(a.files().list("budget").unwrap().len(), 300);
    // An object is read back whole (a refresh patches a hive file from it); a missing one is None.
    assert_eq!(a.files().get("budget/7").unwrap().as_deref(), Some(&[1u8][..]));
    assert_eq!(a.files().get("budget/none").unwrap(), None);
    a.files().delete_prefix("budget").unwrap();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, false)]));
    let rows = |n: i64| arrow::array::RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(arrow::array::Int64Array::from_iter_values(0..n))]).unwrap();
    let part = Partition { table: "t".into(), by: None };
    let mut first = a.publisher("t", None, &schema, false).unwrap();
    first.replace(&part, FIRST, None, pieces(vec![(FIRST, rows(3))], None)).unwrap();
    let v = first.finish().unwrap().unwrap();
    let mut one = a.publisher("t", None, &schema, false).unwrap();
    let mut other = b.publisher("t", None, &schema, false).unwrap();
    one.replace(&part, FIRST, None, pieces(vec![(FIRST, rows(4))], None)).unwrap();
    other.replace(&part, FIRST, None, pieces(vec![(FIRST, rows(5))], None)).unwrap();
    assert_eq!(other.finish().unwrap(), Some(v + 1));
    let err = one.finish().unwrap_err().to_string();
    assert!(err.contains("Another writer committed version") && err.contains("only one helpscout-etl"), "{err}");
    let files = delta_files_in(moto.store("race"), "s3://race/lake/t/");
    assert_eq!(files.len(), 1, "the winner's one file");
    let store = moto.store("race");
    let body = store.get(&object_store::path::Path::from(format!("lake/t/{}", files[0]))).await.unwrap().bytes().await.unwrap();
    assert_eq!(parquet_bytes_rows(&[body], &["id".into()]).len(), 5);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    url::Url::parse(&format!("s3://x/{s}")).ok().and_then(|u| object_store::path::Path::from_url_path(u.path()).ok()).map(|p| p.to_string()).unwrap_or_else(|| s.to_string())
}

/// How many objects are under `prefix` of the bucket.
fn count_objects(store: &Arc<dyn ObjectStore>, prefix: &str) -> usize {
    use futures::TryStreamExt;
    let store = Arc::clone(store);
    let prefix = object_store::path::Path::from(prefix);
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async { store.list(Some(&prefix)).try_collect::<Vec<_>>().await.map(|v| v.len()).unwrap_or(0) })
        })
        .join()
        .unwrap()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_commits_to_a_bucket_then_a_rerun_converges() {
    let moto = Moto::start();
    moto.bucket("kill").await;
    let store = moto.store("kill");
    let sim = simulator(100, 32).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = config(&sim, dir, "delta", "s3://kill/lake");
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap() + "[sync]\nchunk_rows = 20\n").unwrap();
    // A backfill into another prefix says how many objects a whole run leaves.
    let probe = dir.join("probe.toml");
    std::fs::write(&probe, std::fs::read_to_string(&config).unwrap().replace("s3://kill/lake", "s3://kill/probe").replace(&dir.join("delta").display().to_string(), &dir.join("probe").display().to_string())).unwrap();
    assert!(run(&moto, &["sync", "--quiet"], &probe).status.success());
    let full = count_objects(&store, "probe");
    assert!(full > 40, "{full} objects");
    let mut killed = 0;
    for kill_at in (1..=5).map(|i| full * i / 6) {
        let mut c = Command::new(env!("CARGO_BIN_EXE_helpscout-etl"));
        c.args(["sync", "--quiet", "--config"]).arg(&config).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        for (k, v) in moto.env() {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if count_objects(&store, "lake") >= kill_at {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                break;
            }
        }
        // The latest snapshot of every table there reads and holds no row twice.
        for table in ["conversations", "conversation_threads", "customers"] {
            if count_objects(&store, &format!("lake/{table}/_delta_log")) > 0 {
                let files = delta_files_in(Arc::clone(&store), &format!("s3://kill/lake/{table}/"));
                let mut bodies = Vec::new();
                for f in files {
                    bodies.push(store.get(&object_store::path::Path::from(format!("lake/{table}/{}", percent_decode(&f)))).await.unwrap().bytes().await.unwrap());
                }
                let columns: Vec<String> = contract_table(table).columns.iter().map(|c| c.to_string()).collect();
                let truth = truth_rows(&sim, table);
                assert!(keyed_rows(table, parquet_bytes_rows(&bodies, &columns)).keys().all(|k| truth.contains_key(k)), "after a kill at {kill_at}: {table}");
            }
        }
    }
    assert!(killed >= 3, "most runs were killed mid-way ({killed})");
    let o = run(&moto, &["sync", "--quiet"], &config);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for table in ["conversations", "conversation_threads", "customers", "users"] {
        let files = delta_files_in(Arc::clone(&store), &format!("s3://kill/lake/{table}/"));
        let mut bodies = Vec::new();
        for f in files {
            bodies.push(store.get(&object_store::path::Path::from(format!("lake/{table}/{}", percent_decode(&f)))).await.unwrap().bytes().await.unwrap());
        }
        let columns: Vec<String> = contract_table(table).columns.iter().map(|c| c.to_string()).collect();
        let got = keyed_rows(table, parquet_bytes_rows(&bodies, &columns));
        if let Some(m) = difference(table, "Delta on S3", &truth_rows(&sim, table), &got) {
            panic!("{m}");
        }
    }
    sim.stop().await;
}

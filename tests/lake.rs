//! The lake as Delta Lake tables on local disk: after a backfill, a refresh with deletions and
//! merges, a switch of lakes and a vacuum, each table's Delta snapshot (read with the kernel,
//! not with the product's code) holds exactly the simulator's truth, like DuckDB.

mod common;

use std::path::Path;

use common::*;
use helpscout_sim::MutationPlan;

fn delta_settings(sim: &helpscout_sim::Simulator, dir: &Path) -> helpscout_etl::cli::config::Settings {
    settings_with(sim, dir, |f| f.output.lake = Some("delta".into()))
}

/// Every table of the contract: its Delta snapshot equals the truth (and so DuckDB's rows).
fn assert_delta_matches_truth(sim: &helpscout_sim::Simulator, dir: &Path) {
    for table in helpscout_sim::contract::TABLES.iter().map(|t| t.name) {
        let truth = truth_rows(sim, table);
        let delta = delta_rows(&dir.join("delta"), table).unwrap_or_else(|| panic!("{table} has a Delta table"));
        if let Some(m) = difference(table, "Delta", &truth, &delta) {
            panic!("{m}");
        }
        if let Some(m) = difference(table, "DuckDB", &truth, &duckdb_rows(dir, table)) {
            panic!("{m}");
        }
    }
}

/// The version DuckDB records for a table's Delta data.
fn recorded_version(dir: &Path, table: &str) -> i64 {
    query_i64(dir, &format!("SELECT delta_version FROM _helpscout_lake_tables WHERE table_name = '{table}'"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_delta_snapshot_equals_the_tables_after_a_backfill_a_refresh_and_a_vacuum() {
    let sim = simulator(150, 21).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let settings = delta_settings(&sim, dir);
    let report = sync_ok(&settings).await;
    assert_eq!(report.lake, "delta");
    assert_delta_matches_truth(&sim, dir);
    let lake = dir.join("delta");
    assert!(!dir.join("parquet").exists(), "no hive folder beside a Delta lake");
    let (first, _) = delta_snapshot(&lake, "conversations", None).unwrap();
    assert_eq!(recorded_version(dir, "conversations"), first as i64, "DuckDB records the version holding its rows");
    // The integration log is a Delta table too, with every event.
    let log_files = delta_snapshot(&lake, "helpscout_log", None).unwrap().1;
    let events = parquet_files_rows(&log_files, &["event_id".to_string()]).len() as i64;
    assert_eq!(events, query_i64(dir, "SELECT count(*) FROM helpscout_log"));

    // A refresh with replies, new conversations, deletions and merges: new versions, and the
    // previous snapshot is still there to travel to.
    sim.advance_clock(chrono::Duration::hours(2));
    sim.mutate(&MutationPlan { seed: 5, new_conversations: 6, replies: 12, workflow_changes: 5, deletions: 2, merges: 2, ..Default::default() });
    sync_ok(&settings).await;
    assert_delta_matches_truth(&sim, dir);
    let (latest, now_files) = delta_snapshot(&lake, "conversations", None).unwrap();
    assert!(latest > first, "the refresh committed new versions ({first} → {latest})");
    assert_eq!(recorded_version(dir, "conversations"), latest as i64);
    let (_, then_files) = delta_snapshot(&lake, "conversations", Some(first)).unwrap();
    let then_rows = parquet_files_rows(&then_files, &["id".to_string()]).len();
    let now_rows = parquet_files_rows(&now_files, &["id".to_string()]).len();
    assert_eq!(now_rows as i64, query_i64(dir, "SELECT count(*) FROM conversations"));
    assert_eq!(then_rows, 150, "time travel to the backfill's version gives its rows");
    assert!(then_files.iter().any(|f| !now_files.contains(f)), "replaced files stay for older snapshots");
    // Versions beyond the checkpoint interval leave a checkpoint for readers.
    let checkpoints = std::fs::read_dir(lake.join("helpscout_log/_delta_log")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().contains("checkpoint")).count();
    let log_versions = delta_snapshot(&lake, "helpscout_log", None).unwrap().0;
    assert!(log_versions < 10 || checkpoints > 0, "version {log_versions} and no checkpoint");

    // Vacuum within the retention deletes nothing; with none, the replaced files go, and the
    // snapshot still reads whole.
    let bin = env!("CARGO_BIN_EXE_helpscout-etl");
    let vacuum = |retain: &str| {
        let o = std::process::Command::new(bin).args(["vacuum", "--json", "--output"]).arg(dir).args(["--lake", "delta", "--retain", retain]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let done: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        done.as_array().unwrap().iter().map(|t| t["files_deleted"].as_u64().unwrap()).sum::<u64>()
    };
    assert_eq!(vacuum("7d"), 0);
    let gone = vacuum("0s");
    assert!(gone > 0, "the files replaced by the refresh go");
    assert!(then_files.iter().any(|f| !f.exists()));
    assert!(now_files.iter().all(|f| f.exists()), "the current snapshot's files stay");
    assert_delta_matches_truth(&sim, dir);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_lake_gets_every_row_and_the_old_one_is_left_as_it_was() {
    let sim = simulator(60, 22).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // A hive lake first, then the same outputs switched to Delta: nothing changed upstream,
    // yet the Delta tables hold everything.
    sync_ok(&settings(&sim, dir)).await;
    assert_matches_truth(&sim, dir);
    sync_ok(&delta_settings(&sim, dir)).await;
    assert_delta_matches_truth(&sim, dir);
    sim.stop().await;
}

/// Files under a folder, at any depth.
fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries.flatten().map(|e| if e.path().is_dir() { count_files(&e.path()) } else { 1 }).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delta_commits_then_a_rerun_converges_and_no_snapshot_is_ever_broken() {
    let sim = simulator(120, 23).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = dir.join("out");
    let config = dir.join("helpscout.toml");
    std::fs::write(
        &config,
        format!(
            "start_date = \"2015-01-01\"\n[helpscout]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nbase_url = \"{}\"\ntoken_url = \"{}\"\nrequest_timeout_secs = 2\nrate_window_secs = {}\n[output]\ndir = \"{}\"\nlake = \"delta\"\n[sync]\nchunk_rows = 20\n",
            sim.config().client_id,
            sim.config().client_secret,
            sim.base_url(),
            sim.token_url(),
            sim.config().rate_window.as_secs_f64(),
            out.display()
        ),
    )
    .unwrap();
    let run = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_helpscout-etl"));
        c.args(["sync", "--quiet", "--config"]).arg(&config).env_remove("HELPSCOUT_CLIENT_ID").env_remove("HELPSCOUT_CLIENT_SECRET");
        c.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        c
    };
    // How many lake files an uninterrupted backfill leaves (in a folder of its own).
    let probe = tempfile::tempdir().unwrap();
    let probe_config = probe.path().join("p.toml");
    std::fs::write(&probe_config, std::fs::read_to_string(&config).unwrap().replace(&out.display().to_string(), &probe.path().join("out").display().to_string())).unwrap();
    assert!(std::process::Command::new(env!("CARGO_BIN_EXE_helpscout-etl")).args(["sync", "--quiet", "--config"]).arg(&probe_config).stdout(std::process::Stdio::null()).status().unwrap().success());
    let full = count_files(&probe.path().join("out/delta"));
    assert!(full > 40, "a backfill writes many lake files ({full})");
    let mut killed = 0;
    for kill_at in (1..=7).map(|i| full * i / 8) {
        let mut child = run().spawn().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if count_files(&out.join("delta")) >= kill_at {
                child.kill().unwrap(); // SIGKILL, wherever the export is
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::yield_now();
        }
        // Every table's latest snapshot reads, holds no key twice and no row the account lacks.
        for table in helpscout_sim::contract::TABLES.iter().map(|t| t.name) {
            if let Some(rows) = delta_rows(&out.join("delta"), table) {
                let truth = truth_rows(&sim, table);
                assert!(rows.keys().all(|k| truth.contains_key(k)), "after a kill at {kill_at} files: {table} holds a row the account lacks");
            }
        }
    }
    assert!(killed >= 4, "most runs were killed mid-way ({killed})");
    assert!(run().status().unwrap().success());
    assert_delta_matches_truth(&sim, &out);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_at_once_on_one_lake_end_with_the_tables_whole_and_a_conflict_told_in_one_sentence() {
    let sim = simulator(100, 24).await;
    let tmp = tempfile::tempdir().unwrap();
    let lake = tmp.path().join("shared-lake");
    // Two output folders (two DuckDB files, so no lock keeps them apart) writing one lake.
    let configs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let path = tmp.path().join(format!("{name}.toml"));
            std::fs::write(
                &path,
                format!(
                    "start_date = \"2015-01-01\"\n[helpscout]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nbase_url = \"{}\"\ntoken_url = \"{}\"\nrequest_timeout_secs = 2\nrate_window_secs = {}\n[output]\ndir = \"{}\"\nlake = \"delta\"\nlake_uri = \"{}\"\n[sync]\nchunk_rows = 20\n",
                    sim.config().client_id,
                    sim.config().client_secret,
                    sim.base_url(),
                    sim.token_url(),
                    sim.config().rate_window.as_secs_f64(),
                    tmp.path().join(name).display(),
                    lake.display()
                ),
            )
            .unwrap();
            path
        })
        .collect();
    let sync = |config: &Path| std::process::Command::new(env!("CARGO_BIN_EXE_helpscout-etl")).args(["sync", "--quiet", "--config"]).arg(config).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let children = [sync(&configs[0]), sync(&configs[1])];
    let mut conflicts = 0;
    for (child, config) in children.into_iter().zip(&configs) {
        let o = child.wait_with_output().unwrap();
        if !o.status.success() {
            // The run's report (stdout) ends with the one sentence.
            let report = String::from_utf8_lossy(&o.stdout);
            let last = report.lines().last().unwrap_or_default();
            assert!(last.starts_with("error: Another writer committed version") && last.contains("only one helpscout-etl may write a lake") && !report.contains("panicked"), "exit {:?}: {report}", o.status);
            conflicts += 1;
            // The run that was stopped is run again, and completes.
            assert!(sync(config).wait().unwrap().success());
        }
    }
    // Whoever won each commit, the tables are whole: every snapshot equals the truth.
    for table in helpscout_sim::contract::TABLES.iter().map(|t| t.name) {
        let truth = truth_rows(&sim, table);
        let delta = delta_rows(&lake, table).unwrap();
        if let Some(m) = difference(table, &format!("Delta after two writers ({conflicts} stopped)"), &truth, &delta) {
            panic!("{m}");
        }
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_rows_written_or_updated_by_a_delivery_after_the_sync_reach_the_lake() {
    use helpscout_etl::deliver::{self, Delivery, FormSettings, PushSettings, intake};
    let sim = simulator(20, 25).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let settings = delta_settings(&sim, dir);
    sync_ok(&settings).await;
    let mailbox = sim.ground_truth_table("mailboxes").unwrap()[0]["id"].as_i64().unwrap();
    let form = FormSettings { name: "contact".into(), secret: Some("s3cret-s3cret-s3cret".into()), mailbox_id: mailbox, tags: vec![], imported: true, auto_reply: false };
    let push = PushSettings { forms: [("contact".to_string(), form)].into(), recheck_after: std::time::Duration::ZERO, ..Default::default() };
    let mut outbox = helpscout_etl::store::Outbox::open(settings.outputs.outbox()).unwrap();
    for (id, email) in [("s-1", "jane@example.com"), ("s-2", "not an email")] {
        let fields = [("submission_id", id), ("email", email), ("subject", "Hello"), ("message", "Hi")];
        let (s, given) = intake::submission("contact", fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap();
        deliver::receive(&mut outbox, &push, &s, given).unwrap();
    }
    drop(outbox);
    let client = helpscout_etl::api::Client::new(settings.sync.client.clone()).unwrap();
    Delivery::new(&settings.outputs, client, &push).unwrap().run(std::time::Duration::from_secs(10)).await.unwrap();
    // Each row as DuckDB holds it (Pending rows updated to Success or Failed) is in the lake's
    // log, once, without another sync.
    let columns = ["event_id".to_string(), "status".to_string()];
    let files = delta_snapshot(&dir.join("delta"), "helpscout_log", None).unwrap().1;
    let mut lake: Vec<String> = parquet_files_rows(&files, &columns).iter().map(|r| format!("{}:{}", r["event_id"], r["status"])).collect();
    lake.sort();
    let mut held: Vec<String> = rows(&duckdb_path(dir), "SELECT event_id, status FROM helpscout_log").into_iter().map(|r| format!("{}:\"{}\"", r[0], r[1])).collect();
    held.sort();
    assert_eq!(lake, held);
    assert!(held.iter().any(|r| r.ends_with(":\"Failed\"")) && held.iter().any(|r| r.ends_with(":\"Success\"")), "{held:?}");
    sim.stop().await;
}

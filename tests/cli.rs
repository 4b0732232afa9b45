//! The command line end to end, in temporary folders, against the simulator on 127.0.0.1:
//! bad input, a second concurrent sync, SIGKILL at arbitrary points, token rotation,
//! `status` and `reset`.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use helpscout_sim::{FaultKind, FaultPlan, FaultRule, SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_helpscout-etl");

fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("HELPSCOUT_CLIENT_ID")
        .env_remove("HELPSCOUT_CLIENT_SECRET")
        .env_remove("HELPSCOUT_REFRESH_TOKEN")
        .env_remove("HELPSCOUT_ETL_CONFIG")
        .stdin(Stdio::null());
    c
}

/// A configuration file for a sync of `sim` into `dir/out`.
fn write_config(sim: &Simulator, dir: &Path, extra: &str) -> std::path::PathBuf {
    write_config_as(sim, dir, "helpscout.toml", extra)
}

fn write_config_as(sim: &Simulator, dir: &Path, name: &str, extra: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            r#"start_date = "2015-01-01"
[helpscout]
client_id = "{}"
client_secret = "{}"
base_url = "{}"
token_url = "{}"
request_timeout_secs = 2
rate_window_secs = {}
[output]
dir = "{}"
{extra}"#,
            sim.config().client_id,
            sim.config().client_secret,
            sim.base_url(),
            sim.token_url(),
            sim.config().rate_window.as_secs_f64(),
            dir.join("out").display()
        ),
    )
    .unwrap();
    path
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Bad input: a non-zero exit and one clear sentence, never a panic.
fn assert_clear_failure(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{needle:?} in {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_one_clear_sentence_and_a_non_zero_exit() {
    let sim = simulator(20, 1).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = write_config(&sim, dir, "");
    let sync = |args: &[&str]| command(dir).arg("sync").args(args).output().unwrap();

    assert_clear_failure(&sync(&["--config", "missing.toml"]), 2, "Cannot read the configuration file");
    std::fs::write(dir.join("broken.toml"), "[helpscout\nclient_id = ").unwrap();
    assert_clear_failure(&sync(&["--config", "broken.toml"]), 2, "is not valid TOML");
    assert_clear_failure(&sync(&["--output", "x"]), 2, "No Help Scout credentials");
    let cfg = config.to_str().unwrap();
    assert_clear_failure(&sync(&["--config", cfg, "--tables", "tickets"]), 2, "Unknown table \"tickets\"");
    assert_clear_failure(&sync(&["--config", cfg, "--start-date", "2024-13-45"]), 2, "is not a date");
    let with_column = write_config_as(&sim, dir, "column.toml", "[tables.users]\ncolumns = [\"shoe_size\"]\n");
    assert_clear_failure(&sync(&["--config", with_column.to_str().unwrap()]), 2, "has no column \"shoe_size\"");

    let wrong = dir.join("wrong.toml");
    std::fs::write(&wrong, std::fs::read_to_string(&config).unwrap().replace(&sim.config().client_secret, "not-the-secret")).unwrap();
    let o = sync(&["--config", wrong.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Authentication failed"), "{out}");
    assert!(!out.contains("not-the-secret") && !stderr(&o).contains("not-the-secret"), "the secret is never shown");

    let o = sync(&["--config", cfg, "--base-url", "http://127.0.0.1:9/v2", "--token-url", "http://127.0.0.1:9/v2/oauth2/token"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("error: Cannot reach the Help Scout API at 127.0.0.1:9 (POST /v2/oauth2/token)"), "names the host and port: {out}");

    std::fs::write(dir.join("a-file"), "x").unwrap();
    assert_clear_failure(&sync(&["--config", cfg, "--output", "a-file/out"]), 1, "choose a writable");

    std::fs::create_dir_all(dir.join("notdb")).unwrap();
    std::fs::write(dir.join("notdb/helpscout.duckdb"), "this is not a database, just text ".repeat(200)).unwrap();
    assert_clear_failure(&sync(&["--config", cfg, "--output", "notdb"]), 1, "is not a DuckDB database");

    let o = command(dir).args(["sync", "--no-such-flag"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_sync_stops_at_once() {
    let sim = simulator(20, 2).await;
    // The first sync hangs on its first list long enough for the second to start.
    sim.set_faults(FaultPlan {
        rules: vec![FaultRule { path_prefix: Some("/v2/mailboxes".into()), method: None, after: 0, count: 1, kind: FaultKind::Delay(1_500) }],
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(&sim, tmp.path(), "");
    let mut first = command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).spawn().unwrap();
    // Wait until the first sync's mailboxes request has arrived: it took the lock before any
    // request, and it is now held in the delay. (Probing the lock itself would take it for a
    // moment, and the first sync could meet the probe and stop.)
    let started = Instant::now();
    while !sim.request_journal().iter().any(|r| r.starts_with("/v2/mailboxes")) {
        assert!(started.elapsed() < Duration::from_secs(30), "the first sync never asked for mailboxes");
        assert!(first.try_wait().unwrap().is_none(), "the first sync ended before its first list");
        std::thread::yield_now();
    }
    let second = command(tmp.path()).args(["sync", "--config"]).arg(&config).output().unwrap();
    assert_clear_failure(&second, 1, "Another sync is already writing");
    assert!(first.wait().unwrap().success());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_point_then_a_rerun_converges_and_no_bookmark_runs_ahead() {
    let sim = simulator(120, 13).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(&sim, tmp.path(), "[sync]\nchunk_rows = 30\n");
    let out = tmp.path().join("out");
    // How many requests an uninterrupted backfill makes (into a separate folder).
    let probe = write_config_as(&sim, tmp.path(), "probe.toml", "[sync]\nchunk_rows = 30\n")
        .to_string_lossy()
        .into_owned();
    std::fs::write(&probe, std::fs::read_to_string(&probe).unwrap().replace(&out.display().to_string(), &tmp.path().join("probe-out").display().to_string())).unwrap();
    sim.reset_request_stats();
    assert!(command(tmp.path()).args(["sync", "--quiet", "--config", &probe]).output().unwrap().status.success());
    let full_run = sim.request_stats().total;
    assert!(full_run > 20, "a backfill of 120 conversations takes a few dozen requests ({full_run})");
    let mut killed = 0;
    let mut bookmarked_seen = std::collections::BTreeSet::new();
    // Kill points spread over a backfill by the number of API requests served so far.
    for kill_at in (1..=8).map(|i| (full_run * i / 9).max(1)) {
        sim.reset_request_stats();
        let mut child = command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if sim.request_stats().total >= kill_at {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::yield_now();
        }
        // Whatever was committed is consistent: a moved bookmark means its table is complete.
        // Every table with a bookmark row (a cursor, or the marker of a table read whole) was
        // committed complete.
        if out.join("helpscout.duckdb").exists()
            && query_i64(&out, "SELECT count(*) FROM information_schema.tables WHERE table_name = '_helpscout_state'") == 1
        {
            for name in query_strings(&out, "SELECT DISTINCT table_name FROM _helpscout_state ORDER BY 1") {
                let truth = truth_rows(&sim, &name);
                let held = duckdb_rows(&out, &name);
                assert!(difference(&name, "DuckDB", &truth, &held).is_none(), "after a kill at request {kill_at}: {name} is bookmarked but incomplete");
                bookmarked_seen.insert(name);
            }
        }
    }
    assert!(killed >= 6, "most runs were killed mid-way ({killed})");
    assert!(bookmarked_seen.len() >= 3, "kills fell between tables' commits: {bookmarked_seen:?}");
    let o = command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_matches_truth(&sim, &out);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_refresh_tokens_are_kept_in_our_state_never_in_the_users_config() {
    let sim = Simulator::start(SimConfig { conversations: 10, seed: 4, rate_window: Duration::from_secs(1), ..Default::default() }).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(&sim, tmp.path(), "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[helpscout]\n",
        &format!("[helpscout]\nrefresh_token = \"{}\"\n", sim.config().refresh_token),
    );
    std::fs::write(&config, &text).unwrap();
    for _ in 0..3 {
        // Each run refreshes: the token it used dies, the next run needs the rotated one.
        sim.expire_tokens();
        let o = command(tmp.path()).args(["sync", "--quiet", "--tables", "users", "--config"]).arg(&config).output().unwrap();
        assert!(o.status.success(), "{}{}", stderr(&o), String::from_utf8_lossy(&o.stdout));
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text, "the user's config is untouched");
    let stored = tmp.path().join("out/.helpscout-etl/refresh-token.json");
    assert!(stored.exists());
    // Secrets appear nowhere else we write.
    let secret = &sim.config().client_secret;
    let db = std::fs::read(tmp.path().join("out/helpscout.duckdb")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(secret.as_str()));
    assert!(!String::from_utf8_lossy(&db).contains(&sim.config().refresh_token));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_json_report_and_reset() {
    let sim = simulator(30, 6).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(&sim, tmp.path(), "");
    let o = command(tmp.path()).args(["sync", "--json", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON report");
    assert_eq!(report["status"], "success");
    assert_eq!(report["tables"].as_array().unwrap().len(), 10, "threads are committed with conversations");

    let o = command(tmp.path()).args(["status", "--json", "--config"]).arg(&config).output().unwrap();
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let conversations = status["tables"].as_array().unwrap().iter().find(|t| t["table"] == "conversations").unwrap();
    assert_eq!(conversations["rows"], 30);
    assert!(conversations["bookmark"].is_string());

    let o = command(tmp.path()).args(["reset", "conversations", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("conversations, conversation_threads"));
    let out = tmp.path().join("out");
    assert!(!out.join("parquet/conversations").exists());
    assert_eq!(query_i64(&out, "SELECT count(*) FROM _helpscout_state WHERE table_name = 'conversations'"), 0);
    let o = command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success());
    assert_matches_truth(&sim, &out);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analysts_can_open_the_file_read_only_while_a_sync_runs() {
    let sim = simulator(60, 17).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(&sim, tmp.path(), "");
    let out = tmp.path().join("out");
    assert!(command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).output().unwrap().status.success());
    // A slow second run: every customer and conversation page takes 300 ms to answer.
    sim.advance_clock(chrono::Duration::hours(1));
    sim.mutate(&helpscout_sim::MutationPlan { seed: 1, new_conversations: 40, ..Default::default() });
    sim.set_faults(FaultPlan {
        rules: vec![
            FaultRule { path_prefix: Some("/v2/customers".into()), method: None, after: 0, count: 100, kind: FaultKind::Delay(300) },
            FaultRule { path_prefix: Some("/v2/conversations".into()), method: None, after: 0, count: 100, kind: FaultKind::Delay(300) },
        ],
    });
    let mut child = command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).stdout(Stdio::null()).spawn().unwrap();
    // A read counts only when it sees rows this sync committed while it is still running: the
    // file was free between two of its commits, not merely before the first.
    let mut reads_between_commits = 0;
    while child.try_wait().unwrap().is_none() {
        let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).unwrap();
        // Between commits the file is free; during a commit it is held for a moment.
        if let Ok(conn) = duckdb::Connection::open_with_flags(out.join("helpscout.duckdb"), config) {
            let n: i64 = conn.query_row("SELECT count(*) FROM conversations", [], |r| r.get(0)).unwrap();
            assert!((60..=100).contains(&n), "{n}");
            drop(conn);
            if n > 60 && child.try_wait().unwrap().is_none() {
                reads_between_commits += 1;
            }
        }
    }
    assert!(child.wait().unwrap().success());
    assert!(reads_between_commits > 0, "the file could be read between the running sync's commits");
    sim.stop().await;
}

#[test]
fn output_cut_short_by_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let tmp = tempfile::tempdir().unwrap();
    let mut child = command(tmp.path()).args(["tables"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take()); // the reader goes away at once
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.is_empty(), "nothing on stderr: {err}");
    // As `head` expects of a command line tool: ended by SIGPIPE, or done before it noticed.
    assert!(out.status.success() || out.status.signal() == Some(libc::SIGPIPE), "{:?}", out.status);
}

#[test]
fn users_are_managed_from_the_command_line_and_the_page_needs_one() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let users = |args: &[&str], stdin: &str| {
        let mut child = command(tmp.path()).arg("users").args(args).arg("--output").arg(&out).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    // No user yet: `serve` stops with the command that adds one.
    let o = command(tmp.path()).args(["serve", "--listen", "127.0.0.1:0", "--output"]).arg(&out).output().unwrap();
    assert_clear_failure(&o, 2, "No one can sign in yet: add a user with `helpscout-etl users add NAME --role administrator`");

    let o = users(&["add", "ann", "--role", "administrator"], "a long password\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Added ann (Administrator)"));
    assert_clear_failure(&users(&["add", "ann", "--role", "manager"], "another password\n"), 2, "There is already a user \"ann\"");
    assert_clear_failure(&users(&["add", "bob", "--role", "manager"], "short\n"), 2, "at least 8 characters");
    assert!(users(&["add", "bob", "--role", "manager"], "bob's password\n").status.success());
    let list = users(&["list", "--json"], "");
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list, serde_json::json!([{"name": "ann", "role": "administrator"}, {"name": "bob", "role": "manager"}]));
    assert!(users(&["passwd", "bob"], "bob's new password\n").status.success());
    assert_clear_failure(&users(&["remove", "ann"], ""), 2, "The last administrator cannot be removed");
    assert!(users(&["remove", "bob"], "").status.success());
    assert_clear_failure(&users(&["passwd", "bob"], "whatever long\n"), 2, "There is no user \"bob\"");
    // The file holds hashes only, readable by its owner only.
    let file = out.join(".helpscout-etl/users.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("a long password") && text.contains("$argon2id$"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_anywhere_in_delivery_then_a_rerun_makes_exactly_one_ticket_per_submission() {
    let sim = simulator(5, 21).await;
    let mailbox = sim.ground_truth_table("mailboxes").unwrap()[0]["id"].as_i64().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(&sim, tmp.path(), &format!("[forms.contact]\nmailbox = {mailbox}\n[push]\nrecheck_secs = 0\n"));
    const N: usize = 12;
    let file = tmp.path().join("submissions.jsonl");
    let lines: Vec<String> = (1..=N).map(|i| format!(r#"{{"submission_id":"k-{i}","email":"c{i}@example.com","subject":"Order {i}","message":"Please help"}}"#)).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    // Each answer is held back a little after its write, so that kills land between a write and
    // its answer (the case only the marker lookup can resolve) as well as between records.
    let hold = FaultPlan { rules: vec![FaultRule { path_prefix: Some("/v2/conversations".into()), method: Some("POST".into()), after: 0, count: 10_000, kind: FaultKind::DelayAfter(150) }] };
    let mut killed = 0;
    for kill_at in [0, 1, 2, 4, 6, 8, 10] {
        sim.set_faults(hold.clone());
        // Every round imports the same file again, as a cron job re-running would.
        let mut child = command(tmp.path()).args(["push", "forms"]).arg(&file).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if sim.created().conversations.len() >= kill_at {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                killed += 1;
                break;
            }
            std::thread::yield_now();
        }
    }
    assert!(killed >= 5, "most rounds were killed mid-way ({killed})");
    sim.set_faults(FaultPlan::default());
    let o = command(tmp.path()).args(["push", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    let created = sim.created().conversations;
    for i in 1..=N {
        let marker = helpscout_etl::catalog::outbound::marker("contact", &format!("k-{i}"));
        let tickets = created.iter().filter(|c| c.tags.contains(&marker)).count();
        assert_eq!(tickets, 1, "submission k-{i} has {tickets} tickets");
    }
    assert_eq!(created.len(), N);
    let out = tmp.path().join("out");
    assert_eq!(query_i64(&out, "SELECT count(*) FROM helpscout_log WHERE event_type = 'Ticket Created' AND status = 'Success'"), N as i64);
    assert_eq!(query_i64(&out, "SELECT count(*) FROM helpscout_log WHERE direction = 'To HelpScout' AND event_type = 'Ticket Created' AND status <> 'Success'"), 0);
    // Some kills fell between a write and its answer: those tickets were found, not posted again.
    assert!(query_i64(&out, "SELECT count(*) FROM helpscout_log WHERE details LIKE '%found by its marker%'") >= 1, "no kill landed between a write and its answer");
    // Another run of the same file: all repeats, no ticket.
    let o = command(tmp.path()).args(["push", "forms"]).arg(&file).arg("--config").arg(&config).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains(&format!("Queued 0 (repeats ignored: {N})")), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(sim.created().conversations.len(), N);
    // The repeats are visible; tickets per submission are checked once conversations are synced.
    let duplicates = || {
        let o = command(tmp.path()).args(["log", "duplicates", "--config"]).arg(&config).output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let before = duplicates();
    assert!(before.contains("c1@example.com") && before.contains("unknown until `helpscout-etl sync`"), "{before}");
    let o = command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(duplicates().contains("Submissions with more than one ticket (must be none):\n  none"), "{}", duplicates());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_answered_202_survives_a_sigkill_of_the_server_right_after_the_answer() {
    use std::io::BufRead;
    let sim = simulator(5, 22).await;
    let mailbox = sim.ground_truth_table("mailboxes").unwrap()[0]["id"].as_i64().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(&sim, tmp.path(), &format!("[forms.contact]\nmailbox = {mailbox}\n[push]\nrecheck_secs = 0\n"));
    let out = tmp.path().join("out");
    helpscout_etl::web::user_store(&helpscout_etl::store::Outputs::under(&out)).add("ann", helpscout_etl::web::Role::Administrator, "a long password").unwrap();
    let secret = "kill-test-secret-0123";
    let mut server = command(tmp.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("HELPSCOUT_FORM_CONTACT_SECRET", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The reader stays open until the kill: `serve` goes on printing (its forms' addresses).
    let mut said = std::io::BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    said.read_line(&mut first).unwrap();
    let addr = first.split("http://").nth(1).and_then(|r| r.split('/').next()).expect("serve says where").to_string();
    let body = r#"{"submission_id":"kill-1","email":"jane@example.com","subject":"Help","message":"Please"}"#;
    let r = reqwest::Client::new().post(format!("http://{addr}/forms/contact")).header("x-form-secret", secret).header("content-type", "application/json").body(body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    server.kill().unwrap(); // SIGKILL, right after the answer
    server.wait().unwrap();
    drop(said);
    let outbox = helpscout_etl::store::Outbox::open(helpscout_etl::store::Outputs::under(&out).outbox()).unwrap();
    assert!(outbox.get::<helpscout_etl::catalog::outbound::Submission>("forms/contact/kill-1").unwrap().is_some(), "the acknowledged submission is on disk");
    drop(outbox);
    let o = command(tmp.path()).args(["push", "--config"]).arg(&config).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let marker = helpscout_etl::catalog::outbound::marker("contact", "kill-1");
    assert_eq!(sim.created().conversations.iter().filter(|c| c.tags.contains(&marker)).count(), 1);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_and_a_push_side_by_side_share_the_rate_limit_without_a_429() {
    // A small plan: 40 request units a second, writes weighing 2.
    let sim = Simulator::start(SimConfig { conversations: 80, seed: 23, rate_window: Duration::from_secs(1), rate_limit_per_minute: 40, ..Default::default() }).await.unwrap();
    let mailbox = sim.ground_truth_table("mailboxes").unwrap()[0]["id"].as_i64().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("small-plan.toml");
    std::fs::write(
        &config,
        format!(
            "start_date = \"2015-01-01\"\n[helpscout]\nclient_id = \"{}\"\nclient_secret = \"{}\"\nbase_url = \"{}\"\ntoken_url = \"{}\"\nrate_window_secs = 1\nrate_limit_per_minute = 40\n\
             [output]\ndir = \"{}\"\n[forms.contact]\nmailbox = {mailbox}\n[push]\nrecheck_secs = 0\n",
            sim.config().client_id,
            sim.config().client_secret,
            sim.base_url(),
            sim.token_url(),
            tmp.path().join("out").display()
        ),
    )
    .unwrap();
    let file = tmp.path().join("forms.jsonl");
    let lines: Vec<String> = (1..=30).map(|i| format!(r#"{{"submission_id":"s-{i}","email":"c{i}@example.com","subject":"S {i}","message":"M"}}"#)).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    sim.reset_request_stats();
    let sync = command(tmp.path()).args(["sync", "--quiet", "--config"]).arg(&config).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let push = command(tmp.path()).args(["push", "forms"]).arg(&file).arg("--config").arg(&config).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (sync, push) = (sync.wait_with_output().unwrap(), push.wait_with_output().unwrap());
    assert!(sync.status.success(), "{}", stderr(&sync));
    assert!(push.status.success(), "{}", stderr(&push));
    let stats = sim.request_stats();
    assert_eq!(stats.rate_limited, 0, "two processes on one account stayed under its limit: {stats:?}");
    assert_eq!(sim.created().conversations.len(), 30);
    sim.stop().await;
}

//! The integration log answers the log page's use cases, through the commands, after real
//! syncs against the simulator with injected faults; and it never holds a secret.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use helpscout_etl::extract::RunStatus;
use helpscout_sim::{FaultKind, FaultPlan, FaultRule, MutationPlan};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_helpscout-etl");

fn cli(dir: &Path, args: &[&str]) -> (i32, String) {
    let o = Command::new(BIN)
        .args(args)
        .arg("--output")
        .arg(dir)
        .env_remove("HELPSCOUT_CLIENT_ID")
        .env_remove("HELPSCOUT_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stdout).into_owned())
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let (code, out) = cli(dir, args);
    assert_eq!(code, 0, "{args:?}: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} prints JSON ({e}): {out}"))
}

fn rule(path: &str, after: u64, count: u64, kind: FaultKind) -> FaultRule {
    FaultRule { path_prefix: Some(path.into()), method: None, after, count, kind }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_page_use_cases_are_answered_by_commands() {
    let sim = simulator(80, 21).await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    // Wrong credentials: an Authentication failure, nothing else.
    let mut wrong = settings(&sim, dir);
    if let helpscout_etl::api::Credentials::ClientCredentials { client_secret, .. } = &mut wrong.sync.client.credentials {
        *client_secret = "wrong-secret".into();
    }
    let report = sync(&wrong).await;
    assert_eq!(report.status, RunStatus::Failed);

    // A mailbox gone (404), 429 bursts, a page that stays malformed: thread lists of chats.
    sim.set_faults(FaultPlan {
        rules: vec![
            rule("/v2/mailboxes/", 0, 1, FaultKind::Status(404)),
            rule("/v2/users", 0, 3, FaultKind::RateLimitBurst),
            rule("/v2/conversations/", 0, 1_000, FaultKind::TruncatedBody),
        ],
    });
    let settings = settings(&sim, dir);
    let report = sync(&settings).await;
    assert_eq!(report.status, RunStatus::Partial, "{report:#?}");
    let failed_tickets = json(dir, &["log", "--status", "Failed", "--type", "Ticket Created", "--since", "today", "--format", "json", "--limit", "0"]);
    let failed_tickets = failed_tickets.as_array().unwrap();
    assert!(!failed_tickets.is_empty(), "the daily failed-tickets check finds the unreadable conversations");
    for e in failed_tickets {
        assert!(e["error_message"].as_str().unwrap().contains("malformed JSON"), "{e}");
        assert!(e["conversation_id"].is_i64() && e["retry_target"].is_string(), "{e}");
    }
    let bookmark = query_i64(dir, "SELECT count(*) FROM _helpscout_state WHERE table_name = 'conversations'");
    assert_eq!(bookmark, 0, "no bookmark past records that failed");

    // Retry: the faults are gone, the failed records are fetched one by one.
    sim.set_faults(FaultPlan::default());
    let o = Command::new(BIN)
        .args(["retry", "--output"])
        .arg(dir)
        .env("HELPSCOUT_CLIENT_ID", &sim.config().client_id)
        .env("HELPSCOUT_CLIENT_SECRET", &sim.config().client_secret)
        .env("HELPSCOUT_BASE_URL", sim.base_url())
        .env("HELPSCOUT_TOKEN_URL", sim.token_url())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let retried = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(retried.contains("0 still failing"), "{retried}");
    assert!(retried.contains("conversations record") && retried.contains("synced"), "record by record: {retried}");
    assert_eq!(
        query_i64(dir, "SELECT count(*) FROM helpscout_log WHERE status = 'Failed' AND retry_target IS NOT NULL AND retried_at IS NULL AND table_name = 'conversations'"),
        0,
        "every failed conversation was retried"
    );
    for table in ["conversations", "conversation_threads"] {
        let diff = difference(table, "DuckDB", &truth_rows(&sim, table), &duckdb_rows(dir, table));
        assert!(diff.is_none(), "{table} complete after the retry: {diff:?}");
    }

    // A customer edited into an invalid email.
    sim.advance_clock(chrono::Duration::hours(1));
    let changed = sim.mutate(&MutationPlan { seed: 3, invalid_emails: 1, ..Default::default() });
    sync_ok(&settings).await;
    let customer_id = changed.edited_customers[0];
    let email: String = connect(dir)
        .query_row(&format!("SELECT emails[1].value FROM customers WHERE id = {customer_id}"), [], |r| r.get(0))
        .unwrap();

    // Use case 2: why is this customer not syncing?
    let events = json(dir, &["log", "--search", &email, "--format", "json"]);
    let latest = &events.as_array().unwrap()[0];
    assert_eq!(latest["event_type"], "Customer Updated");
    assert_eq!(latest["status"], "Failed");
    assert!(latest["error_message"].as_str().unwrap().starts_with("Invalid email address"), "{latest}");

    // Use case 1: did this customer's contact form create a ticket?
    let conversation = &truth_rows(&sim, "conversations").into_values().next().unwrap();
    let customer_email = conversation["primary_customer"]["email"].as_str().unwrap().to_string();
    let tickets = json(dir, &["log", "--search", &customer_email, "--type", "Ticket Created", "--status", "Success", "--format", "json"]);
    let ticket = tickets.as_array().unwrap().iter().find(|e| e["conversation_id"] == conversation["id"]).expect("the ticket's event");
    assert_eq!(ticket["conversation_url"], format!("https://secure.helpscout.net/conversation/{}/{}", conversation["id"], conversation["number"]));
    // … and by conversation number, as the search box allows.
    let by_number = json(dir, &["log", "--search", &conversation["number"].to_string(), "--format", "json"]);
    assert!(by_number.as_array().unwrap().iter().any(|e| e["conversation_id"] == conversation["id"]));

    // Use case 3 and the dashboard: is the integration healthy?
    let summary = json(dir, &["log", "summary", "--since", "48h", "--format", "json"]);
    let total = query_i64(dir, "SELECT count(*) FROM helpscout_log");
    let failed = query_i64(dir, "SELECT count(*) FROM helpscout_log WHERE status = 'Failed'");
    let succeeded = query_i64(dir, "SELECT count(*) FROM helpscout_log WHERE status = 'Success'");
    assert_eq!(summary["total_events"], total);
    assert_eq!(summary["failures"], failed);
    assert_eq!(summary["new_tickets"], query_i64(dir, "SELECT count(*) FROM helpscout_log WHERE event_type = 'Ticket Created' AND status = 'Success'"));
    assert_eq!(summary["customers_synced"], query_i64(dir, "SELECT count(*) FROM helpscout_log WHERE event_type = 'Customer Synced' AND status = 'Success'"));
    let rate = (succeeded as f64 * 1000.0 / (succeeded + failed) as f64).round() / 10.0;
    assert_eq!(summary["success_rate"].as_f64().unwrap(), rate);

    // The faults left their rows: the gone mailbox, the throttling, the wrong credentials.
    let mailbox = json(dir, &["log", "--table", "mailbox_fields", "--status", "Failed", "--format", "json"]);
    assert!(mailbox.as_array().unwrap().iter().any(|e| e["error_message"].as_str().unwrap_or("").contains("Mailbox not found")), "{mailbox}");
    let throttled = json(dir, &["log", "--type", "Rate Limited", "--format", "json"]);
    assert_eq!(throttled.as_array().unwrap().len(), 3);
    assert_eq!(throttled[0]["error_message"], "Rate limit exceeded");
    let auth = json(dir, &["log", "--type", "Authentication", "--status", "Failed", "--format", "json"]);
    assert!(auth[0]["error_message"].as_str().unwrap().starts_with("Authentication failed"), "{auth}");

    // CSV and the plain table work too.
    let (code, csv) = cli(dir, &["log", "--format", "csv", "--limit", "5"]);
    assert_eq!(code, 0);
    assert!(csv.starts_with("event_id,timestamp,event_type"), "{csv}");
    assert_eq!(csv.lines().count(), 6);
    let (code, table) = cli(dir, &["log", "--search", &email]);
    assert_eq!(code, 0);
    assert!(table.contains("Invalid email address"), "{table}");

    // The log is exported beside the tables, one partition per day.
    let lake = helpscout_etl::store::Lake::local(helpscout_etl::store::LakeFormat::Parquet, dir.join("parquet"));
    let files: Vec<std::path::PathBuf> = lake.files().list("helpscout_log").unwrap().into_iter().map(|o| dir.join("parquet").join(o.key)).collect();
    assert!(!files.is_empty() && files.iter().all(|f| f.parent().unwrap().file_name().unwrap().to_string_lossy().starts_with("day=")));
    let exported: i64 = files
        .iter()
        .map(|f| {
            use parquet::file::reader::FileReader;
            parquet::file::reader::SerializedFileReader::new(std::fs::File::open(f).unwrap()).unwrap().metadata().file_metadata().num_rows()
        })
        .sum();
    assert_eq!(exported, query_i64(dir, "SELECT count(*) FROM helpscout_log"));

    // Secrets never land in what we write.
    for secret in [sim.config().client_secret.as_str(), "wrong-secret", sim.config().refresh_token.as_str(), "Bearer"] {
        for file in std::iter::once(dir.join("helpscout.duckdb")).chain(files.iter().cloned()) {
            let bytes = std::fs::read(&file).unwrap();
            assert!(!String::from_utf8_lossy(&bytes).contains(secret), "{secret} in {}", file.display());
        }
        let (_, all) = cli(dir, &["log", "--format", "json", "--limit", "0"]);
        assert!(!all.contains(secret), "{secret} in the log");
    }
    sim.stop().await;
}

//! Syncs against the built-in simulator on 127.0.0.1: exactness, incrementality, faults.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_equals_the_ground_truth_and_every_join_key_matches() {
    let sim = simulator(120, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let report = sync_ok(&settings).await;
    assert!(report.tables.iter().all(|t| t.error.is_none()), "{report:#?}");
    assert_matches_truth(&sim, dir.path());

    // The catalogued join keys are exactly the contract's (the simulator's own copy of it).
    let conn = connect(dir.path());
    let joins: Vec<(String, String, String, bool)> = conn
        .prepare("SELECT join_key, left_table, right_table, documented FROM _helpscout_join_keys ORDER BY join_key")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut contract: Vec<(String, bool)> = helpscout_sim::contract::JOIN_KEYS.iter().map(|(j, d)| (j.to_string(), *d)).collect();
    contract.sort();
    assert_eq!(joins.iter().map(|(j, _, _, d)| (j.clone(), *d)).collect::<Vec<_>>(), contract);
    for (join, left, right, _) in joins {
        let matched: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{left}\" JOIN \"{right}\" ON {join}"), [], |r| r.get(0))
            .unwrap();
        assert!(matched > 0, "join key matches no rows: {join}");
    }
    sim.stop().await;
}

use helpscout_etl::extract::RunStatus;
use helpscout_sim::{FaultKind, FaultPlan, FaultRule, MutationPlan, Removal};


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_syncs_converge_through_every_kind_of_change() {
    let sim = simulator(150, 11).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    sync_ok(&settings).await;
    assert_matches_truth(&sim, dir.path());
    let mut seen_removed: Vec<i64> = Vec::new();
    for round in 0..3 {
        sim.advance_clock(chrono::Duration::hours(2));
        let changed = sim.mutate(&MutationPlan::busy_day(round));
        assert!(truth_mismatch(&sim, dir.path()).is_some(), "round {round}: the mutation {changed:?} is visible");
        let held: Vec<i64> = connect(dir.path())
            .prepare("SELECT id FROM conversations")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let report = sync_ok(&settings).await;
        assert_matches_truth(&sim, dir.path());
        let removed = report.tables.iter().find(|t| t.table == "conversations").unwrap().removed;
        let expected: Vec<i64> = sim.removed_conversations().into_keys().filter(|id| held.contains(id)).collect();
        let newly: Vec<&i64> = expected.iter().filter(|id| !seen_removed.contains(*id)).collect();
        assert_eq!(removed as usize, newly.len(), "round {round}: removals of rows held");
        seen_removed.extend(expected);
    }
    // Every removed conversation that was held is tombstoned with its reason.
    assert!(seen_removed.len() >= 9, "merges and deletions happened: {seen_removed:?}");
    for (id, removal) in sim.removed_conversations().into_iter().filter(|(id, _)| seen_removed.contains(id)) {
        let (reason, into) = match removal {
            Removal::Deleted => ("deleted", -1),
            Removal::MergedInto(t) => ("merged", t),
        };
        let sql = format!(
            "SELECT count(*) FROM _helpscout_conversation_tombstones WHERE id = {id} AND reason = '{reason}' AND coalesce(merged_into, -1) = {into}"
        );
        assert_eq!(query_i64(dir.path(), &sql), 1, "tombstone of {id}");
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_moving_between_pages_during_a_backfill_are_not_lost() {
    let sim = simulator(160, 5).await;
    sim.set_faults(FaultPlan {
        rules: vec![FaultRule {
            path_prefix: Some("/v2/conversations".into()),
            method: None,
            after: 1,
            count: 3,
            kind: FaultKind::PageDrift { rows: 4 },
        }],
    });
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(&sim, dir.path());
    // One page at a time, so the drift lands between the pages.
    settings.sync.client.concurrency = 1;
    sync_ok(&settings).await;
    assert!(sim.request_stats().faults_injected >= 1);
    assert_matches_truth(&sim, dir.path());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_faults_lose_nothing() {
    let sim = simulator(100, 3).await;
    let rule = |path: &str, after, count, kind| FaultRule { path_prefix: Some(path.into()), method: None, after, count, kind };
    sim.set_faults(FaultPlan {
        rules: vec![
            rule("/v2/conversations", 1, 2, FaultKind::Status(500)),
            rule("/v2/conversations", 4, 1, FaultKind::DropConnection),
            rule("/v2/customers", 0, 1, FaultKind::Status(503)),
            rule("/v2/customers", 2, 1, FaultKind::TruncatedBody),
            rule("/v2/users", 0, 3, FaultKind::RateLimitBurst),
            rule("/v2/mailboxes", 1, 1, FaultKind::ExpireToken),
            rule("/v2/teams", 0, 1, FaultKind::Delay(3_000)),
            rule("/v2/workflows", 0, 1, FaultKind::Status(504)),
        ],
    });
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let report = sync_ok(&settings).await;
    // The delayed answer is never counted by the simulator: the client gave up on it first.
    let stats = sim.request_stats();
    assert_eq!(stats.faults_injected, 10, "every other fault fired: {stats:#?}");
    assert_eq!(report.rate_limited, 3);
    assert_matches_truth(&sim, dir.path());
    let events = |kind: &str| query_i64(dir.path(), &format!("SELECT count(*) FROM helpscout_log WHERE event_type = '{kind}'"));
    assert_eq!(events("Rate Limited"), 3);
    assert!(events("Error") >= 6, "failed attempts are logged");
    assert!(events("Authentication") >= 2, "the expired token was replaced");
    assert_eq!(
        query_i64(dir.path(), "SELECT count(*) FROM helpscout_log WHERE event_type = 'Error' AND table_name = 'teams' AND error_message = 'request timed out'"),
        1,
        "the hung response timed out and was retried"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_failure_fails_its_table_only_and_keeps_its_bookmark() {
    let sim = simulator(60, 9).await;
    sim.set_faults(FaultPlan {
        rules: vec![FaultRule {
            path_prefix: Some("/v2/conversations".into()),
            method: None,
            after: 0,
            count: 1_000,
            kind: FaultKind::Status(500),
        }],
    });
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let report = sync(&settings).await;
    assert_eq!(report.status, RunStatus::Partial, "{report:#?}");
    let failed: Vec<&str> = report.tables.iter().filter(|t| t.error.is_some()).map(|t| t.table).collect();
    assert_eq!(failed, ["conversations"]);
    let error = report.tables.iter().find(|t| t.table == "conversations").unwrap().error.clone().unwrap();
    assert!(error.contains("HTTP 500"), "{error}");
    assert_eq!(
        query_i64(dir.path(), "SELECT count(*) FROM _helpscout_state WHERE table_name IN ('conversations', 'conversation_threads')"),
        0,
        "no bookmark moved"
    );
    assert_eq!(
        query_i64(dir.path(), "SELECT count(*) FROM helpscout_log WHERE event_type = 'Table Synced' AND status = 'Failed' AND table_name = 'conversations' AND retry_target IS NOT NULL"),
        1
    );
    sim.set_faults(FaultPlan::default());
    sync_ok(&settings).await;
    assert_matches_truth(&sim, dir.path());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_the_api_reports_is_followed_without_a_single_429() {
    // The account's plan allows 12 requests a window; the configuration claims 400.
    let sim = helpscout_sim::Simulator::start(helpscout_sim::SimConfig {
        conversations: 40,
        seed: 8,
        rate_limit_per_minute: 12,
        rate_window: std::time::Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(&sim, dir.path());
    settings.sync.client.rate_limit = 400;
    settings.sync.client.concurrency = 1;
    let report = sync_ok(&settings).await;
    assert!(report.requests > 24, "more than two windows' worth of requests: {}", report.requests);
    assert_eq!(sim.request_stats().rate_limited, 0);
    assert_eq!(report.rate_limited, 0);
    assert_matches_truth(&sim, dir.path());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selected_tables_and_columns_only_and_full_replication() {
    let sim = simulator(50, 19).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_with(&sim, dir.path(), |f| {
        f.sync.tables = Some(vec!["users".into(), "conversations".into()]);
        f.tables.insert(
            "conversations".into(),
            helpscout_etl::cli::config::TableSection { replication: Some("full".into()), columns: Some(vec!["subject".into(), "status".into()]) },
        );
    });
    let report = sync_ok(&settings).await;
    assert_eq!(report.tables.iter().map(|t| t.table).collect::<Vec<_>>(), ["users", "conversations"]);
    let columns = query_strings(dir.path(), "SELECT column_name FROM information_schema.columns WHERE table_name = 'conversations' ORDER BY ordinal_position");
    assert_eq!(columns, ["created_at", "id", "status", "subject", "updated_at", "_extracted_at", "_run_id", "_extra"], "keys, partition and cursor columns stay");
    let tables = query_strings(dir.path(), "SELECT table_name FROM information_schema.tables WHERE table_name IN ('customers', 'conversation_threads', 'users')");
    assert_eq!(tables, ["users"], "unselected tables are not created");
    let parquet = helpscout_etl::store::Lake::local(helpscout_etl::store::LakeFormat::Parquet, dir.path().join("parquet"));
    assert!(parquet.table_files("conversations").unwrap() > 0 && parquet.table_files("customers").unwrap() == 0);
    // Full replication: a deleted conversation disappears on the next run without any probe.
    sim.advance_clock(chrono::Duration::hours(1));
    sim.mutate(&MutationPlan { seed: 2, deletions: 2, ..Default::default() });
    let report = sync_ok(&settings).await;
    let conversations = report.tables.iter().find(|t| t.table == "conversations").unwrap();
    assert_eq!((conversations.method, conversations.removed), ("full", 2));
    assert_eq!(query_i64(dir.path(), "SELECT count(*) FROM conversations"), truth_rows(&sim, "conversations").len() as i64);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_without_changes_reads_each_list_once_with_one_count_check_each_for_removals() {
    let sim = simulator(200, 21).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    sync_ok(&settings).await;
    let requests_of_last_run = || {
        query_strings(
            dir.path(),
            "SELECT request FROM helpscout_api_requests WHERE run_id = (SELECT max(run_id) FROM helpscout_api_requests) AND method = 'GET' ORDER BY request",
        )
    };
    // The report's first window is the whole history.
    let first: Vec<String> = requests_of_last_run().into_iter().filter(|r| r.starts_with("/v2/reports/")).collect();
    assert!(!first.is_empty() && first.iter().all(|r| r.contains("start=2015-01-01")), "{first:?}");

    // Nothing changed: one request per list (and per parent for children), and one count each
    // for the conversations' and the report's removal checks.
    sim.advance_clock(chrono::Duration::minutes(10));
    let report = sync_ok(&settings).await;
    let requests = requests_of_last_run();
    let mailboxes = query_i64(dir.path(), "SELECT count(*) FROM mailboxes") as usize;
    let teams = query_i64(dir.path(), "SELECT count(*) FROM teams") as usize;
    assert_eq!(requests.len(), 7 + 2 + 2 * mailboxes + teams, "{requests:#?}");
    for t in report.tables.iter().filter(|t| ["conversations", "customers", "happiness_ratings_report"].contains(&t.table)) {
        assert_eq!(t.rows, 0, "{} re-read rows: {requests:#?}", t.table);
    }
    let window: Vec<&String> = requests.iter().filter(|r| r.starts_with("/v2/reports/")).collect();
    assert_eq!(window.len(), 2, "{window:?}");
    assert_eq!(window.iter().filter(|r| !r.contains("start=2015-01-01")).count(), 1, "the window since the last one: {window:?}");

    // New ratings within the hour arrive through the window and merge with the rows held.
    sim.advance_clock(chrono::Duration::minutes(10));
    let changed = sim.mutate(&MutationPlan { seed: 3, new_ratings: 4, replies: 3, ..Default::default() });
    let report = sync_ok(&settings).await;
    let ratings = report.tables.iter().find(|t| t.table == "happiness_ratings_report").unwrap();
    assert!(ratings.rows >= 1 && ratings.rows < 10, "{changed:?} {ratings:?}");
    assert_matches_truth(&sim, dir.path());

    // Hours later, deletions take ratings away: found by counts, without reading the report whole.
    sim.advance_clock(chrono::Duration::minutes(181));
    sim.mutate(&MutationPlan { seed: 5, deletions: 6, merges: 3, ..Default::default() });
    sync_ok(&settings).await;
    assert_matches_truth(&sim, dir.path());
    let pages = (sim.ground_truth_table("happiness_ratings_report").unwrap().len() as f64 / 50.0).ceil() as usize;
    let report_requests = requests_of_last_run().into_iter().filter(|r| r.starts_with("/v2/reports/")).count();
    assert!(report_requests <= 2 + 9 * 6, "{report_requests} report requests ({pages} pages in all)");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_makes_at_most_five_percent_more_requests_than_the_minimum() {
    let sim = simulator(300, 12).await;
    let dir = tempfile::tempdir().unwrap();
    let report = sync_ok(&settings(&sim, dir.path())).await;
    // The fewest requests a full extraction can make: each list's pages (conversations 25 a
    // page, everything else 50), one list per parent, and the thread list of every chat with
    // more threads than the 3 it embeds.
    let truth = |name: &str| sim.ground_truth_table(name).unwrap();
    let pages = |n: usize, size: usize| n.div_ceil(size).max(1);
    let count_by = |name: &str, key: &str| {
        let mut counts = std::collections::HashMap::<i64, usize>::new();
        for row in truth(name) {
            *counts.entry(row[key].as_i64().unwrap()).or_default() += 1;
        }
        counts
    };
    let threads = count_by("conversation_threads", "conversation_id");
    let per_parent = |parents: &str, children: &str, key: &str| {
        let counts = count_by(children, key);
        truth(parents).iter().map(|p| pages(counts.get(&p["id"].as_i64().unwrap()).copied().unwrap_or(0), 50)).sum::<usize>()
    };
    let chats: usize = truth("conversations")
        .iter()
        .filter(|c| c["type"] == "chat")
        .map(|c| threads.get(&c["id"].as_i64().unwrap()).copied().unwrap_or(0))
        .filter(|&n| n > 3)
        .map(|n| pages(n, 50))
        .sum();
    let minimum = pages(truth("conversations").len(), 25)
        + chats
        + ["customers", "happiness_ratings_report", "mailboxes", "teams", "users", "workflows"]
            .iter()
            .map(|t| pages(truth(t).len(), 50))
            .sum::<usize>()
        + per_parent("mailboxes", "mailbox_fields", "mailbox_id")
        + per_parent("mailboxes", "mailbox_folders", "mailbox_id")
        + per_parent("teams", "team_members", "team_id");
    assert!(chats > 0, "the account has chats to refetch");
    let made = report.requests as usize;
    assert!(made >= minimum && made * 100 <= minimum * 105, "{made} requests for a minimum of {minimum}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_standard_plan_the_report_is_unavailable_logged_once_and_the_run_succeeds() {
    let config = helpscout_sim::SimConfig { conversations: 40, seed: 4, rate_window: std::time::Duration::from_secs(1), plan: helpscout_sim::Plan::Standard, ..Default::default() };
    let sim = helpscout_sim::Simulator::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    for _ in 0..2 {
        let report = sync_ok(&settings).await;
        let ratings = report.tables.iter().find(|t| t.table == "happiness_ratings_report").unwrap();
        assert!(ratings.error.is_none(), "{ratings:?}");
        let said = ratings.unavailable.as_deref().unwrap_or_default();
        assert!(said.contains("not available on this Help Scout plan"), "{said}");
        let fix = said.split("--tables ").nth(1).unwrap_or_default();
        assert!(fix.contains("conversations") && !fix.contains("happiness_ratings_report"), "the fix leaves the table out: {said}");
    }
    let logged = "SELECT count(*) FROM helpscout_log WHERE event_type = 'Table Synced' AND table_name = 'happiness_ratings_report'";
    assert_eq!(query_i64(dir.path(), logged), 1, "logged when it became unavailable, not on every run");
    let status = helpscout_etl::store::Warehouse::new(duckdb_path(dir.path())).read().unwrap().status(None).unwrap();
    let t = status.tables.iter().find(|t| t.table == "happiness_ratings_report").unwrap();
    assert!(t.unavailable_since.is_some(), "{t:?}");
    assert!(status.tables.iter().filter(|t| t.table != "happiness_ratings_report").all(|t| t.unavailable_since.is_none()));
    // Every other table is complete.
    for table in ["conversations", "customers", "users"] {
        assert_eq!(duckdb_rows(dir.path(), table).len(), sim.ground_truth_table(table).unwrap().len(), "{table}");
    }
    sim.stop().await;
}

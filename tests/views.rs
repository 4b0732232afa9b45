//! The bundled views and the `report` command: they install on an empty database, skip what a
//! partial selection cannot support, return hand-checked numbers on a small fixed account, and
//! agree with the tables after a real sync against the simulator on 127.0.0.1.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use helpscout_etl::cli::config::TableSection;
use helpscout_etl::store::{self, ObjectKind};

fn write(path: &Path, sql: &str) {
    let conn = duckdb::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
}

fn one(path: &Path, sql: &str) -> i64 {
    read_only(path).query_row(sql, [], |r| r.get(0)).unwrap_or_else(|e| panic!("{e}\n{sql}"))
}

fn view_objects() -> Vec<(ObjectKind, String)> {
    store::VIEWS.iter().flat_map(|(_, sql)| store::objects(sql)).collect()
}

#[test]
fn every_view_installs_and_runs_on_an_empty_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.duckdb");
    let statuses = prepare(&path, &all_tables());
    assert!(statuses.iter().all(|s| s.installed), "{statuses:#?}");
    assert_eq!(statuses.len(), store::VIEWS.len());
    assert_eq!(one(&path, "SELECT count(*) FROM _helpscout_views WHERE installed"), store::VIEWS.len() as i64);
    let mut checked = 0;
    for (kind, name) in view_objects() {
        let sql = match kind {
            ObjectKind::View => format!("SELECT count(*) FROM {name}"),
            ObjectKind::TableMacro => format!("SELECT count(*) FROM {name}('2026-01-01', '2026-02-01')"),
            ObjectKind::Macro => continue,
        };
        let n = one(&path, &sql);
        let expected = match name.as_str() {
            "integration_health" => 2, // the 'All outcomes' row of each window
            "happiness_summary" | "log_summary" => 1,
            "busiest_times" => 168, // every day-of-week × hour cell, zeros included
            _ => 0,
        };
        assert_eq!(n, expected, "{name} on an empty database");
        checked += 1;
    }
    assert!(checked >= 15, "every view was queried ({checked})");
    assert_eq!(rows(&path, "SELECT happiness_score(3, 1, 5), happiness_score(0, 0, 0)"), vec![strs(&["40.0", ""])]);
    // Installing again (every sync does) replaces the views in place.
    let again = prepare(&path, &all_tables());
    assert!(again.iter().all(|s| s.installed));
    assert_eq!(one(&path, "SELECT count(*) FROM _helpscout_views"), store::VIEWS.len() as i64);
}

#[test]
fn views_over_absent_tables_are_skipped_with_a_note_and_dropped_when_their_table_goes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.duckdb");
    // Only the integration log: the log and API views install, the others are skipped.
    let statuses = prepare(&path, &[]);
    let installed: Vec<&str> = statuses.iter().filter(|s| s.installed).map(|s| s.file.as_str()).collect();
    assert_eq!(installed, ["010_log_summary.sql", "020_integration_health.sql", "030_api_usage.sql", "070_form_repeat_submitters.sql"]);
    let happiness = statuses.iter().find(|s| s.file == "040_happiness_ratings.sql").unwrap();
    let note = happiness.note.as_deref().unwrap();
    assert!(note.contains("happiness_ratings_report") && note.contains("does not exist"), "{note}");
    let recorded = rows(&path, "SELECT installed, note FROM _helpscout_views WHERE view_file = '041_happiness_reports.sql'");
    assert_eq!(recorded[0][0], "false");
    assert!(recorded[0][1].contains("happiness_ratings"), "{recorded:?}");

    // All tables: everything installs; then one table goes and its views go with it.
    assert!(prepare(&path, &all_tables()).iter().all(|s| s.installed));
    write(&path, "DROP TABLE team_members;");
    let statuses = prepare(&path, &all_tables().into_iter().filter(|t| *t != "team_members").collect::<Vec<_>>());
    let skipped: Vec<&str> = statuses.iter().filter(|s| !s.installed).map(|s| s.file.as_str()).collect();
    assert_eq!(skipped, ["042_happiness_by_team.sql", "081_productivity.sql"], "productivity has per-team rows");
    assert_eq!(one(&path, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'happiness_by_team'"), 0);
    assert_eq!(one(&path, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'happiness_by_user'"), 1);
}

/// A small account with numbers worked out by hand (see each assertion).
fn fixed_account(dir: &Path) -> PathBuf {
    let path = dir.join("fixed.duckdb");
    assert!(prepare(&path, &all_tables()).iter().all(|s| s.installed));
    // Events relative to now (hours ago), for the 24 h / 48 h windows; naive UTC → TIMESTAMPTZ
    // works without ICU.
    let mut sql = String::from(
        "CREATE TEMP MACRO hours_ago(h) AS make_timestamp(epoch_us(now()) - CAST(h * 3600000000 AS BIGINT))::TIMESTAMPTZ;\n",
    );
    let recent: &[(&str, &str, u32, f64)] = &[
        ("Ticket Created", "Success", 3, 1.0),
        ("Customer Synced", "Success", 2, 2.0),
        ("Table Synced", "Success", 19, 3.0),
        ("Table Synced", "Failed", 1, 3.0),
        ("Authentication", "Success", 1, 1.0),
        ("Authentication", "Failed", 1, 30.0),
        ("Error", "Failed", 2, 3.0),
        ("Rate Limited", "Pending", 1, 3.0),
        ("Conversation Updated", "Success", 1, 50.0),
        ("Conversation Updated", "Failed", 1, 72.0),
    ];
    for (event, status, n, hours) in recent {
        for _ in 0..*n {
            let error = if *status == "Failed" { format!("'{event} failed {hours} h ago'") } else { "NULL".into() };
            sql += &format!(
                "INSERT INTO helpscout_log (\"timestamp\", event_type, status, direction, error_message) \
                 VALUES (hours_ago({hours}), '{event}', '{status}', 'From HelpScout', {error});\n"
            );
        }
    }
    // Fixed days, around a UTC midnight, for the daily summary and the range macro.
    for (at, event, status) in [
        ("2026-01-15 10:00:00", "Customer Synced", "Success"),
        ("2026-01-15 11:00:00", "Error", "Failed"),
        ("2026-01-15 23:30:00", "Ticket Created", "Success"),
        ("2026-01-16 00:30:00", "Ticket Created", "Success"),
        ("2026-01-16 01:00:00", "Rate Limited", "Pending"),
    ] {
        sql += &format!(
            "INSERT INTO helpscout_log (\"timestamp\", event_type, status, direction) \
             VALUES ('{at}'::TIMESTAMP::TIMESTAMPTZ, '{event}', '{status}', 'From HelpScout');\n"
        );
    }
    for (at, method, request, status, remaining, error) in [
        ("2026-01-15 10:00:00", "POST", "/v2/oauth2/token", "200", "NULL", "NULL"),
        ("2026-01-15 10:05:00", "GET", "/v2/conversations", "200", "390", "NULL"),
        ("2026-01-15 10:20:00", "GET", "/v2/conversations?page=2", "429", "0", "'Rate limit exceeded'"),
        ("2026-01-15 10:21:00", "GET", "/v2/conversations?page=2", "200", "399", "NULL"),
        ("2026-01-15 11:10:00", "GET", "/v2/customers", "500", "380", "'HTTP 500'"),
        ("2026-01-16 00:10:00", "GET", "/v2/users", "200", "250", "NULL"),
    ] {
        sql += &format!(
            "INSERT INTO helpscout_api_requests (\"timestamp\", method, request, status, duration_ms, rate_limit_remaining, error) \
             VALUES ('{at}'::TIMESTAMP::TIMESTAMPTZ, '{method}', '{request}', {status}, 10, {remaining}, {error});\n"
        );
    }
    sql += r#"
INSERT INTO mailboxes (id, name) VALUES (1, 'Support'), (2, 'Billing');
INSERT INTO mailbox_folders (id, mailbox_id, name, "type") VALUES (7, 1, 'Unassigned', 'open');
INSERT INTO mailbox_fields (id, mailbox_id, name, "type", required) VALUES (900, 1, 'Priority', 'dropdown', true);
INSERT INTO users (id, first_name, last_name, email) VALUES (10, 'Ann', 'Lee', 'ann@example.com'), (11, 'Bob', 'Ray', 'bob@example.com'), (12, 'Cy', NULL, 'cy@example.com');
INSERT INTO teams (id, name) VALUES (100, 'Tier 1'), (101, 'Tier 2');
INSERT INTO team_members (team_id, user_id) VALUES (100, 10), (100, 11), (101, 11);
INSERT INTO customers (id, first_name, last_name, emails) VALUES
  (500, 'Pat', 'Doe', [{'id': 1, 'value': 'pat@example.com', 'type': 'work'}]),
  (11, 'Cus', 'Tomer', [{'id': 2, 'value': 'cus@example.com', 'type': 'work'}]);
INSERT INTO conversations (id, number, subject, mailbox_id, folder_id, assignee, custom_fields) VALUES
  (1000, 1, 'Login', 1, 7, {'id': 10, 'type': 'user', 'first': 'Ann', 'last': 'Lee', 'email': 'ann@example.com', 'photo_url': NULL},
   [{'id': 900, 'name': 'Priority', 'value': '2', 'text': 'High'}]),
  (1001, 2, 'Invoice', 1, NULL, NULL, NULL),
  (1002, 3, 'Refund', 2, NULL, NULL, NULL);
INSERT INTO conversation_threads (id, conversation_id, customer, created_by) VALUES
  (1, 1000, {'id': 500, 'type': NULL, 'first': NULL, 'last': NULL, 'email': NULL, 'photo_url': NULL},
            {'id': 10, 'type': 'user', 'first': 'Ann', 'last': 'Lee', 'email': NULL, 'photo_url': NULL}),
  (2, 1000, {'id': 11, 'type': NULL, 'first': NULL, 'last': NULL, 'email': NULL, 'photo_url': NULL},
            {'id': 11, 'type': 'customer', 'first': 'Cus', 'last': 'Tomer', 'email': NULL, 'photo_url': NULL}),
  (3, 9999, NULL, NULL);
INSERT INTO happiness_ratings_report (conversation_id, rating_created_at, rating_customer_id, rating_customer_name, rating_user_id, rating_user_name, rating, rating_comments) VALUES
  (1000, '2026-01-05 09:00:00'::TIMESTAMP::TIMESTAMPTZ, 500, 'Pat Doe', 10, 'Ann Lee', 'great', 'Thanks!'),
  (1000, '2026-01-06 09:00:00'::TIMESTAMP::TIMESTAMPTZ, 500, 'Pat Doe', 10, 'Ann Lee', 'great', NULL),
  (1001, '2026-01-12 23:59:00'::TIMESTAMP::TIMESTAMPTZ, 11, 'Cus Tomer', 11, 'Bob Ray', 'great', 'Fast'),
  (1002, '2026-02-01 00:30:00'::TIMESTAMP::TIMESTAMPTZ, 500, 'Pat Doe', 11, 'Bob Ray', 'okay', '  '),
  (1002, '2026-02-02 10:00:00'::TIMESTAMP::TIMESTAMPTZ, 500, 'Pat Doe', 12, 'Cy', 'not_good', 'Slow');
"#;
    write(&path, &sql);
    path
}

#[test]
fn hand_checked_numbers_on_a_small_fixed_account() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixed_account(dir.path());

    // Summary per UTC day: 23:30 and 00:30 fall on either side of midnight.
    assert_eq!(
        rows(&path, "SELECT * FROM log_summary_daily WHERE day < '2026-02-01'"),
        vec![
            strs(&["2026-01-15", "3", "2", "1", "0", "66.7", "1", "1", "0"]),
            strs(&["2026-01-16", "2", "1", "0", "1", "100.0", "1", "0", "1"]),
        ]
    );
    assert_eq!(
        rows(&path, "SELECT * FROM log_summary('2026-01-15', '2026-01-17')"),
        vec![strs(&["2026-01-15 00:00:00", "2026-01-17 00:00:00", "5", "3", "1", "1", "75.0", "2", "1", "1"])]
    );
    assert_eq!(
        rows(&path, "SELECT total_events, new_tickets FROM log_summary('2026-01-15 23:00:00', '2026-01-16 00:45:00')"),
        vec![strs(&["2", "2"])]
    );

    // Health: Table Synced 19/20 = 95.0 % is not below; Authentication 1/2 in 48 h is.
    let health = rows(
        &path,
        "SELECT window_hours, event_type, attempt_level, events, successes, failures, pending, success_rate_pct, below_threshold \
         FROM integration_health",
    );
    let expected: Vec<Vec<String>> = [
        ["24", "Authentication", "false", "1", "1", "0", "0", "100.0", "false"],
        ["24", "Customer Synced", "false", "2", "2", "0", "0", "100.0", "false"],
        ["24", "Error", "true", "2", "0", "2", "0", "", "false"],
        ["24", "Rate Limited", "true", "1", "0", "0", "1", "", "false"],
        ["24", "Table Synced", "false", "20", "19", "1", "0", "95.0", "false"],
        ["24", "Ticket Created", "false", "3", "3", "0", "0", "100.0", "false"],
        ["24", "All outcomes", "false", "26", "25", "1", "0", "96.2", "false"],
        ["48", "Authentication", "false", "2", "1", "1", "0", "50.0", "true"],
        ["48", "Customer Synced", "false", "2", "2", "0", "0", "100.0", "false"],
        ["48", "Error", "true", "2", "0", "2", "0", "", "false"],
        ["48", "Rate Limited", "true", "1", "0", "0", "1", "", "false"],
        ["48", "Table Synced", "false", "20", "19", "1", "0", "95.0", "false"],
        ["48", "Ticket Created", "false", "3", "3", "0", "0", "100.0", "false"],
        ["48", "All outcomes", "false", "27", "25", "2", "0", "92.6", "true"],
    ]
    .iter()
    .map(|r| strs(r))
    .collect();
    assert_eq!(health, expected);
    assert_eq!(
        rows(&path, "SELECT last_error FROM integration_health WHERE window_hours = 48 AND event_type = 'Authentication'"),
        vec![strs(&["Authentication failed 30 h ago"])]
    );

    // API usage: token requests apart; 429s; lowest remaining per hour and day.
    assert_eq!(
        rows(&path, "SELECT hour, requests, rate_limited, failed, lowest_remaining, token_requests FROM api_usage_hourly"),
        vec![
            strs(&["2026-01-15 10:00:00", "3", "1", "0", "0", "1"]),
            strs(&["2026-01-15 11:00:00", "1", "0", "1", "380", "0"]),
            strs(&["2026-01-16 00:00:00", "1", "0", "0", "250", "0"]),
        ]
    );
    assert_eq!(
        rows(&path, "SELECT day, requests, rate_limited, failed, lowest_remaining, token_requests, active_hours FROM api_usage_daily"),
        vec![strs(&["2026-01-15", "4", "1", "1", "0", "1", "2"]), strs(&["2026-01-16", "1", "0", "0", "250", "0", "1"])]
    );

    // Happiness: 3 great, 1 okay, 1 not good → 60 − 20 = 40.0.
    assert_eq!(
        rows(&path, "SELECT ratings, great, okay, not_good, great_pct, okay_pct, not_good_pct, happiness_score FROM happiness_summary"),
        vec![strs(&["5", "3", "1", "1", "60.0", "20.0", "20.0", "40.0"])]
    );
    let score = |view: &str, key: &str| rows(&path, &format!("SELECT {key}, ratings, great, okay, not_good, happiness_score FROM {view}"));
    assert_eq!(
        score("happiness_by_mailbox", "mailbox_name"),
        vec![strs(&["Billing", "2", "0", "1", "1", "-50.0"]), strs(&["Support", "3", "3", "0", "0", "100.0"])]
    );
    assert_eq!(
        score("happiness_by_user", "user_name"),
        vec![
            strs(&["Ann Lee", "2", "2", "0", "0", "100.0"]),
            strs(&["Bob Ray", "2", "1", "1", "0", "50.0"]),
            strs(&["Cy", "1", "0", "0", "1", "-100.0"]),
        ]
    );
    assert_eq!(
        score("happiness_by_team", "team_name"),
        vec![
            strs(&["Tier 1", "4", "3", "1", "0", "75.0"]),
            strs(&["Tier 2", "2", "1", "1", "0", "50.0"]),
            strs(&["", "1", "0", "0", "1", "-100.0"]),
        ]
    );
    assert_eq!(
        rows(&path, "SELECT period_start, ratings, happiness_score FROM happiness_by_period WHERE period = 'month'"),
        vec![strs(&["2026-01-01", "3", "100.0"]), strs(&["2026-02-01", "2", "-50.0"])]
    );
    // ISO weeks start on Monday: Sunday 1 February belongs to the week of 26 January.
    assert_eq!(
        rows(&path, "SELECT period_start, ratings, happiness_score FROM happiness_by_period WHERE period = 'week'"),
        vec![
            strs(&["2026-01-05", "2", "100.0"]),
            strs(&["2026-01-12", "1", "100.0"]),
            strs(&["2026-01-26", "1", "0.0"]),
            strs(&["2026-02-02", "1", "-100.0"]),
        ]
    );
    assert_eq!(
        rows(&path, "SELECT period_start FROM happiness_by_period WHERE period = 'day'"),
        vec![strs(&["2026-01-05"]), strs(&["2026-01-06"]), strs(&["2026-01-12"]), strs(&["2026-02-01"]), strs(&["2026-02-02"])]
    );
    // Comments, newest first; a blank comment is no comment.
    assert_eq!(
        rows(&path, "SELECT rating, comments, customer_name, customer_email, user_name, conversation_number, mailbox_name, conversation_url FROM happiness_comments"),
        vec![
            strs(&["not_good", "Slow", "Pat Doe", "pat@example.com", "Cy", "3", "Billing", "https://secure.helpscout.net/conversation/1002/3"]),
            strs(&["great", "Fast", "Cus Tomer", "cus@example.com", "Bob Ray", "2", "Support", "https://secure.helpscout.net/conversation/1001/2"]),
            strs(&["great", "Thanks!", "Pat Doe", "pat@example.com", "Ann Lee", "1", "Support", "https://secure.helpscout.net/conversation/1000/1"]),
        ]
    );

    // Join views: one row per thread / conversation; a customer's id never matches a user.
    assert_eq!(
        rows(&path, "SELECT id, conversation_subject, customer_email, user_id, user_email FROM threads_enriched ORDER BY id"),
        vec![
            strs(&["1", "Login", "pat@example.com", "10", "ann@example.com"]),
            strs(&["2", "Login", "cus@example.com", "", ""]),
            strs(&["3", "", "", "", ""]),
        ]
    );
    assert_eq!(
        rows(&path, "SELECT id, mailbox_name, folder_name, assignee_email FROM conversations_enriched ORDER BY id"),
        vec![
            strs(&["1000", "Support", "Unassigned", "ann@example.com"]),
            strs(&["1001", "Support", "", ""]),
            strs(&["1002", "Billing", "", ""]),
        ]
    );
    assert_eq!(
        rows(&path, "SELECT conversation_id, field_id, field_name, field_type, field_required, value, text FROM conversation_custom_fields"),
        vec![strs(&["1000", "900", "Priority", "dropdown", "true", "2", "High"])]
    );
}


#[test]
fn report_health_exits_4_below_the_threshold_and_the_other_reports_print_the_views() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixed_account(dir.path());

    // 24 h: every outcome type at or above 95 % (Table Synced exactly 95.0 %).
    let (code, out, err) = report(&path, &["health"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK: every event type at or above 95 %"), "{out}");
    assert!(out.contains("BELOW 95 %"), "the 48 h rows are flagged: {out}");

    // One more failed table in the last hour: 19 of 21 = 90.5 %.
    write(
        &path,
        "INSERT INTO helpscout_log (\"timestamp\", event_type, status, direction, error_message) \
         VALUES (make_timestamp(epoch_us(now()) - 3600000000)::TIMESTAMPTZ, 'Table Synced', 'Failed', 'From HelpScout', 'Mailbox not found');",
    );
    let (code, out, err) = report(&path, &["health"]);
    assert_eq!(code, 4, "{out}{err}");
    assert!(out.contains("ALERT: below 95 % in the last 24 hours: Table Synced 90.5 % (19 of 21 succeeded)"), "{out}");
    let (code, out, _) = report(&path, &["health", "--json"]);
    assert_eq!(code, 4);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["alert"], true);
    assert_eq!(json["below_threshold_24h"], serde_json::json!(["Table Synced", "All outcomes"]));

    let (code, out, err) = report(&path, &["happiness"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Overall: 5 ratings: 3 great, 1 okay, 1 not good; happiness score 40.0"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("2026-02-01") && l.trim_end().ends_with("-50.0")), "{out}");
    let (_, out, _) = report(&path, &["happiness", "--by", "mailbox"]);
    assert!(out.lines().any(|l| l.contains("Billing") && l.trim_end().ends_with("-50.0")), "{out}");
    let (_, out, _) = report(&path, &["happiness", "--by", "week", "--limit", "2"]);
    let weeks: Vec<&str> = out.lines().filter(|l| l.starts_with("2026-")).collect();
    assert_eq!(weeks.len(), 2, "{out}");
    assert!(weeks[0].starts_with("2026-01-26") && weeks[1].starts_with("2026-02-02"), "the latest two, in order: {out}");
    let (_, out, _) = report(&path, &["happiness", "--by", "comments", "--csv"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.lines().nth(1).unwrap().contains(",not_good,Slow,Pat Doe,"), "{out}");

    let (code, out, _) = report(&path, &["api-usage", "--by", "hour", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 3);
    assert_eq!(json["rows"][0]["rate_limited"], 1);
    assert_eq!(json["totals"]["lowest_remaining"], 0);
    let (_, out, _) = report(&path, &["api-usage"]);
    assert!(out.contains("All recorded: 5 requests, 1 throttled (429), 1 failed; lowest remaining budget seen: 0."), "{out}");

    // Wrong grouping: bad input (2); a file without the views: a clear failure (1).
    assert_eq!(report(&path, &["health", "--by", "day"]).0, 2);
    assert_eq!(report(&path, &["api-usage", "--by", "team"]).0, 2);
    let bare = dir.path().join("bare.duckdb");
    write(&bare, "CREATE TABLE t (x INTEGER);");
    let (code, _, err) = report(&bare, &["happiness"]);
    assert_eq!(code, 1);
    assert!(err.contains("happiness_by_period is not installed") && err.contains("helpscout-etl views"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_views_agree_with_the_tables_after_a_real_sync() {
    let sim = simulator(40, 3).await;
    let dir = tempfile::tempdir().unwrap();
    sync_ok(&settings(&sim, dir.path())).await;
    let path = duckdb_path(dir.path());

    assert_eq!(one(&path, "SELECT count(*) FROM _helpscout_views WHERE NOT installed"), 0);
    let threads = one(&path, "SELECT count(*) FROM conversation_threads");
    assert!(threads > 0);
    assert_eq!(one(&path, "SELECT count(*) FROM threads_enriched"), threads);
    assert_eq!(
        one(&path, "SELECT count(*) FROM threads_enriched WHERE conversation_number IS NULL"),
        0,
        "every thread finds its conversation"
    );
    assert_eq!(one(&path, "SELECT count(*) FROM conversations_enriched"), one(&path, "SELECT count(*) FROM conversations"));
    assert_eq!(one(&path, "SELECT count(*) FROM conversations_enriched WHERE mailbox_name IS NULL"), 0);
    assert_eq!(
        one(&path, "SELECT count(*) FROM conversation_custom_fields"),
        one(&path, "SELECT coalesce(sum(len(custom_fields)), 0) FROM conversations")
    );

    let ratings = one(&path, "SELECT count(*) FROM happiness_ratings_report");
    assert!(ratings > 0, "the simulated account has ratings");
    assert_eq!(one(&path, "SELECT ratings FROM happiness_summary"), ratings);
    for period in ["day", "week", "month"] {
        assert_eq!(
            one(&path, &format!("SELECT sum(ratings)::BIGINT FROM happiness_by_period WHERE period = '{period}'")),
            ratings,
            "{period}"
        );
    }
    for view in ["happiness_by_mailbox", "happiness_by_user"] {
        assert_eq!(one(&path, &format!("SELECT sum(ratings)::BIGINT FROM {view}")), ratings, "{view}");
    }
    assert_eq!(
        one(&path, "SELECT sum(ratings)::BIGINT FROM happiness_by_team"),
        one(
            &path,
            "SELECT count(*) FROM happiness_ratings_report r LEFT JOIN team_members m ON r.rating_user_id = m.user_id"
        ),
        "a rating counts once per team of its user"
    );
    assert_eq!(
        one(&path, "SELECT count(*) FROM happiness_comments"),
        one(&path, "SELECT count(*) FROM happiness_ratings_report WHERE trim(rating_comments) <> ''")
    );

    // The log and request views cover the run.
    assert_eq!(one(&path, "SELECT sum(total_events)::BIGINT FROM log_summary_daily"), one(&path, "SELECT count(*) FROM helpscout_log"));
    assert_eq!(
        one(&path, "SELECT new_tickets FROM log_summary('2000-01-01', '2100-01-01')"),
        one(&path, "SELECT count(*) FROM conversations"),
        "a first sync creates one ticket per conversation"
    );
    assert_eq!(
        one(&path, "SELECT events FROM integration_health WHERE window_hours = 24 AND event_type = 'Ticket Created'"),
        one(&path, "SELECT count(*) FROM conversations")
    );
    assert_eq!(
        one(&path, "SELECT sum(requests)::BIGINT FROM api_usage_daily"),
        one(&path, "SELECT count(*) FROM helpscout_api_requests WHERE request NOT LIKE '%/oauth2/token'")
    );
    let (code, out, err) = report(&path, &["happiness", "--by", "team"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("Overall: {ratings} ratings")), "{out}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_some_tables_or_columns_installs_what_it_can() {
    let sim = simulator(10, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings_with(&sim, dir.path(), |f| {
        f.sync.tables = Some(vec!["mailboxes".into(), "mailbox_folders".into(), "users".into(), "conversations".into()]);
        f.tables.insert("mailboxes".into(), TableSection { columns: Some(vec!["email".into(), "updated_at".into()]), ..Default::default() });
    });
    sync_ok(&settings).await;
    let path = duckdb_path(dir.path());
    let installed = rows(&path, "SELECT view_file FROM _helpscout_views WHERE installed ORDER BY view_file");
    // The form views need only the log and conversations' id, number, tags and created_at.
    assert_eq!(installed.concat(), ["010_log_summary.sql", "020_integration_health.sql", "030_api_usage.sql", "070_form_repeat_submitters.sql", "071_form_duplicate_tickets.sql"]);
    // conversations_enriched has all its tables but reads mailboxes.name, which was deselected.
    let note = rows(&path, "SELECT note FROM _helpscout_views WHERE view_file = '060_conversations_enriched.sql'");
    assert!(note[0][0].starts_with("skipped: ") && note[0][0].contains("name"), "{note:?}");
    assert_eq!(one(&path, "SELECT count(*) FROM duckdb_views() WHERE view_name = 'conversations_enriched'"), 0);
    assert!(one(&path, "SELECT sum(total_events)::BIGINT FROM log_summary_daily") > 0);
    sim.stop().await;
}

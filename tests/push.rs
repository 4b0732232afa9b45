//! To HelpScout against the simulator on 127.0.0.1: submissions become one ticket each,
//! repeats and lost answers never make a second one, every failure reason lands in the log with
//! its fix and can be corrected and retried, customers are created, updated with only what
//! changed, or left alone, and the intake over HTTP is durable before it answers.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use helpscout_etl::catalog::outbound::{FailureReason, Submission};
use helpscout_etl::cli::config::Settings;
use helpscout_etl::deliver::{self, Correction, Delivery, DeliveryReport, FormSettings, PushSettings, intake};
use helpscout_etl::store::{LogFilter, Outbox, Queue, Received, Warehouse};
use helpscout_sim::{FaultKind, FaultPlan, FaultRule, Simulator};

fn mailbox(sim: &Simulator) -> i64 {
    sim.ground_truth_table("mailboxes").unwrap()[0]["id"].as_i64().unwrap()
}

fn push_settings(mailbox_id: i64) -> PushSettings {
    let form = FormSettings {
        name: "contact".into(),
        secret: Some("s3cret-s3cret-s3cret".into()),
        mailbox_id,
        tags: vec!["website".into()],
        imported: true,
        auto_reply: false,
    };
    PushSettings { forms: [("contact".to_string(), form)].into(), recheck_after: Duration::ZERO, ..Default::default() }
}

fn submission(id: &str, email: &str) -> Submission {
    let fields = [("submission_id", id), ("email", email), ("name", "Jane Doe"), ("subject", "Order question"), ("message", "Where is my order?"), ("order", "A-42")];
    intake::submission("contact", fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap().0
}

fn receive(settings: &Settings, push: &PushSettings, s: &Submission) -> Received {
    let mut outbox = Outbox::open(settings.outputs.outbox()).unwrap();
    deliver::receive(&mut outbox, push, s, true).unwrap()
}

async fn deliver_all(settings: &Settings, push: &PushSettings) -> DeliveryReport {
    let client = helpscout_etl::api::Client::new(settings.sync.client.clone()).unwrap();
    Delivery::new(&settings.outputs, client, push).unwrap().run(Duration::from_secs(10)).await.unwrap()
}

/// (status, event type, conversation id, error message, details) of the To-HelpScout rows.
fn log_of(dir: &Path) -> Vec<(String, String, Option<i64>, Option<String>, String)> {
    let filter = LogFilter { direction: Some("To HelpScout".into()), ..Default::default() };
    let reader = Warehouse::new(duckdb_path(dir)).read().unwrap();
    let mut rows: Vec<_> = reader.log_rows(&filter, 1000).unwrap().into_iter().map(|r| (r.status, r.event_type, r.conversation_id, r.error_message, r.details.unwrap_or_default())).collect();
    rows.sort();
    rows
}

/// Tickets per marker in the simulator's truth.
fn tickets_with(sim: &Simulator, marker: &str) -> usize {
    sim.created().conversations.iter().filter(|c| c.tags.iter().any(|t| t == marker)).count()
}

fn on_posts(path: &str, count: u64, kind: FaultKind) -> FaultPlan {
    FaultPlan { rules: vec![FaultRule { path_prefix: Some(path.into()), method: Some("POST".into()), after: 0, count, kind }] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_become_one_ticket_each_in_the_forms_mailbox_with_its_marker_and_the_log_says_so() {
    let sim = simulator(5, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let push = push_settings(mailbox(&sim));
    let subs = [submission("s-1", "jane@example.com"), submission("s-2", "joe@example.com")];
    for s in &subs {
        assert!(matches!(receive(&settings, &push, s), Received::New { .. }));
    }
    let report = deliver_all(&settings, &push).await;
    assert_eq!((report.tickets_created, report.tickets_found, report.waiting), (2, 0, 0), "{report:?}");
    let created = sim.created().conversations;
    assert_eq!(created.len(), 2);
    for s in &subs {
        let c = created.iter().find(|c| c.tags.contains(&s.marker())).expect("the marker tags its ticket");
        assert_eq!((c.mailbox_id, c.subject.as_str(), c.customer_email.as_deref()), (mailbox(&sim), "Order question", Some(s.email.as_str())));
        assert!(c.tags.contains(&"website".to_string()) && c.imported && !c.auto_reply);
        assert!(c.text.contains("Where is my order?") && c.text.contains("order: A-42"), "{}", c.text);
    }
    let log = log_of(dir.path());
    assert_eq!(log.len(), 2, "{log:?}");
    for (status, event, conversation, error, _) in &log {
        assert_eq!((status.as_str(), event.as_str(), error), ("Success", "Ticket Created", &None));
        assert!(created.iter().any(|c| Some(c.id) == *conversation));
    }
    // Nothing left: a second run sends nothing.
    let again = deliver_all(&settings, &push).await;
    assert_eq!(again.tickets_created + again.tickets_found, 0);
    assert_eq!(sim.created().conversations.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_submission_received_twice_makes_one_ticket_and_the_repeat_is_logged_as_ignored() {
    let sim = simulator(5, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let push = push_settings(mailbox(&sim));
    let s = submission("wh-7", "jane@example.com");
    assert!(matches!(receive(&settings, &push, &s), Received::New { .. }));
    // A webhook firing twice: same id.
    assert!(matches!(receive(&settings, &push, &s), Received::Duplicate { .. }));
    // A double click without an id: same words within the window.
    let mut outbox = Outbox::open(settings.outputs.outbox()).unwrap();
    let (click, given) = intake::submission("contact", vec![("email".into(), "joe@example.com".into()), ("subject".into(), "Hi".into()), ("message".into(), "Twice".into())]).unwrap();
    assert!(matches!(deliver::receive(&mut outbox, &push, &click, given).unwrap(), Received::New { .. }));
    let (click2, given2) = intake::submission("contact", vec![("email".into(), "Joe@example.com".into()), ("subject".into(), "Hi".into()), ("message".into(), "Twice".into())]).unwrap();
    assert!(matches!(deliver::receive(&mut outbox, &push, &click2, given2).unwrap(), Received::Duplicate { .. }));
    drop(outbox);
    let report = deliver_all(&settings, &push).await;
    assert_eq!(report.tickets_created, 2);
    assert_eq!(tickets_with(&sim, &s.marker()), 1);
    let log = log_of(dir.path());
    assert_eq!(log.iter().filter(|r| r.1 == "Duplicate Ignored").count(), 2, "{log:?}");
    assert_eq!(log.iter().filter(|r| r.1 == "Ticket Created" && r.0 == "Success").count(), 2);
    // The page's duplicate views see the repeat submitters.
    let repeaters = query_strings(dir.path(), "SELECT customer_email FROM form_repeat_submitters ORDER BY 1");
    assert_eq!(repeaters, ["jane@example.com", "joe@example.com"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_answer_is_lost_is_found_by_its_marker_and_never_posted_twice() {
    // A 5xx after the write, an answer slower than the client waits (both lose the answer), and
    // a connection dropped while the answer is read (a 201 has no body to cut: it may arrive).
    let faults = [(FaultKind::StatusAfterWrite(500), true), (FaultKind::StatusAfterWrite(503), true), (FaultKind::DelayAfter(2_500), true), (FaultKind::DropConnection, false)];
    let sim = simulator(5, 3).await;
    for (i, (fault, lost)) in faults.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(&sim, dir.path());
        let push = push_settings(mailbox(&sim));
        let s = submission(&format!("lost-{i}"), "jane@example.com");
        receive(&settings, &push, &s);
        sim.set_faults(on_posts("/v2/conversations", 1, fault.clone()));
        sim.reset_request_stats();
        let report = deliver_all(&settings, &push).await;
        assert_eq!(report.tickets_created + report.tickets_found, 1, "{fault:?}: {report:?}");
        if lost {
            assert_eq!(report.tickets_found, 1, "{fault:?}: found by the marker, not posted again: {report:?}");
        }
        assert_eq!(tickets_with(&sim, &s.marker()), 1, "{fault:?}");
        let posts: u64 = sim.request_stats().by_endpoint.iter().filter(|e| e.method == "POST" && e.endpoint == "/v2/conversations").map(|e| e.count).sum();
        assert_eq!(posts, 1, "{fault:?}: one POST only");
        let log = log_of(dir.path());
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].0, "Success");
        assert!(!lost || log[0].4.contains("found by its marker"), "{}", log[0].4);
    }
    sim.set_faults(FaultPlan::default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_reason_is_failed_in_the_log_with_its_fix_and_a_corrected_retry_sends_it_once() {
    let sim = simulator(5, 4).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let push = push_settings(mailbox(&sim));
    let bad_email = submission("f-email", "jane at example.com");
    let mut no_subject = submission("f-subject", "a@example.com");
    no_subject.subject = String::new();
    let mut garbled = submission("f-name", "b@example.com");
    garbled.name = "JosÃ© Núñez".into();
    for s in [&bad_email, &no_subject, &garbled] {
        receive(&settings, &push, s);
    }
    sim.reset_request_stats();
    let report = deliver_all(&settings, &push).await;
    assert_eq!(report.failed.len(), 3, "{report:?}");
    // Checked before sending: no POST at all.
    assert!(sim.request_stats().by_endpoint.iter().all(|e| e.method != "POST" || e.endpoint.contains("oauth2")));
    let log = log_of(dir.path());
    let errors: Vec<String> = log.iter().filter_map(|r| r.3.clone()).collect();
    assert_eq!(errors, ["Character encoding issue in name field: name", "Invalid email address", "Required field missing: subject"], "{log:?}");
    assert!(log.iter().all(|r| r.0 == "Failed" && r.4.contains("retry")), "the fix is in the details: {log:?}");

    // A wrong mailbox id in the settings: Help Scout answers, the log says which setting.
    let wrong = PushSettings { forms: [("contact".to_string(), FormSettings { mailbox_id: 999_999, ..push.forms["contact"].clone() })].into(), ..push.clone() };
    let misrouted = submission("f-mailbox", "c@example.com");
    receive(&settings, &wrong, &misrouted);
    deliver_all(&settings, &wrong).await;
    assert!(log_of(dir.path()).iter().any(|r| r.3.as_deref() == Some("Mailbox not found") && r.0 == "Failed"));

    // Corrected and retried (the retry targets come from the log, as the page and CLI find them).
    let reader = Warehouse::new(duckdb_path(dir.path())).read().unwrap();
    let targets = reader.pending_outbound_retries(&LogFilter { search: Some("jane at example.com".into()), ..Default::default() }).unwrap();
    drop(reader);
    assert_eq!(targets, ["forms/contact/f-email"]);
    let client = helpscout_etl::api::Client::new(settings.sync.client.clone()).unwrap();
    let r = deliver::retry(&settings.outputs, client.clone(), &push, &targets, &Correction { email: Some("jane@example.com".into()), name: None }, Some("ann")).await.unwrap();
    assert_eq!(r.tickets_created, 1, "{r:?}");
    let r = deliver::retry(&settings.outputs, client, &push, &["forms/contact/f-mailbox".to_string()], &Correction::default(), Some("ann")).await.unwrap();
    assert_eq!(r.tickets_created, 1, "{r:?}");
    assert_eq!(tickets_with(&sim, &bad_email.marker()), 1);
    assert_eq!(tickets_with(&sim, &misrouted.marker()), 1);
    let reader = Warehouse::new(duckdb_path(dir.path())).read().unwrap();
    let fixed = reader.log_rows(&LogFilter { search: Some("forms/contact/f-email".into()), ..Default::default() }, 10).unwrap();
    assert_eq!((fixed.len(), fixed[0].status.as_str(), fixed[0].customer_email.as_deref(), fixed[0].retried_by.as_deref()), (1, "Success", Some("jane@example.com"), Some("ann")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_and_an_exhausted_rate_limit_fail_the_record_and_stop_the_run() {
    let sim = simulator(5, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings(&sim, dir.path());
    settings.sync.client.max_attempts = 1;
    let push = push_settings(mailbox(&sim));
    receive(&settings, &push, &submission("r-1", "a@example.com"));
    receive(&settings, &push, &submission("r-2", "b@example.com"));
    sim.set_faults(on_posts("/v2/conversations", 100, FaultKind::RateLimitBurst));
    let report = deliver_all(&settings, &push).await;
    sim.set_faults(FaultPlan::default());
    assert_eq!(report.stopped, Some(FailureReason::RateLimitExceeded), "{report:?}");
    assert_eq!((report.failed.len(), report.waiting), (1, 1), "the other stays queued: {report:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut refused = settings_with(&sim, dir.path(), |f| f.helpscout.client_secret = Some("wrong".into()));
    refused.sync.client.max_attempts = 1;
    receive(&refused, &push, &submission("a-1", "a@example.com"));
    let report = deliver_all(&refused, &push).await;
    assert_eq!(report.stopped, Some(FailureReason::AuthenticationFailed), "{report:?}");
    assert_eq!(log_of(dir.path())[0].3.as_deref(), Some("Authentication failed"));
    assert!(sim.created().conversations.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_are_created_once_updated_with_only_what_changed_and_left_alone_when_unchanged() {
    let sim = simulator(5, 6).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let push = push_settings(mailbox(&sim));
    let record = |fields: &[(&str, &str)]| intake::customer(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap();
    let ann = record(&[("email", "ann@example.org"), ("first_name", "Ann"), ("last_name", "Lee"), ("job_title", "CTO")]);
    let queue = |r: &helpscout_etl::catalog::outbound::CustomerRecord| {
        let mut outbox = Outbox::open(settings.outputs.outbox()).unwrap();
        deliver::receive_customer(&mut outbox, r).unwrap();
    };
    // The create's answer is lost: the next attempt finds the customer by email.
    queue(&ann);
    sim.set_faults(on_posts("/v2/customers", 1, FaultKind::StatusAfterWrite(502)));
    let report = deliver_all(&settings, &push).await;
    sim.set_faults(FaultPlan::default());
    let created = || sim.created().customers.iter().filter(|c| c.emails.iter().any(|e| e == "ann@example.org")).count();
    assert_eq!(created(), 1, "{report:?}");
    assert_eq!((report.customers_created, report.customers_unchanged), (1, 0), "{report:?}");
    assert!(log_of(dir.path()).iter().any(|r| r.1 == "Customer Synced" && r.0 == "Success" && r.4.contains("after a lost answer")), "{:?}", log_of(dir.path()));

    // The same record again: no write.
    queue(&ann);
    let report = deliver_all(&settings, &push).await;
    assert_eq!(report.customers_unchanged, 1, "{report:?}");
    assert!(sim.created().customer_updates.is_empty());

    // One field changed: one PATCH with that field only.
    let promoted = record(&[("email", "ANN@example.org"), ("first_name", "Ann"), ("job_title", "CEO")]);
    queue(&promoted);
    let report = deliver_all(&settings, &push).await;
    assert_eq!(report.customers_updated, 1, "{report:?}");
    let updates = sim.created().customer_updates;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].method, "PATCH");
    assert_eq!(updates[0].body.to_string(), r#"[{"op":"replace","path":"/jobTitle","value":"CEO"}]"#);
    assert_eq!(created(), 1, "never a duplicate customer");
    let log = log_of(dir.path());
    assert!(log.iter().any(|r| r.1 == "Customer Updated" && r.4.contains("jobTitle")), "{log:?}");
    assert!(log.iter().any(|r| r.1 == "Customer Updated" && r.4.contains("nothing written")), "the unchanged record is logged without a write: {log:?}");

    // A record Help Scout cannot take fails before sending.
    queue(&record(&[("email", "not-an-email")]));
    let report = deliver_all(&settings, &push).await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(Outbox::open(settings.outputs.outbox()).unwrap().counts(Queue::CustomerRecords).unwrap().failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intake_answers_202_only_once_durable_even_while_a_sync_holds_the_duckdb_file_and_refuses_strangers() {
    use helpscout_etl::web::{self, Role, ServeConfig};
    let sim = simulator(5, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let mut push = push_settings(mailbox(&sim));
    push.customers_secret = Some("customers-secret-123".into());
    web::user_store(&settings.outputs).add("ann", Role::Administrator, "admin password").unwrap();
    // No credentials: the server takes and logs submissions; this test delivers them itself.
    let server = web::bind(ServeConfig { outputs: settings.outputs.clone(), sync: None, push: push.clone(), listen: "127.0.0.1:0".parse().unwrap() }).await.unwrap();
    let url = format!("http://{}", server.addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let secret = "s3cret-s3cret-s3cret";
    let post = |path: &str, content_type: &str, body: Vec<u8>, headers: Vec<(&'static str, String)>| {
        let mut r = http.post(format!("{url}{path}")).header("content-type", content_type.to_string()).body(body);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.send()
    };
    // The DuckDB file cannot be opened at all (a directory stands in its place), as when a sync
    // holds it: the intake does not need it. (A connection held in this process would not do:
    // DuckDB's lock keeps other processes out, not this one.)
    std::fs::create_dir_all(duckdb_path(dir.path())).unwrap();
    let body = br#"{"submission_id":"web-1","email":"jane@example.com","name":"Jane","subject":"Help","message":"Hello"}"#.to_vec();
    let r = post("/forms/contact", "application/json", body.clone(), vec![("x-form-secret", secret.into())]).await.unwrap();
    assert_eq!(r.status(), 202);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!((answer["submission_id"].as_str(), answer["status"].as_str()), (Some("web-1"), Some("queued")));
    // Durable before the answer: another connection sees it at once.
    let outbox = Outbox::open(settings.outputs.outbox()).unwrap();
    assert_eq!(outbox.counts(Queue::Submissions).unwrap().queued, 1);
    // The same post again (a webhook retrying): a duplicate, not a second submission.
    let r = post("/forms/contact", "application/json", body.clone(), vec![("x-form-secret", secret.into())]).await.unwrap();
    assert_eq!(r.status(), 200);
    // Form-encoded and signed instead of the header.
    let form = b"email=joe%40example.com&subject=Hi&message=Signed+post".to_vec();
    let r = post("/forms/contact", "application/x-www-form-urlencoded", form.clone(), vec![("x-signature", web::signature(secret, &form))]).await.unwrap();
    assert_eq!(r.status(), 202);
    // Content the ticket cannot have: kept (so it can be corrected), answered 422 with the fix.
    let bad = br#"{"email":"not an email","subject":"S","message":"M"}"#.to_vec();
    let r = post("/forms/contact", "application/json", bad, vec![("x-form-secret", secret.into())]).await.unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["error"], "Invalid email address");
    // Strangers and broken posts.
    let cases: Vec<(&str, &str, Vec<u8>, Vec<(&'static str, String)>, u16)> = vec![
        ("/forms/contact", "application/json", body.clone(), vec![], 401),
        ("/forms/contact", "application/json", body.clone(), vec![("x-form-secret", "guess-guess-guess".into())], 401),
        ("/forms/contact", "application/json", body.clone(), vec![("x-signature", web::signature(secret, b"other body"))], 401),
        ("/forms/nope", "application/json", body.clone(), vec![("x-form-secret", secret.into())], 404),
        ("/forms/contact", "text/plain", body.clone(), vec![("x-form-secret", secret.into())], 415),
        ("/forms/contact", "application/json", b"{not json".to_vec(), vec![("x-form-secret", secret.into())], 400),
        ("/forms/contact", "application/json", br#"{"email":{"a":1}}"#.to_vec(), vec![("x-form-secret", secret.into())], 400),
        ("/forms/contact", "application/json", vec![b' '; 70 * 1024], vec![("x-form-secret", secret.into())], 413),
        ("/customers", "application/json", br#"{"email":"a@b.co"}"#.to_vec(), vec![("x-form-secret", secret.into())], 401),
        ("/customers", "application/json", br#"{"shoe_size":"9"}"#.to_vec(), vec![("x-form-secret", "customers-secret-123".into())], 400),
    ];
    for (path, ct, body, headers, want) in cases {
        match post(path, ct, body, headers.clone()).await {
            Ok(r) => assert_eq!(r.status().as_u16(), want, "{path} {ct} {headers:?}"),
            // Refused before it was read whole, the connection may close under the sender.
            Err(e) if want == 413 => assert!(e.is_request() || e.is_body(), "{e}"),
            Err(e) => panic!("{path}: {e}"),
        }
    }
    // A customer record from the business's system, with its own secret.
    let customer = br#"{"email":"ann@example.org","first_name":"Ann","job_title":"CTO"}"#.to_vec();
    let r = post("/customers", "application/json", customer, vec![("x-form-secret", "customers-secret-123".into())]).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(outbox.counts(Queue::Submissions).unwrap().queued, 3);
    assert_eq!(outbox.counts(Queue::CustomerRecords).unwrap().queued, 1);
    std::fs::remove_dir(duckdb_path(dir.path())).unwrap();
    let report = deliver_all(&settings, &push).await;
    assert_eq!((report.tickets_created, report.failed.len(), report.customers_created), (2, 1, 1), "{report:?}");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

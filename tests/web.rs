//! The log's web page over HTTP, against a real sync of the simulator on 127.0.0.1: sign-in,
//! roles, CSRF, the log's filters, search, paging and escaping, every page, exports, retries.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::*;
use helpscout_etl::cli::config::Settings;
use helpscout_etl::store::{LogFilter, Warehouse};
use helpscout_etl::web::{self, Role, ServeConfig, ServeError};
use helpscout_sim::{FaultKind, FaultPlan, FaultRule, MutationPlan, Simulator};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use tokio::sync::oneshot;

const ADMIN: (&str, &str) = ("ann", "admin password");
const MANAGER: (&str, &str) = ("bob", "manager password");

struct Served {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Served {
    async fn start(settings: &Settings) -> Served {
        let config = ServeConfig { outputs: settings.outputs.clone(), sync: Some(settings.sync.clone()), push: Default::default(), listen: "127.0.0.1:0".parse().unwrap() };
        let server = web::bind(config).await.expect("the page starts");
        let addr = server.addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = stopped.await;
        }));
        Served { addr, stop: Some(stop), task }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> String {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
    }

    /// The value of a hidden input (the first of that name).
    fn hidden(&self, name: &str) -> String {
        let needle = format!(r#"name="{name}" value=""#);
        let start = self.body.find(&needle).unwrap_or_else(|| panic!("no {name} in {}", self.body)) + needle.len();
        self.body[start..].split('"').next().unwrap().to_string()
    }

    /// The event ids of the log table, in order.
    fn event_ids(&self) -> Vec<i64> {
        self.body.split(r#"href="/events/"#).skip(1).map(|s| s.split('"').next().unwrap().parse().unwrap()).collect()
    }
}

/// A browser, as far as HTTP goes: cookies kept, redirects not followed.
struct Visitor {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

impl Visitor {
    fn new(served: &Served) -> Visitor {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Visitor { http, base: format!("http://{}", served.addr), cookies: BTreeMap::new() }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let response = request.header("cookie", cookie).send().await.unwrap();
        for set in response.headers().get_all(SET_COOKIE) {
            let (pair, _) = set.to_str().unwrap().split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.into(), v.into());
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Page { status, headers, body: response.text().await.unwrap() }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base));
        self.send(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(r).await
    }

    async fn sign_in(&mut self, (user, password): (&str, &str)) -> Page {
        let form = self.get("/login").await;
        let token = form.hidden("login_token");
        self.post("/login", &[("username", user), ("password", password), ("login_token", &token), ("next", "/log")]).await
    }

    /// The CSRF token of the signed-in session (every page's sign-out form carries it).
    async fn csrf(&mut self) -> String {
        self.get("/log?range=all").await.hidden("csrf")
    }
}

/// A synced account with an Administrator and a Manager.
async fn account(conversations: usize, seed: u64) -> (Simulator, tempfile::TempDir, Settings) {
    let sim = simulator(conversations, seed).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    sync_ok(&settings).await;
    let users = web::user_store(&settings.outputs);
    users.add(ADMIN.0, Role::Administrator, ADMIN.1).unwrap();
    users.add(MANAGER.0, Role::Manager, MANAGER.1).unwrap();
    (sim, dir, settings)
}

fn matching(settings: &Settings, filter: LogFilter) -> i64 {
    Warehouse::new(&settings.outputs.duckdb).read().unwrap().log_summary(&filter).unwrap().total_events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sessions_roles_and_csrf_are_enforced_by_the_server() {
    let (sim, _dir, settings) = account(20, 31).await;
    let served = Served::start(&settings).await;
    let mut v = Visitor::new(&served);

    let page = v.get("/log?range=7d").await;
    assert_eq!((page.status, page.location()), (303, "/login?next=%2Flog%3Frange%3D7d".to_string()), "sign-in first");
    let form = v.get("/login").await;
    for label in [r#"<label for="username">Username</label>"#, r#"<label for="password">Password</label>"#, r#"<button type="submit">Sign in</button>"#] {
        assert!(form.body.contains(label), "{label}");
    }
    assert_eq!(v.sign_in((MANAGER.0, "not it")).await.status, 401);
    let signed = v.sign_in(MANAGER).await;
    assert_eq!((signed.status, signed.location()), (303, "/log".to_string()));
    let cookie = signed.headers.get_all(SET_COOKIE).iter().map(|c| c.to_str().unwrap().to_string()).find(|c| c.starts_with("hs_session=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && !cookie.contains("Secure"), "{cookie}");

    // A Manager views and exports, and is refused every Administrator action by the server.
    assert_eq!(v.get("/log?range=all").await.status, 200);
    assert_eq!(v.get("/export?format=csv&range=all").await.status, 200);
    let csrf = v.csrf().await;
    assert_eq!(v.get("/users").await.status, 403);
    assert_eq!(v.post("/retry", &[("csrf", &csrf), ("all", "1"), ("query", "range=all")]).await.status, 403);
    assert_eq!(v.post("/users", &[("csrf", &csrf), ("name", "eve"), ("role", "administrator"), ("password", "eve password")]).await.status, 403);
    assert_eq!(v.post("/users/remove", &[("csrf", &csrf), ("name", ADMIN.0)]).await.status, 403);
    assert!(!v.get("/log?range=all").await.body.contains(r#"action="/retry""#), "no Retry button for a Manager");

    // An Administrator's forms carry the session's token; without it nothing happens.
    let mut a = Visitor::new(&served);
    a.sign_in(ADMIN).await;
    assert_eq!(a.post("/users", &[("csrf", "forged"), ("name", "eve"), ("role", "manager"), ("password", "eve password")]).await.status, 400);
    let csrf = a.csrf().await;
    assert_eq!(a.post("/users", &[("csrf", &csrf), ("name", "eve"), ("role", "manager"), ("password", "eve password")]).await.status, 303);
    assert!(a.get("/users").await.body.contains("eve"));
    assert_eq!(a.post("/users/remove", &[("csrf", &csrf), ("name", "eve")]).await.status, 303);

    // Behind HTTPS the cookie is Secure; signing out ends the session.
    let login = a.get("/login").await.hidden("login_token");
    let over_https = a
        .send(a.http.post(format!("{}/login", a.base)).header("x-forwarded-proto", "https").form(&[("username", ADMIN.0), ("password", ADMIN.1), ("login_token", &login)]))
        .await;
    assert!(over_https.headers.get_all(SET_COOKIE).iter().any(|c| c.to_str().unwrap().contains("; Secure")));
    let csrf = a.csrf().await;
    assert_eq!(a.post("/logout", &[("csrf", &csrf)]).await.status, 303);
    assert_eq!(a.get("/log").await.status, 303);

    // A removed user's session ends at their next request.
    let mut c = Visitor::new(&served);
    web::user_store(&settings.outputs).add("cy", Role::Manager, "cy password").unwrap();
    c.sign_in(("cy", "cy password")).await;
    assert_eq!(c.get("/log").await.status, 200);
    web::user_store(&settings.outputs).remove("cy").unwrap();
    assert_eq!(c.get("/log").await.status, 303);

    // Five failures (from this address, whoever they were for), then even the right password waits.
    let mut t = Visitor::new(&served);
    for _ in 0..5 {
        assert!([401, 429].contains(&t.sign_in((ADMIN.0, "guess")).await.status));
    }
    let throttled = t.sign_in(ADMIN).await;
    assert_eq!(throttled.status, 429);
    assert!(throttled.body.contains("Too many failed sign-in attempts"));
    // A sign-in form that did not come from us is refused.
    let mut f = Visitor::new(&served);
    assert_eq!(f.post("/login", &[("username", MANAGER.0), ("password", MANAGER.1), ("login_token", "made-up")]).await.status, 400);
    served.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_page_filters_searches_pages_stably_and_never_runs_what_it_shows() {
    let (sim, dir, settings) = account(120, 9).await;
    sim.advance_clock(chrono::Duration::hours(1));
    let changed = sim.mutate(&MutationPlan { seed: 2, invalid_emails: 1, replies: 5, ..Default::default() });
    sync_ok(&settings).await;
    let served = Served::start(&settings).await;
    let mut v = Visitor::new(&served);
    v.sign_in(MANAGER).await;

    let page = v.get("/log?range=all").await;
    assert_eq!(page.status, 200);
    for h in ["Timestamp", "Event Type", "Customer Email", "HelpScout Conversation ID", "Status", "Direction", "Details", "Error Message"] {
        assert!(page.body.contains(&format!(r#"<th scope="col">{h}</th>"#)), "{h}");
    }
    let first = page.event_ids();
    assert_eq!(first.len(), 50, "a page of 50");
    let csp = page.headers.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    assert!(!page.body.contains("<script") && !page.body.contains(" src="), "no script and nothing fetched from elsewhere");
    // Subjects carry hostile HTML: shown as text.
    assert!(page.body.contains("&lt;script&gt;") || v.get("/log?range=all&q=script").await.body.contains("&lt;script&gt;"));
    // The Summary Dashboard of the period.
    let total = matching(&settings, LogFilter::default());
    assert!(page.body.contains(&format!("<dd>{total}</dd>")), "total sync events {total}");

    // Paging is stable while new events arrive: the second page stays the same.
    let older = page.body.split(r#"rel="next""#).next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let second = v.get(&older).await.event_ids();
    assert!(!second.is_empty() && second.iter().all(|id| !first.contains(id)));
    sim.advance_clock(chrono::Duration::hours(1));
    sim.mutate(&MutationPlan { seed: 3, new_conversations: 30, ..Default::default() });
    sync_ok(&settings).await;
    assert_eq!(v.get(&older).await.event_ids(), second, "the same page after 30 new tickets");
    assert_ne!(v.get("/log?range=all").await.event_ids(), first, "the first page shows them");

    // Search: a customer's email (partial, any case), a conversation id, a ticket number.
    let customer = changed.edited_customers[0];
    let email: String = connect(dir.path()).query_row(&format!("SELECT emails[1].value FROM customers WHERE id = {customer}"), [], |r| r.get(0)).unwrap();
    let part = email[..email.len() - 4].to_uppercase();
    let found = v.get(&format!("/log?range=all&q={}", urlencode(&part))).await;
    assert!(found.body.contains("Invalid email address"), "use case 2: why this customer does not sync");
    assert_eq!(found.event_ids().len() as i64, matching(&settings, LogFilter { search: Some(part), ..Default::default() }));
    let conversation = truth_rows(&sim, "conversations").into_values().next().unwrap();
    let (id, number) = (conversation["id"].as_i64().unwrap(), conversation["number"].as_i64().unwrap());
    for q in [id, number] {
        let page = v.get(&format!("/log?range=all&type=Ticket+Created&q={q}")).await;
        assert_eq!(page.event_ids().len(), 1, "the ticket by {q}");
        let link = format!(r#"href="https://secure.helpscout.net/conversation/{id}/{number}" target="_blank" rel="noopener""#);
        assert!(page.body.contains(&link), "opens the conversation in Help Scout: {}", page.body);
    }

    // Filters from a shared URL mean the same view.
    let shared = "/log?range=all&status=Failed&type=Customer+Updated&direction=From+HelpScout";
    let page = v.get(shared).await;
    let expected = matching(&settings, LogFilter {
        status: Some("Failed".into()),
        event_types: vec!["Customer Updated".into()],
        direction: Some("From HelpScout".into()),
        ..Default::default()
    });
    assert_eq!(page.event_ids().len() as i64, expected);
    assert!(page.body.contains(r#"<option value="Failed" selected>"#) && page.body.contains(r#"value="Customer Updated" checked"#));
    assert_eq!(v.get("/log?range=decade").await.status, 400, "a value that cannot be read says so");

    // An event's page: every column, and the customer's other events.
    let event = found.event_ids()[0];
    let page = v.get(&format!("/events/{event}")).await;
    for field in ["Request", "HTTP status", "Attempt", "Duration (ms)", "Run", "Retry target", "Retried at", "Retried by"] {
        assert!(page.body.contains(&format!("<dt>{field}</dt>")), "{field}");
    }
    assert!(page.body.contains("Other events of this conversation or customer"));
    assert_eq!(v.get("/events/999999999").await.status, 404);

    // The report pages, with their charts.
    for (path, needle) in [("/health", "Success rate per hour"), ("/usage", "API calls per hour"), ("/happiness", "Happiness score by month"), ("/productivity", "New conversations by day of the week and hour"), ("/failures?range=all", "Failures grouped by error message")] {
        let page = v.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains(needle), "{path}: {needle}");
    }
    assert!(v.get("/health").await.body.contains("<svg"));
    let productivity = v.get("/productivity").await.body;
    assert_eq!(productivity.matches("<rect class=\"heat").count(), 168, "one cell per day of the week and hour");
    for caption in ["Replies sent per day", "Median first response per week", "Email, chat and phone", "By user", "By team", "Tags, latest week"] {
        assert!(productivity.contains(caption), "{caption}");
    }
    assert!(productivity.contains("Busiest day"), "the busiest day is named");
    served.stop().await;
    sim.stop().await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_exactly_what_the_view_shows() {
    let (sim, _dir, settings) = account(60, 12).await;
    let served = Served::start(&settings).await;
    let mut v = Visitor::new(&served);
    v.sign_in(MANAGER).await;
    let view = "range=all&type=Ticket+Created";
    let expected = matching(&settings, LogFilter { event_types: vec!["Ticket Created".into()], ..Default::default() });
    assert_eq!(expected, 60);

    let csv = v.get(&format!("/export?format=csv&{view}")).await;
    assert_eq!(csv.headers["content-disposition"], "attachment; filename=\"helpscout-log.csv\"");
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().take(3).collect::<Vec<_>>(), ["event_id", "timestamp", "event_type"]);
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len() as i64, expected);
    assert!(records.iter().all(|r| &r[2] == "Ticket Created"));

    let json: serde_json::Value = serde_json::from_str(&v.get(&format!("/export?format=json&{view}")).await.body).unwrap();
    assert_eq!(json.as_array().unwrap().len() as i64, expected);

    let bytes = v.http.get(format!("{}/export?format=parquet&{view}", v.base)).header("cookie", format!("hs_session={}", v.cookies["hs_session"])).send().await.unwrap().bytes().await.unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows as i64, expected);

    // An empty view is an empty file, not an error; an unknown format is.
    let empty: serde_json::Value = serde_json::from_str(&v.get("/export?format=json&range=all&q=nobody-at-all").await.body).unwrap();
    assert_eq!(empty, serde_json::json!([]));
    assert_eq!(v.get("/export?format=xlsx").await.status, 400);
    served.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrators_retry_is_logged_with_who_asked_and_waits_for_a_running_sync() {
    let sim = simulator(40, 23).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    // Chats' thread lists stay broken: their conversations fail, with retry targets.
    sim.set_faults(FaultPlan {
        rules: vec![FaultRule { path_prefix: Some("/v2/conversations/".into()), method: None, after: 0, count: 1_000, kind: FaultKind::TruncatedBody }],
    });
    sync(&settings).await;
    sim.set_faults(FaultPlan::default());
    web::user_store(&settings.outputs).add(ADMIN.0, Role::Administrator, ADMIN.1).unwrap();
    let failed = matching(&settings, LogFilter { status: Some("Failed".into()), event_types: vec!["Ticket Created".into()], ..Default::default() });
    assert!(failed > 0, "some conversations failed");

    let served = Served::start(&settings).await;
    let mut a = Visitor::new(&served);
    a.sign_in(ADMIN).await;
    let failures = a.get("/failures?range=all").await;
    assert!(failures.body.contains("malformed JSON body"), "grouped by message");
    let csrf = a.csrf().await;

    // While a sync holds the outputs, the retry is queued, not lost.
    let lock = settings.outputs.lock().unwrap();
    let queued = a.post("/retry", &[("csrf", &csrf), ("all", "1"), ("query", "range=all&type=Ticket+Created")]).await;
    assert_eq!(queued.status, 200);
    assert!(queued.body.contains("Your retry is queued"), "{}", queued.body);
    drop(lock);
    // Who retried each failure (`-`: not yet); None while the retry is committing.
    let retried_by = || -> Option<Vec<String>> {
        let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly).unwrap();
        let conn = duckdb::Connection::open_with_flags(duckdb_path(dir.path()), config).ok()?;
        let mut stmt = conn
            .prepare("SELECT coalesce(retried_by, '-') FROM helpscout_log WHERE status = 'Failed' AND retry_target IS NOT NULL AND event_type = 'Ticket Created'")
            .ok()?;
        stmt.query_map([], |r| r.get::<_, String>(0)).ok()?.collect::<Result<Vec<_>, _>>().ok()
    };
    let started = std::time::Instant::now();
    while retried_by().is_none_or(|all| all.iter().any(|by| by == "-")) {
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the queued retry ran once the lock was free");
        // Watching an observable state (the log), not guessing a time.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(retried_by().unwrap().iter().all(|by| by == ADMIN.0), "marked with who asked");
    let outcome = query_strings(dir.path(), "SELECT details FROM helpscout_log WHERE run_id LIKE 'retry-%' ORDER BY event_id");
    assert_eq!(outcome.len() as i64, failed);
    assert!(outcome.iter().all(|d| d.ends_with("(asked by ann)")), "{outcome:?}");
    for table in ["conversations", "conversation_threads"] {
        assert!(difference(table, "DuckDB", &truth_rows(&sim, table), &duckdb_rows(dir.path(), table)).is_none(), "{table} complete");
    }
    // Nothing left: a second retry says so.
    let again = a.post("/retry", &[("csrf", &csrf), ("all", "1"), ("query", "range=all")]).await;
    assert!(again.body.contains("Nothing to retry"), "{}", again.body);
    served.stop().await;
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_does_not_start_while_no_one_could_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = helpscout_etl::store::Outputs::under(dir.path());
    let config = ServeConfig { outputs, sync: None, push: Default::default(), listen: "127.0.0.1:0".parse().unwrap() };
    let err = web::bind(config).await.err().expect("no users");
    assert!(matches!(err, ServeError::NoUsers));
    assert!(err.to_string().contains("helpscout-etl users add NAME --role administrator"), "{err}");
}

//! The intake under load: contact-form posts at a steady rate (200 a second for a minute by
//! default) to `serve`, while syncs of the same account keep committing to the same DuckDB
//! file and the background delivery sends the tickets. Reports the 202's latency, and checks
//! that none was lost or doubled: every accepted submission is in the outbox, ends as exactly
//! one ticket in the simulator's truth, and has one Success row in the log.
//!
//! cargo bench --profile dev --bench intake_load [-- --rate 200 --secs 60]
//!
//! Prints the figures and writes benches/results/intake_load.json.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use helpscout_etl::cli::config::{self, FileConfig, Overrides};
use helpscout_etl::deliver::{FormSettings, PushSettings};
use helpscout_etl::extract::{self, Quiet};
use helpscout_etl::store::{Outbox, Queue, Warehouse};
use helpscout_etl::web::{self, Role, ServeConfig};
use helpscout_sim::{SimConfig, Simulator};

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rate = arg("--rate", 200);
    let secs = arg("--secs", 60);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    rt.block_on(async move {
        // A generous limit: the bench measures the intake, not Help Scout's plan.
        let sim = Simulator::start(SimConfig { conversations: 2_000, seed: 5, rate_limit_per_minute: 1_000_000, ..Default::default() }).await.expect("the simulator starts");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut file = FileConfig::default();
        file.helpscout.client_id = Some(sim.config().client_id.clone());
        file.helpscout.client_secret = Some(sim.config().client_secret.clone());
        file.helpscout.base_url = Some(sim.base_url());
        file.helpscout.token_url = Some(sim.token_url());
        file.helpscout.rate_limit_per_minute = Some(1_000_000);
        file.output.dir = Some(dir.path().to_path_buf());
        let settings = config::resolve(file, &|_| None, &Overrides::default()).expect("settings");
        let mailbox = sim.ground_truth_table("mailboxes").unwrap()[0]["id"].as_i64().unwrap();
        let secret = "bench-secret-bench-secret";
        let form = FormSettings { name: "contact".into(), secret: Some(secret.into()), mailbox_id: mailbox, tags: vec![], imported: true, auto_reply: false };
        let push = PushSettings { forms: [("contact".to_string(), form)].into(), recheck_after: Duration::from_secs(1), ..Default::default() };
        extract::sync(&settings.outputs, &settings.sync, &Quiet).await.expect("a first sync");
        web::user_store(&settings.outputs).add("bench", Role::Administrator, "bench password").unwrap();
        let server = web::bind(ServeConfig { outputs: settings.outputs.clone(), sync: Some(settings.sync.clone()), push, listen: "127.0.0.1:0".parse().unwrap() }).await.expect("serve starts");
        let url = format!("http://{}/forms/contact", server.addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(server.run_until(async move {
            let _ = stopped.await;
        }));

        // Syncs keep committing while the posts come in.
        let syncing = Arc::new(AtomicBool::new(true));
        let sync_loop = {
            let (syncing, settings, sim) = (syncing.clone(), settings.clone(), sim.clone());
            // A sync's future is not `Send`: it runs on a thread of its own, as a cron job would.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
                let mut runs = 0u32;
                while syncing.load(Ordering::SeqCst) {
                    sim.mutate(&helpscout_sim::MutationPlan::busy_day(u64::from(runs)));
                    let _ = runtime.block_on(extract::sync(&settings.outputs, &settings.sync, &Quiet));
                    runs += 1;
                }
                runs
            })
        };

        let http = reqwest::Client::new();
        let total = rate * secs;
        let gap = Duration::from_secs_f64(1.0 / rate as f64);
        let started = Instant::now();
        let mut posts = Vec::new();
        for i in 0..total {
            let due = started + gap * i as u32;
            tokio::time::sleep_until(due.into()).await;
            let (http, url) = (http.clone(), url.clone());
            posts.push(tokio::spawn(async move {
                let body = format!(r#"{{"submission_id":"load-{i}","email":"c{i}@example.com","subject":"Load {i}","message":"Posted under load"}}"#);
                let sent = Instant::now();
                let r = http.post(&url).header("x-form-secret", secret).header("content-type", "application/json").body(body).send().await;
                (r.map(|r| r.status().as_u16()).unwrap_or(0), sent.elapsed().as_secs_f64() * 1000.0)
            }));
        }
        let mut latencies = Vec::new();
        let mut accepted = 0u64;
        for p in posts {
            let (status, ms) = p.await.unwrap();
            if status == 202 {
                accepted += 1;
            }
            latencies.push(ms);
        }
        let posting = started.elapsed().as_secs_f64();
        syncing.store(false, Ordering::SeqCst);
        let syncs = sync_loop.join().unwrap();
        latencies.sort_by(f64::total_cmp);
        let queued = { Outbox::open(settings.outputs.outbox()).unwrap().counts(Queue::Submissions).unwrap() };

        // Wait (bounded) for the background delivery to finish.
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut delivered_at = None;
        while Instant::now() < deadline {
            let c = Outbox::open(settings.outputs.outbox()).unwrap().counts(Queue::Submissions).unwrap();
            if c.queued + c.sending == 0 {
                delivered_at = Some(started.elapsed().as_secs_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let _ = stop.send(());
        served.await.unwrap().unwrap();
        // The last rows reach the log on the next copy: run one delivery round to be sure.
        let client = helpscout_etl::api::Client::new(settings.sync.client.clone()).unwrap();
        helpscout_etl::deliver::Delivery::new(&settings.outputs, client, &PushSettings::default()).unwrap().run(Duration::from_secs(30)).await.unwrap();

        let created = sim.created().conversations;
        let mut per_marker = std::collections::HashMap::new();
        for c in &created {
            for t in &c.tags {
                *per_marker.entry(t.clone()).or_insert(0u32) += 1;
            }
        }
        let missing = (0..total).filter(|i| !per_marker.contains_key(&helpscout_etl::catalog::outbound::marker("contact", &format!("load-{i}")))).count();
        let doubled = per_marker.values().filter(|n| **n > 1).count();
        let logged: i64 = Warehouse::new(&settings.outputs.duckdb)
            .read()
            .unwrap()
            .log_summary(&helpscout_etl::store::LogFilter { direction: Some("To HelpScout".into()), ..Default::default() })
            .unwrap()
            .new_tickets;
        let result = serde_json::json!({
            "rate_per_s": rate, "secs": secs, "posts": total, "accepted_202": accepted,
            "posting_wall_s": (posting * 10.0).round() / 10.0,
            "latency_ms": { "p50": percentile(&latencies, 0.5), "p95": percentile(&latencies, 0.95), "p99": percentile(&latencies, 0.99), "max": latencies[latencies.len() - 1] },
            "outbox_after_posting": { "queued": queued.queued, "sending": queued.sending, "delivered": queued.delivered, "failed": queued.failed },
            "syncs_during_posting": syncs,
            "all_delivered_after_s": delivered_at,
            "tickets": created.len(), "missing": missing, "doubled": doubled, "log_ticket_rows": logged,
        });
        println!("{}", serde_json::to_string_pretty(&result).unwrap());
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results/intake_load.json"), serde_json::to_string_pretty(&result).unwrap() + "\n").unwrap();
        assert_eq!((accepted, missing, doubled), (total, 0, 0), "nothing lost, nothing doubled");
        sim.stop().await;
    });
}

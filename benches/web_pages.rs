//! The log page with 1,000,000 events in the log: the filtered page and its summary (one
//! request renders both), searches, an event's page, and an export of every event streamed,
//! with the process's resident memory before and after.
//!
//! cargo bench --profile dev --bench web_pages [-- --events 1000000 --samples 9]
//!
//! Prints a table and writes benches/results/web_pages.json.

use std::time::Instant;

use helpscout_etl::store::{Outputs, StoreError, Warehouse};
use helpscout_etl::web::{self, Role, ServeConfig};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident set now and at its peak, in MiB (Linux).
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| status.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// A log of `n` events spread over 30 days: the mix of a busy account's syncs.
fn fill(outputs: &Outputs, n: usize) {
    Warehouse::new(&outputs.duckdb)
        .commit(&mut Default::default(), |tx| {
            tx.ensure_tables(&[])?;
            tx.ensure_log()?;
            tx.install_views().map(|_| ())
        })
        .expect("an empty log");
    // Bulk rows are written straight in SQL: the bench measures reading, not writing.
    let conn = duckdb::Connection::open(&outputs.duckdb).expect("the file opens");
    conn.execute_batch(&format!(
        "INSERT INTO helpscout_log (\"timestamp\", event_type, customer_email, conversation_id, conversation_number, conversation_url, status, direction, details, error_message, run_id, table_name) \
         SELECT make_timestamp(epoch_us(now()) - (i * 2592000000000 // {n}))::TIMESTAMPTZ, \
                ['Ticket Created', 'Conversation Updated', 'Customer Synced', 'Customer Updated', 'Table Synced', 'Error'][1 + i % 6], \
                'customer' || (i % 50000) || '@example' || (i % 7) || '.com', 2100000000 + i // 3, 1 + i // 3, \
                'https://secure.helpscout.net/conversation/' || (2100000000 + i // 3) || '/' || (1 + i // 3), \
                CASE WHEN i % 41 = 0 THEN 'Failed' ELSE 'Success' END, 'From HelpScout', \
                'Subject: order ' || i || ' did not arrive; status: active; threads: 3', \
                CASE WHEN i % 41 = 0 THEN 'request timed out' END, 'bench-run-' || (i // 20000), 'conversations' \
         FROM range({n}) t(i)"
    ))
    .expect("events are written");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = arg("--events", 1_000_000);
    let samples = arg("--samples", 9);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let outputs = Outputs::under(dir.path());
    let started = Instant::now();
    fill(&outputs, n);
    eprintln!("{n} events written in {:.1} s", started.elapsed().as_secs_f64());
    web::user_store(&outputs).add("bench", Role::Manager, "bench password").expect("a user");

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    rt.block_on(async move {
        let server = web::bind(ServeConfig { outputs: outputs.clone(), sync: None, push: Default::default(), listen: "127.0.0.1:0".parse().unwrap() }).await.expect("the page starts");
        let base = format!("http://{}", server.addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        // Sign in once: the form's token, then the session cookie.
        let form = http.get(format!("{base}/login")).send().await.unwrap();
        let login_cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
        let body = form.text().await.unwrap();
        let token = body.split(r#"name="login_token" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
        let signed = http
            .post(format!("{base}/login"))
            .header("cookie", &login_cookie)
            .form(&[("username", "bench"), ("password", "bench password"), ("login_token", token.as_str())])
            .send()
            .await
            .unwrap();
        let session = signed.headers().get_all("set-cookie").iter().map(|c| c.to_str().unwrap()).find(|c| c.starts_with("hs_session=")).unwrap().split(';').next().unwrap().to_string();

        let pages = [
            ("the log, all time, first page", "/log?range=all".to_string()),
            ("failed Ticket Created, last 30 days", "/log?range=30d&type=Ticket+Created&status=Failed".to_string()),
            ("search by email (partial)", "/log?range=all&q=customer4242%40".to_string()),
            ("search by conversation id", format!("/log?range=all&q={}", 2_100_000_000 + n / 6)),
            ("an event's page", format!("/events/{}", n / 2)),
            ("the failures page, last 7 days", "/failures?range=7d".to_string()),
        ];
        let mut rows = Vec::new();
        for (what, path) in &pages {
            let mut times = Vec::new();
            for _ in 0..samples + 1 {
                let t = Instant::now();
                let r = http.get(format!("{base}{path}")).header("cookie", &session).send().await.unwrap();
                assert_eq!(r.status(), 200, "{path}");
                r.bytes().await.unwrap();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            times.remove(0); // the first warms caches
            let m = median(times.clone());
            println!("{what:<40} median {m:>7.1} ms  (min {:.1}, max {:.1})", times.iter().cloned().fold(f64::MAX, f64::min), times.iter().cloned().fold(0.0, f64::max));
            rows.push(serde_json::json!({"page": what, "path": path, "median_ms": m, "samples": times}));
        }

        let (rss_before, peak_before) = rss();
        let t = Instant::now();
        let mut r = http.get(format!("{base}/export?format=csv&range=all")).header("cookie", &session).send().await.unwrap();
        let (mut bytes, mut lines) = (0usize, 0usize);
        // Resident memory once the stream is under way (after its first tenth), and at most
        // since: steady means the second does not grow with what has been streamed.
        let (mut settled, mut peak_during) = (None, 0.0f64);
        while let Some(chunk) = r.chunk().await.unwrap() {
            bytes += chunk.len();
            lines += chunk.iter().filter(|b| **b == b'\n').count();
            let now = rss().0;
            if lines > n / 10 {
                settled.get_or_insert(now);
                peak_during = peak_during.max(now);
            }
        }
        let settled = settled.unwrap_or(peak_during);
        let secs = t.elapsed().as_secs_f64();
        let (rss_after, peak_after) = rss();
        assert_eq!(lines, n + 1, "every event and the header");
        println!(
            "CSV export of {n} events: {:.1} MB in {secs:.1} s ({:.0} events/s); RSS {rss_before:.0} MiB before, {settled:.0} MiB a tenth in, {peak_during:.0} MiB at most from then on, {rss_after:.0} after (peak {peak_before:.0} → {peak_after:.0})",
            bytes as f64 / 1e6,
            n as f64 / secs
        );
        let t = Instant::now();
        let mut r = http.get(format!("{base}/export?format=parquet&range=all")).header("cookie", &session).send().await.unwrap();
        let mut parquet = 0usize;
        let mut parquet_peak = 0.0f64;
        while let Some(chunk) = r.chunk().await.unwrap() {
            parquet += chunk.len();
            parquet_peak = parquet_peak.max(rss().0);
        }
        println!("Parquet export: {:.1} MB in {:.1} s; RSS at most {parquet_peak:.0} MiB", parquet as f64 / 1e6, t.elapsed().as_secs_f64());
        let report = serde_json::json!({
            "events": n,
            "pages": rows,
            "csv_export": {"bytes": bytes, "seconds": secs, "rss_mib_before": rss_before, "rss_mib_a_tenth_in": settled, "rss_mib_max_after_that": peak_during, "rss_mib_after": rss_after},
            "parquet_export_bytes": parquet,
        });
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/results/web_pages.json");
        std::fs::write(path, serde_json::to_string_pretty(&report).unwrap()).expect("the report is written");
        let _ = stop.send(());
        task.await.unwrap().unwrap();
        Ok::<_, StoreError>(())
    })
    .expect("the bench runs");
}

//! The local limit, our side: writes the API pages the comparison reads (raw page files and
//! NDJSON of their records) and times our decode-and-load path on the same bytes
//! (JSON page → rows → Arrow → one commit into a fresh DuckDB file).
//! `benches/local_limit.py` runs it and compares with DuckDB's own `read_json`.
//!
//! cargo bench --profile dev --bench local_limit -- --dir DIR [--reps N] [--pages N] [--dump FILE] [--decode-only N]

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::{Value, json};

use common::{Converters, commit_duckdb, convert_conversations, convert_customers, fetch_pages};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let mut dir = None;
    let mut reps = 7usize;
    let mut conversation_pages = 40usize;
    let mut dump = None;
    let mut decode_only = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--dir" => dir = args.next().map(PathBuf::from),
            "--reps" => reps = args.next().and_then(|s| s.parse().ok()).expect("--reps N"),
            "--decode-only" => decode_only = args.next().and_then(|s| s.parse::<usize>().ok()),
            "--dump" => dump = args.next().map(PathBuf::from),
            "--pages" => conversation_pages = args.next().and_then(|s| s.parse().ok()).expect("--pages N"),
            _ => {} // `--bench` and anything cargo adds
        }
    }
    let dir = dir.unwrap_or_else(|| std::env::temp_dir().join("helpscout-local-limit"));
    let _ = fs::remove_dir_all(&dir);
    let pages_dir = dir.join("pages");
    fs::create_dir_all(&pages_dir).expect("create the input folder");

    let pages = fetch_pages(conversation_pages, 7);
    let mut ndjson_conv = Vec::new();
    let mut ndjson_cust = Vec::new();
    for (i, body) in pages.conversations.iter().enumerate() {
        fs::write(pages_dir.join(format!("conversations-{:03}.json", i + 1)), body).expect("write page");
        let v: Value = serde_json::from_slice(body).expect("page");
        for r in v["_embedded"]["conversations"].as_array().into_iter().flatten() {
            serde_json::to_writer(&mut ndjson_conv, r).expect("ndjson");
            ndjson_conv.push(b'\n');
        }
    }
    for (i, body) in pages.customers.iter().enumerate() {
        fs::write(pages_dir.join(format!("customers-{:03}.json", i + 1)), body).expect("write page");
        let v: Value = serde_json::from_slice(body).expect("page");
        for r in v["_embedded"]["customers"].as_array().into_iter().flatten() {
            serde_json::to_writer(&mut ndjson_cust, r).expect("ndjson");
            ndjson_cust.push(b'\n');
        }
    }
    fs::write(dir.join("conversations.ndjson"), &ndjson_conv).expect("write ndjson");
    fs::write(dir.join("customers.ndjson"), &ndjson_cust).expect("write ndjson");

    let conv = Converters::new();
    if let Some(file) = dump {
        // The converted batches as JSON lines: an optimisation of the conversion must not change them.
        let mut out = Vec::new();
        for b in [convert_conversations(&conv, &pages.conversations), convert_customers(&conv, &pages.customers)] {
            for (table, batch) in &b.tables {
                out.extend_from_slice(format!("# {}\n", table.name).as_bytes());
                let mut w = arrow_json::LineDelimitedWriter::new(&mut out);
                w.write(batch).expect("dump");
                w.finish().expect("dump");
            }
        }
        fs::write(&file, out).expect("write the dump");
    }
    if let Some(n) = decode_only {
        // Only the conversion, n times: for instruction counts under callgrind
        // (`--toggle-collect='*convert_conversations*' --toggle-collect='*convert_customers*'`).
        for _ in 0..n {
            std::hint::black_box(convert_conversations(&conv, &pages.conversations));
            std::hint::black_box(convert_customers(&conv, &pages.customers));
        }
        return;
    }
    let page_bytes = pages.conversation_bytes() + pages.customer_bytes();
    let (mut total, mut decode, mut load) = (Vec::new(), Vec::new(), Vec::new());
    let mut parts: [Vec<f64>; 4] = Default::default();
    let mut rows = 0;
    for rep in 0..reps + 1 {
        let path = dir.join(format!("ours-{rep}.duckdb"));
        let started = Instant::now();
        let a = convert_conversations(&conv, &pages.conversations);
        let b = convert_customers(&conv, &pages.customers);
        let decoded = Instant::now();
        let times = commit_duckdb(&conv, &path, &[&a, &b]);
        let done = Instant::now();
        rows = a.rows() + b.rows();
        fs::remove_file(&path).ok();
        if rep > 0 {
            // the first run warms caches and is not counted
            total.push((done - started).as_secs_f64());
            decode.push((decoded - started).as_secs_f64());
            load.push((done - decoded).as_secs_f64());
            for (v, t) in parts.iter_mut().zip([times.open_and_ensure, times.stage, times.upsert, times.commit_and_close]) {
                v.push(t);
            }
        }
    }

    // Opening (creating) a DuckDB file, an empty transaction and closing it: part of every commit above.
    let mut opens = Vec::new();
    for rep in 0..reps + 1 {
        let path = dir.join(format!("open-{rep}.duckdb"));
        let started = Instant::now();
        helpscout_etl::store::Warehouse::new(&path)
            .commit(&mut Default::default(), |_| Ok::<_, helpscout_etl::store::StoreError>(()))
            .expect("open");
        if rep > 0 {
            opens.push(started.elapsed().as_secs_f64());
        }
        fs::remove_file(&path).ok();
    }
    let open_close = median(opens);

    // Is `read_json` available in the bundled engine (the json extension is not compiled in)?
    let bundled_read_json = {
        let conn = duckdb::Connection::open_in_memory().expect("in-memory DuckDB");
        let file = dir.join("customers.ndjson");
        let sql = format!("SELECT count(*) FROM read_json('{}')", file.display());
        match conn.query_row(&sql, [], |r| r.get::<_, i64>(0)) {
            Ok(n) => json!({"available": true, "rows": n}),
            Err(e) => json!({"available": false, "error": e.to_string()}),
        }
    };

    let (t, d, l) = (median(total), median(decode), median(load));
    let [p_open, p_stage, p_upsert, p_commit] = parts.map(median);
    let mb = page_bytes as f64 / 1e6;
    let out = json!({
        "conversation_pages": pages.conversations.len(),
        "customer_pages": pages.customers.len(),
        "page_bytes": page_bytes,
        "ndjson_bytes": ndjson_conv.len() + ndjson_cust.len(),
        "rows": rows,
        "reps": reps,
        "ours": {
            "seconds": t, "mb_per_s": mb / t,
            "decode_seconds": d, "decode_mb_per_s": mb / d,
            "load_seconds": l, "load_mb_per_s": mb / l,
            "load_parts_seconds": {
                "open_and_ensure_tables": p_open, "stage": p_stage, "upsert": p_upsert, "commit_and_close": p_commit,
            },
            "open_close_empty_file_seconds": open_close,
        },
        "bundled_read_json": bundled_read_json,
    });
    fs::write(dir.join("ours.json"), serde_json::to_vec_pretty(&out).expect("json")).expect("write ours.json");
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}

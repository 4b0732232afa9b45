//! Micro-benchmarks of the hot paths of a sync, on real API pages from the simulator:
//! JSON page → Arrow, Arrow → Parquet, Arrow → DuckDB (one commit into a fresh file).
//!
//! cargo bench --profile dev --bench hot_paths -- --warm-up-time 1 --measurement-time 5

mod common;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use common::{Converters, commit_duckdb, convert_conversations, convert_customers, fetch_pages, write_parquet};

/// 40 pages of conversations (1,000 conversations with their threads) and every customers page.
const CONVERSATION_PAGES: usize = 40;

fn hot_paths(c: &mut Criterion) {
    let pages = fetch_pages(CONVERSATION_PAGES, 7);
    let conv = Converters::new();
    let conv_bytes = pages.conversation_bytes();
    let cust_bytes = pages.customer_bytes();
    let conv_batches = convert_conversations(&conv, &pages.conversations);
    let cust_batches = convert_customers(&conv, &pages.customers);
    eprintln!(
        "inputs: {} conversation pages ({:.2} MB, {} rows: {} conversations + threads), {} customer pages ({:.2} MB, {} rows)",
        pages.conversations.len(),
        conv_bytes as f64 / 1e6,
        conv_batches.rows(),
        conv_batches.tables[0].1.num_rows(),
        pages.customers.len(),
        cust_bytes as f64 / 1e6,
        cust_batches.rows(),
    );

    // Throughput is always in bytes of the raw JSON the rows came from, so the three stages
    // compare directly (MB/s of API responses each stage can keep up with).
    let mut g = c.benchmark_group("json_to_arrow");
    g.throughput(Throughput::Bytes(conv_bytes));
    g.bench_function("conversations+threads", |b| b.iter(|| convert_conversations(&conv, &pages.conversations)));
    g.throughput(Throughput::Bytes(cust_bytes));
    g.bench_function("customers", |b| b.iter(|| convert_customers(&conv, &pages.customers)));
    g.finish();

    let mut g = c.benchmark_group("arrow_to_parquet");
    g.throughput(Throughput::Bytes(conv_bytes));
    g.bench_function("conversations+threads", |b| b.iter(|| write_parquet(&conv_batches)));
    g.throughput(Throughput::Bytes(cust_bytes));
    g.bench_function("customers", |b| b.iter(|| write_parquet(&cust_batches)));
    g.finish();

    let mut g = c.benchmark_group("arrow_to_duckdb");
    g.sample_size(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut n = 0u64;
    let mut fresh = || {
        n += 1;
        dir.path().join(format!("bench-{n}.duckdb"))
    };
    g.throughput(Throughput::Bytes(conv_bytes));
    g.bench_function("conversations+threads", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let path = fresh();
                let started = Instant::now();
                commit_duckdb(&conv, &path, &[&conv_batches]);
                total += started.elapsed();
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(path.with_extension("duckdb.wal"));
            }
            total
        })
    });
    g.throughput(Throughput::Bytes(cust_bytes));
    g.bench_function("customers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let path = fresh();
                let started = Instant::now();
                commit_duckdb(&conv, &path, &[&cust_batches]);
                total += started.elapsed();
                let _ = std::fs::remove_file(&path);
            }
            total
        })
    });
    // The same commit with no rows: what every commit costs whatever its size.
    let empty = common::Batches {
        tables: conv_batches.tables.iter().map(|(t, b)| (*t, b.slice(0, 0))).collect(),
    };
    g.throughput(Throughput::Elements(1));
    g.bench_function("empty commit (fixed cost)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let path = fresh();
                let started = Instant::now();
                commit_duckdb(&conv, &path, &[&empty]);
                total += started.elapsed();
                let _ = std::fs::remove_file(&path);
            }
            total
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = hot_paths
}
criterion_main!(benches);

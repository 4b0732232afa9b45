//! Syncs against the built-in simulator on 127.0.0.1: exactness, incrementality, faults.

mod common;

use common::*;
use helpscout_etl::tables;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_equals_the_ground_truth_and_every_join_key_matches() {
    let sim = simulator(120, 7).await;
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(&sim, dir.path());
    let report = sync_ok(&settings).await;
    assert!(report.tables.iter().all(|t| t.error.is_none()), "{report:#?}");
    assert_matches_truth(&sim, dir.path());

    let conn = connect(dir.path());
    let joins: Vec<(String, String, String)> = conn
        .prepare("SELECT join_key, left_table, right_table FROM _helpscout_join_keys")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(joins.len(), tables::JOIN_KEYS.len());
    for (join, left, right) in joins {
        let matched: i64 = conn
            .query_row(&format!("SELECT count(*) FROM \"{left}\" JOIN \"{right}\" ON {join}"), [], |r| r.get(0))
            .unwrap();
        assert!(matched > 0, "join key matches no rows: {join}");
    }
    sim.stop().await;
}

//! The call writer over a real SQLite file: what it has not written yet is on `/metrics`.

use callopt_calls::CallWriter;
use callopt_domain::{AccountId, ApiKey, CallOutcome};
use callopt_store::CallRecord;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::time::{Duration, Instant};

fn backlog(metrics: &PrometheusHandle) -> Option<f64> {
    metrics
        .render()
        .lines()
        .find_map(|l| l.strip_prefix("callopt_call_log_backlog "))
        .map(|v| v.parse().unwrap())
}

fn call(account: AccountId, id: i64) -> CallRecord {
    CallRecord {
        id,
        account,
        campaign_id: None,
        routing_plan_id: None,
        tracking_number: "+14155550100".into(),
        caller: "+12125550123".into(),
        session_id: None,
        channel: "sip".into(),
        external_id: format!("call-{id}").into(),
        outcome: CallOutcome::Rejected,
        reason: Some("no target".into()),
        hung_up_by: None,
        started_at: 1_700_000_000_000 + id,
        answered_at: None,
        ended_at: Some(1_700_000_000_000 + id),
        attempts: vec![],
    }
}

/// Records handed over count in the backlog until they are in the store, then no more.
#[tokio::test(flavor = "current_thread")]
async fn the_backlog_counts_what_is_not_written_yet() {
    let dir = tempfile::tempdir().unwrap();
    let store = callopt_store::open(dir.path().join("callopt.db").to_str().unwrap())
        .await
        .unwrap();
    let a = store
        .create_account("a", &ApiKey::from_random([3; 32]).hash(), 0)
        .await
        .unwrap();
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let (writer, done) =
        metrics::with_local_recorder(&recorder, || CallWriter::spawn(store.clone()));
    // One thread, and this test has not yielded: the writer has not run yet.
    for id in 1..=5 {
        writer.write(call(a, id));
    }
    assert_eq!(backlog(&metrics), Some(5.0));
    // Bounded wait for the writer (it paces its transactions).
    let deadline = Instant::now() + Duration::from_secs(10);
    while backlog(&metrics) != Some(0.0) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(backlog(&metrics), Some(0.0));
    for id in 1..=5 {
        assert_eq!(store.call(a, id).await.unwrap(), call(a, id));
    }
    drop(writer);
    done.await.unwrap();
}

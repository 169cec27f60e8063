//! The call writer over a real SQLite file: what it has not written yet is on `/metrics`.

use callopt_calls::writer::HOLD;
use callopt_calls::CallWriter;
use callopt_domain::{AccountId, ApiKey, CallOutcome};
use callopt_store::{CallRecord, Store};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::Arc;
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

/// A SQLite file with one account in it.
async fn store() -> (tempfile::TempDir, Arc<dyn Store>, AccountId) {
    let dir = tempfile::tempdir().unwrap();
    let store = callopt_store::open(dir.path().join("callopt.db").to_str().unwrap())
        .await
        .unwrap();
    let a = store
        .create_account("a", &ApiKey::from_random([3; 32]).hash(), 0)
        .await
        .unwrap();
    (dir, store, a)
}

/// A writer over `store`, and its metrics.
fn spawn(
    store: &Arc<dyn Store>,
    hold: Duration,
) -> (CallWriter, tokio::task::JoinHandle<()>, PrometheusHandle) {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let (writer, done) =
        metrics::with_local_recorder(&recorder, || CallWriter::spawn(store.clone(), hold));
    (writer, done, metrics)
}

/// Records handed over count in the backlog until they are in the store, then no more.
#[tokio::test(flavor = "current_thread")]
async fn the_backlog_counts_what_is_not_written_yet() {
    let (_dir, store, a) = store().await;
    let (writer, done, metrics) = spawn(&store, HOLD);
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

/// A record of a call in progress waits for the call's next record, which replaces it: a call
/// that ends meanwhile is written once, finished. Held alone, it is written when its hold is
/// over, and at the latest when the writer stops.
#[tokio::test(flavor = "current_thread")]
async fn a_call_in_progress_waits_for_its_next_record() {
    let (_dir, store, a) = store().await;
    let (writer, done, metrics) = spawn(&store, HOLD);
    let ringing = |id| CallRecord {
        outcome: CallOutcome::InProgress,
        reason: None,
        ended_at: None,
        ..call(a, id)
    };
    let wait_for = |id| {
        let store = store.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match store.call(a, id).await {
                    Ok(c) => return c,
                    Err(_) if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(5)).await
                    }
                    Err(e) => panic!("call {id} not written: {e}"),
                }
            }
        }
    };
    let written = || {
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix("callopt_call_batch_size_sum "))
            .map(|v| v.parse::<f64>().unwrap())
    };

    // Handed over together: the finished call is written, the one in progress is not.
    let held_at = Instant::now();
    writer.write(ringing(1));
    writer.write(call(a, 2));
    assert_eq!(wait_for(2).await, call(a, 2));
    assert!(
        store.call(a, 1).await.is_err(),
        "written before its hold was over"
    );
    assert_eq!(backlog(&metrics), Some(1.0));
    // It ends before its hold is over: its one record written is the finished one.
    writer.write(call(a, 1));
    assert_eq!(wait_for(1).await, call(a, 1));
    assert!(held_at.elapsed() < HOLD);
    assert_eq!(written(), Some(2.0));
    assert_eq!(backlog(&metrics), Some(0.0));

    // Alone, it is written when its hold is over, later records of it in the meantime
    // replacing it.
    let held_at = Instant::now();
    writer.write(ringing(3));
    let answered = CallRecord {
        outcome: CallOutcome::Answered,
        answered_at: Some(1_700_000_000_010),
        ..ringing(3)
    };
    writer.write(answered.clone());
    assert_eq!(wait_for(3).await, answered);
    assert!(held_at.elapsed() >= HOLD);
    assert_eq!(written(), Some(3.0));
    assert_eq!(backlog(&metrics), Some(0.0));

    // The writer stopping writes what it holds.
    writer.write(ringing(4));
    drop(writer);
    done.await.unwrap();
    assert_eq!(store.call(a, 4).await.unwrap(), ringing(4));
    assert_eq!(backlog(&metrics), Some(0.0));
}

/// Held for no time (nodes sharing counters), a call in progress is on record with the records
/// handed over beside it.
#[tokio::test(flavor = "current_thread")]
async fn without_a_hold_a_call_in_progress_is_written_at_once() {
    let (_dir, store, a) = store().await;
    let (writer, done, _) = spawn(&store, Duration::ZERO);
    let ringing = CallRecord {
        outcome: CallOutcome::InProgress,
        reason: None,
        ended_at: None,
        ..call(a, 1)
    };
    writer.write(ringing.clone());
    writer.write(call(a, 2));
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.call(a, 2).await.is_err() {
        assert!(Instant::now() < deadline, "call 2 not written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(store.call(a, 1).await.unwrap(), ringing);
    drop(writer);
    done.await.unwrap();
}

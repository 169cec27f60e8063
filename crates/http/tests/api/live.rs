//! The live view: a snapshot, then every change of the account's calls as Server-Sent Events.

use crate::helpers::{spawn_app, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

const TRACKING: &str = "+14155550123";

/// Reads the stream until an event named `name` whose data satisfies `want`; fails after 5 s.
async fn next_event(
    stream: &mut reqwest::Response,
    buf: &mut String,
    name: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let event = block.lines().find_map(|l| l.strip_prefix("event: "));
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some(e), Some(d)) = (event, data) {
                let v: Value = serde_json::from_str(d).unwrap_or(Value::Null);
                if e == name && want(&v) {
                    return v;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 5 s; read: {buf}"))
            .unwrap()
            .expect("the stream stays open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn campaign(app: &TestApp, key: &str) {
    let t = app
        .ok(
            key,
            "POST",
            "/v1/targets",
            Some(json!({"name": "t", "destination": "+14155550111"})),
            201,
        )
        .await;
    let plan = app
        .ok(
            key,
            "POST",
            "/v1/routing-plans",
            Some(json!({"name": "p", "targets": [t["id"]], "filters": {"open_now": false}})),
            201,
        )
        .await;
    let pool = app
        .ok(key, "POST", "/v1/pools", Some(json!({"name": "p"})), 201)
        .await;
    app.ok(
        key,
        "POST",
        "/v1/numbers",
        Some(json!({"e164": TRACKING, "pool_id": pool["id"]})),
        201,
    )
    .await;
    app.campaign(
        key,
        json!({"name": "c", "default_number": "+12015550199",
        "pool_id": pool["id"], "routing_plan_id": plan["id"]}),
    )
    .await;
}

#[tokio::test]
async fn the_live_view_streams_a_snapshot_then_each_change_of_the_accounts_calls() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let other = app.new_account("b").await;
    campaign(&app, &key).await;
    let board = &app.state.switchboard;
    // A call in progress before anyone watches.
    let (first, _) = board.start_call("sip", "before", TRACKING, "+12125550100");
    let first = first.unwrap();

    let mut stream = app
        .client
        .get(format!("{}/v1/calls/live", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut buf = String::new();
    let snapshot = next_event(&mut stream, &mut buf, "snapshot", |_| true).await;
    assert_eq!(snapshot["in_progress"][0]["id"], first as i64, "{snapshot}");
    assert_eq!(snapshot["recent"], json!([]));

    // The other account's stream sees none of it.
    let mut theirs = app
        .client
        .get(format!("{}/v1/calls/live", app.base))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    let mut their_buf = String::new();
    let empty = next_event(&mut theirs, &mut their_buf, "snapshot", |_| true).await;
    assert_eq!(empty, json!({"in_progress": [], "recent": []}));

    // A new call, its answer and its end arrive as they happen.
    let (second, next) = board.start_call("sip", "during", TRACKING, "+12125550177");
    let second = second.unwrap() as i64;
    let started = next_event(&mut stream, &mut buf, "call", |c| c["id"] == second).await;
    assert_eq!(started["outcome"], "in_progress");
    let callopt_calls::Next::Target { target, .. } = next else {
        panic!("{next:?}")
    };
    board.answered(second as u64, target, 200);
    next_event(&mut stream, &mut buf, "call", |c| {
        c["id"] == second && c["outcome"] == "answered" && c["ended_at"].is_null()
    })
    .await;
    board.ended(second as u64, callopt_domain::HungUpBy::Target, true);
    let ended = next_event(&mut stream, &mut buf, "call", |c| {
        c["id"] == second && !c["ended_at"].is_null()
    })
    .await;
    assert_eq!(ended["hung_up_by"], "target");

    // A stream opened now lists it among the latest finished.
    let mut later = app
        .client
        .get(format!("{}/v1/calls/live", app.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let mut later_buf = String::new();
    let snap = next_event(&mut later, &mut later_buf, "snapshot", |_| true).await;
    assert_eq!(snap["recent"][0]["id"], second, "{snap}");
    assert_eq!(
        snap["recent"].as_array().unwrap().len(),
        1,
        "each finished call once: {snap}"
    );
    assert_eq!(snap["in_progress"].as_array().unwrap().len(), 1);

    // Without a key: 401.
    let r = app
        .client
        .get(format!("{}/v1/calls/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

//! Reports over calls whose figures are known: calls placed through the switchboard (the path
//! SIP and carrier webhook calls take) at pinned times, around a daylight-saving change.

use crate::helpers::{spawn_app, TestApp};
use callopt_calls::Next;
use callopt_domain::{AttemptOutcome, HungUpBy};
use serde_json::{json, Value};

const TRACKING: &str = "+14155550123";

/// A campaign on TRACKING routing over two targets; returns the target ids.
async fn routing(app: &TestApp, key: &str) -> Vec<i64> {
    routing_on(app, key, &[]).await
}

/// The same, with the campaign's pages on `domains`.
async fn routing_on(app: &TestApp, key: &str, domains: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for (i, dest) in ["+14155550111", "+14155550122"].iter().enumerate() {
        let t = app
            .ok(
                key,
                "POST",
                "/v1/targets",
                Some(json!({"name": format!("t{i}"), "destination": dest, "priority": i + 1})),
                201,
            )
            .await;
        ids.push(t["id"].as_i64().unwrap());
    }
    let plan = app
        .ok(
            key,
            "POST",
            "/v1/routing-plans",
            Some(json!({"name": "p", "targets": ids, "filters": {"open_now": false}})),
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
        "pool_id": pool["id"], "routing_plan_id": plan["id"], "domains": domains}),
    )
    .await;
    ids
}

fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

/// One call at `start`: busy on the first target when `failover`, answered for `talk_secs` on
/// the next (or not answered when `talk_secs` is None).
fn place(app: &TestApp, caller: &str, start: &str, failover: bool, talk_secs: Option<i64>) {
    let board = &app.state.switchboard;
    let t0 = at(start);
    board.pin_clock(t0);
    let (key, mut next) = board.start_call("twilio", &format!("CA{t0}{caller}"), TRACKING, caller);
    let key = key.expect("a tracking number");
    if failover {
        let Next::Target { target, .. } = next else {
            panic!("{next:?}")
        };
        next = board.attempt_failed(key, target, AttemptOutcome::Busy, Some(486));
    }
    let Next::Target { target, .. } = next else {
        panic!("{next:?}")
    };
    match talk_secs {
        Some(secs) => {
            board.pin_clock(t0 + 5_000);
            board.answered(key, target, 200);
            board.pin_clock(t0 + 5_000 + secs * 1000);
            board.ended(key, HungUpBy::Caller, true);
        }
        None => {
            // Nobody answers: every target the plan offers rings out.
            board.pin_clock(t0 + 20_000);
            let mut target = target;
            while let Next::Target { target: t, .. } =
                board.attempt_failed(key, target, AttemptOutcome::NoAnswer, None)
            {
                target = t;
            }
        }
    }
}

async fn report(app: &TestApp, key: &str, query: &str) -> Value {
    app.ok(key, "GET", &format!("/v1/reports/calls?{query}"), None, 200)
        .await
}

async fn wait_written(app: &TestApp, key: &str, n: usize) {
    for _ in 0..200 {
        let calls = app.ok(key, "GET", "/v1/calls", None, 200).await;
        let items = calls["items"].as_array().unwrap();
        if items.len() == n && items.iter().all(|c| !c["ended_at"].is_null()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the {n} call records were not written within 4 s");
}

#[tokio::test]
async fn calls_over_local_days_across_a_daylight_saving_change() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    routing(&app, &key).await;
    // 2026-03-08 is 23 hours long in New York (02:00 EST → 03:00 EDT).
    // 23:30 local on the change day is 03:30 UTC the next day.
    place(&app, "+12125550100", "2026-03-09T03:30:00Z", true, Some(60));
    // 00:30 local on the change day (05:30 UTC), before the change.
    place(
        &app,
        "+12125550100",
        "2026-03-08T05:30:00Z",
        false,
        Some(30),
    );
    // 23:59 local on 03-07 (04:59 UTC on 03-08): the day before.
    place(&app, "+442071838750", "2026-03-08T04:59:00Z", false, None);
    // 00:00 local on 03-09 (04:00 UTC): the day after.
    place(&app, "+12125550177", "2026-03-09T04:00:00Z", true, None);
    wait_written(&app, &key, 4).await;
    // The business marks the 05:30 UTC call converted afterwards.
    let calls = app.ok(&key, "GET", "/v1/calls", None, 200).await;
    let converted = calls["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["started_at"] == "2026-03-08T05:30:00Z")
        .unwrap_or_else(|| panic!("{calls}"))["id"]
        .as_i64()
        .unwrap();
    app.ok(
        &key,
        "POST",
        &format!("/v1/calls/{converted}/conversion"),
        Some(serde_json::json!({"value": 99.5})),
        200,
    )
    .await;

    let days = report(
        &app,
        &key,
        "group_by=day&from=2026-03-07&to=2026-03-10&time_zone=America/New_York",
    )
    .await;
    let rows = days["rows"].as_array().unwrap();
    let by_day: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["calls"].as_i64().unwrap(),
                r["answered"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_day,
        vec![
            ("2026-03-07".into(), 1, 0),
            ("2026-03-08".into(), 2, 2),
            ("2026-03-09".into(), 1, 0),
        ],
        "{days}"
    );
    assert_eq!(rows[1]["start"], "2026-03-08T05:00:00Z");
    assert_eq!(rows[2]["start"], "2026-03-09T04:00:00Z");
    let day = &rows[1];
    assert_eq!(day["unique_calls"], 1);
    assert_eq!(day["repeat_calls"], 1);
    assert_eq!(day["talk_secs"], 90);
    assert_eq!(day["avg_talk_secs"], 45.0);
    assert_eq!(day["attempts_per_call"], 1.5);
    assert_eq!(day["hung_up_by"]["caller"], 2);
    assert_eq!(day["unattributed"], 2);
    assert_eq!(day["conversions"], 1);
    assert_eq!(day["conversion_value"], 99.5);
    assert_eq!(rows[0]["conversions"], 0);
    let totals = &days["totals"];
    assert_eq!(
        (totals["calls"].as_i64(), totals["answered"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(totals["answer_rate"], 0.5);
    assert_eq!(totals["unique_calls"], 3);

    // The same calls in UTC fall on other days.
    let utc = report(&app, &key, "group_by=day&from=2026-03-07&to=2026-03-10").await;
    let counts: Vec<i64> = utc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["calls"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, vec![0, 2, 2]);

    // Hours of the change day: 23 local hours, no 02:00.
    let hours = report(
        &app,
        &key,
        "group_by=hour&from=2026-03-08&to=2026-03-09&time_zone=America/New_York",
    )
    .await;
    let labels: Vec<&str> = hours["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 23, "{labels:?}");
    assert!(!labels.contains(&"2026-03-08T02:00"));
    let late = hours["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "2026-03-08T23:00")
        .unwrap();
    assert_eq!(late["calls"], 1);

    // Breakdowns.
    let countries = report(
        &app,
        &key,
        "group_by=caller_country&from=2026-03-07&to=2026-03-10",
    )
    .await;
    let rows: Vec<(String, i64)> = countries["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_string(),
                r["calls"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, vec![("US".into(), 3), ("GB".into(), 1)]);
    let british = report(
        &app,
        &key,
        "group_by=total&caller_country=gb&from=2026-03-07&to=2026-03-10",
    )
    .await;
    assert_eq!(british["totals"]["calls"], 1, "{british}");
    let targets = report(&app, &key, "group_by=target&from=2026-03-07&to=2026-03-10").await;
    assert_eq!(targets["rows"].as_array().unwrap().len(), 2, "{targets}");

    // CSV of the same report.
    let r = app.client
        .get(format!("{}/v1/reports/calls?group_by=day&from=2026-03-07&to=2026-03-10&time_zone=America/New_York&format=csv", app.base))
        .bearer_auth(&key)
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("key,start,calls,answered"), "{text}");
    assert!(
        lines[2].starts_with("2026-03-08,2026-03-08T05:00:00Z,2,2,1.0000"),
        "{text}"
    );
    assert_eq!(lines.len(), 5, "header, three days, totals: {text}");

    // Another account sees nothing.
    let other = app.new_account("b").await;
    let none = report(&app, &other, "group_by=total&from=2026-03-07&to=2026-03-10").await;
    assert_eq!(none["totals"]["calls"], 0);
}

#[tokio::test]
async fn bad_report_parameters_are_problems() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    for (query, field) in [
        ("group_by=weekday", "group_by"),
        ("time_zone=Mars/Olympus", "time_zone"),
        ("from=2026-03-10&to=2026-03-01", "from"),
        ("from=yesterday", "from"),
        ("from=2024-01-01&to=2026-01-01", "to"),
        ("format=xml", "format"),
        ("tracking_number=12", "tracking_number"),
        ("caller_country=USA", "caller_country"),
    ] {
        let a = app
            .call(&key, "GET", &format!("/v1/reports/calls?{query}"), None)
            .await;
        assert_eq!(a.status, 400, "{query}: {}", a.text);
        assert_eq!(a.body["field"], field, "{query}: {}", a.text);
    }
}

#[tokio::test]
async fn breakdowns_follow_the_attribution_of_each_call() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let host = app.verified_host(&key).await;
    routing_on(&app, &key, &[&host]).await;
    let campaigns = app.ok(&key, "GET", "/v1/campaigns", None, 200).await;
    let campaign = campaigns["items"][0]["key"].as_str().unwrap().to_string();
    let origin = format!("http://{host}");
    let shown = app
        .dni(
            Some(&origin),
            json!({"campaign": campaign, "visitor": "visitor-1",
                   "page_url": format!("{origin}/offer?utm_source=search&utm_medium=cpc&utm_term=plumber+near+me")}),
            None,
        )
        .await;
    assert_eq!(shown.body["number"], TRACKING, "{}", shown.text);
    // Two calls while the visitor holds the number, then one after another account's visit
    // would not matter: a call with no session is unattributed.
    let now = chrono::Utc::now();
    let start = |mins: i64| (now - chrono::Duration::minutes(mins)).to_rfc3339();
    place(&app, "+12125550100", &start(3), false, Some(20));
    place(&app, "+12125550100", &start(2), true, Some(40));
    app.state.switchboard.pin_clock(0);
    wait_written(&app, &key, 2).await;

    let range = format!(
        "from={}&to={}",
        (now - chrono::Duration::days(1)).format("%Y-%m-%d"),
        (now + chrono::Duration::days(2)).format("%Y-%m-%d")
    );
    for (group, key_value) in [
        ("source", "search"),
        ("medium", "cpc"),
        ("term", "plumber near me"),
        ("landing_page", &*format!("{origin}/offer")),
        ("tracking_number", TRACKING),
        ("channel", "twilio"),
    ] {
        let r = report(&app, &key, &format!("group_by={group}&{range}")).await;
        let rows = r["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{group}: {r}");
        assert_eq!(rows[0]["key"], key_value, "{group}: {r}");
        assert_eq!(rows[0]["calls"], 2, "{group}: {r}");
        assert_eq!(rows[0]["unique_calls"], 1, "{group}: {r}");
        assert_eq!(rows[0]["repeat_calls"], 1, "{group}: {r}");
        assert_eq!(rows[0]["unattributed"], 0, "{group}: {r}");
    }
    let filtered = report(
        &app,
        &key,
        &format!("group_by=total&utm_source=other&{range}"),
    )
    .await;
    assert_eq!(filtered["totals"]["calls"], 0);
    for (filter, calls) in [
        (format!("landing_page={origin}/offer"), 2),
        (format!("landing_page={origin}/other"), 0),
        ("caller_country=US".to_string(), 2),
        ("caller_country=GB".to_string(), 0),
    ] {
        let r = report(&app, &key, &format!("group_by=total&{filter}&{range}")).await;
        assert_eq!(r["totals"]["calls"], calls, "{filter}: {r}");
    }
    let targets = report(&app, &key, &format!("group_by=target&{range}")).await;
    let answered_by: Vec<i64> = targets["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["calls"].as_i64().unwrap())
        .collect();
    assert_eq!(
        answered_by,
        vec![1, 1],
        "the first and the second target answered one each"
    );
}

#[tokio::test]
async fn pool_utilisation_history_shows_the_hour_a_pool_ran_out() {
    let app = crate::helpers::spawn_app_options(callopt_http::Options {
        pool_sample: std::time::Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let key = app.new_account("a").await;
    let host = app.verified_host(&key).await;
    let pool = app.pool_with_block(&key, "+14155550101", 3, &["en"]).await;
    let (_, campaign) = app
        .campaign(
            &key,
            json!({"name": "c", "default_number": "+14155550100",
            "pool_id": pool, "domains": [host]}),
        )
        .await;
    let origin = format!("http://{host}");
    for i in 0..4 {
        let a = app
            .dni(
                Some(&origin),
                json!({"campaign": campaign, "visitor": format!("visitor-{i:03}"),
                       "page_url": format!("{origin}/")}),
                None,
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
    }
    // Another account's pool stays out of this account's report.
    let other = app.new_account("b").await;
    app.pool_with_block(&other, "+14155550201", 2, &["en"])
        .await;

    let range = format!(
        "from={}&to={}",
        (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d"),
        (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d")
    );
    let mut report = Value::Null;
    for _ in 0..200 {
        report = app
            .ok(
                &key,
                "GET",
                &format!("/v1/reports/pools?{range}&time_zone=America/Chicago"),
                None,
                200,
            )
            .await;
        if report["pools"][0]["hours"][0]["peak_in_use"] == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let pools = report["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1, "{report}");
    let p = &pools[0];
    assert_eq!(p["pool_id"], pool);
    assert_eq!(p["peak_utilisation"], 1.0, "{report}");
    // One hour, or two when the test runs across the top of an hour (the leases live on).
    let hours = p["hours"].as_array().unwrap();
    assert!((1..=2).contains(&hours.len()), "{report}");
    assert_eq!(p["exhausted_hours"], hours.len(), "{report}");
    let hour = &hours[0];
    assert_eq!(
        (hour["peak_in_use"].as_i64(), hour["size"].as_i64()),
        (Some(3), Some(3))
    );
    assert!(
        hour["start"].as_str().unwrap().ends_with(":00:00Z"),
        "{hour}"
    );
    let bad = app
        .call(&key, "GET", "/v1/reports/pools?time_zone=Nowhere", None)
        .await;
    assert_eq!(bad.status, 400);
}

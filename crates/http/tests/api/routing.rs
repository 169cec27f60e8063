//! The routing management API: targets, routing plans and the call log, with validation and
//! account isolation.

use crate::helpers::{spawn_app, TestApp};
use serde_json::{json, Value};

/// Creates a target from `fields`; returns its id.
async fn target(app: &TestApp, key: &str, fields: Value) -> i64 {
    let t = app.ok(key, "POST", "/v1/targets", Some(fields), 201).await;
    t["id"].as_i64().unwrap()
}

/// Creates a routing plan from `fields`; returns its id.
async fn plan(app: &TestApp, key: &str, fields: Value) -> i64 {
    let p = app
        .ok(key, "POST", "/v1/routing-plans", Some(fields), 201)
        .await;
    p["id"].as_i64().unwrap()
}

/// Asserts a 400 problem naming `field`.
async fn refused(app: &TestApp, key: &str, method: &str, path: &str, body: Value, field: &str) {
    let a = app.call(key, method, path, Some(body.clone())).await;
    assert_eq!(a.status, 400, "{method} {path} {body}: {}", a.text);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.body["field"], field, "{body}: {}", a.text);
}

#[tokio::test]
async fn a_target_round_trips_every_field() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let fields = json!({
        "name": " Sales East ",
        "destination": "sip:agent@127.0.0.1:5070",
        "languages": ["en", "es-MX"],
        "regions": ["US", "us-415"],
        "hours": {"time_zone": "America/New_York", "weekly": {
            "mon": [["09:00", "12:00"], ["13:00", "17:00"]],
            "sat": [["10:00", "24:00"]],
        }},
        "caps": {"concurrent": 10, "hourly": 50, "daily": null, "monthly": 5000},
        "priority": 2,
        "weight": 30,
        "ring_timeout_secs": 20,
        "enabled": false,
    });
    let created = app.ok(&key, "POST", "/v1/targets", Some(fields), 201).await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], "Sales East");
    assert_eq!(created["destination"], "sip:agent@127.0.0.1:5070");
    assert_eq!(created["languages"], json!(["en", "es"]));
    assert_eq!(created["regions"], json!(["US", "US-415"]));
    assert_eq!(
        created["hours"],
        json!({"time_zone": "America/New_York", "weekly": {
            "mon": [["09:00", "12:00"], ["13:00", "17:00"]],
            "tue": [], "wed": [], "thu": [], "fri": [],
            "sat": [["10:00", "24:00"]], "sun": [],
        }})
    );
    assert_eq!(
        created["caps"],
        json!({"concurrent": 10, "hourly": 50, "daily": null, "monthly": 5000})
    );
    assert_eq!(created["priority"], 2);
    assert_eq!(created["weight"], 30);
    assert_eq!(created["ring_timeout_secs"], 20);
    assert_eq!(created["enabled"], false);
    assert_eq!(created["live_calls"], 0);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(created["updated_at"].as_str().unwrap().ends_with('Z'));

    let fetched = app
        .ok(&key, "GET", &format!("/v1/targets/{id}"), None, 200)
        .await;
    assert_eq!(fetched, created);

    // PATCH changes what it names and leaves the rest.
    let patched = app
        .ok(
            &key,
            "PATCH",
            &format!("/v1/targets/{id}"),
            Some(
                json!({"destination": "+14155550100", "hours": null, "ring_timeout_secs": null,
                "enabled": true}),
            ),
            200,
        )
        .await;
    assert_eq!(patched["destination"], "+14155550100");
    assert_eq!(patched["hours"], Value::Null);
    assert_eq!(patched["ring_timeout_secs"], Value::Null);
    assert_eq!(patched["enabled"], true);
    assert_eq!(patched["name"], "Sales East");
    assert_eq!(patched["weight"], 30);
    assert_eq!(patched["regions"], json!(["US", "US-415"]));
    assert_eq!(patched["caps"]["concurrent"], 10);

    app.ok(&key, "DELETE", &format!("/v1/targets/{id}"), None, 204)
        .await;
    let gone = app
        .call(&key, "GET", &format!("/v1/targets/{id}"), None)
        .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn a_target_takes_defaults() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let t = app
        .ok(
            &key,
            "POST",
            "/v1/targets",
            Some(json!({"name": "t", "destination": "+14155550100"})),
            201,
        )
        .await;
    assert_eq!(t["languages"], json!([]));
    assert_eq!(t["regions"], json!([]));
    assert_eq!(t["hours"], Value::Null);
    assert_eq!(
        t["caps"],
        json!({"concurrent": null, "hourly": null, "daily": null, "monthly": null})
    );
    assert_eq!(t["priority"], 1);
    assert_eq!(t["weight"], 1);
    assert_eq!(t["ring_timeout_secs"], Value::Null);
    assert_eq!(t["enabled"], true);
}

#[tokio::test]
async fn target_validation_names_the_field() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let ok = json!({"name": "t", "destination": "sip:a@127.0.0.1"});
    let with = |extra: Value| {
        let mut body = ok.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (json!({"name": "t"}), "destination"),
        (json!({"destination": "+14155550100"}), "name"),
        (with(json!({"destination": "http://x"})), "destination"),
        (with(json!({"destination": "12"})), "destination"),
        (with(json!({"regions": ["US", "USA"]})), "regions[1]"),
        (with(json!({"languages": ["en", "1"]})), "languages[1]"),
        (
            with(json!({"hours": {"time_zone": "Mars/Olympus"}})),
            "hours.time_zone",
        ),
        (
            with(json!({"hours": {"time_zone": "UTC", "weekly": {"mon": [["17:00", "09:00"]]}}})),
            "hours.weekly.mon[0]",
        ),
        (
            with(json!({"hours": {"time_zone": "UTC", "weekly": {"tue": [["09:00"]]}}})),
            "hours.weekly.tue[0]",
        ),
        (
            with(json!({"hours": {"time_zone": "UTC", "weekly": {"moon": []}}})),
            "hours.weekly.moon",
        ),
        (
            with(json!({"hours": {"time_zone": "UTC",
                "weekly": {"wed": [["09:00", "12:00"], ["11:00", "13:00"]]}}})),
            "hours.weekly.wed[1]",
        ),
        (with(json!({"caps": {"concurrent": 0}})), "caps.concurrent"),
        (with(json!({"weight": 0})), "weight"),
        (with(json!({"weight": 1001})), "weight"),
        (with(json!({"priority": 1001})), "priority"),
        (with(json!({"ring_timeout_secs": 1})), "ring_timeout_secs"),
        (with(json!({"name": "  "})), "name"),
    ];
    for (body, field) in cases {
        refused(&app, &key, "POST", "/v1/targets", body, field).await;
    }
    // Unknown fields (also inside caps) are refused.
    for body in [
        with(json!({"colour": "red"})),
        with(json!({"caps": {"yearly": 3}})),
    ] {
        let a = app.call(&key, "POST", "/v1/targets", Some(body)).await;
        assert_eq!(a.status, 400, "{}", a.text);
        assert_eq!(a.content_type, "application/problem+json");
    }
    let id = target(&app, &key, ok.clone()).await;
    refused(
        &app,
        &key,
        "PATCH",
        &format!("/v1/targets/{id}"),
        json!({"weight": 0}),
        "weight",
    )
    .await;
}

#[tokio::test]
async fn a_routing_plan_round_trips_every_field() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let t1 = target(
        &app,
        &key,
        json!({"name": "1", "destination": "sip:a@127.0.0.1"}),
    )
    .await;
    let t2 = target(
        &app,
        &key,
        json!({"name": "2", "destination": "sip:b@127.0.0.1"}),
    )
    .await;
    let t3 = target(
        &app,
        &key,
        json!({"name": "3", "destination": "+14155550100"}),
    )
    .await;

    let defaults = app
        .ok(
            &key,
            "POST",
            "/v1/routing-plans",
            Some(json!({"name": "plain"})),
            201,
        )
        .await;
    assert_eq!(defaults["targets"], json!([]));
    assert_eq!(defaults["strategy"], "weighted");
    assert_eq!(
        defaults["filters"],
        json!({"open_now": true, "geography": false, "language": false})
    );
    assert_eq!(defaults["duplicate_caller"], Value::Null);
    assert_eq!(defaults["ring_timeout_secs"], 30);
    assert_eq!(
        defaults["reroute_on"],
        json!(["busy", "no_answer", "failure", "unreachable"])
    );
    assert_eq!(defaults["max_attempts"], 3);
    assert_eq!(defaults["overflow_target_id"], Value::Null);
    assert_eq!(
        defaults["no_target"],
        json!({"status": 480, "reason": "No Target Available"})
    );

    let created = app
        .ok(
            &key,
            "POST",
            "/v1/routing-plans",
            Some(json!({
                "name": "Sales",
                "targets": [t2, t1],
                "strategy": "round_robin",
                "filters": {"open_now": false, "geography": true, "language": true},
                "duplicate_caller": {"window_hours": 24, "action": "same_target"},
                "ring_timeout_secs": 15,
                "reroute_on": ["busy", "unreachable"],
                "max_attempts": 5,
                "overflow_target_id": t3,
                "no_target": {"status": 503, "reason": "Closed"},
            })),
            201,
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["name"], "Sales");
    assert_eq!(created["targets"], json!([t2, t1]));
    assert_eq!(created["strategy"], "round_robin");
    assert_eq!(
        created["filters"],
        json!({"open_now": false, "geography": true, "language": true})
    );
    assert_eq!(
        created["duplicate_caller"],
        json!({"window_hours": 24, "action": "same_target"})
    );
    assert_eq!(created["ring_timeout_secs"], 15);
    assert_eq!(created["reroute_on"], json!(["busy", "unreachable"]));
    assert_eq!(created["max_attempts"], 5);
    assert_eq!(created["overflow_target_id"], t3);
    assert_eq!(
        created["no_target"],
        json!({"status": 503, "reason": "Closed"})
    );
    let fetched = app
        .ok(&key, "GET", &format!("/v1/routing-plans/{id}"), None, 200)
        .await;
    assert_eq!(fetched, created);

    let patched = app
        .ok(
            &key,
            "PATCH",
            &format!("/v1/routing-plans/{id}"),
            Some(json!({"strategy": "least_busy", "duplicate_caller": null,
                "overflow_target_id": null, "filters": {"geography": false},
                "no_target": {"status": 480}})),
            200,
        )
        .await;
    assert_eq!(patched["strategy"], "least_busy");
    assert_eq!(patched["duplicate_caller"], Value::Null);
    assert_eq!(patched["overflow_target_id"], Value::Null);
    assert_eq!(
        patched["filters"],
        json!({"open_now": false, "geography": false, "language": true})
    );
    assert_eq!(
        patched["no_target"],
        json!({"status": 480, "reason": "Closed"})
    );
    assert_eq!(patched["targets"], json!([t2, t1]));
    assert_eq!(patched["max_attempts"], 5);

    let list = app.ok(&key, "GET", "/v1/routing-plans", None, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    app.ok(
        &key,
        "DELETE",
        &format!("/v1/routing-plans/{id}"),
        None,
        204,
    )
    .await;
    assert_eq!(
        app.call(&key, "GET", &format!("/v1/routing-plans/{id}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn plan_validation_names_the_field() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let t = target(
        &app,
        &key,
        json!({"name": "1", "destination": "sip:a@127.0.0.1"}),
    )
    .await;
    let cases = [
        (json!({"targets": [t]}), "name"),
        (json!({"name": "p", "targets": [t, t]}), "targets[1]"),
        (json!({"name": "p", "strategy": "random"}), "strategy"),
        (json!({"name": "p", "max_attempts": 11}), "max_attempts"),
        (json!({"name": "p", "max_attempts": 0}), "max_attempts"),
        (
            json!({"name": "p", "ring_timeout_secs": 301}),
            "ring_timeout_secs",
        ),
        (
            json!({"name": "p", "reroute_on": ["busy", "bored"]}),
            "reroute_on[1]",
        ),
        (
            json!({"name": "p", "no_target": {"status": 404, "reason": "x"}}),
            "no_target.status",
        ),
        (
            json!({"name": "p", "no_target": {"reason": "bad\r\nphrase"}}),
            "no_target.reason",
        ),
        (
            json!({"name": "p", "duplicate_caller": {"window_hours": 0, "action": "reject"}}),
            "duplicate_caller.window_hours",
        ),
        (
            json!({"name": "p", "duplicate_caller": {"window_hours": 2, "action": "drop"}}),
            "duplicate_caller.action",
        ),
    ];
    for (body, field) in cases {
        refused(&app, &key, "POST", "/v1/routing-plans", body, field).await;
    }
    let unknown = app
        .call(
            &key,
            "POST",
            "/v1/routing-plans",
            Some(json!({"name": "p", "fallback": 3})),
        )
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    // A target id that does not exist is not a reference to this account's target.
    let missing = app
        .call(
            &key,
            "POST",
            "/v1/routing-plans",
            Some(json!({"name": "p", "targets": [t, 999_999]})),
        )
        .await;
    assert_eq!(missing.status, 422, "{}", missing.text);
    assert_eq!(missing.body["field"], "targets[1]");
}

#[tokio::test]
async fn one_account_never_touches_another_accounts_routing() {
    let app = spawn_app().await;
    let a = app.new_account("a").await;
    let b = app.new_account("b").await;
    let t = target(
        &app,
        &a,
        json!({"name": "A", "destination": "sip:a@127.0.0.1"}),
    )
    .await;
    let p = plan(&app, &a, json!({"name": "A", "targets": [t]})).await;

    for path in [format!("/v1/targets/{t}"), format!("/v1/routing-plans/{p}")] {
        assert_eq!(app.call(&b, "GET", &path, None).await.status, 404, "{path}");
        assert_eq!(
            app.call(&b, "PATCH", &path, Some(json!({"name": "mine"})))
                .await
                .status,
            404,
            "{path}"
        );
        assert_eq!(
            app.call(&b, "DELETE", &path, None).await.status,
            404,
            "{path}"
        );
        let own = app.ok(&a, "GET", &path, None, 200).await;
        assert_eq!(own["name"], "A", "{path}");
    }
    for path in ["/v1/targets", "/v1/routing-plans", "/v1/calls"] {
        let list = app.ok(&b, "GET", path, None, 200).await;
        assert_eq!(list["items"], json!([]), "{path} of B");
    }

    // B cannot name A's target in its plans, nor A's plan in its campaigns.
    let stolen_target = app
        .call(
            &b,
            "POST",
            "/v1/routing-plans",
            Some(json!({"name": "B", "targets": [t]})),
        )
        .await;
    assert_eq!(stolen_target.status, 422, "{}", stolen_target.text);
    assert_eq!(stolen_target.body["field"], "targets[0]");
    let stolen_overflow = app
        .call(
            &b,
            "POST",
            "/v1/routing-plans",
            Some(json!({"name": "B", "overflow_target_id": t})),
        )
        .await;
    assert_eq!(stolen_overflow.status, 422, "{}", stolen_overflow.text);
    assert_eq!(stolen_overflow.body["field"], "overflow_target_id");
    let own_plan = plan(&app, &b, json!({"name": "B"})).await;
    let patched = app
        .call(
            &b,
            "PATCH",
            &format!("/v1/routing-plans/{own_plan}"),
            Some(json!({"targets": [t]})),
        )
        .await;
    assert_eq!(patched.status, 422, "{}", patched.text);
    let stolen_plan = app
        .call(
            &b,
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "B", "default_number": "+14155550100", "routing_plan_id": p})),
        )
        .await;
    assert_eq!(stolen_plan.status, 422, "{}", stolen_plan.text);
    assert_eq!(stolen_plan.body["field"], "routing_plan_id");

    // A's own campaign may use it.
    let (campaign, _) = app
        .campaign(
            &a,
            json!({"name": "A", "default_number": "+14155550100", "routing_plan_id": p}),
        )
        .await;
    let c = app
        .ok(&a, "GET", &format!("/v1/campaigns/{campaign}"), None, 200)
        .await;
    assert_eq!(c["routing_plan_id"], p);
}

#[tokio::test]
async fn targets_are_listed_page_by_page() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            target(
                &app,
                &key,
                json!({"name": format!("t{i}"), "destination": "sip:a@127.0.0.1"}),
            )
            .await,
        );
    }
    let mut seen = Vec::new();
    let mut path = "/v1/targets?limit=2".to_string();
    loop {
        let page = app.ok(&key, "GET", &path, None, 200).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|t| t["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/targets?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    for bad in ["/v1/targets?limit=0", "/v1/targets?cursor=zzz"] {
        assert_eq!(app.call(&key, "GET", bad, None).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn deleting_a_target_removes_it_from_plans() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let t1 = target(
        &app,
        &key,
        json!({"name": "1", "destination": "sip:a@127.0.0.1"}),
    )
    .await;
    let t2 = target(
        &app,
        &key,
        json!({"name": "2", "destination": "sip:b@127.0.0.1"}),
    )
    .await;
    let p = plan(
        &app,
        &key,
        json!({"name": "p", "targets": [t1, t2], "overflow_target_id": t1}),
    )
    .await;
    app.ok(&key, "DELETE", &format!("/v1/targets/{t1}"), None, 204)
        .await;
    let after = app
        .ok(&key, "GET", &format!("/v1/routing-plans/{p}"), None, 200)
        .await;
    assert_eq!(after["targets"], json!([t2]));
    assert_eq!(after["overflow_target_id"], Value::Null);
}

#[tokio::test]
async fn the_call_log_lists_filters_and_refuses_bad_parameters() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let empty = app.ok(&key, "GET", "/v1/calls", None, 200).await;
    assert_eq!(empty["items"], json!([]));
    assert!(empty.get("next_cursor").is_none());
    let filtered = app
        .ok(
            &key,
            "GET",
            "/v1/calls?campaign_id=1&outcome=answered&tracking_number=%2B14155550100\
             &caller=%2B12125550100&target_id=2&from=2025-01-01T00:00:00Z\
             &to=2025-02-01T00:00:00%2B01:00&limit=10",
            None,
            200,
        )
        .await;
    assert_eq!(filtered["items"], json!([]));
    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2025-13-01T00:00:00Z", "to"),
        ("outcome=great", "outcome"),
        ("campaign_id=abc", "campaign_id"),
        ("target_id=x", "target_id"),
        ("limit=0", "limit"),
        ("cursor=nope", "cursor"),
        ("order=latest", "order"),
    ] {
        let a = app
            .call(&key, "GET", &format!("/v1/calls?{query}"), None)
            .await;
        assert_eq!(a.status, 400, "{query}: {}", a.text);
        assert_eq!(a.body["field"], field, "{query}: {}", a.text);
    }
    let unknown = app.call(&key, "GET", "/v1/calls/12345", None).await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.content_type, "application/problem+json");
    let unauthenticated = app
        .send(app.client.get(format!("{}/v1/calls", app.base)))
        .await;
    assert_eq!(unauthenticated.status, 401);
}

#[tokio::test]
async fn the_openapi_document_lists_the_routing_api() {
    let app = spawn_app().await;
    let doc = app
        .send(app.client.get(format!("{}/openapi.json", app.base)))
        .await;
    assert_eq!(doc.status, 200);
    let paths = &doc.body["paths"];
    for (path, methods) in [
        ("/v1/targets", &["get", "post"][..]),
        ("/v1/targets/{id}", &["get", "patch", "delete"][..]),
        ("/v1/routing-plans", &["get", "post"][..]),
        ("/v1/routing-plans/{id}", &["get", "patch", "delete"][..]),
        ("/v1/calls", &["get"][..]),
        ("/v1/calls/{id}", &["get"][..]),
    ] {
        for m in methods {
            assert!(paths[path][m].is_object(), "{m} {path} missing");
        }
    }
    assert_eq!(paths["/v1/targets"]["post"]["tags"], json!(["targets"]));
    assert_eq!(
        paths["/v1/routing-plans"]["post"]["tags"],
        json!(["routing-plans"])
    );
    assert_eq!(paths["/v1/calls"]["get"]["tags"], json!(["calls"]));
    let schemas = &doc.body["components"]["schemas"];
    for s in [
        "TargetDto",
        "TargetInput",
        "PlanDto",
        "PlanInput",
        "CallDto",
        "CallDetailDto",
    ] {
        assert!(schemas[s].is_object(), "schema {s} missing");
    }
}

/// The account id behind an API key.
async fn account_of(app: &TestApp, key: &str) -> callopt_domain::AccountId {
    let hash = callopt_domain::ApiKey::presented(key).hash();
    app.store.account_by_key(&hash).await.unwrap().unwrap()
}

#[tokio::test]
async fn recorded_calls_show_their_attempts_and_attribution() {
    use callopt_domain::{AttemptOutcome, CallOutcome, HungUpBy};
    use callopt_store::{AttemptRecord, CallRecord};

    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let other = app.new_account("b").await;
    let account = account_of(&app, &key).await;
    let host = app.verified_host(&key).await;
    let pool = app.pool_with_block(&key, "+14155550101", 2, &["en"]).await;
    let (campaign, campaign_key) = app
        .campaign(
            &key,
            json!({"name": "c", "default_number": "+14155550100", "pool_id": pool,
                "domains": [host]}),
        )
        .await;
    let origin = format!("http://{host}");
    let visit = app
        .dni(
            Some(&origin),
            json!({"campaign": campaign_key, "visitor": "visitor-one",
                "page_url": format!("{origin}/landing?utm_source=google&gclid=abc"),
                "referrer": "https://www.google.com/"}),
            Some("US"),
        )
        .await;
    assert_eq!(visit.status, 200, "{}", visit.text);
    let session = visit.body["session"].as_str().unwrap().to_string();
    let number = visit.body["number"].as_str().unwrap().to_string();
    let t1 = target(
        &app,
        &key,
        json!({"name": "1", "destination": "sip:a@127.0.0.1"}),
    )
    .await;
    let t2 = target(
        &app,
        &key,
        json!({"name": "2", "destination": "sip:b@127.0.0.1"}),
    )
    .await;
    let p = plan(&app, &key, json!({"name": "p", "targets": [t1, t2]})).await;

    let t0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    let answered = CallRecord {
        id: 1,
        account,
        campaign_id: Some(campaign),
        routing_plan_id: Some(p),
        tracking_number: number.as_str().into(),
        caller: "+12125550100".into(),
        session_id: Some(session.as_str().into()),
        channel: "sip".into(),
        external_id: "call-1@example".into(),
        outcome: CallOutcome::Answered,
        reason: None,
        hung_up_by: Some(HungUpBy::Caller),
        started_at: t0,
        answered_at: Some(t0 + 9_000),
        ended_at: Some(t0 + 69_000),
        attempts: vec![
            AttemptRecord {
                seq: 1,
                target_id: Some(t1),
                destination: "sip:a@127.0.0.1".into(),
                outcome: Some(AttemptOutcome::Busy),
                sip_status: Some(486),
                started_at: t0 + 100,
                answered_at: None,
                ended_at: Some(t0 + 2_100),
            },
            AttemptRecord {
                seq: 2,
                target_id: Some(t2),
                destination: "sip:b@127.0.0.1".into(),
                outcome: Some(AttemptOutcome::Answered),
                sip_status: Some(200),
                started_at: t0 + 2_200,
                answered_at: Some(t0 + 9_000),
                ended_at: Some(t0 + 69_000),
            },
        ],
    };
    let rejected = CallRecord {
        id: 2,
        account,
        campaign_id: Some(campaign),
        routing_plan_id: Some(p),
        tracking_number: "+14155550100".into(),
        caller: "+12125550199".into(),
        session_id: Some("no-such-session".into()),
        channel: "sip".into(),
        external_id: "call-2@example".into(),
        outcome: CallOutcome::Rejected,
        reason: Some("no eligible target".into()),
        hung_up_by: None,
        started_at: t0 + 3_600_000,
        answered_at: None,
        ended_at: Some(t0 + 3_600_000),
        attempts: vec![],
    };
    app.store.write_calls(&[answered, rejected]).await.unwrap();

    let list = app.ok(&key, "GET", "/v1/calls", None, 200).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let first = &items[0];
    assert_eq!(
        *first,
        json!({
            "id": 1, "campaign_id": campaign, "routing_plan_id": p,
            "tracking_number": number, "caller": "+12125550100", "channel": "sip",
            "external_id": "call-1@example", "outcome": "answered", "reason": null,
            "hung_up_by": "caller", "started_at": "2026-01-01T00:00:00Z",
            "answered_at": "2026-01-01T00:00:09Z", "ended_at": "2026-01-01T00:01:09Z",
            "ring_secs": 9, "talk_secs": 60, "session_id": session,
            "attempts": [
                {"seq": 1, "target_id": t1, "destination": "sip:a@127.0.0.1",
                 "outcome": "busy", "sip_status": 486, "started_at": "2026-01-01T00:00:00Z",
                 "answered_at": null, "ended_at": "2026-01-01T00:00:02Z",
                 "ring_ms": 2000, "talk_ms": null},
                {"seq": 2, "target_id": t2, "destination": "sip:b@127.0.0.1",
                 "outcome": "answered", "sip_status": 200,
                 "started_at": "2026-01-01T00:00:02Z", "answered_at": "2026-01-01T00:00:09Z",
                 "ended_at": "2026-01-01T00:01:09Z", "ring_ms": 6800, "talk_ms": 60000},
            ],
            "conversion": null,
        })
    );
    assert_eq!(items[1]["outcome"], "rejected");
    assert_eq!(items[1]["ring_secs"], Value::Null);
    assert_eq!(items[1]["talk_secs"], Value::Null);
    assert_eq!(items[1]["reason"], "no eligible target");

    let ids = |v: &Value| -> Vec<i64> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    for (query, expected) in [
        ("outcome=answered".to_string(), vec![1]),
        ("outcome=rejected".to_string(), vec![2]),
        (format!("target_id={t1}"), vec![1]),
        (format!("campaign_id={campaign}"), vec![1, 2]),
        ("campaign_id=999".to_string(), vec![]),
        ("tracking_number=%2B14155550100".to_string(), vec![2]),
        ("caller=%2B12125550100".to_string(), vec![1]),
        ("caller=+12125550199".to_string(), vec![2]),
        ("from=2026-01-01T00:30:00Z".to_string(), vec![2]),
        ("to=2026-01-01T00:30:00Z".to_string(), vec![1]),
        ("limit=1".to_string(), vec![1]),
        ("order=newest".to_string(), vec![2, 1]),
        ("order=oldest".to_string(), vec![1, 2]),
        (
            format!("order=newest&campaign_id={campaign}&limit=1"),
            vec![2],
        ),
    ] {
        let page = app
            .ok(&key, "GET", &format!("/v1/calls?{query}"), None, 200)
            .await;
        assert_eq!(ids(&page), expected, "{query}");
    }
    let page1 = app.ok(&key, "GET", "/v1/calls?limit=1", None, 200).await;
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app
        .ok(
            &key,
            "GET",
            &format!("/v1/calls?limit=1&cursor={cursor}"),
            None,
            200,
        )
        .await;
    assert_eq!(ids(&page2), vec![2]);
    // Newest first, the cursor leads to older calls.
    let newest = app
        .ok(&key, "GET", "/v1/calls?limit=1&order=newest", None, 200)
        .await;
    assert_eq!(ids(&newest), vec![2]);
    let cursor = newest["next_cursor"].as_str().unwrap();
    let older = app
        .ok(
            &key,
            "GET",
            &format!("/v1/calls?limit=1&order=newest&cursor={cursor}"),
            None,
            200,
        )
        .await;
    assert_eq!(ids(&older), vec![1]);
    assert!(older["next_cursor"].is_null(), "{older}");

    // The export: every call the filters select, as CSV, with attribution and conversion.
    app.ok(
        &key,
        "POST",
        "/v1/calls/1/conversion",
        Some(json!({"value": 250, "currency": "eur"})),
        200,
    )
    .await;
    let rows = export(&app, &key, "").await;
    assert_eq!(rows.len(), 2);
    let first = &rows[0];
    for (column, value) in [
        ("id", "1"),
        ("started_at", "2026-01-01T00:00:00Z"),
        ("caller", "+12125550100"),
        ("caller_country", "US"),
        ("outcome", "answered"),
        ("hung_up_by", "caller"),
        ("ring_secs", "9"),
        ("talk_secs", "60"),
        ("attempts", "2"),
        ("target_id", &*t2.to_string()),
        ("session_id", &*session),
        ("utm_source", "google"),
        ("gclid", "abc"),
        ("referrer", "https://www.google.com/"),
        ("conversion_value", "250"),
        ("conversion_currency", "EUR"),
    ] {
        assert_eq!(first[column], value, "{column}: {first:?}");
    }
    // A session that is not the account's gives no attribution.
    assert_eq!(rows[1]["id"], "2");
    assert_eq!(rows[1]["landing_url"], "");
    assert_eq!(rows[1]["reason"], "no eligible target");
    let newest: Vec<String> = export(&app, &key, "?order=newest")
        .await
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(newest, ["2", "1"]);
    assert_eq!(export(&app, &key, "?outcome=rejected").await.len(), 1);
    assert!(export(&app, &other, "").await.is_empty());
    let bad = app
        .call(&key, "GET", "/v1/calls/export?from=soon", None)
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.body["field"], "from");

    let detail = app.ok(&key, "GET", "/v1/calls/1", None, 200).await;
    assert_eq!(detail["id"], 1);
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 2);
    let a = &detail["attribution"];
    assert_eq!(
        a["landing_url"],
        format!("{origin}/landing?utm_source=google&gclid=abc")
    );
    assert_eq!(a["referrer"], "https://www.google.com/");
    assert_eq!(a["utm_source"], "google");
    assert_eq!(a["gclid"], "abc");
    assert_eq!(a["utm_medium"], Value::Null);
    assert_eq!(a["country"], "US");
    let orphan = app.ok(&key, "GET", "/v1/calls/2", None, 200).await;
    assert_eq!(orphan["attribution"], Value::Null);

    // Another account sees none of it.
    assert_eq!(
        app.call(&other, "GET", "/v1/calls/1", None).await.status,
        404
    );
    let theirs = app.ok(&other, "GET", "/v1/calls", None, 200).await;
    assert_eq!(theirs["items"], json!([]));
}

/// `GET /v1/calls/export{query}` as rows of column → value.
async fn export(
    app: &TestApp,
    key: &str,
    query: &str,
) -> Vec<std::collections::HashMap<String, String>> {
    let a = app
        .call(key, "GET", &format!("/v1/calls/export{query}"), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.content_type.starts_with("text/csv"), "{}", a.content_type);
    let mut reader = csv::Reader::from_reader(a.text.as_bytes());
    reader.deserialize().map(Result::unwrap).collect()
}

#[tokio::test]
async fn the_call_export_streams_every_page_of_calls_once_in_order() {
    use callopt_domain::CallOutcome;
    use callopt_store::CallRecord;

    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let account = account_of(&app, &key).await;
    // More than two of the export's pages of 500.
    let calls: Vec<CallRecord> = (1..=1_203)
        .map(|i| CallRecord {
            id: i,
            account,
            campaign_id: None,
            routing_plan_id: None,
            tracking_number: "+14155550100".into(),
            caller: format!("+1212555{:04}", i % 10_000).into(),
            session_id: None,
            channel: "sip".into(),
            external_id: format!("call-{i}@example").into(),
            outcome: CallOutcome::NoAnswer,
            reason: None,
            hung_up_by: None,
            started_at: 1_767_225_600_000 + i * 1000,
            answered_at: None,
            ended_at: Some(1_767_225_600_000 + i * 1000 + 500),
            attempts: vec![],
        })
        .collect();
    app.store.write_calls(&calls).await.unwrap();
    let ids: Vec<i64> = export(&app, &key, "")
        .await
        .iter()
        .map(|r| r["id"].parse().unwrap())
        .collect();
    assert_eq!(ids, (1..=1_203).collect::<Vec<i64>>());
    let newest: Vec<i64> = export(&app, &key, "?order=newest")
        .await
        .iter()
        .map(|r| r["id"].parse().unwrap())
        .collect();
    assert_eq!(newest, (1..=1_203).rev().collect::<Vec<i64>>());
}

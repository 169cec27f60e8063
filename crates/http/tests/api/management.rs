//! The management API: authentication, account isolation, validation, pagination, import.

use crate::helpers::{spawn_app, spawn_app_options};
use serde_json::json;

#[tokio::test]
async fn requests_without_a_valid_key_are_refused() {
    let app = spawn_app().await;
    let none = app
        .send(app.client.get(format!("{}/v1/campaigns", app.base)))
        .await;
    assert_eq!(none.status, 401);
    assert_eq!(none.content_type, "application/problem+json");
    assert_eq!(none.body["status"], 401);
    let wrong = app.call("ck_not-a-key", "GET", "/v1/pools", None).await;
    assert_eq!(wrong.status, 401);
}

#[tokio::test]
async fn one_account_never_sees_another_accounts_objects() {
    let app = spawn_app().await;
    let a = app.new_account("a").await;
    let b = app.new_account("b").await;
    let pool = app.pool_with_block(&a, "+14155550101", 3, &["en"]).await;
    let (campaign, _) = app
        .campaign(
            &a,
            json!({"name": "A", "default_number": "+14155550100", "pool_id": pool}),
        )
        .await;
    let numbers = app.ok(&a, "GET", "/v1/numbers", None, 200).await;
    let number = numbers["items"][0]["id"].as_i64().unwrap();
    let domain = app
        .ok(
            &a,
            "POST",
            "/v1/domains",
            Some(json!({"host": "a.example"})),
            201,
        )
        .await;

    for path in [
        format!("/v1/pools/{pool}"),
        format!("/v1/campaigns/{campaign}"),
        format!("/v1/numbers/{number}"),
        format!("/v1/domains/{}", domain["id"]),
    ] {
        assert_eq!(
            app.call(&b, "GET", &path, None).await.status,
            404,
            "GET {path}"
        );
        assert_eq!(
            app.call(&b, "DELETE", &path, None).await.status,
            404,
            "DELETE {path}"
        );
        assert_eq!(
            app.call(&a, "GET", &path, None).await.status,
            200,
            "owner GET {path}"
        );
    }
    for path in ["/v1/pools", "/v1/campaigns", "/v1/numbers", "/v1/domains"] {
        let list = app.ok(&b, "GET", path, None, 200).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 0, "{path} of B");
    }
    let renamed = app
        .call(
            &b,
            "PATCH",
            &format!("/v1/pools/{pool}"),
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(renamed.status, 404);
    // B cannot point its own campaign or numbers at A's pool.
    let stolen = app
        .call(
            &b,
            "POST",
            "/v1/campaigns",
            Some(json!({"name": "B", "default_number": "+14155550100", "pool_id": pool})),
        )
        .await;
    assert_eq!(stolen.status, 422, "{}", stolen.text);
    assert_eq!(stolen.body["field"], "pool_id");
    let moved = app
        .call(
            &b,
            "POST",
            "/v1/numbers",
            Some(json!({"e164": "+14155550199", "pool_id": pool})),
        )
        .await;
    assert_eq!(moved.status, 422);
    // A's objects are unchanged.
    let p = app
        .ok(&a, "GET", &format!("/v1/pools/{pool}"), None, 200)
        .await;
    assert_eq!(p["name"], "p");
    assert_eq!(p["size"], 3);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let cases = [
        ("/v1/numbers", json!({"e164": "not a number"}), "e164"),
        (
            "/v1/numbers",
            json!({"e164": "+14155550100", "languages": ["english!"]}),
            "languages[0]",
        ),
        ("/v1/campaigns", json!({"name": "x"}), "default_number"),
        (
            "/v1/campaigns",
            json!({"name": "x", "default_number": "+1 415"}),
            "default_number",
        ),
        (
            "/v1/campaigns",
            json!({"name": "x", "default_number": "+14155550100", "domains": ["ok.example", "https://bad/"]}),
            "domains[1]",
        ),
        (
            "/v1/campaigns",
            json!({"name": "x", "default_number": "+14155550100", "idle_timeout_secs": 5}),
            "idle_timeout_secs",
        ),
        (
            "/v1/campaigns",
            json!({"name": "x", "default_number": "+14155550100", "assignment": "random"}),
            "assignment",
        ),
        (
            "/v1/campaigns",
            json!({"name": "x", "default_number": "+14155550100", "source_rules": [{"match": "click_id", "value": "yclid", "number": "+14155550101"}]}),
            "source_rules[0].value",
        ),
        ("/v1/domains", json!({"host": "*.example.com"}), "host"),
        ("/v1/pools", json!({"name": ""}), "name"),
    ];
    for (path, body, field) in cases {
        let a = app.call(&key, "POST", path, Some(body.clone())).await;
        assert_eq!(a.status, 400, "{path} {body}: {}", a.text);
        assert_eq!(a.content_type, "application/problem+json");
        assert_eq!(a.body["field"], field, "{path} {body}: {}", a.text);
        assert!(!a.body["detail"].as_str().unwrap().is_empty());
    }
    // Malformed bodies, unknown fields and bad paths are problems too, never panics.
    let unknown = app
        .call(
            &key,
            "POST",
            "/v1/pools",
            Some(json!({"name": "x", "colour": "red"})),
        )
        .await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.body["detail"].as_str().unwrap().contains("colour"),
        "{}",
        unknown.text
    );
    let broken = app
        .send(
            app.client
                .post(format!("{}/v1/pools", app.base))
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body("{"),
        )
        .await;
    assert_eq!(broken.status, 400);
    assert_eq!(broken.content_type, "application/problem+json");
    let bad_id = app.call(&key, "GET", "/v1/pools/abc", None).await;
    assert_eq!(bad_id.status, 400);
    assert_eq!(bad_id.content_type, "application/problem+json");
    let no_route = app.call(&key, "GET", "/v1/nothing", None).await;
    assert_eq!(no_route.status, 404);
    assert_eq!(no_route.content_type, "application/problem+json");
    // Nothing was created by any of these.
    let pools = app.ok(&key, "GET", "/v1/pools", None, 200).await;
    assert_eq!(pools["items"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn listings_page_with_cursors() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    for i in 0..7 {
        app.ok(
            &key,
            "POST",
            "/v1/pools",
            Some(json!({"name": format!("p{i}")})),
            201,
        )
        .await;
    }
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/pools?limit=3&cursor={c}"),
            None => "/v1/pools?limit=3".to_string(),
        };
        let page = app.ok(&key, "GET", &path, None, 200).await;
        pages += 1;
        for p in page["items"].as_array().unwrap() {
            names.push(p["name"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    let bad = app.call(&key, "GET", "/v1/pools?cursor=zzz", None).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["field"], "cursor");
    let too_many = app.call(&key, "GET", "/v1/pools?limit=501", None).await;
    assert_eq!(too_many.body["field"], "limit");
}

#[tokio::test]
async fn bulk_import_keeps_good_rows_and_reports_bad_ones() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let pool = app.pool_with_block(&key, "+14155550101", 5, &["en"]).await;
    let csv = "e164,country,languages\n+4930901820,,de\n030 901821,DE,de;en\nnonsense,,\n+14155550101,,\n";
    let r = app
        .ok(
            &key,
            "POST",
            "/v1/numbers/import",
            Some(json!({"pool_id": pool, "csv": csv})),
            200,
        )
        .await;
    assert_eq!(r["imported"], 2, "{r}");
    let failed = r["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["row"], 4);
    assert_eq!(failed[0]["field"], "e164");
    assert_eq!(failed[1]["row"], 5);
    assert!(failed[1]["detail"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    let p = app
        .ok(&key, "GET", &format!("/v1/pools/{pool}"), None, 200)
        .await;
    assert_eq!(p["size"], 7);
    let de = app
        .ok(
            &key,
            "GET",
            &format!("/v1/numbers?pool_id={pool}&limit=500"),
            None,
            200,
        )
        .await;
    let second = de["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["e164"] == "+4930901821")
        .expect("national-form number imported in E.164");
    assert_eq!(second["country"], "DE");
    assert_eq!(second["region"], "30");
    assert_eq!(second["languages"], json!(["de", "en"]));
    let both = app
        .call(
            &key,
            "POST",
            "/v1/numbers/import",
            Some(json!({"csv": "x", "block": {"start": "+14155550101", "count": 1}})),
        )
        .await;
    assert_eq!(both.status, 400);
}

#[tokio::test]
async fn numbers_and_campaigns_update_and_delete() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let pool = app.pool_with_block(&key, "+14155550101", 2, &["en"]).await;
    let n = app
        .ok(
            &key,
            "POST",
            "/v1/numbers",
            Some(json!({"e164": "+1 (888) 555-0100"})),
            201,
        )
        .await;
    assert_eq!(n["kind"], "toll_free");
    assert_eq!(n["pool_id"], serde_json::Value::Null);
    let path = format!("/v1/numbers/{}", n["id"]);
    let moved = app
        .ok(
            &key,
            "PATCH",
            &path,
            Some(json!({"pool_id": pool, "languages": ["es"], "status": "quarantined"})),
            200,
        )
        .await;
    assert_eq!(moved["pool_id"], pool);
    assert_eq!(moved["status"], "quarantined");
    let out = app
        .ok(&key, "PATCH", &path, Some(json!({"pool_id": null})), 200)
        .await;
    assert_eq!(out["pool_id"], serde_json::Value::Null);
    assert_eq!(out["languages"], json!(["es"]));
    app.ok(&key, "DELETE", &path, None, 204).await;
    assert_eq!(app.call(&key, "GET", &path, None).await.status, 404);

    let (id, _) = app
        .campaign(
            &key,
            json!({"name": "c", "default_number": "+14155550100", "trigger_parameter": "gclid"}),
        )
        .await;
    let c = app
        .ok(
            &key,
            "PATCH",
            &format!("/v1/campaigns/{id}"),
            Some(json!({"trigger_parameter": null, "name": "renamed"})),
            200,
        )
        .await;
    assert_eq!(c["trigger_parameter"], serde_json::Value::Null);
    assert_eq!(c["name"], "renamed");
    assert_eq!(c["default_number"], "+14155550100");
    app.ok(&key, "DELETE", &format!("/v1/campaigns/{id}"), None, 204)
        .await;
}

#[tokio::test]
async fn openapi_health_and_metrics_are_served() {
    let app = spawn_app().await;
    let doc = app
        .send(app.client.get(format!("{}/openapi.json", app.base)))
        .await;
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().unwrap();
    for p in [
        "/v1/campaigns",
        "/v1/numbers/import",
        "/v1/dni/sessions",
        "/v1/domains/{id}/verify",
    ] {
        assert!(paths.contains_key(p), "{p} in the OpenAPI document");
    }
    let health = app
        .send(app.client.get(format!("{}/healthz", app.base)))
        .await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body["status"], "ok");
    let metrics = app
        .send(app.client.get(format!("{}/metrics", app.base)))
        .await;
    assert_eq!(metrics.status, 200);
}

#[tokio::test]
async fn readiness_reports_each_part_and_fails_when_one_fails() {
    let app = spawn_app_options(callopt_http::Options {
        node: Some("node-a".into()),
        ..Default::default()
    })
    .await;
    let url = format!("{}/readyz", app.base);
    let ready = app.send(app.client.get(&url)).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["node"], "node-a");
    assert_eq!(ready.body["checks"]["store"]["status"], "ok");
    assert!(ready.body["checks"]["store"]["latency_ms"].as_f64() >= Some(0.0));

    app.state
        .readiness
        .ok("sip", "udp and tcp on 127.0.0.1:5060");
    let ready = app.send(app.client.get(&url)).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["checks"]["sip"]["status"], "ok");

    app.state
        .readiness
        .failing("sip", "stopped: address in use");
    let down = app.send(app.client.get(&url)).await;
    assert_eq!(down.status, 503);
    assert_eq!(down.body["status"], "unavailable");
    assert_eq!(down.body["checks"]["sip"]["status"], "failing");
    assert_eq!(
        down.body["checks"]["sip"]["detail"],
        "stopped: address in use"
    );
    assert_eq!(
        down.body["checks"]["store"]["status"], "ok",
        "the rest still shown"
    );
}

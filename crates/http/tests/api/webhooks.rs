//! Event webhooks through the management API: validation, the secret shown once, the refusal
//! of private destinations (the default), and account scoping.

use crate::helpers::spawn_app;
use serde_json::json;

#[tokio::test]
async fn webhooks_refuse_bad_input_and_private_destinations() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let cases = [
        (json!({"events": ["call.started"]}), "url"),
        (json!({"url": "https://hooks.example.com/x"}), "events"),
        (
            json!({"url": "ftp://hooks.example.com/x", "events": ["call.started"]}),
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9/x", "events": ["call.started"]}),
            "url",
        ),
        (
            json!({"url": "http://localhost/x", "events": ["call.started"]}),
            "url",
        ),
        (
            json!({"url": "http://169.254.169.254/x", "events": ["call.started"]}),
            "url",
        ),
        (
            json!({"url": "http://[::1]/x", "events": ["call.started"]}),
            "url",
        ),
        (
            json!({"url": "https://u:p@hooks.example.com/", "events": ["call.started"]}),
            "url",
        ),
        (
            json!({"url": "https://hooks.example.com/", "events": ["call.ended"]}),
            "events[0]",
        ),
        (
            json!({"url": "https://hooks.example.com/", "events": []}),
            "events",
        ),
    ];
    for (body, field) in cases {
        let r = app
            .call(&key, "POST", "/v1/webhooks", Some(body.clone()))
            .await;
        assert_eq!(r.status, 400, "{body}: {}", r.text);
        assert_eq!(r.content_type, "application/problem+json");
        assert_eq!(r.body["field"], field, "{body}: {}", r.body);
    }
    let r = app
        .call(
            &key,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "x", "bogus": 1})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

#[tokio::test]
async fn a_webhook_shows_its_secret_once_and_belongs_to_its_account() {
    let app = spawn_app().await;
    let a = app.new_account("a").await;
    let b = app.new_account("b").await;
    let body = json!({"url": "https://hooks.example.com/in?token=t",
                      "events": ["call.finished", "call.finished", "session.created"]});
    let created = app.call(&a, "POST", "/v1/webhooks", Some(body)).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.body["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 38,
        "{secret}"
    );
    assert_eq!(
        created.body["events"],
        json!(["call.finished", "session.created"])
    );
    assert_eq!(created.body["enabled"], true);
    let id = created.body["id"].as_i64().unwrap();
    let path = format!("/v1/webhooks/{id}");

    let got = app.call(&a, "GET", &path, None).await;
    assert!(got.body.get("secret").is_none(), "{}", got.body);
    assert!(!got.text.contains(secret));
    let listed = app.call(&a, "GET", "/v1/webhooks", None).await;
    assert!(!listed.text.contains(secret));
    assert_eq!(listed.body["items"][0]["id"], id);

    let changed = app
        .call(
            &a,
            "PATCH",
            &path,
            Some(json!({"enabled": false, "events": ["call.started"]})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["enabled"], false);
    assert_eq!(changed.body["events"], json!(["call.started"]));
    assert_eq!(changed.body["url"], "https://hooks.example.com/in?token=t");

    // Another account sees nothing of it.
    for (method, p) in [
        ("GET", path.clone()),
        ("PATCH", path.clone()),
        ("DELETE", path.clone()),
        ("GET", format!("{path}/deliveries")),
    ] {
        let body = (method == "PATCH").then(|| json!({"enabled": true}));
        let r = app.call(&b, method, &p, body).await;
        assert_eq!(r.status, 404, "{method} {p}: {}", r.text);
    }
    let none = app.call(&b, "GET", "/v1/webhooks", None).await;
    assert_eq!(none.body["items"], json!([]));

    let deliveries = app
        .call(&a, "GET", &format!("{path}/deliveries"), None)
        .await;
    assert_eq!(deliveries.body["items"], json!([]));
    assert_eq!(app.call(&a, "DELETE", &path, None).await.status, 204);
    assert_eq!(app.call(&a, "GET", &path, None).await.status, 404);
}

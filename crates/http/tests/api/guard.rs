//! The Guard end to end: scans queued by DNI, quarantines, abuse reports, re-verification and
//! the audit, against the real server, a SQLite file and pages served on loopback.

use crate::helpers::{spawn_app, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scan/tests/corpus");

/// Serves one corpus page at `/landing` on loopback; returns `http://127.0.0.1:PORT`.
async fn serve_page(file: &str) -> String {
    let html = std::fs::read_to_string(format!("{CORPUS}/{file}")).unwrap();
    let app = axum::Router::new().route(
        "/landing",
        axum::routing::get(move || {
            let h = html.clone();
            async move { axum::response::Html(h) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn visit(campaign: &str, visitor: &str, page: &str) -> Value {
    json!({"campaign": campaign, "visitor": visitor, "page_url": page, "referrer": null})
}

/// Polls `path` until `done` holds for its items, for at most 20 s.
async fn until(
    app: &TestApp,
    key: &str,
    path: &str,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = app.ok(key, "GET", path, None, 200).await;
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if done(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {items:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A verified loopback host, a 3-number pool and a campaign serving it; returns the campaign's
/// (id, key) and the origin to send.
async fn campaign(app: &TestApp, key: &str) -> (i64, String, String) {
    let host = app.verified_host(key).await;
    let pool = app.pool_with_block(key, "+14155550101", 3, &["en"]).await;
    let (id, campaign) = app
        .campaign(
            key,
            json!({"name": "c", "default_number": "+14155550100", "pool_id": pool,
                   "domains": [host]}),
        )
        .await;
    (id, campaign, format!("http://{host}"))
}

#[tokio::test]
async fn a_scam_page_quarantines_its_campaign_until_lifted() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let hook = app
        .ok(
            &key,
            "POST",
            "/v1/webhooks",
            Some(
                json!({"url": "https://hooks.example.com/in", "events": ["campaign.quarantined"]}),
            ),
            201,
        )
        .await;
    let (id, campaign, origin) = campaign(&app, &key).await;
    let scam = format!(
        "{}/landing?n=18005550199",
        serve_page("scam/combo_10_de.html").await
    );
    // The visit came from an ad: the page is scanned without the click id.
    let first = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-1", &format!("{scam}&gclid=Cj0KCQ")),
            None,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["attributed"], true);

    let scans = until(&app, &key, "/v1/guard/scans", "the scam verdict", |s| {
        s.len() == 1 && s[0]["status"] == "done"
    })
    .await;
    assert_eq!(scans[0]["url"], scam.as_str());
    assert_eq!(scans[0]["verdict"], "scam", "{:?}", scans[0]);
    assert!(!scans[0]["findings"].as_array().unwrap().is_empty());
    let quarantines = until(&app, &key, "/v1/guard/quarantines", "the quarantine", |q| {
        q.len() == 1
    })
    .await;
    assert_eq!(quarantines[0]["campaign_id"], id);
    assert_eq!(quarantines[0]["status"], "active");

    // No more numbers (once the scanner has reloaded the campaign, just after it recorded the
    // quarantine), and the refusal is recorded with the page.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let refused = loop {
        let r = app
            .dni(Some(&origin), visit(&campaign, "visitor-2", &scam), None)
            .await;
        if r.status != 200 || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("quarantined"));
    let refusals = until(&app, &key, "/v1/dni/refusals", "the refusal", |r| {
        r.iter().any(|r| r["reason"] == "quarantined_campaign")
    })
    .await;
    assert!(refusals.iter().any(|r| r["page_url"] == scam.as_str()));

    // The event is in the outbox.
    let deliveries = app
        .ok(
            &key,
            "GET",
            &format!("/v1/webhooks/{}/deliveries", hook["id"]),
            None,
            200,
        )
        .await;
    assert!(
        deliveries["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["event_type"] == "campaign.quarantined"),
        "{deliveries}"
    );

    // The operator overrides the verdict and lifts the quarantine: numbers are served again.
    let scan_id = scans[0]["id"].as_i64().unwrap();
    let over = app
        .ok(
            &key,
            "POST",
            &format!("/v1/guard/scans/{scan_id}/override"),
            Some(json!({"note": "our own test page"})),
            200,
        )
        .await;
    assert!(over["overridden_at"].is_string());
    let q = quarantines[0]["id"].as_i64().unwrap();
    let bad = app
        .call(
            &key,
            "POST",
            &format!("/v1/guard/quarantines/{q}/lift"),
            Some(json!({"note": ""})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.content_type, "application/problem+json");
    let lifted = app
        .ok(
            &key,
            "POST",
            &format!("/v1/guard/quarantines/{q}/lift"),
            Some(json!({"note": "reviewed"})),
            200,
        )
        .await;
    assert_eq!(lifted["status"], "lifted");
    let served = app
        .dni(Some(&origin), visit(&campaign, "visitor-3", &scam), None)
        .await;
    assert_eq!(served.status, 200, "{}", served.text);
    assert_eq!(served.body["attributed"], true);

    let audit = app.ok(&key, "GET", "/v1/guard/audit", None, 200).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            // The quarantine is in force before the verdict is on record.
            "campaign.quarantined",
            "scan.finished",
            "scan.overridden",
            "quarantine.lifted"
        ]
    );
    // Another account sees none of it.
    let other = app.new_account("b").await;
    for path in [
        "/v1/guard/scans",
        "/v1/guard/quarantines",
        "/v1/guard/audit",
    ] {
        let b = app.ok(&other, "GET", path, None, 200).await;
        assert_eq!(b["items"], json!([]), "{path}");
    }
}

#[tokio::test]
async fn an_honest_page_keeps_its_numbers_and_a_forged_origin_gets_nothing() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let (_, campaign, origin) = campaign(&app, &key).await;
    let page = format!(
        "{}/landing?utm_source=x",
        serve_page("legit/antivirus_1_en.html").await
    );
    let first = app
        .dni(Some(&origin), visit(&campaign, "visitor-1", &page), None)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let scans = until(&app, &key, "/v1/guard/scans", "the verdict", |s| {
        s.len() == 1 && s[0]["status"] == "done"
    })
    .await;
    assert_ne!(scans[0]["verdict"], "scam", "{:?}", scans[0]);
    let again = app
        .dni(Some(&origin), visit(&campaign, "visitor-2", &page), None)
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["attributed"], true);
    let quarantines = app
        .ok(&key, "GET", "/v1/guard/quarantines", None, 200)
        .await;
    assert_eq!(quarantines["items"], json!([]));

    let forged = app
        .dni(
            Some("http://scam.example"),
            visit(&campaign, "visitor-3", &page),
            None,
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(forged.body.get("number").is_none());
}

async fn report(app: &TestApp, from: &str, body: Value) -> crate::helpers::Answer {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    app.send(
        client
            .post(format!("{}/v1/abuse-reports", app.base))
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn three_reporters_quarantine_a_number() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let (_, campaign, origin) = campaign(&app, &key).await;
    let page = "http://127.0.0.1:9/page";
    let served = app
        .dni(Some(&origin), visit(&campaign, "visitor-1", page), None)
        .await;
    let number = served.body["number"].as_str().unwrap().to_string();
    for (i, from) in ["127.0.0.2", "127.0.0.3", "127.0.0.3", "127.0.0.4"]
        .iter()
        .enumerate()
    {
        let r = report(
            &app,
            from,
            json!({"number": number, "description": "they asked for my bank card"}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert!(r.body["reference"].as_str().unwrap().starts_with("abr_"));
        let q = app
            .ok(&key, "GET", "/v1/guard/quarantines", None, 200)
            .await;
        // Quarantined at the third distinct reporter (the fourth report), not before.
        assert_eq!(
            q["items"].as_array().unwrap().len(),
            usize::from(i == 3),
            "report {i}"
        );
    }
    let n = app.ok(&key, "GET", "/v1/numbers", None, 200).await;
    let status = n["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["e164"] == number.as_str())
        .unwrap()["status"]
        .clone();
    assert_eq!(status, "quarantined");
    let reports = app
        .ok(&key, "GET", "/v1/guard/abuse-reports", None, 200)
        .await;
    assert_eq!(reports["items"].as_array().unwrap().len(), 4);
    let other = app.new_account("b").await;
    let none = app
        .ok(&other, "GET", "/v1/guard/abuse-reports", None, 200)
        .await;
    assert_eq!(none["items"], json!([]));
}

#[tokio::test]
async fn abuse_reports_are_bounded_rate_limited_and_queue_scans() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let (_, campaign, origin) = campaign(&app, &key).await;
    let page = format!(
        "{}/landing?x=1",
        serve_page("legit/antivirus_2_en.html").await
    );
    app.dni(Some(&origin), visit(&campaign, "visitor-1", &page), None)
        .await;
    until(&app, &key, "/v1/guard/scans", "the first scan", |s| {
        s.len() == 1 && s[0]["status"] == "done"
    })
    .await;

    let from = "127.0.0.9";
    let bad = report(&app, from, json!({"description": "no number or page"})).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.content_type, "application/problem+json");
    let long = report(
        &app,
        from,
        json!({"page_url": page, "description": "x".repeat(3000)}),
    )
    .await;
    assert_eq!(long.status, 400, "{}", long.text);
    let ok = report(
        &app,
        from,
        json!({"page_url": page, "description": "locks my browser"}),
    )
    .await;
    assert_eq!(ok.status, 202, "{}", ok.text);
    // The page is scanned again for the report.
    until(&app, &key, "/v1/guard/scans", "the report's scan", |s| {
        s.len() == 1 && s[0]["source"] == "abuse_report" && s[0]["status"] == "done"
    })
    .await;
    let mut limited = false;
    for _ in 0..10 {
        let r = report(
            &app,
            from,
            json!({"page_url": page, "description": "again"}),
        )
        .await;
        if r.status == 429 {
            assert_eq!(r.content_type, "application/problem+json");
            limited = true;
            break;
        }
        assert_eq!(r.status, 202, "{}", r.text);
    }
    assert!(limited, "never rate-limited");
    let huge = report(
        &app,
        "127.0.0.10",
        json!({"page_url": page, "description": "y".repeat(20_000)}),
    )
    .await;
    assert_eq!(huge.status, 413, "{}", huge.text);
}

#[tokio::test]
async fn a_domain_that_loses_its_file_is_unverified_after_the_grace_period() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let (_, campaign, origin) = campaign(&app, &key).await;
    let page = format!("{origin}/p");
    assert_eq!(
        app.dni(Some(&origin), visit(&campaign, "visitor-1", &page), None)
            .await
            .status,
        200
    );
    // Still published: nothing changes.
    let now = callopt_http::now_ms();
    assert_eq!(
        callopt_http::guard::reverify_once(&app.state, now)
            .await
            .unwrap(),
        0
    );
    // Remove the domain's token: the helper's server answers an empty body from now on.
    app.clear_verification_tokens();
    assert_eq!(
        callopt_http::guard::reverify_once(&app.state, now + 1000)
            .await
            .unwrap(),
        0
    );
    let grace = 72 * 3600 * 1000;
    assert_eq!(
        callopt_http::guard::reverify_once(&app.state, now + 1000 + grace)
            .await
            .unwrap(),
        1
    );
    let refused = app
        .dni(Some(&origin), visit(&campaign, "visitor-2", &page), None)
        .await;
    assert_eq!(refused.status, 403);
    let audit = app.ok(&key, "GET", "/v1/guard/audit", None, 200).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        // The page visited above is scanned meanwhile: its entries may come at any point.
        .filter(|a| a.starts_with("domain."))
        .collect();
    assert_eq!(actions, ["domain.check_failed", "domain.unverified"]);
}

#[tokio::test]
async fn the_scanner_refuses_private_addresses_unless_allowed() {
    use callopt_scan::fetch::{client, scan_url, FetchError, Limits};
    let page = format!("{}/landing", serve_page("scam/combo_10_de.html").await);
    let limits = Limits::default();
    let err = scan_url(&client(&limits), &page, &limits)
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Refused { .. }), "{err}");
}

#[tokio::test]
async fn behind_a_proxy_abuse_reports_are_limited_per_client_not_per_proxy() {
    let geo = callopt_http::geo::GeoConfig {
        client_ip_header: Some(axum::http::HeaderName::from_static("x-forwarded-for")),
        ..Default::default()
    };
    let app = crate::helpers::spawn_app_with(tempfile::tempdir().unwrap(), geo).await;
    let from = |forwarded: String| {
        app.client
            .post(format!("{}/v1/abuse-reports", app.base))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"number": "+14155550100", "description": "scam"}))
    };
    // One client (the proxy appends its address last) cannot escape the limit by writing
    // other addresses before it.
    let mut statuses = Vec::new();
    for i in 0..6 {
        let r = app.send(from(format!("10.0.0.{i}, 198.51.100.1"))).await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [202, 202, 202, 202, 202, 429]);
    // Another client behind the same proxy is not limited by the first one's reports.
    let other = app.send(from("198.51.100.2".into())).await;
    assert_eq!(other.status, 202, "{}", other.text);
}

#[tokio::test]
async fn an_operator_quarantines_some_pages_of_a_campaign_and_the_rest_keep_their_numbers() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let (id, campaign, origin) = campaign(&app, &key).await;
    let rogue = format!("{origin}/partners/rogue/offer?ph=18005550199");
    let served = app
        .dni(Some(&origin), visit(&campaign, "visitor-1", &rogue), None)
        .await;
    assert_eq!(served.status, 200, "{}", served.text);

    // Bad requests name the field; another account's campaign is not found.
    for (body, status, field) in [
        (
            json!({"campaign_id": id, "url_pattern": "partners/*", "note": "x"}),
            400,
            "url_pattern",
        ),
        (
            json!({"campaign_id": id, "url_pattern": format!("{origin}/*/x"), "note": "x"}),
            400,
            "url_pattern",
        ),
        (
            json!({"campaign_id": id, "url_pattern": format!("{origin}/p*"), "note": " "}),
            400,
            "note",
        ),
    ] {
        let r = app
            .call(&key, "POST", "/v1/guard/quarantines", Some(body))
            .await;
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.body["field"], field, "{}", r.text);
    }
    let other = app.new_account("b").await;
    let theirs = app
        .call(
            &other,
            "POST",
            "/v1/guard/quarantines",
            Some(json!({"campaign_id": id, "url_pattern": format!("{origin}/*"), "note": "x"})),
        )
        .await;
    assert_eq!(theirs.status, 404, "{}", theirs.text);

    let pattern = format!("{origin}/partners/rogue/*");
    let q = app
        .ok(
            &key,
            "POST",
            "/v1/guard/quarantines",
            Some(json!({"campaign_id": id, "url_pattern": pattern, "note": "affiliate page"})),
            201,
        )
        .await;
    assert_eq!(q["url_pattern"], pattern.as_str());
    assert_eq!(q["reason"], "operator");
    let again = app
        .call(
            &key,
            "POST",
            "/v1/guard/quarantines",
            Some(json!({"campaign_id": id, "url_pattern": pattern, "note": "twice"})),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);

    // The rogue pages get nothing (whatever click id they carry); the campaign's other pages
    // are served.
    let refused = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-2", &format!("{rogue}&gclid=x")),
            None,
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("page is quarantined"));
    let home = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-3", &format!("{origin}/partners/other")),
            None,
        )
        .await;
    assert_eq!(home.status, 200, "{}", home.text);
    until(&app, &key, "/v1/dni/refusals", "the refusal", |r| {
        r.iter().any(|r| r["reason"] == "quarantined_page")
    })
    .await;

    // Lifted: served again; every step is audited.
    let lift = format!("/v1/guard/quarantines/{}/lift", q["id"]);
    app.ok(
        &key,
        "POST",
        &lift,
        Some(json!({"note": "partner removed the page"})),
        200,
    )
    .await;
    let back = app
        .dni(Some(&origin), visit(&campaign, "visitor-4", &rogue), None)
        .await;
    assert_eq!(back.status, 200, "{}", back.text);
    let audit = app.ok(&key, "GET", "/v1/guard/audit", None, 200).await;
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert!(
        actions.contains(&("page.quarantined", "operator")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("quarantine.lifted", "operator")),
        "{actions:?}"
    );
}

//! `POST /v1/dni/sessions` and the feeds, through the real server: fail-closed origins, leases,
//! geo and language matching, triggers, overflow, per-source rules, attribution, durability.

use crate::helpers::{spawn_app, spawn_app_in, TestApp};
use serde_json::{json, Value};

fn visit(campaign: &str, visitor: &str, page: &str) -> Value {
    json!({"campaign": campaign, "visitor": visitor, "page_url": page, "referrer": null})
}

/// An account with a verified host, a 5-number US pool and a campaign serving that host.
async fn setup(app: &TestApp, extra: Value) -> (String, String, String) {
    let key = app.new_account("a").await;
    let host = app.verified_host(&key).await;
    let pool = app.pool_with_block(&key, "+14155550101", 5, &["en"]).await;
    let mut fields =
        json!({"name": "c", "default_number": "+14155550100", "pool_id": pool, "domains": [host]});
    fields
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (_, campaign) = app.campaign(&key, fields).await;
    (key, format!("http://{host}"), campaign)
}

#[tokio::test]
async fn verified_origin_gets_a_pool_number_and_keeps_it() {
    let app = spawn_app().await;
    let (_, origin, campaign) = setup(&app, json!({})).await;
    let page = format!("{origin}/landing");
    let first = app
        .dni(Some(&origin), visit(&campaign, "visitor-one", &page), None)
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let b = &first.body;
    assert_eq!(b["swap"], true);
    assert_eq!(b["attributed"], true);
    let number = b["number"].as_str().unwrap().to_string();
    assert!(
        number.starts_with("+1415555010") && number != "+14155550100",
        "{number}"
    );
    assert_eq!(b["replace"][0]["e164"], "+14155550100");
    assert_eq!(b["replace"][0]["nsn"], "4155550100");
    assert_eq!(b["replace"][0]["cc"], "1");
    assert!(
        b["display"].as_str().unwrap().starts_with("(415) 555-01"),
        "{b}"
    );
    assert_eq!(b["lease_seconds"], 1800);
    assert!(b["expires_at"].as_str().is_some());

    let again = app
        .dni(Some(&origin), visit(&campaign, "visitor-one", &page), None)
        .await;
    assert_eq!(again.body["number"], number.as_str());
    assert_eq!(again.body["session"], b["session"]);
    let other = app
        .dni(Some(&origin), visit(&campaign, "visitor-two", &page), None)
        .await;
    assert_ne!(other.body["number"], number.as_str());
}

#[tokio::test]
async fn unverified_or_missing_origins_are_refused_and_recorded() {
    let app = spawn_app().await;
    let (key, origin, campaign) = setup(&app, json!({})).await;
    let body = visit(&campaign, "visitor-one", "http://evil.example/page?n=1");
    let refused = app
        .dni(Some("http://evil.example"), body.clone(), None)
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.content_type, "application/problem+json");
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("evil.example"));
    let none = app.dni(None, body.clone(), None).await;
    assert_eq!(none.status, 403);
    // A Referer on a verified host is accepted when Origin is absent.
    let referer = app
        .send(
            app.client
                .post(format!("{}/v1/dni/sessions", app.base))
                .header("referer", format!("{origin}/page"))
                .body(visit(&campaign, "visitor-three", &format!("{origin}/page")).to_string()),
        )
        .await;
    assert_eq!(referer.status, 200, "{}", referer.text);
    // Refusals are written asynchronously; wait (bounded) until both are listed.
    let mut reasons = Vec::new();
    for _ in 0..100 {
        let list = app.ok(&key, "GET", "/v1/dni/refusals", None, 200).await;
        reasons = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap().to_string())
            .collect();
        if reasons.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The two refusals are recorded concurrently, in either order.
    reasons.sort();
    assert_eq!(reasons, ["missing_origin", "unverified_origin"]);
    let list = app.ok(&key, "GET", "/v1/dni/refusals", None, 200).await;
    let unverified = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "unverified_origin")
        .unwrap();
    assert_eq!(unverified["page_url"], "http://evil.example/page?n=1");
    assert_eq!(unverified["origin"], "http://evil.example");
}

#[tokio::test]
async fn a_domain_that_is_listed_but_not_verified_is_refused() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    app.ok(
        &key,
        "POST",
        "/v1/domains",
        Some(json!({"host": "shop.example"})),
        201,
    )
    .await;
    let pool = app.pool_with_block(&key, "+14155550101", 2, &["en"]).await;
    let (_, campaign) = app
        .campaign(&key, json!({"name": "c", "default_number": "+14155550100", "pool_id": pool, "domains": ["shop.example"]}))
        .await;
    let a = app
        .dni(
            Some("https://shop.example"),
            visit(&campaign, "visitor-one", "https://shop.example/"),
            None,
        )
        .await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn trigger_parameter_gates_new_visitors_only() {
    let app = spawn_app().await;
    let (_, origin, campaign) = setup(&app, json!({"trigger_parameter": "gclid"})).await;
    let plain = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-one", &format!("{origin}/")),
            None,
        )
        .await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body["swap"], false);
    assert_eq!(plain.body["session"], Value::Null);
    let ad = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-one", &format!("{origin}/?gclid=abc")),
            None,
        )
        .await;
    assert_eq!(ad.body["swap"], true);
    let later = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-one", &format!("{origin}/other")),
            None,
        )
        .await;
    assert_eq!(later.body["swap"], true, "the lease outlives the trigger");
    assert_eq!(later.body["number"], ad.body["number"]);
}

#[tokio::test]
async fn exhausted_pool_answers_the_default_number_unattributed() {
    let app = spawn_app().await;
    let (key, origin, campaign) = setup(&app, json!({})).await;
    let mut numbers = std::collections::HashSet::new();
    for i in 0..5 {
        let a = app
            .dni(
                Some(&origin),
                visit(&campaign, &format!("visitor-{i:03}"), &format!("{origin}/")),
                None,
            )
            .await;
        assert_eq!(a.body["attributed"], true);
        numbers.insert(a.body["number"].as_str().unwrap().to_string());
    }
    assert_eq!(numbers.len(), 5, "five visitors, five numbers");
    let sixth = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-six", &format!("{origin}/")),
            None,
        )
        .await;
    assert_eq!(sixth.status, 200);
    assert_eq!(sixth.body["number"], "+14155550100");
    assert_eq!(sixth.body["attributed"], false);
    let session = sixth.body["session"].as_str().unwrap();
    let s = app
        .ok(&key, "GET", &format!("/v1/sessions/{session}"), None, 200)
        .await;
    assert_eq!(s["attributed"], false);
    let metrics = app
        .send(app.client.get(format!("{}/metrics", app.base)))
        .await;
    // Every series also carries the node's name, first among its labels.
    assert!(
        metrics
            .text
            .lines()
            .any(|l| l.starts_with("callopt_pool_utilisation{node=")
                && l.ends_with(",pool=\"1\"} 1")),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn visitors_get_numbers_of_their_country_then_language() {
    let app = spawn_app().await;
    let key = app.new_account("a").await;
    let host = app.verified_host(&key).await;
    let origin = format!("http://{host}");
    let pool = app.pool_with_block(&key, "+14155550101", 2, &["en"]).await;
    let csv = "e164,languages\n+493090182000,de\n+33142685300,fr\n";
    app.ok(
        &key,
        "POST",
        "/v1/numbers/import",
        Some(json!({"pool_id": pool, "csv": csv})),
        200,
    )
    .await;
    let (_, campaign) = app
        .campaign(&key, json!({"name": "c", "default_number": "+14155550100", "pool_id": pool, "domains": [host]}))
        .await;
    let german = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-de1", &format!("{origin}/")),
            Some("DE"),
        )
        .await;
    assert_eq!(german.body["number"], "+493090182000");
    assert_eq!(german.body["display"], "030 90182000");
    let french = app
        .send(
            app.client
                .post(format!("{}/v1/dni/sessions", app.base))
                .header("origin", &origin)
                .header("accept-language", "fr-CH, fr;q=0.9, en;q=0.8")
                .body(visit(&campaign, "visitor-fr1", &format!("{origin}/")).to_string()),
        )
        .await;
    assert_eq!(french.body["number"], "+33142685300");
    assert_eq!(french.body["display"], "+33 1 42 68 53 00");
    let us = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-us1", &format!("{origin}/")),
            Some("US"),
        )
        .await;
    assert!(us.body["number"].as_str().unwrap().starts_with("+1415"));
}

#[tokio::test]
async fn per_source_rules_pick_fixed_numbers() {
    let app = spawn_app().await;
    let rules = json!({"assignment": "per_source", "source_rules": [
        {"match": "utm_source", "value": "google", "number": "+14155550201"},
        {"match": "referrer_domain", "value": "facebook.com", "number": "+14155550202"},
        {"match": "click_id", "value": "msclkid", "number": "+14155550203"},
    ]});
    let (_, origin, campaign) = setup(&app, rules).await;
    let ask = |visitor: &'static str, page: String, referrer: Option<&'static str>| {
        let body = json!({"campaign": campaign, "visitor": visitor, "page_url": page, "referrer": referrer});
        let origin = origin.clone();
        let app = &app;
        async move { app.dni(Some(&origin), body, None).await.body }
    };
    assert_eq!(
        ask("visitor-g1", format!("{origin}/?utm_source=Google"), None).await["number"],
        "+14155550201"
    );
    assert_eq!(
        ask(
            "visitor-f1",
            format!("{origin}/"),
            Some("https://m.facebook.com/x")
        )
        .await["number"],
        "+14155550202"
    );
    assert_eq!(
        ask("visitor-b1", format!("{origin}/?msclkid=1"), None).await["number"],
        "+14155550203"
    );
    let direct = ask("visitor-d1", format!("{origin}/"), None).await;
    assert_eq!(direct["number"], "+14155550100");
    assert_eq!(direct["attributed"], false);

    let json_feed = app
        .send(app.client.get(format!("{}/v1/dni/feeds/{campaign}/number.json?page_url={origin}/%3Futm_source%3Dgoogle", app.base)).header("origin", &origin))
        .await;
    assert_eq!(json_feed.status, 200, "{}", json_feed.text);
    assert_eq!(json_feed.body["number"], "+14155550201");
    assert_eq!(json_feed.body["source"], "google");
    let xml_feed = app
        .send(
            app.client
                .get(format!("{}/v1/dni/feeds/{campaign}/number.xml", app.base))
                .header("origin", &origin),
        )
        .await;
    assert_eq!(xml_feed.status, 200);
    assert!(xml_feed.content_type.starts_with("application/xml"));
    assert!(
        xml_feed.text.contains("<e164>+14155550100</e164>"),
        "{}",
        xml_feed.text
    );
    let refused = app
        .send(
            app.client
                .get(format!("{}/v1/dni/feeds/{campaign}/number.json", app.base))
                .header("origin", "https://evil.example"),
        )
        .await;
    assert_eq!(refused.status, 403);
}

#[tokio::test]
async fn attribution_is_read_from_the_page_url_and_kept() {
    let app = spawn_app().await;
    let (key, origin, campaign) = setup(&app, json!({})).await;
    let page = format!("{origin}/offer?utm_source=google&utm_medium=cpc&utm_campaign=spring&utm_term=plumber&gclid=G1");
    let body = json!({"campaign": campaign, "visitor": "visitor-utm", "page_url": page, "referrer": "https://www.google.com/"});
    let a = app
        .send(
            app.client
                .post(format!("{}/v1/dni/sessions", app.base))
                .header("origin", &origin)
                .header("user-agent", "TestBrowser/1.0")
                .header(crate::helpers::COUNTRY_HEADER, "US")
                .header("accept-language", "en-US")
                .body(body.to_string()),
        )
        .await;
    let session = a.body["session"].as_str().unwrap();
    let s = app
        .ok(&key, "GET", &format!("/v1/sessions/{session}"), None, 200)
        .await;
    assert_eq!(s["landing_url"], page);
    assert_eq!(s["referrer"], "https://www.google.com/");
    assert_eq!(s["utm_source"], "google");
    assert_eq!(s["utm_medium"], "cpc");
    assert_eq!(s["utm_campaign"], "spring");
    assert_eq!(s["utm_term"], "plumber");
    assert_eq!(s["gclid"], "G1");
    assert_eq!(s["country"], "US");
    assert_eq!(s["language"], "en");
    assert_eq!(s["user_agent"], "TestBrowser/1.0");
    assert_eq!(s["number"], a.body["number"]);
    let other = app.new_account("b").await;
    assert_eq!(
        app.call(&other, "GET", &format!("/v1/sessions/{session}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn bad_dni_requests_get_problems() {
    let app = spawn_app().await;
    let (_, origin, campaign) = setup(&app, json!({})).await;
    let raw = |body: &'static str| {
        app.client
            .post(format!("{}/v1/dni/sessions", app.base))
            .header("origin", &origin)
            .body(body)
    };
    let broken = app.send(raw("{not json")).await;
    assert_eq!(broken.status, 400);
    assert_eq!(broken.content_type, "application/problem+json");
    let unknown = app
        .dni(
            Some(&origin),
            visit("cmp_nope", "visitor-one", &format!("{origin}/")),
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let visitor = app
        .dni(
            Some(&origin),
            visit(&campaign, "x y", &format!("{origin}/")),
            None,
        )
        .await;
    assert_eq!(visitor.status, 400);
    assert_eq!(visitor.body["field"], "visitor");
    let page = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-one", "javascript:alert(1)"),
            None,
        )
        .await;
    assert_eq!(page.body["field"], "page_url");
    let huge = "x".repeat(20_000);
    let big = app
        .dni(Some(&origin), visit(&campaign, "visitor-one", &huge), None)
        .await;
    assert_eq!(big.status, 413);
}

#[tokio::test]
async fn leases_survive_a_restart() {
    let app = spawn_app().await;
    let (_, origin, campaign) = setup(&app, json!({})).await;
    let page = format!("{origin}/");
    let before = app
        .dni(Some(&origin), visit(&campaign, "visitor-one", &page), None)
        .await;
    let crate::helpers::TestApp { dir, stop, .. } = app;
    drop(stop);
    let app = spawn_app_in(dir).await;
    let after = app
        .dni(Some(&origin), visit(&campaign, "visitor-one", &page), None)
        .await;
    assert_eq!(after.body["number"], before.body["number"]);
    assert_eq!(after.body["session"], before.body["session"]);
    let other = app
        .dni(Some(&origin), visit(&campaign, "visitor-two", &page), None)
        .await;
    assert_ne!(
        other.body["number"], before.body["number"],
        "the restored lease is held"
    );
}

#[tokio::test]
async fn a_maxmind_database_gives_the_visitor_country() {
    // Every 127.x.x.x address is in Germany in this database; the test client is 127.0.0.1.
    let path = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(path.path(), crate::mmdb::country_db(127, "DE")).unwrap();
    let geo = callopt_http::geo::GeoConfig {
        database: Some(maxminddb::Reader::open_readfile(path.path()).unwrap()),
        ..Default::default()
    };
    let app = crate::helpers::spawn_app_with(tempfile::tempdir().unwrap(), geo).await;
    let key = app.new_account("a").await;
    let host = app.verified_host(&key).await;
    let origin = format!("http://{host}");
    let pool = app.pool_with_block(&key, "+14155550101", 2, &["en"]).await;
    let csv = "e164,languages\n+493090182000,de\n";
    app.ok(
        &key,
        "POST",
        "/v1/numbers/import",
        Some(json!({"pool_id": pool, "csv": csv})),
        200,
    )
    .await;
    let (_, campaign) = app
        .campaign(&key, json!({"name": "c", "default_number": "+14155550100", "pool_id": pool, "domains": [host]}))
        .await;
    let a = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-geo", &format!("{origin}/")),
            None,
        )
        .await;
    assert_eq!(a.body["number"], "+493090182000", "{}", a.text);
    assert_eq!(a.body["display"], "030 90182000");
}

#[tokio::test]
async fn random_bodies_get_4xx_problems_and_the_server_keeps_serving() {
    use rand::{Rng, SeedableRng};
    let app = spawn_app().await;
    let (key, origin, campaign) = setup(&app, json!({})).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xca11);
    let fragments = [
        "{",
        "}",
        "\"campaign\":",
        "\"visitor\":",
        "\"page_url\":",
        "\"referrer\":",
        "null",
        "1e999",
        "\"\\u0000\"",
        ",",
        "[",
        "]",
        "\"http://x/\"",
        &format!("\"{campaign}\""),
        "\"abcdefgh\"",
        "true",
        "\"\u{1F4DE}\"",
    ];
    for round in 0..300 {
        let body: String = if round % 3 == 0 {
            (0..rng.random_range(0..64))
                .map(|_| rng.random::<u8>() as char)
                .collect()
        } else {
            (0..rng.random_range(1..12))
                .map(|_| fragments[rng.random_range(0..fragments.len())])
                .collect()
        };
        let a = app
            .send(
                app.client
                    .post(format!("{}/v1/dni/sessions", app.base))
                    .header("origin", &origin)
                    .body(body.clone()),
            )
            .await;
        assert!(
            (400..500).contains(&a.status) || a.status == 200,
            "{body:?} → {}: {}",
            a.status,
            a.text
        );
        if a.status != 200 {
            assert_eq!(a.content_type, "application/problem+json", "{body:?}");
        }
        let m = app
            .send(
                app.client
                    .post(format!("{}/v1/campaigns", app.base))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
        assert!(
            (400..500).contains(&m.status),
            "{body:?} → {}: {}",
            m.status,
            m.text
        );
    }
    let still = app
        .dni(
            Some(&origin),
            visit(&campaign, "visitor-after", &format!("{origin}/")),
            None,
        )
        .await;
    assert_eq!(still.status, 200);
}

//! The outbox on a real database: session and call writes create one delivery per event and
//! subscribed webhook in their own transaction; claims, retries and conversions; the session
//! batch's page scans.

use callopt_domain::{
    AccountId, ApiKey, AttemptOutcome, Attribution, CallOutcome, Campaign, CampaignKey, HungUpBy,
};
use callopt_store::*;
use std::sync::Arc;

async fn open(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = testing::scratch_database(dir.path());
    callopt_store::open(&url).await.unwrap()
}

async fn account(store: &Arc<dyn Store>, seed: u8) -> (AccountId, i64) {
    let account = store
        .create_account("a", &ApiKey::from_random([seed; 32]).hash(), 0)
        .await
        .unwrap();
    let campaign = Campaign {
        id: 0,
        key: CampaignKey(String::new()),
        name: "c".into(),
        default_number: callopt_domain::E164::parse("n", "+14155550100", None).unwrap(),
        swap_numbers: vec![],
        trigger: callopt_domain::Trigger::Always,
        assignment: callopt_domain::AssignmentMode::PerVisitor,
        idle_timeout_secs: 1800,
        domains: vec![],
        source_rules: vec![],
        pool_id: None,
        routing_plan_id: None,
    };
    let c = store
        .create_campaign(account, &campaign, &format!("cmp_{seed}"), 0)
        .await
        .unwrap();
    (account, c.campaign.id)
}

fn session(account: AccountId, campaign: i64, id: &str) -> SessionWrite {
    SessionWrite::Insert(Box::new(SessionRecord {
        id: id.into(),
        account,
        campaign_id: campaign,
        visitor: "v".into(),
        number_id: None,
        number_e164: "+14155550101".into(),
        attributed: true,
        attribution: Attribution::parse("https://example.com/?utm_source=x", None).unwrap(),
        country: None,
        language: None,
        user_agent: None,
        first_seen: 1_000,
        last_seen: 1_000,
        lease_expires_at: 10_000,
    }))
}

fn call(account: AccountId, id: i64, attempts: u32, outcome: CallOutcome) -> CallRecord {
    CallRecord {
        id,
        account,
        campaign_id: None,
        routing_plan_id: None,
        tracking_number: "+14155550101".into(),
        caller: "+14155550999".into(),
        session_id: None,
        channel: "sip".into(),
        external_id: format!("x{id}").into(),
        outcome,
        reason: None,
        hung_up_by: (outcome != CallOutcome::InProgress).then_some(HungUpBy::Caller),
        started_at: id * 1000,
        answered_at: None,
        ended_at: (outcome != CallOutcome::InProgress).then_some(id * 1000 + 500),
        attempts: (1..=attempts)
            .map(|seq| AttemptRecord {
                seq,
                target_id: Some(1),
                destination: "sip:a@127.0.0.1".into(),
                outcome: (outcome != CallOutcome::InProgress).then_some(AttemptOutcome::Busy),
                sip_status: None,
                started_at: id * 1000,
                answered_at: None,
                ended_at: None,
            })
            .collect(),
    }
}

fn hook(events: &[EventType]) -> Webhook {
    Webhook {
        url: "https://hooks.example.com/in".into(),
        events: events.to_vec(),
        enabled: true,
    }
}

async fn all_deliveries(store: &Arc<dyn Store>, a: AccountId, w: i64) -> Vec<DeliveryRecord> {
    let p = PageRequest {
        after: None,
        limit: 500,
    };
    store.deliveries(a, w, p).await.unwrap().items
}

/// The event ids of some deliveries, sorted.
fn event_ids(d: Vec<DeliveryRecord>) -> Vec<String> {
    let mut v: Vec<String> = d.into_iter().map(|d| d.event_id).collect();
    v.sort();
    v
}

#[tokio::test]
async fn state_changes_write_one_delivery_per_event_and_subscribed_webhook() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, campaign) = account(&store, 1).await;
    let (b, other_campaign) = account(&store, 2).await;
    let secret = Secret("whsec_x".into());
    let every = store
        .create_webhook(a, &hook(&EventType::ALL), &secret, 0)
        .await
        .unwrap();
    let finished_only = store
        .create_webhook(a, &hook(&[EventType::CallFinished]), &secret, 0)
        .await
        .unwrap();
    let of_b = store
        .create_webhook(b, &hook(&EventType::ALL), &secret, 0)
        .await
        .unwrap();

    store
        .write_sessions(&[session(a, campaign, "ses_1")])
        .await
        .unwrap();
    // Started with one attempt; then a second attempt; then finished; then the same final
    // record again (a repeated write is not a second event).
    store
        .write_calls(&[call(a, 7, 1, CallOutcome::InProgress)])
        .await
        .unwrap();
    store
        .write_calls(&[call(a, 7, 2, CallOutcome::InProgress)])
        .await
        .unwrap();
    store
        .write_calls(&[call(a, 7, 2, CallOutcome::Busy)])
        .await
        .unwrap();
    store
        .write_calls(&[call(a, 7, 2, CallOutcome::Busy)])
        .await
        .unwrap();
    // A call refused at once is started and finished by its first record.
    store
        .write_calls(&[call(a, 8, 0, CallOutcome::Rejected)])
        .await
        .unwrap();

    let mut types: Vec<(String, String)> = all_deliveries(&store, a, every.id)
        .await
        .into_iter()
        .map(|d| (d.event_type, d.event_id))
        .collect();
    types.sort();
    let want: Vec<(String, String)> = [
        ("call.finished", "evt_call_7_finished"),
        ("call.finished", "evt_call_8_finished"),
        ("call.routed", "evt_call_7_routed_1"),
        ("call.routed", "evt_call_7_routed_2"),
        ("call.started", "evt_call_7_started"),
        ("call.started", "evt_call_8_started"),
        ("session.created", "evt_ses_1"),
    ]
    .iter()
    .map(|(t, i)| (t.to_string(), i.to_string()))
    .collect();
    assert_eq!(types, want);
    assert_eq!(all_deliveries(&store, a, finished_only.id).await.len(), 2);
    assert!(all_deliveries(&store, b, of_b.id).await.is_empty());
    // Another account cannot list them.
    assert!(matches!(
        store
            .deliveries(
                b,
                every.id,
                PageRequest {
                    after: None,
                    limit: 5
                }
            )
            .await,
        Err(StoreError::NotFound)
    ));
    // The same in b's account reaches only b's webhook.
    store
        .write_sessions(&[session(b, other_campaign, "ses_2")])
        .await
        .unwrap();
    assert_eq!(all_deliveries(&store, b, of_b.id).await.len(), 1);
    assert_eq!(all_deliveries(&store, a, every.id).await.len(), 7);
}

#[tokio::test]
async fn a_claimed_delivery_waits_out_its_lease_and_retries_until_it_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, campaign) = account(&store, 1).await;
    let w = store
        .create_webhook(
            a,
            &hook(&[EventType::SessionCreated]),
            &Secret("s".into()),
            0,
        )
        .await
        .unwrap();
    store
        .write_sessions(&[session(a, campaign, "ses_1")])
        .await
        .unwrap();
    let due = store.claim_deliveries(5_000, 60_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].secret.0, "s");
    let data: serde_json::Value = serde_json::from_str(&due[0].data).unwrap();
    assert_eq!(data["session_id"], "ses_1", "{data}");
    // Leased: not due again before the lease ends.
    assert!(store
        .claim_deliveries(6_000, 60_000, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .claim_deliveries(60_000, 90_000, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let retry = DeliveryResult::Retry {
        status: Some(500),
        error: "the receiver answered 500".into(),
        next_attempt_at: 100_000,
    };
    store
        .finish_delivery(a, due[0].id, &retry, 61_000)
        .await
        .unwrap();
    let d = &all_deliveries(&store, a, w.id).await[0];
    assert_eq!(
        (d.status, d.attempts, d.last_status),
        (DeliveryStatus::Pending, 1, Some(500))
    );
    assert_eq!(d.next_attempt_at, Some(100_000));
    assert!(store
        .claim_deliveries(99_999, 200_000, 10)
        .await
        .unwrap()
        .is_empty());
    let again = store.claim_deliveries(100_000, 200_000, 10).await.unwrap();
    assert_eq!(again[0].attempts, 1);
    let ok = DeliveryResult::Delivered { status: 204 };
    store
        .finish_delivery(a, again[0].id, &ok, 101_000)
        .await
        .unwrap();
    let d = &all_deliveries(&store, a, w.id).await[0];
    assert_eq!(
        (d.status, d.attempts, d.delivered_at),
        (DeliveryStatus::Delivered, 2, Some(101_000))
    );
    assert!(store
        .claim_deliveries(900_000, 990_000, 10)
        .await
        .unwrap()
        .is_empty());
    // A disabled webhook's deliveries wait; deleting it removes them.
    store
        .write_sessions(&[session(a, campaign, "ses_2")])
        .await
        .unwrap();
    let mut off = w.webhook.clone();
    off.enabled = false;
    store.update_webhook(a, w.id, &off, 1).await.unwrap();
    assert!(store
        .claim_deliveries(900_000, 990_000, 10)
        .await
        .unwrap()
        .is_empty());
    store.delete_webhook(a, w.id).await.unwrap();
    assert!(matches!(
        store.webhook(a, w.id).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn conversions_land_on_the_latest_call_of_the_caller_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, _) = account(&store, 1).await;
    let (b, _) = account(&store, 2).await;
    store
        .write_calls(&[
            call(a, 10, 1, CallOutcome::Busy),
            call(a, 20, 1, CallOutcome::Busy),
            call(b, 30, 1, CallOutcome::Busy),
        ])
        .await
        .unwrap();
    let c = Conversion {
        value: 12.5,
        currency: "EUR".into(),
        at: 99,
    };
    // Latest at or before 25 s: call 20, not b's call 30.
    let id = store
        .convert_latest_call(a, "+14155550999", 0, 25_000, &c)
        .await
        .unwrap();
    assert_eq!(id, 20);
    assert!(matches!(
        store
            .convert_latest_call(a, "+14155550999", 0, 5_000, &c)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.convert_call(b, 10, &c).await,
        Err(StoreError::NotFound)
    ));
    store.convert_call(a, 10, &c).await.unwrap();
    let got = store.conversions(a, &[10, 20, 30]).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, conv)| conv == &c));
    // A later record of the call keeps its conversion.
    store
        .write_calls(&[call(a, 20, 2, CallOutcome::Busy)])
        .await
        .unwrap();
    assert_eq!(store.conversions(a, &[20]).await.unwrap().len(), 1);
}

#[tokio::test]
async fn session_created_follows_each_change_of_the_accounts_webhooks_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, campaign) = account(&store, 1).await;
    let secret = Secret("whsec_x".into());
    // A session before any webhook: no event, and none later for it.
    store
        .write_sessions(&[session(a, campaign, "ses_0")])
        .await
        .unwrap();
    let w = store
        .create_webhook(a, &hook(&[EventType::SessionCreated]), &secret, 0)
        .await
        .unwrap();
    store
        .write_sessions(&[session(a, campaign, "ses_1")])
        .await
        .unwrap();
    let mut off = hook(&[EventType::SessionCreated]);
    off.enabled = false;
    store.update_webhook(a, w.id, &off, 1).await.unwrap();
    store
        .write_sessions(&[session(a, campaign, "ses_2")])
        .await
        .unwrap();
    store
        .update_webhook(a, w.id, &hook(&[EventType::SessionCreated]), 2)
        .await
        .unwrap();
    store
        .write_sessions(&[session(a, campaign, "ses_3")])
        .await
        .unwrap();
    assert_eq!(
        event_ids(all_deliveries(&store, a, w.id).await),
        ["evt_ses_1", "evt_ses_3"]
    );

    // A reopened store (a restart) knows the webhook from the database.
    drop(store);
    let store = open(&dir).await;
    store
        .write_sessions(&[session(a, campaign, "ses_4"), session(a, campaign, "ses_5")])
        .await
        .unwrap();
    assert_eq!(
        event_ids(all_deliveries(&store, a, w.id).await),
        ["evt_ses_1", "evt_ses_3", "evt_ses_4", "evt_ses_5"]
    );
}

#[tokio::test]
async fn call_events_follow_each_change_of_the_accounts_webhooks_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, _) = account(&store, 1).await;
    let (b, _) = account(&store, 2).await;
    let secret = Secret("whsec_x".into());
    // Call 1 starts before any webhook: no event for its start, ever.
    store
        .write_calls(&[call(a, 1, 1, CallOutcome::InProgress)])
        .await
        .unwrap();
    let w = store
        .create_webhook(a, &hook(&EventType::ALL), &secret, 0)
        .await
        .unwrap();
    // Its second attempt and its end come after: those are events. Call 2 starts and ends
    // within one batch, beside a call of an account with no webhook.
    store
        .write_calls(&[
            call(a, 1, 2, CallOutcome::InProgress),
            call(a, 2, 1, CallOutcome::InProgress),
            call(b, 3, 1, CallOutcome::InProgress),
            call(a, 1, 2, CallOutcome::Busy),
            call(a, 2, 1, CallOutcome::Busy),
        ])
        .await
        .unwrap();
    assert_eq!(
        event_ids(all_deliveries(&store, a, w.id).await),
        [
            "evt_call_1_finished",
            "evt_call_1_routed_2",
            "evt_call_2_finished",
            "evt_call_2_routed_1",
            "evt_call_2_started",
        ]
    );
    // Disabled, then a reopened store (a restart) with the webhook enabled again.
    let mut off = hook(&EventType::ALL);
    off.enabled = false;
    store.update_webhook(a, w.id, &off, 1).await.unwrap();
    store
        .write_calls(&[call(a, 4, 1, CallOutcome::Busy)])
        .await
        .unwrap();
    store
        .update_webhook(a, w.id, &hook(&EventType::ALL), 2)
        .await
        .unwrap();
    drop(store);
    let store = open(&dir).await;
    // Call 4 written again, finished already: no event. Call 5 is new.
    store
        .write_calls(&[
            call(a, 4, 1, CallOutcome::Busy),
            call(a, 5, 1, CallOutcome::Rejected),
        ])
        .await
        .unwrap();
    let got = event_ids(all_deliveries(&store, a, w.id).await);
    assert_eq!(got.len(), 8, "{got:?}");
    assert!(got.iter().all(|e| !e.starts_with("evt_call_4")), "{got:?}");
    for e in [
        "evt_call_5_started",
        "evt_call_5_routed_1",
        "evt_call_5_finished",
    ] {
        assert!(got.iter().any(|g| g == e), "{e} missing from {got:?}");
    }
}

fn session_on(account: AccountId, campaign: i64, id: &str, url: &str) -> SessionWrite {
    let SessionWrite::Insert(mut s) = session(account, campaign, id) else {
        unreachable!()
    };
    s.attribution = Attribution::parse(url, None).unwrap();
    SessionWrite::Insert(s)
}

#[tokio::test]
async fn each_campaign_and_page_url_is_queued_for_a_scan_once_across_batches_and_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, c1) = account(&store, 1).await;
    let (b, c2) = account(&store, 2).await;
    let page = "https://example.com/lp?n=1";
    store
        .write_sessions(&[
            session_on(a, c1, "ses_1", page),
            session_on(a, c1, "ses_2", page),
            session_on(a, c1, "ses_3", "https://example.com/other"),
            session_on(b, c2, "ses_4", page),
        ])
        .await
        .unwrap();
    store
        .write_sessions(&[session_on(a, c1, "ses_5", page)])
        .await
        .unwrap();
    drop(store);
    let store = open(&dir).await;
    store
        .write_sessions(&[
            session_on(a, c1, "ses_6", page),
            session_on(a, c1, "ses_7", "https://example.com/lp?n=2"),
        ])
        .await
        .unwrap();
    let urls = |p: Page<ScanRecord>| -> Vec<(Option<i64>, String, String)> {
        let mut v: Vec<_> = p
            .items
            .into_iter()
            .map(|s| (s.campaign_id, s.url, s.source))
            .collect();
        v.sort();
        v
    };
    let all = PageRequest {
        after: None,
        limit: 100,
    };
    let dni = |c: i64, u: &str| (Some(c), u.to_string(), "dni".to_string());
    assert_eq!(
        urls(store.scans(a, all).await.unwrap()),
        [
            dni(c1, "https://example.com/lp?n=1"),
            dni(c1, "https://example.com/lp?n=2"),
            dni(c1, "https://example.com/other"),
        ]
    );
    assert_eq!(urls(store.scans(b, all).await.unwrap()), [dni(c2, page)]);
}

fn call_on(account: AccountId, id: i64, session: &str) -> CallRecord {
    let mut c = call(account, id, 1, CallOutcome::Busy);
    c.session_id = Some(session.into());
    c
}

#[tokio::test]
async fn calls_on_numbers_shown_on_a_scam_page_are_flagged_whatever_click_id_the_visit_had() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, c) = account(&store, 1).await;
    let page = "https://example.com/lp?ph=18005550199";
    store
        .write_sessions(&[
            session_on(a, c, "ses_1", &format!("{page}&gclid=one")),
            session_on(a, c, "ses_2", &format!("{page}&gclid=two#top")),
            session_on(a, c, "ses_3", "https://example.com/lp?ph=18005550100"),
            session_on(a, c, "ses_4", "https://example.com/lp?ph=18005550199999"),
        ])
        .await
        .unwrap();
    // One page to scan, known without its click ids.
    let all = PageRequest {
        after: None,
        limit: 10,
    };
    let scans: Vec<String> = store
        .scans(a, all)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.url)
        .collect();
    assert_eq!(
        scans,
        [
            page.to_string(),
            "https://example.com/lp?ph=18005550100".into(),
            "https://example.com/lp?ph=18005550199999".into()
        ]
    );
    // A call before the verdict, flagged when the campaign is quarantined; one after it,
    // flagged as it is recorded; calls on the other pages' numbers are not.
    store
        .write_calls(&[call_on(a, 1, "ses_1"), call_on(a, 3, "ses_3")])
        .await
        .unwrap();
    let claimed = store.claim_scans(2_000, 60_000, 10, 100).await.unwrap();
    let scam = claimed.iter().find(|s| s.url == page).unwrap().id;
    let verdict = ScanVerdict {
        verdict: "scam".into(),
        score: 12.0,
        rule: "test".into(),
        findings: "[]".into(),
    };
    store.finish_scan(scam, &verdict, 3_000).await.unwrap();
    store
        .quarantine_campaign(a, c, Some(scam), "scam_page", 3_000)
        .await
        .unwrap()
        .unwrap();
    store
        .write_calls(&[call_on(a, 2, "ses_2"), call_on(a, 4, "ses_4")])
        .await
        .unwrap();
    let mut flags = Vec::new();
    for id in 1..=4 {
        flags.push(store.call_flag(a, id).await.unwrap());
    }
    let flagged = Some("scam_page".to_string());
    assert_eq!(flags, [flagged.clone(), flagged, None, None]);
}

#[tokio::test]
async fn campaigns_take_turns_at_the_scanner_within_a_daily_budget() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, flood) = account(&store, 1).await;
    let (b, quiet) = account(&store, 2).await;
    let mut sessions: Vec<SessionWrite> = (0..6)
        .map(|i| {
            session_on(
                a,
                flood,
                &format!("ses_a{i}"),
                &format!("https://a.example/p{i}"),
            )
        })
        .collect();
    sessions.push(session_on(b, quiet, "ses_b0", "https://b.example/only"));
    store.write_sessions(&sessions).await.unwrap();

    // Turns: the quiet campaign's one page is claimed with the flood's first, not after it.
    let first = store.claim_scans(2_000, 60_000, 2, 3).await.unwrap();
    let mut campaigns: Vec<_> = first.iter().map(|s| s.campaign_id).collect();
    campaigns.sort();
    assert_eq!(campaigns, [Some(flood), Some(quiet)]);
    let verdict = ScanVerdict {
        verdict: "clean".into(),
        score: 0.0,
        rule: "test".into(),
        findings: "[]".into(),
    };
    for s in &first {
        store.finish_scan(s.id, &verdict, 3_000).await.unwrap();
    }
    // Budget 3 a day: the flood gets two more (one ran), then waits a day.
    let more = store.claim_scans(4_000, 60_000, 10, 3).await.unwrap();
    assert_eq!(more.len(), 2, "{more:?}");
    assert!(more.iter().all(|s| s.campaign_id == Some(flood)));
    for s in &more {
        store.finish_scan(s.id, &verdict, 5_000).await.unwrap();
    }
    assert!(store
        .claim_scans(6_000, 60_000, 10, 3)
        .await
        .unwrap()
        .is_empty());
    let next_day = 5_000 + 86_400_000 + 1;
    let later = store
        .claim_scans(next_day, next_day + 60_000, 10, 3)
        .await
        .unwrap();
    assert_eq!(later.len(), 3, "{later:?}");
}

#[tokio::test]
async fn a_full_scan_backlog_queues_no_more_pages_until_it_drains() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, c) = account(&store, 1).await;
    let max = callopt_store::MAX_QUEUED_SCANS_PER_CAMPAIGN;
    let sessions: Vec<SessionWrite> = (0..max)
        .map(|i| {
            session_on(
                a,
                c,
                &format!("ses_{i}"),
                &format!("https://a.example/p{i}"),
            )
        })
        .collect();
    store.write_sessions(&sessions).await.unwrap();
    let over = "https://a.example/one-too-many";
    store
        .write_sessions(&[session_on(a, c, "ses_over", over)])
        .await
        .unwrap();
    let queued = |store: Arc<dyn Store>| async move {
        let mut urls = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .scans(a, PageRequest { after, limit: 500 })
                .await
                .unwrap();
            urls.extend(page.items.iter().map(|s| s.url.clone()));
            match page.next_after {
                Some(n) => after = Some(n),
                None => break urls,
            }
        }
    };
    let urls = queued(store.clone()).await;
    assert_eq!(urls.len() as i64, max);
    assert!(!urls.iter().any(|u| u == over));
    // Once scans drain the backlog, the next visit to the page queues it.
    store.claim_scans(2_000, 60_000, 10, 100).await.unwrap();
    store
        .write_sessions(&[session_on(a, c, "ses_over_again", over)])
        .await
        .unwrap();
    assert!(queued(store.clone()).await.iter().any(|u| u == over));
}

/// Two stores on one database, as two nodes are, each claiming from two tasks at once.
async fn claimed_by_two_nodes<F, Fut>(url: &str, claim: F) -> Vec<i64>
where
    F: Fn(Arc<dyn Store>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Vec<i64>> + Send,
{
    let nodes = [
        callopt_store::open(url).await.unwrap(),
        callopt_store::open(url).await.unwrap(),
    ];
    let mut claimers = tokio::task::JoinSet::new();
    for store in nodes.iter().chain(nodes.iter()) {
        let (claim, store) = (claim.clone(), store.clone());
        claimers.spawn(async move {
            let mut got = Vec::new();
            loop {
                let ids = claim(store.clone()).await;
                if ids.is_empty() {
                    return got;
                }
                got.extend(ids);
            }
        });
    }
    let mut all = Vec::new();
    while let Some(got) = claimers.join_next().await {
        all.extend(got.unwrap());
    }
    all.sort_unstable();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_claiming_at_once_never_take_the_same_delivery_or_scan() {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::scratch_database(dir.path());
    let store = callopt_store::open(&url).await.unwrap();
    let (a, campaign) = account(&store, 1).await;
    store
        .create_webhook(
            a,
            &hook(&[EventType::SessionCreated]),
            &Secret("s".into()),
            0,
        )
        .await
        .unwrap();
    let sessions: Vec<SessionWrite> = (0..120)
        .map(|i| {
            let url = format!("https://example.com/p{i}");
            session_on(a, campaign, &format!("ses_{i}"), &url)
        })
        .collect();
    store.write_sessions(&sessions).await.unwrap();

    let deliveries = claimed_by_two_nodes(&url, |s: Arc<dyn Store>| async move {
        let due = s.claim_deliveries(5_000, 60_000, 7).await.unwrap();
        due.into_iter().map(|d| d.id).collect()
    })
    .await;
    assert_eq!(deliveries.len(), 120, "every delivery claimed");
    assert!(
        deliveries.windows(2).all(|w| w[0] != w[1]),
        "a delivery claimed twice: {deliveries:?}"
    );

    let scans = claimed_by_two_nodes(&url, |s: Arc<dyn Store>| async move {
        let due = s.claim_scans(5_000, 60_000, 7, 1_000).await.unwrap();
        due.into_iter().map(|d| d.id).collect()
    })
    .await;
    assert_eq!(scans.len(), 120, "every page scan claimed");
    assert!(
        scans.windows(2).all(|w| w[0] != w[1]),
        "a scan claimed twice: {scans:?}"
    );
}

//! The store on a real database (a SQLite file, or PostgreSQL when the tests are told to):
//! account scoping, group commit, restart.

use callopt_domain::{AccountId, ApiKey, Attribution, Campaign, CampaignKey, TrackingNumber};
use callopt_store::*;
use std::sync::Arc;

async fn open(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = testing::scratch_database(dir.path());
    callopt_store::open(&url).await.unwrap()
}

async fn account_with_campaign(store: &Arc<dyn Store>, name: &str) -> (AccountId, i64) {
    let account = store
        .create_account(name, &ApiKey::from_random(rand_bytes(name)).hash(), 0)
        .await
        .unwrap();
    let campaign = Campaign {
        id: 0,
        key: CampaignKey(String::new()),
        name: name.into(),
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
    let key = format!("cmp_{name}");
    let c = store
        .create_campaign(account, &campaign, &key, 0)
        .await
        .unwrap();
    (account, c.campaign.id)
}

fn rand_bytes(seed: &str) -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, c) in seed.bytes().enumerate() {
        b[i % 32] ^= c;
    }
    b
}

fn session(account: AccountId, campaign: i64, i: usize) -> SessionWrite {
    SessionWrite::Insert(Box::new(SessionRecord {
        id: format!("ses_{campaign}_{i}"),
        account,
        campaign_id: campaign,
        visitor: format!("visitor-{i:05}"),
        number_id: Some(i as i64),
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

#[tokio::test]
async fn concurrent_writes_are_all_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (account, campaign) = account_with_campaign(&store, "a").await;
    let writer = SessionWriter::spawn(store.clone());
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let w = writer.clone();
            tokio::spawn(async move { w.write(session(account, campaign, i)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.live_sessions(5_000).await.unwrap().len(), 500);
    assert_eq!(
        store.live_sessions(10_000).await.unwrap().len(),
        0,
        "expired leases are not live"
    );
    let s = store
        .session(account, &format!("ses_{campaign}_7"))
        .await
        .unwrap();
    assert_eq!(s.attribution.utm_source.as_deref(), Some("x"));
}

#[tokio::test]
async fn a_bad_write_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (account, campaign) = account_with_campaign(&store, "a").await;
    let writer = SessionWriter::spawn(store.clone());
    // Session 3 names a campaign that does not exist: the foreign key refuses it.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let w = writer.clone();
            let c = if i == 3 { 999_999 } else { campaign };
            tokio::spawn(async move { w.write(session(account, c, i)).await })
        })
        .collect();
    let outcomes: Vec<bool> = futures_ok(tasks).await;
    assert_eq!(outcomes.iter().filter(|ok| !**ok).count(), 1);
    assert!(!outcomes[3]);
    assert_eq!(store.live_sessions(5_000).await.unwrap().len(), 7);
}

#[tokio::test]
async fn renewals_in_one_batch_keep_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (account, campaign) = account_with_campaign(&store, "a").await;
    let renew = |i: usize, seen: i64| SessionWrite::Renew {
        id: format!("ses_{campaign}_{i}"),
        last_seen: seen,
        lease_expires_at: seen + 50_000,
    };
    // Inserts and renewals of the same sessions in one batch: the inserts land first, and of
    // two renewals of one session the later one wins.
    let mut batch: Vec<SessionWrite> = (0..3).map(|i| session(account, campaign, i)).collect();
    batch.extend([renew(0, 2_000), renew(1, 3_000), renew(0, 4_000)]);
    store.write_sessions(&batch).await.unwrap();
    let s0 = store
        .session(account, &format!("ses_{campaign}_0"))
        .await
        .unwrap();
    assert_eq!((s0.last_seen, s0.lease_expires_at), (4_000, 54_000));
    let s2 = store
        .session(account, &format!("ses_{campaign}_2"))
        .await
        .unwrap();
    assert_eq!((s2.last_seen, s2.lease_expires_at), (1_000, 10_000));

    // A queued renewal is committed without anyone waiting for it; a waited write queued
    // after it commits in the same or a later batch, so once it returns the renewal is in.
    let writer = SessionWriter::spawn(store.clone());
    writer.queue(renew(2, 9_000)).await.unwrap();
    writer.write(session(account, campaign, 3)).await.unwrap();
    let s2 = store
        .session(account, &format!("ses_{campaign}_2"))
        .await
        .unwrap();
    assert_eq!(s2.lease_expires_at, 59_000);
}

async fn futures_ok(
    tasks: Vec<tokio::task::JoinHandle<Result<(), writer::WriteFailed>>>,
) -> Vec<bool> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().is_ok());
    }
    out
}

#[tokio::test]
async fn objects_are_scoped_to_their_account() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let (a, campaign) = account_with_campaign(&store, "a").await;
    let (b, _) = account_with_campaign(&store, "b").await;
    assert!(matches!(
        store.campaign(b, campaign).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_campaign(b, campaign).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.campaign(a, campaign).await.is_ok());
    let pool = store.create_pool(a, "p", 0).await.unwrap();
    let number = TrackingNumber::parse("+14155550101", None, &[], None).unwrap();
    let refused = store
        .insert_numbers(
            b,
            &[NewNumber {
                number: number.clone(),
                pool_id: Some(pool.id),
            }],
            0,
        )
        .await;
    assert!(matches!(refused, Err(StoreError::BadReference(_))));
    let added = store
        .insert_numbers(
            a,
            &[NewNumber {
                number: number.clone(),
                pool_id: Some(pool.id),
            }],
            0,
        )
        .await
        .unwrap();
    assert!(added[0].is_ok());
    // The same number cannot belong to a second account.
    let again = store
        .insert_numbers(
            b,
            &[NewNumber {
                number,
                pool_id: None,
            }],
            0,
        )
        .await
        .unwrap();
    assert!(matches!(again[0], Err(StoreError::Conflict(_))));
}

#[tokio::test]
async fn data_survives_reopening_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::scratch_database(dir.path());
    let (account, campaign) = {
        let store = callopt_store::open(&url).await.unwrap();
        let ids = account_with_campaign(&store, "a").await;
        store
            .write_sessions(&[session(ids.0, ids.1, 1)])
            .await
            .unwrap();
        ids
    };
    let store = callopt_store::open(&url).await.unwrap();
    assert_eq!(
        store
            .campaign(account, campaign)
            .await
            .unwrap()
            .campaign
            .name,
        "a"
    );
    assert_eq!(store.live_sessions(0).await.unwrap().len(), 1);
}

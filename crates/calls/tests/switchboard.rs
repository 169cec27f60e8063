//! The switchboard over a real SQLite file: a call routed, answered and, when its hang-up never
//! arrives, ended by the expiry so that it does not hold its target's concurrency slot.

use callopt_calls::{Next, Switchboard};
use callopt_domain::{
    AccountId, ApiKey, AssignmentMode, CallOutcome, Campaign, CampaignKey, Caps, Destination,
    DuplicateAction, DuplicateCaller, Filters, HungUpBy, NoTargetAnswer, Reroute, RoutingPlan,
    Strategy, Target, TrackingNumber, Trigger, E164,
};
use callopt_store::{CallFilter, CallRecord, NewNumber, PageRequest, Store};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn routed_campaign(store: &Arc<dyn Store>) -> (AccountId, i64) {
    let account = store
        .create_account("a", &ApiKey::from_random([7; 32]).hash(), 0)
        .await
        .unwrap();
    let target = Target {
        id: 0,
        name: "t".into(),
        destination: Destination::parse("d", "sip:agent@127.0.0.1:5070").unwrap(),
        languages: vec![],
        regions: vec![],
        hours: None,
        caps: Caps {
            concurrent: Some(1),
            ..Caps::default()
        },
        priority: 1,
        weight: 1,
        ring_timeout_secs: None,
        enabled: true,
    };
    let target = store.create_target(account, &target, 0).await.unwrap();
    let plan = RoutingPlan {
        id: 0,
        name: "p".into(),
        targets: vec![target.target.id],
        strategy: Strategy::Weighted,
        filters: Filters::default(),
        duplicate_caller: None,
        ring_timeout_secs: 30,
        reroute: Reroute::default(),
        max_attempts: 3,
        overflow_target: None,
        no_target: NoTargetAnswer::default(),
    };
    let plan = store.create_plan(account, &plan, 0).await.unwrap();
    number_and_campaign(store, account, plan.plan.id).await;
    (account, target.target.id)
}

/// The tracking number +12015550100 in a pool of a campaign routed by `plan`.
async fn number_and_campaign(store: &Arc<dyn Store>, account: AccountId, plan: i64) {
    let pool = store.create_pool(account, "p", 0).await.unwrap();
    let number = TrackingNumber::parse("+12015550100", None, &[], None).unwrap();
    let added = store
        .insert_numbers(
            account,
            &[NewNumber {
                number,
                pool_id: Some(pool.id),
            }],
            0,
        )
        .await
        .unwrap();
    assert!(added[0].is_ok());
    let campaign = Campaign {
        id: 0,
        key: CampaignKey(String::new()),
        name: "c".into(),
        default_number: E164::parse("n", "+12015550199", None).unwrap(),
        swap_numbers: vec![],
        trigger: Trigger::Always,
        assignment: AssignmentMode::PerVisitor,
        idle_timeout_secs: 1800,
        domains: vec![],
        source_rules: vec![],
        pool_id: Some(pool.id),
        routing_plan_id: Some(plan),
    };
    store
        .create_campaign(account, &campaign, "cmp_c", 0)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_call_whose_hang_up_never_comes_is_ended_and_frees_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let url = callopt_store::testing::scratch_database(dir.path());
    let store = callopt_store::open(&url).await.unwrap();
    let (account, target) = routed_campaign(&store).await;
    let board = Switchboard::start(store.clone()).await.unwrap();

    let (key, next) = board.start_call("sip", "call-1", "12015550100", "+14155552671");
    let key = key.expect("a call record");
    assert!(
        matches!(next, Next::Target { target: t, .. } if t == target),
        "{next:?}"
    );
    assert_eq!(board.current_target(key), Some(target), "ringing");
    board.answered(key, target, 200);
    assert_eq!(board.current_target(key), Some(target), "answered");
    assert_eq!(
        board.call_state(key).and_then(|s| s.target),
        board.current_target(key)
    );
    assert_eq!(board.live_calls(target), 1);
    // The target's one slot is taken: a second call finds nothing eligible.
    let (_, second) = board.start_call("sip", "call-2", "12015550100", "+14155552672");
    assert!(
        matches!(second, Next::Reject { status: 480, .. }),
        "{second:?}"
    );

    // A cutoff before the call started leaves it alone; one after it ends it.
    assert_eq!(board.expire_started_before(0), 0);
    assert_eq!(board.live_calls(target), 1);
    assert_eq!(board.expire_started_before(i64::MAX), 1);
    assert_eq!(board.live_calls(target), 0);
    assert_eq!(board.calls_in_progress(), 0);
    assert_eq!(board.current_target(key), None, "no longer in progress");

    // The record says so (the writer is asynchronous: poll, bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = store
            .calls(
                account,
                &CallFilter::default(),
                PageRequest {
                    after: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        let first = page.items.iter().find(|c| &*c.external_id == "call-1");
        if let Some(c) = first.filter(|c| c.ended_at.is_some()) {
            assert_eq!(c.outcome, CallOutcome::Answered);
            assert_eq!(c.hung_up_by, Some(HungUpBy::System));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no ended record: {:?}",
            page.items
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A switchboard over a fresh database with a routed campaign: the directory to keep, the
/// campaign's target and the board.
async fn routed_board() -> (tempfile::TempDir, i64, Arc<Switchboard>) {
    let dir = tempfile::tempdir().unwrap();
    let url = callopt_store::testing::scratch_database(dir.path());
    let store = callopt_store::open(&url).await.unwrap();
    let (_, target) = routed_campaign(&store).await;
    let board = Switchboard::start(store).await.unwrap();
    (dir, target, board)
}

#[tokio::test]
async fn a_reported_answer_is_never_before_its_attempt_began() {
    let (_dir, target, board) = routed_board().await;
    let t0 = 1_790_000_000_000;
    let mut watch = board.watch();

    // A carrier reports 42 s of talk when the attempt ends 60 s after it began: answered 18 s in.
    board.pin_clock(t0);
    let (key, _) = board.start_call("twilio", "CA1", "12015550100", "+14155552671");
    let key = key.unwrap();
    board.pin_clock(t0 + 60_000);
    board.answered_at(key, target, 200, t0 + 60_000 - 42_000);
    board.ended(key, HungUpBy::Caller, true);
    // Another reports more talk than the attempt has been up: the answer is when it began.
    board.pin_clock(t0 + 100_000);
    let (key2, _) = board.start_call("twilio", "CA2", "12015550100", "+14155552672");
    let key2 = key2.unwrap();
    board.pin_clock(t0 + 101_000);
    board.answered_at(key2, target, 200, t0 + 101_000 - 30_000);
    board.ended(key2, HungUpBy::Target, true);

    let mut ended = Vec::new();
    while ended.len() < 2 {
        let r = tokio::time::timeout(Duration::from_secs(5), watch.recv())
            .await
            .expect("the calls are published")
            .unwrap();
        if r.ended_at.is_some() {
            ended.push(r);
        }
    }
    let a = &ended[0].attempts[0];
    assert_eq!(a.answered_at, Some(t0 + 18_000));
    assert_eq!(a.ended_at.unwrap() - a.answered_at.unwrap(), 42_000);
    let b = &ended[1].attempts[0];
    assert_eq!(b.answered_at, Some(b.started_at), "{b:?}");
    assert_eq!(ended[1].answered_at, Some(b.started_at));
    // The carrier's 30 s of talk are kept.
    assert_eq!(
        b.ended_at.unwrap() - b.answered_at.unwrap(),
        30_000,
        "{b:?}"
    );
    assert_eq!(ended[1].ended_at, b.ended_at);

    // The live view's latest finished calls hold each call once, newest first.
    let recent = board.recent(ended[0].account, 10);
    let ids: Vec<i64> = recent.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![key2 as i64, key as i64]);
}

/// The next call the board publishes as ended.
async fn next_ended(watch: &mut tokio::sync::broadcast::Receiver<CallRecord>) -> CallRecord {
    loop {
        let r = tokio::time::timeout(Duration::from_secs(5), watch.recv())
            .await
            .expect("the call is published")
            .unwrap();
        if r.ended_at.is_some() {
            return r;
        }
    }
}

#[tokio::test]
async fn a_carriers_talk_time_is_kept_to_the_millisecond_when_the_clock_moves_on() {
    let (_dir, target, board) = routed_board().await;
    let t0 = 1_790_000_000_000;
    let mut watch = board.watch();
    // Up here for 20 ms, 42 s of talk reported; the clock ticks between the answer and the
    // end being recorded, as it may between two requests' reads of it.
    board.pin_clock(t0);
    let (key, _) = board.start_call("twilio", "CA3", "12015550100", "+14155552673");
    board.pin_clock(t0 + 20);
    board.answered_for(key.unwrap(), target, 200, 42_000);
    board.pin_clock(t0 + 21);
    board.ended(key.unwrap(), HungUpBy::Caller, true);
    let ended = next_ended(&mut watch).await;
    let a = &ended.attempts[0];
    assert_eq!(a.answered_at, Some(a.started_at));
    assert_eq!(
        a.ended_at.unwrap() - a.answered_at.unwrap(),
        42_000,
        "{a:?}"
    );
    // Answered 10 s ago with 10 s of talk: the end is the answer plus the talk, not the later
    // clock either.
    board.pin_clock(t0 + 100_000);
    let (key, _) = board.start_call("twilio", "CA4", "12015550100", "+14155552674");
    board.pin_clock(t0 + 160_000);
    board.answered_for(key.unwrap(), target, 200, 10_000);
    board.pin_clock(t0 + 160_001);
    board.ended(key.unwrap(), HungUpBy::Target, true);
    let a = next_ended(&mut watch).await.attempts[0].clone();
    assert_eq!(a.answered_at, Some(t0 + 150_000));
    assert_eq!(a.ended_at, Some(t0 + 160_000), "{a:?}");
}

#[tokio::test]
async fn an_attempt_awaiting_confirmation_is_recorded_only_once_confirmed() {
    let (_dir, target, board) = routed_board().await;
    let mut changes = board.watch();
    let (key, next) = board.start_call_with("sip", "c-1", "12015550100", "+14155552671", true);
    let key = key.expect("a call record");
    assert!(matches!(next, Next::Target { .. }), "{next:?}");
    // On record at once, without the attempt that may still be refused.
    assert!(changes.try_recv().unwrap().attempts.is_empty());
    assert!(
        changes.try_recv().is_err(),
        "nothing more before the confirmation"
    );
    assert_eq!(board.live_calls(target), 1, "reserved here meanwhile");
    assert!(board.confirm(key));
    assert_eq!(changes.try_recv().unwrap().attempts.len(), 1);
    board.ended(key, HungUpBy::Caller, false);
    assert_eq!(changes.try_recv().unwrap().attempts.len(), 1);
    assert_eq!(board.live_calls(target), 0);

    // A call's attempt is refused elsewhere: taken back unrecorded, and with no other target
    // the call is refused.
    let (other, _) = board.start_call_with("sip", "c-2", "12015550100", "+14155552672", true);
    let other = other.unwrap();
    changes.try_recv().unwrap();
    assert_eq!(board.live_calls(target), 1);
    assert!(matches!(board.withdraw(other, target), Next::Reject { .. }));
    assert_eq!(board.live_calls(target), 0);
    let refused = changes.try_recv().unwrap();
    assert!(refused.attempts.is_empty(), "{refused:?}");
    assert_eq!(refused.outcome, CallOutcome::Rejected);

    // A call that ends before its confirmation: its attempt goes unrecorded and its slot is
    // freed; a late refusal or confirmation changes nothing.
    let (third, _) = board.start_call_with("sip", "c-3", "12015550100", "+14155552673", true);
    let third = third.unwrap();
    changes.try_recv().unwrap();
    board.ended(third, HungUpBy::Caller, false);
    let ended = changes.try_recv().unwrap();
    assert!(ended.attempts.is_empty(), "{ended:?}");
    assert_eq!(ended.outcome, CallOutcome::Abandoned);
    assert_eq!(board.live_calls(target), 0);
    assert!(matches!(board.withdraw(third, target), Next::Reject { .. }));
    assert!(!board.confirm(third));
    assert!(changes.try_recv().is_err());
}

#[tokio::test]
async fn a_connected_call_left_by_a_dead_run_is_closed_and_stays_answered() {
    let dir = tempfile::tempdir().unwrap();
    let url = callopt_store::testing::scratch_database(dir.path());
    let store = callopt_store::open(&url).await.unwrap();
    let (account, target) = routed_campaign(&store).await;
    let board = Switchboard::start(store.clone()).await.unwrap();
    let (key, _) = board.start_call("sip", "call-1", "12015550100", "+14155552671");
    board.answered(key.expect("a call record"), target, 200);
    let page = PageRequest {
        after: None,
        limit: 10,
    };
    let filter = CallFilter::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = store.calls(account, &filter, page).await.unwrap();
        if calls.items.first().is_some_and(|c| c.answered_at.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "the answer was never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The process dies with the call connected; the node's next run closes it.
    drop(board);
    let _next = Switchboard::start(store.clone()).await.unwrap();
    let calls = store.calls(account, &filter, page).await.unwrap().items;
    assert_eq!(calls.len(), 1);
    assert!(calls[0].ended_at.is_some(), "{:?}", calls[0]);
    assert_eq!(calls[0].outcome, CallOutcome::Answered);
    assert_eq!(calls[0].hung_up_by, Some(HungUpBy::System));
    assert!(calls[0].attempts.iter().all(|a| a.ended_at.is_some()));
}

/// A plan with target `a` in the first tier (at most two connected calls a month) and `b`
/// behind it, rejecting a caller answered within the last day. Returns the two targets.
async fn capped_campaign_with_duplicate_rule(store: &Arc<dyn Store>) -> (AccountId, i64, i64) {
    let account = store
        .create_account("a", &ApiKey::from_random([8; 32]).hash(), 0)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (name, priority, monthly) in [("a", 1, Some(2)), ("b", 2, None)] {
        let target = Target {
            id: 0,
            name: name.into(),
            destination: Destination::parse("d", &format!("sip:{name}@127.0.0.1:5070")).unwrap(),
            languages: vec![],
            regions: vec![],
            hours: None,
            caps: Caps {
                monthly,
                ..Caps::default()
            },
            priority,
            weight: 1,
            ring_timeout_secs: None,
            enabled: true,
        };
        ids.push(
            store
                .create_target(account, &target, 0)
                .await
                .unwrap()
                .target
                .id,
        );
    }
    let plan = RoutingPlan {
        id: 0,
        name: "p".into(),
        targets: ids.clone(),
        strategy: Strategy::Weighted,
        filters: Filters::default(),
        duplicate_caller: Some(DuplicateCaller {
            window_hours: 24,
            action: DuplicateAction::Reject,
        }),
        ring_timeout_secs: 30,
        reroute: Reroute::default(),
        max_attempts: 3,
        overflow_target: None,
        no_target: NoTargetAnswer::default(),
    };
    let plan = store.create_plan(account, &plan, 0).await.unwrap();
    number_and_campaign(store, account, plan.plan.id).await;
    (account, ids[0], ids[1])
}

#[tokio::test]
async fn a_restart_keeps_the_caps_spent_and_the_callers_answered() {
    let dir = tempfile::tempdir().unwrap();
    let url = callopt_store::testing::scratch_database(dir.path());
    let store = callopt_store::open(&url).await.unwrap();
    let (account, a, b) = capped_campaign_with_duplicate_rule(&store).await;
    let board = Switchboard::start(store.clone()).await.unwrap();
    // Two callers answered by `a` spend its monthly cap.
    for (i, caller) in ["+14155552671", "+14155552672"].into_iter().enumerate() {
        let (key, next) = board.start_call("sip", &format!("call-{i}"), "12015550100", caller);
        assert!(
            matches!(next, Next::Target { target, .. } if target == a),
            "{next:?}"
        );
        let key = key.unwrap();
        board.answered(key, a, 200);
        board.ended(key, HungUpBy::Caller, true);
    }
    let filter = CallFilter::default();
    let page = PageRequest {
        after: None,
        limit: 10,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let calls = store.calls(account, &filter, page).await.unwrap().items;
        if calls.len() == 2 && calls.iter().all(|c| c.ended_at.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "the calls were never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(board);

    // The next run knows both from the record: a new caller goes past the spent `a` to `b`,
    // and a caller answered before it (written another way) is refused as a duplicate.
    let board = Switchboard::start(store.clone()).await.unwrap();
    let (_, next) = board.start_call("sip", "call-3", "12015550100", "+14155552673");
    assert!(
        matches!(next, Next::Target { target, .. } if target == b),
        "the monthly cap of `a` was spent before the restart: {next:?}"
    );
    let (_, again) = board.start_call("sip", "call-4", "12015550100", "+1 415 555 2671");
    assert!(
        matches!(again, Next::Reject { .. }),
        "the caller was answered before the restart: {again:?}"
    );
}

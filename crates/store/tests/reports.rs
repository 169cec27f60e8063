//! Reports on a real database: the rollups give what a pass over the calls gives, for every
//! grouping and for ranges that cut days, before and after rolling, and after calls of rolled
//! days change.

use callopt_domain::{AccountId, ApiKey, AttemptOutcome, CallOutcome, HungUpBy};
use callopt_store::*;
use std::sync::Arc;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200_000;

async fn open(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = testing::scratch_database(dir.path());
    callopt_store::open(&url).await.unwrap()
}

/// Call `n` of a deterministic spread over ten days: callers repeat, some calls are answered,
/// some have two attempts, on five targets, three numbers and two channels.
fn call(account: AccountId, n: i64) -> CallRecord {
    let started = T0 + (n * 7_919_000) % (10 * DAY) + n % 1000;
    let answered = n % 3 != 0;
    let attempts = if n % 4 == 0 { 2 } else { 1 };
    CallRecord {
        id: started * 1000 + n % 1000,
        account,
        campaign_id: None,
        routing_plan_id: None,
        tracking_number: format!("+1415555{:04}", n % 3).into(),
        caller: format!("+1212555{:04}", n % 40).into(),
        session_id: None,
        channel: if n % 2 == 0 { "sip" } else { "twilio" }.into(),
        external_id: format!("x{n}").into(),
        outcome: if answered {
            CallOutcome::Answered
        } else {
            CallOutcome::NoAnswer
        },
        reason: None,
        hung_up_by: answered.then_some(if n % 5 == 0 {
            HungUpBy::Target
        } else {
            HungUpBy::Caller
        }),
        started_at: started,
        answered_at: answered.then_some(started + 5_000),
        ended_at: Some(started + 5_000 + 1000 * (n % 300)),
        attempts: (1..=attempts)
            .map(|seq| AttemptRecord {
                seq,
                target_id: Some(1 + (n + i64::from(seq)) % 5),
                destination: "sip:a@127.0.0.1".into(),
                outcome: Some(if answered && seq == attempts {
                    AttemptOutcome::Answered
                } else {
                    AttemptOutcome::Busy
                }),
                sip_status: None,
                started_at: started,
                answered_at: (answered && seq == attempts).then_some(started + 5_000),
                ended_at: Some(started + 5_000),
            })
            .collect(),
    }
}

const GROUPS: [ReportGroup; 10] = [
    ReportGroup::Total,
    ReportGroup::Hour,
    ReportGroup::Day,
    ReportGroup::TrackingNumber,
    ReportGroup::Target,
    ReportGroup::Channel,
    ReportGroup::Campaign,
    ReportGroup::Source,
    ReportGroup::LandingPage,
    ReportGroup::Caller,
];

/// Kolkata (+05:30) has no daylight saving: one offset interval.
fn query(group: ReportGroup, from: i64, to: i64) -> ReportQuery {
    ReportQuery {
        from,
        to,
        group,
        offsets: vec![(i64::MAX, 19_800_000)],
        filter: ReportFilter::default(),
    }
}

/// Every grouping over ranges that start and end inside days and inside quarter hours.
fn ranges() -> Vec<(i64, i64)> {
    vec![
        (T0, T0 + 10 * DAY),
        (
            T0 - 18 * HOUR - 30 * 60_000,
            T0 + 7 * DAY + 5 * HOUR + 7 * 60_000,
        ),
        (T0 + 2 * DAY + 13, T0 + 3 * DAY - 13),
        (T0 + DAY + HOUR, T0 + DAY + 2 * HOUR),
    ]
}

async fn all_reports(store: &Arc<dyn Store>, a: AccountId) -> Vec<Vec<ReportRow>> {
    let mut out = Vec::new();
    for (from, to) in ranges() {
        for g in GROUPS {
            out.push(store.report(a, &query(g, from, to)).await.unwrap());
        }
    }
    out
}

#[tokio::test]
async fn rolled_up_reports_equal_a_pass_over_the_calls_and_follow_later_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store
        .create_account("a", &ApiKey::from_random([1; 32]).hash(), 0)
        .await
        .unwrap();
    let b = store
        .create_account("b", &ApiKey::from_random([2; 32]).hash(), 0)
        .await
        .unwrap();
    let calls: Vec<CallRecord> = (1..=600).map(|n| call(a, n)).collect();
    store.write_calls(&calls).await.unwrap();
    store.write_calls(&[call(b, 601)]).await.unwrap();
    store
        .convert_call(
            a,
            calls[10].id,
            &Conversion {
                value: 120.5,
                currency: "USD".into(),
                at: T0,
            },
        )
        .await
        .unwrap();

    let scanned = all_reports(&store, a).await;
    let total = &scanned[0][0];
    assert_eq!(total.calls, 600);
    assert_eq!(total.conversions, 1);
    assert_eq!(total.conversion_value, 120.5);
    // 40 callers over ten days: each one's first call is unique, and calls repeat after.
    assert_eq!(total.unique_calls, 40);

    // Roll the first six days only (the seventh day holds a call still in progress).
    let mut open_call = call(a, 9_999);
    open_call.started_at = T0 + 6 * DAY + HOUR;
    open_call.id = open_call.started_at * 1000;
    open_call.outcome = CallOutcome::InProgress;
    open_call.answered_at = None;
    open_call.ended_at = None;
    open_call.hung_up_by = None;
    store.write_calls(&[open_call.clone()]).await.unwrap();
    let scanned = all_reports(&store, a).await;
    let mut status = store.roll_reports(T0 + 30 * DAY, 2).await.unwrap();
    assert_eq!(status.rolled_until, T0 + 2 * DAY);
    while status.pending_days > 0 {
        status = store.roll_reports(T0 + 30 * DAY, 2).await.unwrap();
    }
    assert_eq!(status.rolled_until, T0 + 6 * DAY);
    assert_eq!(all_reports(&store, a).await, scanned);

    // The call ends: every day rolls.
    open_call.outcome = CallOutcome::Busy;
    open_call.ended_at = Some(open_call.started_at + 1_000);
    store.write_calls(&[open_call]).await.unwrap();
    let status = store.roll_reports(T0 + 30 * DAY, 100).await.unwrap();
    assert_eq!(status.rolled_until, T0 + 30 * DAY);
    assert_eq!(status.pending_days, 0);
    let rolled = all_reports(&store, a).await;
    assert_eq!(rolled[0][0].calls, 601);

    // A late call on a rolled day, and a rolled call answered later, show at once (their day
    // is read from the calls) and after the day is rolled again.
    let mut late = call(a, 700);
    late.started_at = T0 + 3 * DAY + 5 * HOUR;
    late.id = late.started_at * 1000 + 1;
    let mut changed = calls[20].clone();
    changed.outcome = CallOutcome::Answered;
    changed.answered_at = Some(changed.started_at + 1_000);
    changed.hung_up_by = Some(HungUpBy::System);
    store.write_calls(&[late, changed]).await.unwrap();
    let before = all_reports(&store, a).await;
    assert_eq!(before[0][0].calls, 602);
    assert_ne!(before, rolled);
    let status = store.roll_reports(T0 + 30 * DAY, 100).await.unwrap();
    assert_eq!(status.pending_days, 0);
    assert_eq!(all_reports(&store, a).await, before);

    // The other account's call is only in its own reports.
    let theirs = store
        .report(b, &query(ReportGroup::Total, T0, T0 + 30 * DAY))
        .await
        .unwrap();
    assert_eq!(theirs[0].calls, 1);
}

#[tokio::test]
async fn calls_recorded_without_their_callers_country_get_it_from_the_report_task() {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::scratch_database(dir.path());
    let store = callopt_store::open(&url).await.unwrap();
    let a = store
        .create_account("a", &ApiKey::from_random([1; 32]).hash(), 0)
        .await
        .unwrap();
    let mut calls: Vec<CallRecord> = (1..=30).map(|n| call(a, n)).collect();
    calls[0].caller = "+442071838750".into();
    calls[1].caller = "anonymous".into();
    store.write_calls(&calls).await.unwrap();
    let countries = |rows: Vec<ReportRow>| -> Vec<(Option<String>, i64)> {
        rows.into_iter().map(|r| (r.key, r.calls)).collect()
    };
    let by_country = query(ReportGroup::Caller, T0, T0 + 10 * DAY);
    let want = vec![
        (Some("US".to_string()), 28),
        (None, 1),
        (Some("GB".into()), 1),
    ];
    assert_eq!(countries(store.report(a, &by_country).await.unwrap()), want);

    // As a database from before the column would hold them.
    testing::raw(&url, "UPDATE calls SET caller_country = NULL").await;
    let status = store.roll_reports(T0 + 30 * DAY, 100).await.unwrap();
    assert_eq!(status.pending_days, 0);
    let unknown = testing::raw(
        &url,
        "SELECT COUNT(*) FROM calls WHERE caller_country IS NULL",
    );
    assert_eq!(unknown.await, Some(0));
    assert_eq!(countries(store.report(a, &by_country).await.unwrap()), want);
}

#[tokio::test]
async fn a_call_counts_for_the_target_that_answered_else_the_last_one_tried() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir).await;
    let a = store
        .create_account("a", &ApiKey::from_random([1; 32]).hash(), 0)
        .await
        .unwrap();
    let attempt = |seq: u32, target: i64| AttemptRecord {
        seq,
        target_id: Some(target),
        destination: format!("sip:t{target}@127.0.0.1").into(),
        outcome: None,
        sip_status: None,
        started_at: T0 + i64::from(seq),
        answered_at: None,
        ended_at: None,
    };
    let by_target = |store: Arc<dyn Store>| async move {
        let rows = store
            .report(a, &query(ReportGroup::Target, T0, T0 + DAY))
            .await
            .unwrap();
        rows.into_iter()
            .map(|r| (r.key, r.calls, r.attempts))
            .collect::<Vec<_>>()
    };

    // Written as the switchboard writes it: ringing on target 1, then target 1 busy and
    // target 2 ringing, then target 2 answered, then ended.
    let mut answered = call(a, 1);
    answered.started_at = T0;
    answered.id = T0 * 1000;
    answered.outcome = CallOutcome::InProgress;
    (answered.answered_at, answered.ended_at, answered.hung_up_by) = (None, None, None);
    answered.attempts = vec![attempt(1, 1)];
    store.write_calls(&[answered.clone()]).await.unwrap();
    let one = |t: &str, attempts| vec![(Some(t.to_string()), 1, attempts)];
    assert_eq!(by_target(store.clone()).await, one("1", 1));

    answered.attempts[0].outcome = Some(AttemptOutcome::Busy);
    answered.attempts[0].ended_at = Some(T0 + 2);
    answered.attempts.push(attempt(2, 2));
    store.write_calls(&[answered.clone()]).await.unwrap();
    assert_eq!(by_target(store.clone()).await, one("2", 2));

    answered.attempts[1].outcome = Some(AttemptOutcome::Answered);
    answered.attempts[1].answered_at = Some(T0 + 5);
    answered.outcome = CallOutcome::Answered;
    answered.answered_at = Some(T0 + 5);
    store.write_calls(&[answered.clone()]).await.unwrap();
    answered.ended_at = Some(T0 + 60_000);
    answered.attempts[1].ended_at = answered.ended_at;
    store.write_calls(&[answered]).await.unwrap();
    assert_eq!(by_target(store.clone()).await, one("2", 2));

    // No attempt answered: the call counts for the last target tried.
    let mut unanswered = call(a, 3);
    unanswered.started_at = T0 + HOUR;
    unanswered.id = unanswered.started_at * 1000;
    unanswered.outcome = CallOutcome::NoAnswer;
    (unanswered.answered_at, unanswered.hung_up_by) = (None, None);
    unanswered.attempts = vec![attempt(1, 3), attempt(2, 4)];
    store.write_calls(&[unanswered]).await.unwrap();
    let rows = by_target(store.clone()).await;
    assert!(rows.contains(&(Some("4".into()), 1, 2)), "{rows:?}");
    assert!(
        !rows.iter().any(|r| r.0.as_deref() == Some("3")),
        "{rows:?}"
    );
}

/// A file database's calls are written through the call writer's SQLite connection of its own,
/// an in-memory one's through sqlx: both give back the same calls, attempts and reports, after
/// a batch of calls in progress and a batch that holds an earlier and a later record of calls.
#[tokio::test]
async fn both_ways_of_writing_calls_give_the_same_calls_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let file = open(&dir).await;
    let memory = callopt_store::open("sqlite::memory:").await.unwrap();
    let mut seen = Vec::new();
    for store in [&file, &memory] {
        let a = store
            .create_account("a", &ApiKey::from_random([1; 32]).hash(), 0)
            .await
            .unwrap();
        let ended: Vec<CallRecord> = (1..=300).map(|n| call(a, n)).collect();
        let ringing: Vec<CallRecord> = ended
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.outcome = CallOutcome::InProgress;
                (c.answered_at, c.ended_at, c.hung_up_by) = (None, None, None);
                c.attempts.truncate(1);
                let first = &mut c.attempts[0];
                (first.outcome, first.answered_at, first.ended_at) = (None, None, None);
                c
            })
            .collect();
        store
            .write_calls_owned(ringing[..150].into())
            .await
            .unwrap();
        let both: Vec<CallRecord> = ringing[150..].iter().chain(&ended).cloned().collect();
        store.write_calls_owned(both.into()).await.unwrap();
        let page = store
            .calls(
                a,
                &CallFilter::default(),
                PageRequest {
                    after: None,
                    limit: 1000,
                },
            )
            .await
            .unwrap();
        let mut by_id = ended.clone();
        by_id.sort_by_key(|c| c.id);
        assert_eq!(page.items, by_id);
        seen.push(all_reports(store, a).await);
    }
    assert_eq!(seen[0], seen[1]);
}

/// The nice value of each of this process's threads named `name` (Linux truncates a thread's
/// name to 15 bytes).
#[cfg(target_os = "linux")]
fn nice_of_threads(name: &str) -> Vec<i64> {
    let name = &name[..name.len().min(15)];
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let task = task.ok()?.path();
            let comm = std::fs::read_to_string(task.join("comm")).ok()?;
            if comm.trim_end() != name {
                return None;
            }
            // Fields after the command's closing parenthesis; the nice value is field 19.
            let stat = std::fs::read_to_string(task.join("stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 2..];
            rest.split(' ').nth(16)?.parse().ok()
        })
        .collect()
}

/// A SQLite file's call records are written on the call log's thread, at a lower priority than
/// the router's: signalling has deadlines, call records do not.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_call_log_yields_the_cpu_to_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("callopt.db");
    let store = callopt_store::open(path.to_str().unwrap()).await.unwrap();
    let a = store
        .create_account("a", &ApiKey::from_random([1; 32]).hash(), 0)
        .await
        .unwrap();
    store
        .write_calls_owned(vec![call(a, 1)].into())
        .await
        .unwrap();
    let written = call(a, 1);
    assert_eq!(store.call(a, written.id).await.unwrap(), written);
    let ours = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let ours: i64 = ours[ours.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    let log = nice_of_threads("callopt-call-log");
    assert!(!log.is_empty(), "no call log thread");
    assert!(
        log.iter().all(|&n| n > ours),
        "call log {log:?}, router {ours}"
    );
}

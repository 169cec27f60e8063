//! Table-driven tests of every routing rule, with an injected clock and a seeded rng.

use crate::{is_open, CallFacts, CompiledPlan, Decision, Live, Millis, RejectCause, Shared};
use callopt_domain::{
    BusinessHours, Caps, Destination, DuplicateAction, DuplicateCaller, Filters, NoTargetAnswer,
    OpenInterval, Region, Reroute, RoutingPlan, SipUri, Strategy, Target,
};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashSet;

/// 2024-01-10 12:00:00 UTC, a Wednesday.
pub(crate) const T0: Millis = 1_704_888_000_000;
const MINUTE: Millis = 60_000;
const HOUR: Millis = 3_600_000;

/// A target open always, enabled, weight 1, no caps, in tier `priority`.
pub(crate) fn target(id: i64, priority: u32) -> Target {
    Target {
        id,
        name: format!("t{id}"),
        destination: Destination::Sip(SipUri::parse("d", &format!("sip:t{id}@pbx.test")).unwrap()),
        languages: vec![],
        regions: vec![],
        hours: None,
        caps: Caps::default(),
        priority,
        weight: 1,
        ring_timeout_secs: None,
        enabled: true,
    }
}

/// A plan over `targets`: weighted, no filters, 3 attempts, ring timeout 20 s.
pub(crate) fn plan(targets: &[i64]) -> RoutingPlan {
    RoutingPlan {
        id: 7,
        name: "plan".into(),
        targets: targets.to_vec(),
        strategy: Strategy::Weighted,
        filters: Filters {
            open_now: false,
            geography: false,
            language: false,
        },
        duplicate_caller: None,
        ring_timeout_secs: 20,
        reroute: Reroute::default(),
        max_attempts: 3,
        overflow_target: None,
        no_target: NoTargetAnswer {
            status: 503,
            reason: "Nobody Home".into(),
        },
    }
}

pub(crate) fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

fn facts() -> CallFacts {
    CallFacts {
        caller: Some("+14155550100".into()),
        ..CallFacts::default()
    }
}

/// Business hours in `zone`, the same intervals every day.
fn hours(zone: Tz, intervals: &[(u16, u16)]) -> BusinessHours {
    let day: Vec<OpenInterval> = intervals
        .iter()
        .map(|&(start, end)| OpenInterval { start, end })
        .collect();
    BusinessHours {
        time_zone: zone,
        days: std::array::from_fn(|_| day.clone()),
    }
}

/// The instant of a local wall-clock time (the earlier one when ambiguous).
fn local(zone: Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> Millis {
    let naive = NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap();
    zone.from_local_datetime(&naive)
        .earliest()
        .unwrap()
        .timestamp_millis()
}

fn reject(status: u16, reason: &str, cause: RejectCause) -> Decision {
    Decision::Reject {
        status,
        reason: reason.into(),
        cause,
    }
}

fn to(target: i64) -> Decision {
    Decision::Target {
        target,
        ring_timeout_secs: 20,
        overflow: false,
    }
}

fn overflow_to(target: i64) -> Decision {
    Decision::Target {
        target,
        ring_timeout_secs: 20,
        overflow: true,
    }
}

/// Routes one call with a fresh rng.
fn route(
    live: &mut Live,
    plan: &CompiledPlan,
    facts: &CallFacts,
    tried: &[i64],
    now: Millis,
) -> Decision {
    live.route(plan, facts, tried, now, &mut rng())
}

#[test]
fn compiling_resolves_targets_and_groups_tiers() {
    let mut targets = vec![
        target(5, 2),
        target(3, 1),
        target(9, 1),
        target(4, 2),
        target(8, 0),
    ];
    targets[1].enabled = false;
    let mut p = plan(&[9, 4, 3, 5, 42, 3]);
    p.overflow_target = Some(8);
    let c = CompiledPlan::new(p, &targets);
    assert_eq!(c.tier_ids(), vec![(1, vec![3, 9]), (2, vec![4, 5])]);
    assert_eq!(
        c.target(8).map(|t| t.id),
        Some(8),
        "the overflow target is a target of the plan"
    );
    assert_eq!(c.overflow_target().map(|t| t.id), Some(8));
    assert!(c.target(42).is_none(), "unknown ids are skipped");
    assert!(
        c.target(3).is_some_and(|t| !t.enabled),
        "disabled targets are kept"
    );
    let mut p = plan(&[1]);
    p.overflow_target = Some(99);
    let c = CompiledPlan::new(p, &[target(1, 0), target(2, 0)]);
    assert!(
        c.target(2).is_none(),
        "targets outside the plan are ignored"
    );
    assert!(
        c.overflow_target().is_none(),
        "a missing overflow target is skipped"
    );
}

#[test]
fn attempts_are_limited_by_max_attempts() {
    // (max attempts, tried, decision)
    let exhausted = reject(503, "Nobody Home", RejectCause::AttemptsExhausted);
    let table: Vec<(u32, Vec<i64>, Decision)> = vec![
        (1, vec![], to(1)),
        (1, vec![1], exhausted.clone()),
        (3, vec![1], to(2)),
        (3, vec![1, 2], to(3)),
        (3, vec![1, 2, 3], exhausted.clone()),
        (2, vec![9, 8], exhausted),
    ];
    for (max, tried, want) in table {
        let mut p = plan(&[1, 2, 3, 4]);
        p.max_attempts = max;
        p.strategy = Strategy::RoundRobin;
        let c = CompiledPlan::new(p, &[target(1, 0), target(2, 0), target(3, 0), target(4, 0)]);
        let got = route(&mut Live::new(), &c, &facts(), &tried, T0);
        assert_eq!(got, want, "max {max}, tried {tried:?}");
    }
}

#[test]
fn duplicate_callers() {
    let dup = reject(603, "Duplicate Caller", RejectCause::DuplicateCaller);
    // (action, window hours, answered ago (None: not answered), caller, tried, target 2 down, decision)
    type Row = (
        DuplicateAction,
        u32,
        Option<Millis>,
        Option<&'static str>,
        Vec<i64>,
        bool,
        Decision,
    );
    let caller = Some("+14155550100");
    let table: Vec<Row> = vec![
        (
            DuplicateAction::Reject,
            1,
            Some(30 * MINUTE),
            caller,
            vec![],
            false,
            dup.clone(),
        ),
        (
            DuplicateAction::Reject,
            1,
            Some(HOUR),
            caller,
            vec![],
            false,
            to(1),
        ),
        (
            DuplicateAction::Reject,
            24,
            Some(23 * HOUR),
            caller,
            vec![],
            false,
            dup.clone(),
        ),
        (
            DuplicateAction::Reject,
            1,
            None,
            caller,
            vec![],
            false,
            to(1),
        ),
        (
            DuplicateAction::Reject,
            1,
            Some(MINUTE),
            Some("+14155550199"),
            vec![],
            false,
            to(1),
        ),
        (
            DuplicateAction::Reject,
            1,
            Some(MINUTE),
            None,
            vec![],
            false,
            to(1),
        ),
        (
            DuplicateAction::Reject,
            1,
            Some(MINUTE),
            caller,
            vec![1],
            false,
            dup,
        ),
        (
            DuplicateAction::SameTarget,
            1,
            Some(MINUTE),
            caller,
            vec![],
            false,
            to(2),
        ),
        (
            DuplicateAction::SameTarget,
            1,
            Some(2 * HOUR),
            caller,
            vec![],
            false,
            to(1),
        ),
        (
            DuplicateAction::SameTarget,
            1,
            Some(MINUTE),
            caller,
            vec![],
            true,
            to(1),
        ),
        (
            DuplicateAction::SameTarget,
            1,
            Some(MINUTE),
            caller,
            vec![3],
            false,
            to(1),
        ),
    ];
    for (i, (action, window_hours, ago, caller, tried, down, want)) in table.into_iter().enumerate()
    {
        let mut p = plan(&[1, 2, 3]);
        p.strategy = Strategy::RoundRobin;
        p.duplicate_caller = Some(DuplicateCaller {
            window_hours,
            action,
        });
        let c = CompiledPlan::new(p, &[target(1, 0), target(2, 0), target(3, 0)]);
        let mut live = Live::new();
        if let Some(ago) = ago {
            // The earlier call from +14155550100 went to target 2 and was answered.
            live.answered(&c, 2, Some("+14155550100"), T0 - ago);
            live.released(2, T0 - ago + MINUTE);
        }
        live.set_health(2, !down);
        let facts = CallFacts {
            caller: caller.map(str::to_string),
            ..CallFacts::default()
        };
        assert_eq!(route(&mut live, &c, &facts, &tried, T0), want, "row {i}");
    }
}

#[test]
fn duplicate_memory_is_per_plan_and_only_for_answered_calls() {
    let mut p = plan(&[1, 2]);
    p.duplicate_caller = Some(DuplicateCaller {
        window_hours: 1,
        action: DuplicateAction::Reject,
    });
    let c = CompiledPlan::new(p.clone(), &[target(1, 0), target(2, 0)]);
    p.id = 8;
    let other = CompiledPlan::new(p, &[target(1, 0), target(2, 0)]);
    let mut live = Live::new();
    let first = route(&mut live, &c, &facts(), &[], T0);
    live.released(first.target().unwrap(), T0 + 1);
    assert!(
        route(&mut live, &c, &facts(), &[], T0 + 2)
            .target()
            .is_some(),
        "routed, not answered"
    );
    live.answered(&c, 1, facts().caller.as_deref(), T0 + 3);
    assert_eq!(
        route(&mut live, &c, &facts(), &[], T0 + 4).target(),
        None,
        "answered on this plan"
    );
    assert!(
        route(&mut live, &other, &facts(), &[], T0 + 5)
            .target()
            .is_some(),
        "another plan"
    );
}

/// Routes one call at `T0` and keeps it ringing.
fn call(live: &mut Live, c: &CompiledPlan) {
    let _ = live.route(c, &facts(), &[], T0, &mut rng());
}

#[test]
fn eligibility_table() {
    // (why, setup of target 1, events before, tried, decision): plan [1 in tier 0, 2 in tier 1],
    // target 2 always eligible.
    type Setup = fn(&mut Target);
    type Events = fn(&mut Live, &CompiledPlan);
    let same: Setup = |_| {};
    let nothing: Events = |_, _| {};
    let table: Vec<(&str, Setup, Events, Vec<i64>, Decision)> = vec![
        ("eligible", same, nothing, vec![], to(1)),
        ("disabled", |t| t.enabled = false, nothing, vec![], to(2)),
        ("tried", same, nothing, vec![1], to(2)),
        (
            "down",
            same,
            |live, _| live.set_health(1, false),
            vec![],
            to(2),
        ),
        (
            "down then up",
            same,
            |live, _| {
                live.set_health(1, false);
                live.set_health(1, true);
            },
            vec![],
            to(1),
        ),
        (
            "concurrency cap reached by ringing",
            |t| t.caps.concurrent = Some(1),
            |live, c| {
                call(live, c);
            },
            vec![],
            to(2),
        ),
        (
            "concurrency cap reached by connected",
            |t| t.caps.concurrent = Some(2),
            |live, c| {
                call(live, c);
                live.answered(c, 1, None, T0);
                call(live, c);
            },
            vec![],
            to(2),
        ),
        (
            "concurrency cap freed by release",
            |t| t.caps.concurrent = Some(1),
            |live, c| {
                call(live, c);
                live.released(1, T0);
            },
            vec![],
            to(1),
        ),
        (
            "concurrency cap 0",
            |t| t.caps.concurrent = Some(0),
            nothing,
            vec![],
            to(2),
        ),
        (
            "hourly cap: connected + ringing",
            |t| t.caps.hourly = Some(2),
            |live, c| {
                call(live, c);
                live.answered(c, 1, None, T0);
                live.released(1, T0);
                call(live, c);
            },
            vec![],
            to(2),
        ),
        (
            "hourly cap: a failed attempt frees its place",
            |t| t.caps.hourly = Some(2),
            |live, c| {
                call(live, c);
                live.answered(c, 1, None, T0);
                live.released(1, T0);
                call(live, c);
                live.attempt_failed(1, T0);
            },
            vec![],
            to(1),
        ),
        (
            "hourly cap: ringing alone",
            |t| t.caps.hourly = Some(1),
            |live, c| {
                call(live, c);
            },
            vec![],
            to(2),
        ),
        (
            "hourly cap: last hour does not count",
            |t| t.caps.hourly = Some(1),
            |live, c| {
                live.answered(c, 1, None, T0 - HOUR);
                live.released(1, T0 - HOUR);
            },
            vec![],
            to(1),
        ),
        (
            "daily cap",
            |t| t.caps.daily = Some(1),
            |live, c| {
                live.answered(c, 1, None, T0 - 11 * HOUR);
                live.released(1, T0 - 11 * HOUR);
            },
            vec![],
            to(2),
        ),
        (
            "daily cap: yesterday does not count",
            |t| t.caps.daily = Some(1),
            |live, c| {
                live.answered(c, 1, None, T0 - 13 * HOUR);
                live.released(1, T0 - 13 * HOUR);
            },
            vec![],
            to(1),
        ),
        (
            "monthly cap",
            |t| t.caps.monthly = Some(1),
            |live, c| {
                live.answered(c, 1, None, T0 - 9 * 24 * HOUR);
                live.released(1, T0 - 9 * 24 * HOUR);
            },
            vec![],
            to(2),
        ),
        (
            "monthly cap: last month does not count",
            |t| t.caps.monthly = Some(1),
            |live, c| {
                live.answered(c, 1, None, T0 - 10 * 24 * HOUR);
                live.released(1, T0 - 10 * 24 * HOUR);
            },
            vec![],
            to(1),
        ),
    ];
    for (why, setup, events, tried, want) in table {
        let mut t1 = target(1, 0);
        setup(&mut t1);
        let c = CompiledPlan::new(plan(&[1, 2]), &[t1, target(2, 1)]);
        let mut live = Live::new();
        events(&mut live, &c);
        assert_eq!(route(&mut live, &c, &facts(), &tried, T0), want, "{why}");
    }
}

#[test]
fn filters_table() {
    let us415 = Region::parse("r", "US-415").unwrap();
    let de = Region::parse("r", "DE").unwrap();
    // (filters on, target languages, regions, hours, call country, area, language, eligible)
    type Row = (
        Filters,
        Vec<&'static str>,
        Vec<Region>,
        Option<BusinessHours>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        bool,
    );
    let geo = Filters {
        open_now: false,
        geography: true,
        language: false,
    };
    let lang = Filters {
        open_now: false,
        geography: false,
        language: true,
    };
    let open = Filters {
        open_now: true,
        geography: false,
        language: false,
    };
    let off = Filters {
        open_now: false,
        geography: false,
        language: false,
    };
    let nine_to_five = Some(hours(Tz::UTC, &[(540, 1020)]));
    let evening = Some(hours(Tz::UTC, &[(1080, 1440)]));
    let table: Vec<Row> = vec![
        (geo, vec![], vec![], None, None, None, None, true),
        (
            geo,
            vec![],
            vec![us415.clone()],
            None,
            Some("US"),
            Some("415"),
            None,
            true,
        ),
        (
            geo,
            vec![],
            vec![us415.clone()],
            None,
            Some("US"),
            Some("212"),
            None,
            false,
        ),
        (
            geo,
            vec![],
            vec![us415.clone()],
            None,
            Some("US"),
            None,
            None,
            false,
        ),
        (
            geo,
            vec![],
            vec![us415.clone(), de.clone()],
            None,
            Some("DE"),
            Some("30"),
            None,
            true,
        ),
        (geo, vec![], vec![de.clone()], None, None, None, None, false),
        (
            off,
            vec![],
            vec![de.clone()],
            None,
            Some("FR"),
            None,
            None,
            true,
        ),
        (lang, vec!["de"], vec![], None, None, None, Some("de"), true),
        (
            lang,
            vec!["de"],
            vec![],
            None,
            None,
            None,
            Some("de-AT"),
            true,
        ),
        (
            lang,
            vec!["de", "fr"],
            vec![],
            None,
            None,
            None,
            Some("FR"),
            true,
        ),
        (
            lang,
            vec!["de"],
            vec![],
            None,
            None,
            None,
            Some("en"),
            false,
        ),
        (lang, vec!["de"], vec![], None, None, None, None, true),
        (lang, vec![], vec![], None, None, None, Some("en"), true),
        (off, vec!["de"], vec![], None, None, None, Some("en"), true),
        (open, vec![], vec![], None, None, None, None, true),
        (
            open,
            vec![],
            vec![],
            nine_to_five.clone(),
            None,
            None,
            None,
            true,
        ),
        (
            open,
            vec![],
            vec![],
            evening.clone(),
            None,
            None,
            None,
            false,
        ),
        (off, vec![], vec![], evening, None, None, None, true),
    ];
    for (i, (filters, languages, regions, hours, country, area, language, eligible)) in
        table.into_iter().enumerate()
    {
        let mut t1 = target(1, 0);
        t1.languages = languages.into_iter().map(str::to_string).collect();
        t1.regions = regions;
        t1.hours = hours;
        let mut p = plan(&[1, 2]);
        p.filters = filters;
        let c = CompiledPlan::new(p, &[t1, target(2, 1)]);
        let facts = CallFacts {
            caller: None,
            caller_country: country.map(str::to_string),
            caller_area: area.map(str::to_string),
            language: language.map(str::to_string),
        };
        let want = if eligible { to(1) } else { to(2) };
        assert_eq!(
            route(&mut Live::new(), &c, &facts, &[], T0),
            want,
            "row {i}"
        );
    }
}

#[test]
fn tiers_decide_in_priority_order() {
    // (targets as (id, priority), tried, decision)
    type Row = (Vec<(i64, u32)>, Vec<i64>, Decision);
    let table: Vec<Row> = vec![
        (vec![(1, 5), (2, 1), (3, 3)], vec![], to(2)),
        (vec![(1, 5), (2, 1), (3, 3)], vec![2], to(3)),
        (vec![(1, 5), (2, 1), (3, 3)], vec![2, 3], to(1)),
        (vec![(1, 0), (2, 0), (3, 1)], vec![1], to(2)),
    ];
    for (targets, tried, want) in table {
        let ts: Vec<Target> = targets.iter().map(|&(id, p)| target(id, p)).collect();
        let ids: Vec<i64> = targets.iter().map(|&(id, _)| id).collect();
        let mut p = plan(&ids);
        p.strategy = Strategy::LeastBusy;
        let c = CompiledPlan::new(p, &ts);
        assert_eq!(
            route(&mut Live::new(), &c, &facts(), &tried, T0),
            want,
            "{targets:?} {tried:?}"
        );
    }
}

#[test]
fn overflow_table() {
    // (setup of the overflow target 9, tried, decision); targets 1 and 2 are never eligible
    // (closed under open_now), 9 is closed too but filters do not apply to overflow.
    type Setup = fn(&mut Target, &mut Live);
    let no_target = reject(503, "Nobody Home", RejectCause::NoEligibleTarget);
    let table: Vec<(&str, Option<Setup>, Vec<i64>, Decision)> = vec![
        ("no overflow target", None, vec![], no_target.clone()),
        ("overflow", Some(|_, _| {}), vec![], overflow_to(9)),
        ("tried", Some(|_, _| {}), vec![9], no_target.clone()),
        (
            "disabled",
            Some(|t, _| t.enabled = false),
            vec![],
            no_target.clone(),
        ),
        (
            "down",
            Some(|_, live| live.set_health(9, false)),
            vec![],
            no_target.clone(),
        ),
        (
            "capped",
            Some(|t, _| t.caps.concurrent = Some(0)),
            vec![],
            no_target,
        ),
    ];
    for (why, setup, tried, want) in table {
        let closed = Some(hours(Tz::UTC, &[(0, 60)]));
        let mut ts = vec![target(1, 0), target(2, 1), target(9, 0)];
        for t in &mut ts {
            t.hours = closed.clone();
        }
        let mut live = Live::new();
        let mut p = plan(&[1, 2]);
        p.filters.open_now = true;
        if let Some(setup) = setup {
            setup(&mut ts[2], &mut live);
            p.overflow_target = Some(9);
        }
        let c = CompiledPlan::new(p, &ts);
        assert_eq!(route(&mut live, &c, &facts(), &tried, T0), want, "{why}");
    }
}

#[test]
fn ring_timeout_is_the_targets_or_the_plans() {
    let mut t1 = target(1, 0);
    t1.ring_timeout_secs = Some(45);
    let c = CompiledPlan::new(plan(&[1, 2]), &[t1, target(2, 1)]);
    let mut live = Live::new();
    let first = route(&mut live, &c, &facts(), &[], T0);
    assert_eq!(
        first,
        Decision::Target {
            target: 1,
            ring_timeout_secs: 45,
            overflow: false
        }
    );
    assert_eq!(route(&mut live, &c, &facts(), &[1], T0), to(2));
}

#[test]
fn strategies_table() {
    // (strategy, live calls held on targets 1..=3 (routed two hours ago: live, but no longer
    // volume), attempts routed an hour or more ago, attempts routed within the hour, decision)
    type Row = (Strategy, [u32; 3], [u32; 3], [u32; 3], Decision);
    let table: Vec<Row> = vec![
        (Strategy::LeastBusy, [0, 0, 0], [0; 3], [0; 3], to(1)),
        (Strategy::LeastBusy, [1, 0, 1], [0; 3], [0; 3], to(2)),
        (Strategy::LeastBusy, [2, 1, 1], [0; 3], [0; 3], to(2)),
        (Strategy::LeastBusy, [1, 1, 0], [0; 3], [0; 3], to(3)),
        (Strategy::LowestVolume, [0; 3], [0; 3], [0, 0, 0], to(1)),
        (Strategy::LowestVolume, [0; 3], [0; 3], [2, 1, 1], to(2)),
        (Strategy::LowestVolume, [0; 3], [5, 5, 0], [1, 1, 2], to(1)),
        (Strategy::LowestVolume, [3, 0, 0], [0; 3], [0, 1, 1], to(1)),
    ];
    for (strategy, hold, old, recent, want) in table {
        let mut ts = vec![target(1, 0), target(2, 0), target(3, 0)];
        ts[2].caps.concurrent = Some(2);
        ts[0].caps.concurrent = Some(4);
        let mut p = plan(&[1, 2, 3]);
        p.strategy = strategy;
        let c = CompiledPlan::new(p, &ts);
        let mut live = Live::new();
        // Route calls pinned to one target by trying the others.
        let pin = |live: &mut Live, id: i64, now: Millis| {
            let tried: Vec<i64> = [1, 2, 3].into_iter().filter(|&t| t != id).collect();
            assert_eq!(route(live, &c, &facts(), &tried, now).target(), Some(id));
        };
        for (i, id) in (1..=3).enumerate() {
            for _ in 0..old[i] {
                pin(&mut live, id, T0 - HOUR);
                live.released(id, T0 - HOUR);
            }
            for _ in 0..recent[i] {
                pin(&mut live, id, T0 - 59 * MINUTE);
                live.released(id, T0 - 59 * MINUTE);
            }
            for _ in 0..hold[i] {
                pin(&mut live, id, T0 - 2 * HOUR);
            }
        }
        let got = route(&mut live, &c, &facts(), &[], T0);
        assert_eq!(
            got, want,
            "{strategy:?} hold {hold:?} old {old:?} recent {recent:?}"
        );
    }
}

#[test]
fn round_robin_walks_in_id_order_per_tier_and_skips_ineligible() {
    let mut p = plan(&[4, 2, 9, 7]);
    p.strategy = Strategy::RoundRobin;
    let c = CompiledPlan::new(p, &[target(4, 0), target(2, 0), target(9, 0), target(7, 1)]);
    let mut live = Live::new();
    let mut order = vec![];
    for i in 0..7 {
        if i == 4 {
            live.set_health(4, false);
        }
        let d = route(&mut live, &c, &facts(), &[], T0);
        let t = d.target().unwrap();
        live.released(t, T0);
        order.push(t);
    }
    assert_eq!(order, vec![2, 4, 9, 2, 9, 2, 9]);
    // Another tier has its own cursor.
    assert_eq!(route(&mut live, &c, &facts(), &[2, 9], T0), to(7));
    assert_eq!(route(&mut live, &c, &facts(), &[], T0), to(2));
}

#[test]
fn weighted_is_deterministic_given_the_seed() {
    let mut ts: Vec<Target> = (1..=4).map(|id| target(id, 0)).collect();
    for (t, w) in ts.iter_mut().zip([10, 20, 30, 40]) {
        t.weight = w;
    }
    let c = CompiledPlan::new(plan(&[1, 2, 3, 4]), &ts);
    let run = |seed: u64| {
        let mut live = Live::new();
        let mut rng = StdRng::seed_from_u64(seed);
        (0..100)
            .map(|_| {
                let t = live
                    .route(&c, &facts(), &[], T0, &mut rng)
                    .target()
                    .unwrap();
                live.released(t, T0);
                t
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn is_open_table() {
    let ny = chrono_tz::America::New_York;
    let berlin = chrono_tz::Europe::Berlin;
    let mut t = target(1, 0);
    assert!(is_open(&t, T0), "no hours: always open");
    // Mondays 09:00-17:00 and Sundays 23:00-24:00, New York.
    let mut h = hours(ny, &[]);
    h.days[0] = vec![OpenInterval {
        start: 540,
        end: 1020,
    }];
    h.days[6] = vec![OpenInterval {
        start: 1380,
        end: 1440,
    }];
    t.hours = Some(h);
    // (instant, open)
    let table = [
        (local(ny, 2024, 1, 8, 9, 0), true),
        (local(ny, 2024, 1, 8, 8, 59), false),
        (local(ny, 2024, 1, 8, 16, 59), true),
        (local(ny, 2024, 1, 8, 17, 0), false),
        (local(ny, 2024, 1, 9, 10, 0), false),
        // 2024-03-10 is a Sunday and the day New York springs forward.
        (local(ny, 2024, 3, 10, 23, 30), true),
        (local(ny, 2024, 3, 10, 22, 59), false),
        (local(ny, 2024, 3, 11, 9, 0), true),
        // 2024-11-03 is a Sunday and the day New York falls back.
        (local(ny, 2024, 11, 3, 23, 30), true),
        (local(ny, 2024, 11, 4, 8, 30), false),
    ];
    for (now, want) in table {
        assert_eq!(is_open(&t, now), want, "{now}");
    }
    // Berlin 09:00-17:00 every day: 08:30 UTC is 09:30 in winter, 10:30 in summer.
    t.hours = Some(hours(berlin, &[(540, 1020)]));
    let utc = |m, d, h, min| local(Tz::UTC, 2024, m, d, h, min);
    assert!(is_open(&t, utc(1, 10, 8, 30)));
    assert!(!is_open(&t, utc(1, 10, 16, 30)));
    assert!(is_open(&t, utc(7, 10, 14, 30)));
    assert!(!is_open(&t, utc(7, 10, 15, 30)));
}

#[test]
fn caps_follow_the_local_calendar_across_dst_changes() {
    let ny = chrono_tz::America::New_York;
    // (cap kind, answered at, routed at, still capped)
    type Row = (&'static str, Millis, Millis, bool);
    let table: Vec<Row> = vec![
        // Spring forward (23-hour day): 00:30 and 23:30 are the same local day.
        (
            "daily",
            local(ny, 2024, 3, 10, 0, 30),
            local(ny, 2024, 3, 10, 23, 30),
            true,
        ),
        (
            "daily",
            local(ny, 2024, 3, 10, 0, 30),
            local(ny, 2024, 3, 11, 0, 0),
            false,
        ),
        // Fall back (25-hour day): 00:30 and 23:30 are 24 hours apart but the same local day.
        (
            "daily",
            local(ny, 2024, 11, 3, 0, 30),
            local(ny, 2024, 11, 3, 23, 30),
            true,
        ),
        (
            "daily",
            local(ny, 2024, 11, 3, 0, 30),
            local(ny, 2024, 11, 4, 0, 0),
            false,
        ),
        // The day before the change: 23:30 then 00:00 of the change day.
        (
            "daily",
            local(ny, 2024, 3, 9, 23, 30),
            local(ny, 2024, 3, 10, 0, 0),
            false,
        ),
        // Spring forward: 01:30 EST, then 03:00 EDT is the next local hour.
        (
            "hourly",
            local(ny, 2024, 3, 10, 1, 30),
            local(ny, 2024, 3, 10, 3, 0),
            false,
        ),
        (
            "hourly",
            local(ny, 2024, 3, 10, 1, 0),
            local(ny, 2024, 3, 10, 1, 59),
            true,
        ),
        // Fall back: the repeated 01:00 hour is one local hour.
        (
            "hourly",
            local(ny, 2024, 11, 3, 1, 30),
            local(ny, 2024, 11, 3, 1, 30) + HOUR,
            true,
        ),
        (
            "hourly",
            local(ny, 2024, 11, 3, 1, 30),
            local(ny, 2024, 11, 3, 2, 0),
            false,
        ),
        (
            "hourly",
            local(ny, 2024, 11, 3, 23, 30),
            local(ny, 2024, 11, 4, 0, 0),
            false,
        ),
        // Months end at local midnight: 23:30 on March 31 in New York is April in UTC.
        (
            "monthly",
            local(ny, 2024, 3, 1, 0, 30),
            local(ny, 2024, 3, 31, 23, 30),
            true,
        ),
        (
            "monthly",
            local(ny, 2024, 3, 31, 23, 30),
            local(ny, 2024, 4, 1, 0, 0),
            false,
        ),
        (
            "monthly",
            local(ny, 2024, 12, 31, 23, 30),
            local(ny, 2025, 1, 1, 0, 0),
            false,
        ),
    ];
    for (kind, answered_at, routed_at, capped) in table {
        let mut t1 = target(1, 0);
        t1.hours = Some(hours(ny, &[]));
        match kind {
            "hourly" => t1.caps.hourly = Some(1),
            "daily" => t1.caps.daily = Some(1),
            _ => t1.caps.monthly = Some(1),
        }
        let c = CompiledPlan::new(plan(&[1, 2]), &[t1, target(2, 1)]);
        let mut live = Live::new();
        assert_eq!(route(&mut live, &c, &facts(), &[], answered_at), to(1));
        live.answered(&c, 1, None, answered_at);
        live.released(1, answered_at + MINUTE);
        let want = if capped { to(2) } else { to(1) };
        assert_eq!(
            route(&mut live, &c, &facts(), &[], routed_at),
            want,
            "{kind}: answered {answered_at}, routed {routed_at}"
        );
    }
}

#[test]
fn caps_without_hours_follow_utc() {
    let mut t1 = target(1, 0);
    t1.caps.daily = Some(1);
    let c = CompiledPlan::new(plan(&[1, 2]), &[t1, target(2, 1)]);
    let mut live = Live::new();
    let late = local(Tz::UTC, 2024, 1, 10, 23, 59);
    live.answered(&c, 1, None, late);
    live.released(1, late);
    assert_eq!(route(&mut live, &c, &facts(), &[], late + 59_000), to(2));
    assert_eq!(route(&mut live, &c, &facts(), &[], late + MINUTE), to(1));
}

#[test]
fn a_caller_id_is_parsed_only_for_the_plans_that_read_it() {
    let raw = "+1 415 555 2671";
    let mut p = plan(&[1]);
    let plain = CallFacts::for_plan(&p, raw, Some("en".into()));
    assert_eq!(plain.caller.as_deref(), Some(raw));
    assert_eq!((plain.caller_country, plain.caller_area), (None, None));
    assert_eq!(plain.language.as_deref(), Some("en"));
    assert_eq!(CallFacts::for_plan(&p, "", None).caller, None);
    p.filters.geography = true;
    assert_eq!(
        CallFacts::for_plan(&p, raw, None),
        CallFacts::from_caller_id(raw, None)
    );
    assert_eq!(
        CallFacts::for_plan(&p, raw, None).caller_country.as_deref(),
        Some("US")
    );
    p.filters.geography = false;
    p.duplicate_caller = Some(DuplicateCaller {
        window_hours: 1,
        action: DuplicateAction::Reject,
    });
    let remembered = CallFacts::for_plan(&p, raw, None);
    assert_eq!(remembered.caller.as_deref(), Some("+14155552671"));
}

#[test]
fn period_starts_are_the_ends_of_the_periods_before() {
    let zones = [
        Tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Kathmandu,
        chrono_tz::Australia::Lord_Howe,
    ];
    let mut t = target(1, 0);
    // Every 7 minutes through 2026's March (New York springs forward on the 8th) and
    // November (falls back on the 1st).
    for zone in zones {
        t.hours = Some(hours(zone, &[(0, 1440)]));
        for from in [
            local(Tz::UTC, 2026, 3, 1, 0, 0),
            local(Tz::UTC, 2026, 10, 25, 0, 0),
        ] {
            for step in 0..(14 * 24 * 60 / 7) {
                let now = from + step * 7 * MINUTE;
                let starts = crate::cap_period_starts(&t, now);
                let ends = crate::cap_periods(&t, now);
                for (i, (start, end)) in starts.into_iter().zip(ends).enumerate() {
                    assert!(start <= now && now < end, "{zone} {now}: {start}..{end}");
                    assert_eq!(
                        crate::cap_periods(&t, start - 1)[i],
                        start,
                        "{zone} {now}: the period before ends where this one starts"
                    );
                }
            }
        }
    }
}

#[test]
fn restored_counts_hold_caps_and_volume_until_their_periods_end() {
    let mut t1 = target(1, 0);
    t1.caps.hourly = Some(3);
    t1.caps.monthly = Some(10);
    let c = CompiledPlan::new(plan(&[1, 2]), &[t1.clone(), target(2, 1)]);
    let mut live = Live::new();
    let now = local(Tz::UTC, 2026, 5, 31, 22, 30);
    // Before the start: 3 this hour (the hourly cap), 10 this month (the monthly cap).
    live.restore_connected(&t1, [3, 5, 10], now);
    live.restore_attempts(1, now - 10 * MINUTE, 4);
    live.restore_attempts(1, now - 61 * MINUTE, 9); // older than the hour: not counted
    let usage = live.usage(1, now);
    assert_eq!(
        (usage.hour, usage.day, usage.month, usage.volume),
        (3, 5, 10, 4)
    );
    assert_eq!(route(&mut live, &c, &facts(), &[], now), to(2));
    live.attempt_failed(2, now);
    // A new hour: the hourly cap is free, the month's is still spent.
    let next_hour = local(Tz::UTC, 2026, 5, 31, 23, 0);
    assert_eq!(route(&mut live, &c, &facts(), &[], next_hour), to(2));
    live.attempt_failed(2, next_hour);
    // A new month: `1` takes calls again.
    let june = local(Tz::UTC, 2026, 6, 1, 0, 0);
    assert_eq!(route(&mut live, &c, &facts(), &[], june), to(1));
    // A count restored over one already kept keeps the larger.
    let mut live = Live::new();
    live.answered(&c, 1, None, now);
    live.restore_connected(&t1, [0, 0, 0], now);
    assert_eq!(live.usage(1, now).month, 1);
}

#[test]
fn released_keeps_counts_consistent() {
    let c = CompiledPlan::new(plan(&[1]), &[target(1, 0)]);
    let mut live = Live::new();
    for _ in 0..3 {
        route(&mut live, &c, &facts(), &[], T0);
    }
    assert_eq!(live.live_calls(1), 3);
    live.answered(&c, 1, None, T0);
    let u = live.usage(1, T0);
    assert_eq!(
        (u.ringing, u.connected, u.hour, u.day, u.month, u.volume),
        (2, 1, 1, 1, 1, 3)
    );
    live.released(1, T0);
    live.released(1, T0);
    live.released(1, T0);
    live.released(1, T0);
    assert_eq!(live.live_calls(1), 0, "never below zero");
    assert_eq!(live.live_calls(99), 0);
    live.released(99, T0);
}

#[test]
fn prune_bounds_memory() {
    let mut p = plan(&[1, 2]);
    p.strategy = Strategy::RoundRobin;
    p.duplicate_caller = Some(DuplicateCaller {
        window_hours: 1,
        action: DuplicateAction::Reject,
    });
    let c = CompiledPlan::new(p, &[target(1, 0), target(2, 0)]);
    let mut live = Live::new();
    let t = route(&mut live, &c, &facts(), &[], T0).target().unwrap();
    live.answered(&c, t, Some("+1"), T0);
    live.set_health(2, false);
    let known: HashSet<i64> = [1, 2].into();
    live.prune(&known, T0 + 30 * MINUTE);
    assert_eq!(
        live.live_calls(1),
        1,
        "live calls of known targets are kept"
    );
    assert_eq!(live.sizes(), (2, 1, 1));
    live.released(1, T0 + 40 * MINUTE);
    live.prune(&known, T0 + 30 * MINUTE);
    assert_eq!(live.sizes().0, 2, "counters that still count are kept");
    live.prune(&known, T0 + 2 * HOUR);
    // The caller's window has passed; today's and this month's caps still count.
    assert_eq!(live.sizes(), (2, 1, 0));
    live.prune(&known, T0 + 60 * 24 * HOUR);
    // Idle counters are dropped; health is kept.
    assert_eq!(live.sizes(), (1, 1, 0));
    assert!(live.usage(2, T0).down);
    live.prune(&HashSet::new(), T0 + 60 * 24 * HOUR);
    assert_eq!(live.sizes(), (0, 0, 0));
}

#[test]
fn nodes_told_of_each_others_routing_agree_on_cursors_and_duplicate_callers() {
    let mut p = plan(&[1, 2, 3]);
    p.strategy = Strategy::RoundRobin;
    p.duplicate_caller = Some(DuplicateCaller {
        window_hours: 1,
        action: DuplicateAction::Reject,
    });
    let c = CompiledPlan::new(p, &[target(1, 0), target(2, 0), target(3, 0)]);
    let (mut a, mut b) = (Live::new(), Live::new());
    a.share();
    b.share();
    let tell = |from: &mut Live, to: &mut Live| {
        for s in from.take_shared() {
            to.apply(s);
        }
    };
    // Calls alternate between the nodes: round robin walks on as if one node took them all.
    let mut order = vec![];
    for i in 0..6 {
        let (me, other) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let t = route(me, &c, &facts(), &[], T0).target().unwrap();
        me.released(t, T0);
        tell(me, other);
        order.push(t);
    }
    assert_eq!(order, vec![1, 2, 3, 1, 2, 3]);
    // A caller answered on node a is a duplicate on node b within the window.
    let caller = CallFacts {
        caller: Some("+14155550100".into()),
        ..CallFacts::default()
    };
    a.answered(&c, 2, caller.caller.as_deref(), T0);
    tell(&mut a, &mut b);
    let dup = reject(603, "Duplicate Caller", RejectCause::DuplicateCaller);
    assert_eq!(route(&mut b, &c, &caller, &[], T0 + MINUTE), dup);
    // An older answer told late does not replace a later one.
    b.apply(Shared::Caller {
        plan: c.plan().id,
        caller: "+14155550100".into(),
        target: 3,
        answered_at: T0 - 2 * 60 * MINUTE,
        forget_at: T0 - 60 * MINUTE,
    });
    assert_eq!(route(&mut b, &c, &caller, &[], T0 + MINUTE), dup);
    // Without sharing nothing is kept to tell.
    let mut alone = Live::new();
    route(&mut alone, &c, &facts(), &[], T0);
    assert!(alone.take_shared().is_empty());
}

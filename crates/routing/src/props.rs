//! Property tests of routing: caps never exceeded, weighted shares, round-robin fairness.

use crate::tests::{plan, target, T0};
use crate::{CallFacts, CompiledPlan, Live, Millis};
use callopt_domain::{BusinessHours, Caps, Strategy as RoutingStrategy, Target};
use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashMap;

/// One event of the cap property.
#[derive(Debug, Clone)]
enum Event {
    /// A call is routed; the mask says which targets it already tried.
    Route(u8),
    /// The n-th ringing attempt (modulo their number) is answered.
    Answer(usize),
    /// The n-th ringing attempt fails; `exact` says whether through `attempt_failed` or through
    /// the ambiguous `released`.
    Fail(usize, bool),
    /// The n-th connected call hangs up, through `call_ended` or `released`.
    HangUp(usize, bool),
    /// The clock moves on.
    Advance(Millis),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => any::<u8>().prop_map(Event::Route),
        3 => any::<usize>().prop_map(Event::Answer),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(n, e)| Event::Fail(n, e)),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(n, e)| Event::HangUp(n, e)),
        1 => (0..3 * 3_600_000i64).prop_map(Event::Advance),
    ]
}

fn caps() -> impl Strategy<Value = Caps> {
    (
        proptest::option::of(0..4u32),
        proptest::option::of(0..5u32),
        proptest::option::of(0..8u32),
        proptest::option::of(0..12u32),
    )
        .prop_map(|(concurrent, hourly, daily, monthly)| Caps {
            concurrent,
            hourly,
            daily,
            monthly,
        })
}

/// Zones with and without DST, one with a half-hour DST shift.
const ZONES: [Option<Tz>; 4] = [
    None,
    Some(chrono_tz::America::New_York),
    Some(chrono_tz::Europe::Berlin),
    Some(chrono_tz::Australia::Lord_Howe),
];

/// Starting instants: an ordinary day, and a few hours before DST changes in the zones above.
const STARTS: [Millis; 4] = [
    T0,
    1_710_036_000_000, // 2024-03-10 02:00 UTC, New York springs forward at 07:00 UTC
    1_730_584_800_000, // 2024-11-02 22:00 UTC, New York falls back at 06:00 UTC
    1_711_839_600_000, // 2024-03-30 23:00 UTC, Berlin springs forward at 01:00 UTC
];

/// A local calendar period: (year, month, day or 99, hour or 99).
type PeriodKey = (i32, u32, u32, u32);

/// Local calendar keys (hour, day, month) of an instant, computed independently of the crate.
fn keys(zone: Tz, now: Millis) -> [PeriodKey; 3] {
    let l = zone.from_utc_datetime(
        &DateTime::<Utc>::from_timestamp_millis(now)
            .unwrap()
            .naive_utc(),
    );
    [
        (l.year(), l.month(), l.day(), l.hour()),
        (l.year(), l.month(), l.day(), 99),
        (l.year(), l.month(), 99, 99),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Under any interleaving of routing, answers, failures, hang-ups and time, no target ever
    /// has more live calls than its concurrency cap nor more connected calls in a local hour,
    /// day or month than the matching cap, and the live counts stay exact.
    #[test]
    fn caps_are_never_exceeded(
        target_caps in proptest::collection::vec(caps(), 3),
        zone in 0..ZONES.len(),
        start in 0..STARTS.len(),
        strategy in 0..4usize,
        seed in any::<u64>(),
        events in proptest::collection::vec(event(), 1..120),
    ) {
        let targets: Vec<Target> = target_caps.iter().enumerate().map(|(i, &caps)| {
            let mut t = target(i as i64 + 1, (i / 2) as u32);
            t.caps = caps;
            t.hours = ZONES[zone].map(|time_zone| BusinessHours {
                time_zone,
                days: Default::default(),
            });
            t
        }).collect();
        let mut p = plan(&[1, 2, 3]);
        p.max_attempts = 10;
        p.strategy = [RoutingStrategy::Weighted, RoutingStrategy::RoundRobin, RoutingStrategy::LeastBusy, RoutingStrategy::LowestVolume][strategy];
        let c = CompiledPlan::new(p, &targets);
        let zone_of = ZONES[zone].unwrap_or(Tz::UTC);
        let mut live = Live::new();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut now = STARTS[start];
        let (mut ringing, mut connected): (Vec<i64>, Vec<i64>) = (vec![], vec![]);
        let mut answered: HashMap<(i64, usize, PeriodKey), u32> = HashMap::new();
        for e in events {
            match e {
                Event::Route(mask) => {
                    let tried: Vec<i64> = (1..=3).filter(|id| mask & (1 << id) != 0).collect();
                    if let Some(t) = live.route(&c, &CallFacts::default(), &tried, now, &mut rng).target() {
                        prop_assert!(!tried.contains(&t));
                        ringing.push(t);
                    }
                }
                Event::Answer(n) if !ringing.is_empty() => {
                    let t = ringing.swap_remove(n % ringing.len());
                    live.answered(&c, t, None, now);
                    connected.push(t);
                    for (kind, key) in keys(zone_of, now).into_iter().enumerate() {
                        *answered.entry((t, kind, key)).or_default() += 1;
                    }
                }
                Event::Fail(n, exact) if !ringing.is_empty() => {
                    let t = ringing.swap_remove(n % ringing.len());
                    if exact { live.attempt_failed(t, now) } else { live.released(t, now) }
                }
                Event::HangUp(n, exact) if !connected.is_empty() => {
                    let t = connected.swap_remove(n % connected.len());
                    if exact { live.call_ended(t, now) } else { live.released(t, now) }
                }
                Event::Advance(ms) => now += ms,
                _ => {}
            }
            for t in &targets {
                let live_now = ringing.iter().chain(&connected).filter(|&&x| x == t.id).count() as u32;
                prop_assert_eq!(live.live_calls(t.id), live_now);
                if let Some(cap) = t.caps.concurrent {
                    prop_assert!(live_now <= cap, "target {} live {} cap {}", t.id, live_now, cap);
                }
            }
            for (&(id, kind, key), &count) in &answered {
                let caps = c.target(id).unwrap().caps;
                let cap = [caps.hourly, caps.daily, caps.monthly][kind];
                prop_assert!(cap.is_none_or(|cap| count <= cap), "target {id} period {key:?}: {count} > {cap:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]

    /// Over 20,000 seeded decisions, each target's share is its weight's share within five
    /// standard deviations.
    #[test]
    fn weighted_selection_converges_to_weight_shares(
        weights in proptest::collection::vec(1..=1000u32, 2..6),
        seed in any::<u64>(),
    ) {
        let targets: Vec<Target> = weights.iter().enumerate().map(|(i, &w)| {
            let mut t = target(i as i64 + 1, 0);
            t.weight = w;
            t
        }).collect();
        let ids: Vec<i64> = targets.iter().map(|t| t.id).collect();
        let c = CompiledPlan::new(plan(&ids), &targets);
        let mut live = Live::new();
        let mut rng = StdRng::seed_from_u64(seed);
        const N: u32 = 20_000;
        let mut counts = vec![0u32; targets.len()];
        for _ in 0..N {
            let t = live.route(&c, &CallFacts::default(), &[], T0, &mut rng).target().unwrap();
            live.released(t, T0);
            counts[(t - 1) as usize] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (i, &w) in weights.iter().enumerate() {
            let p = f64::from(w) / f64::from(total);
            let expected = p * f64::from(N);
            let sd = (f64::from(N) * p * (1.0 - p)).sqrt();
            let diff = (f64::from(counts[i]) - expected).abs();
            prop_assert!(diff <= 5.0 * sd + 1.0, "weights {:?} counts {:?}", weights, counts);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Round robin over any set of targets gives every target the same number of calls, give
    /// or take one, after any number of calls.
    #[test]
    fn round_robin_is_fair(
        ids in proptest::collection::btree_set(1..1000i64, 1..8),
        calls in 0..200usize,
        hold in any::<bool>(),
    ) {
        let targets: Vec<Target> = ids.iter().map(|&id| target(id, 3)).collect();
        let ids: Vec<i64> = ids.into_iter().collect();
        let mut p = plan(&ids);
        p.strategy = RoutingStrategy::RoundRobin;
        let c = CompiledPlan::new(p, &targets);
        let mut live = Live::new();
        let mut rng = StdRng::seed_from_u64(0);
        let mut counts: HashMap<i64, u32> = ids.iter().map(|&id| (id, 0)).collect();
        for _ in 0..calls {
            let t = live.route(&c, &CallFacts::default(), &[], T0, &mut rng).target().unwrap();
            if !hold {
                live.released(t, T0);
            }
            *counts.get_mut(&t).unwrap() += 1;
        }
        let max = counts.values().max().unwrap();
        let min = counts.values().min().unwrap();
        prop_assert!(max - min <= 1, "{:?}", counts);
    }
}

//! Table-driven tests of assignment with an injected clock: each step runs at a given `now`.

use crate::{Assignment, Match, Millis, Pool, PoolNumber, VisitorProfile, RECENT_WINDOW_MS};
use callopt_domain::{VisitorId, E164};

const MIN: Millis = 60_000;
/// The idle timeout every step uses: 30 minutes.
const IDLE: Millis = 30 * MIN;

fn e164() -> E164 {
    E164::parse("e164", "+14155550100", None).unwrap()
}

fn number(id: i64, country: &str, languages: &[&str]) -> PoolNumber {
    PoolNumber {
        id,
        e164: e164(),
        country: country.to_string(),
        languages: languages.iter().map(|l| l.to_string()).collect(),
    }
}

/// A pool of numbers with ids `1..=n`, no country and no language.
fn plain(n: i64) -> Pool {
    Pool::new((1..=n).map(|id| number(id, "", &[])).collect())
}

fn visitor(name: &str) -> VisitorId {
    VisitorId(format!("visitor-{name}"))
}

/// One step of a script.
#[derive(Debug)]
enum Op {
    /// `assign` for a visitor with no country and no language.
    Assign(&'static str),
    /// `assign` for a visitor with a country and a language.
    AssignGeo(&'static str, Option<&'static str>, Option<&'static str>),
    /// `renew`.
    Renew(&'static str),
    /// `lease_of`.
    LeaseOf(&'static str),
    /// `record_call`.
    Call(i64),
    /// `restore(visitor, number, assigned_at, expires_at)`.
    Restore(&'static str, i64, Millis, Millis),
    /// `sync`.
    Sync(Vec<PoolNumber>),
    /// `utilisation`.
    Utilisation,
}

/// What a step returns.
#[derive(Debug, PartialEq)]
enum Out {
    Assigned(Assignment),
    Lease(Option<(i64, Millis)>),
    Counts(usize, usize),
    Done,
}

fn new(number_id: i64, expires_at: Millis, matched: Match) -> Out {
    Out::Assigned(Assignment::New {
        number_id,
        expires_at,
        matched,
    })
}

fn renewed(number_id: i64, expires_at: Millis) -> Out {
    Out::Assigned(Assignment::Renewed {
        number_id,
        expires_at,
    })
}

/// Steps of a script: at `now`, do this, expect that.
type Script = Vec<(Millis, Op, Out)>;

const EXHAUSTED: Out = Out::Assigned(Assignment::Exhausted);

/// Runs the steps in order, checking each result and the pool's indexes after each step.
fn run(pool: &mut Pool, steps: Script) {
    for (i, (now, op, want)) in steps.into_iter().enumerate() {
        let got = match &op {
            Op::Assign(v) => Out::Assigned(assign(pool, v, None, None, now)),
            Op::AssignGeo(v, c, l) => Out::Assigned(assign(pool, v, *c, *l, now)),
            Op::Renew(v) => Out::Lease(pool.renew(&visitor(v), now, IDLE)),
            Op::LeaseOf(v) => Out::Lease(pool.lease_of(&visitor(v), now)),
            Op::Call(n) => {
                pool.record_call(*n, now);
                Out::Done
            }
            Op::Restore(v, n, at, exp) => {
                pool.restore(visitor(v), *n, *at, *exp, now);
                Out::Done
            }
            Op::Sync(numbers) => {
                pool.sync(numbers.clone(), now);
                Out::Done
            }
            Op::Utilisation => {
                let (leased, total) = pool.utilisation(now);
                Out::Counts(leased, total)
            }
        };
        assert_eq!(got, want, "step {i}: {op:?} at {now}");
        pool.assert_consistent();
    }
}

fn assign(
    pool: &mut Pool,
    v: &str,
    country: Option<&str>,
    language: Option<&str>,
    now: Millis,
) -> Assignment {
    let id = visitor(v);
    let who = VisitorProfile {
        visitor: &id,
        country,
        language,
    };
    pool.assign(&who, now, IDLE)
}

#[test]
fn renewal_keeps_the_number_and_pushes_expiry() {
    use Op::*;
    run(
        &mut plain(2),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            (10 * MIN, Assign("a"), renewed(1, 40 * MIN)),
            (20 * MIN, Renew("a"), Out::Lease(Some((1, 50 * MIN)))),
            // Past the first expiry: the old expiry entry must not free the renewed lease.
            (35 * MIN, Utilisation, Out::Counts(1, 2)),
            (35 * MIN, LeaseOf("a"), Out::Lease(Some((1, 50 * MIN)))),
            (35 * MIN, Assign("b"), new(2, 65 * MIN, Match::Any)),
            (49 * MIN, Assign("a"), renewed(1, 79 * MIN)),
            // Renewing without a lease assigns nothing.
            (50 * MIN, Renew("c"), Out::Lease(None)),
            (50 * MIN, Utilisation, Out::Counts(2, 2)),
        ],
    );
}

#[test]
fn a_lease_is_expired_at_exactly_expires_at() {
    use Op::*;
    run(
        &mut plain(1),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            (30 * MIN - 1, LeaseOf("a"), Out::Lease(Some((1, 30 * MIN)))),
            (30 * MIN - 1, Assign("b"), EXHAUSTED),
            (30 * MIN, LeaseOf("a"), Out::Lease(None)),
            (30 * MIN, Renew("a"), Out::Lease(None)),
            (30 * MIN, Utilisation, Out::Counts(0, 1)),
            (30 * MIN, Assign("b"), new(1, 60 * MIN, Match::Any)),
        ],
    );
}

#[test]
fn a_returning_visitor_after_expiry_gets_a_fresh_choice() {
    use Op::*;
    run(
        &mut plain(2),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            // Number 2 was never assigned, so it beats number 1.
            (30 * MIN, Assign("a"), new(2, 60 * MIN, Match::Any)),
            (90 * MIN, Assign("a"), new(1, 120 * MIN, Match::Any)),
        ],
    );
    // With one number the fresh choice is the same number, but a new lease.
    run(
        &mut plain(1),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            (45 * MIN, Assign("a"), new(1, 75 * MIN, Match::Any)),
        ],
    );
}

fn geo_pool() -> Pool {
    Pool::new(vec![
        number(1, "US", &["en"]),
        number(2, "US", &["es"]),
        number(3, "MX", &["es"]),
        number(4, "FR", &["fr"]),
        number(5, "CA", &["en", "fr"]),
    ])
}

#[test]
fn country_and_language_beat_country_beat_language_beat_any() {
    let cases: &[(Option<&str>, Option<&str>, i64, Match)] = &[
        (Some("US"), Some("es"), 2, Match::CountryAndLanguage),
        (Some("US"), Some("en"), 1, Match::CountryAndLanguage),
        (Some("CA"), Some("fr"), 5, Match::CountryAndLanguage),
        (Some("US"), Some("de"), 1, Match::Country),
        (Some("MX"), Some("en"), 3, Match::Country),
        (Some("CA"), None, 5, Match::Country),
        (Some("ES"), Some("es"), 2, Match::Language),
        (Some("BE"), Some("fr"), 4, Match::Language),
        (None, Some("fr"), 4, Match::Language),
        (Some("DE"), Some("de"), 1, Match::Any),
        (None, None, 1, Match::Any),
        (Some(""), Some(""), 1, Match::Any),
        (Some("mx"), Some("ES-us"), 3, Match::CountryAndLanguage),
        (Some(" fr "), Some("FR_be"), 4, Match::CountryAndLanguage),
    ];
    for &(country, language, id, matched) in cases {
        let got = assign(&mut geo_pool(), "a", country, language, 0);
        let want = Assignment::New {
            number_id: id,
            expires_at: IDLE,
            matched,
        };
        assert_eq!(got, want, "{country:?} {language:?}");
    }
}

#[test]
fn tiers_fall_through_as_numbers_are_leased() {
    use Op::*;
    let us_es = |v| AssignGeo(v, Some("US"), Some("es"));
    run(
        &mut geo_pool(),
        vec![
            (0, us_es("a"), new(2, IDLE, Match::CountryAndLanguage)),
            (0, us_es("b"), new(1, IDLE, Match::Country)),
            (0, us_es("c"), new(3, IDLE, Match::Language)),
            (0, us_es("d"), new(4, IDLE, Match::Any)),
            (0, us_es("e"), new(5, IDLE, Match::Any)),
            (0, us_es("f"), EXHAUSTED),
        ],
    );
}

#[test]
fn the_least_recently_assigned_number_is_chosen() {
    use Op::*;
    run(
        &mut plain(3),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            (MIN, Assign("b"), new(2, 31 * MIN, Match::Any)),
            (2 * MIN, Assign("c"), new(3, 32 * MIN, Match::Any)),
            // Renewal keeps a holding number but is not an assignment.
            (20 * MIN, Assign("a"), renewed(1, 50 * MIN)),
            (40 * MIN, Assign("d"), new(2, 70 * MIN, Match::Any)),
            (40 * MIN, Assign("e"), new(3, 70 * MIN, Match::Any)),
            (40 * MIN, Assign("f"), EXHAUSTED),
            (50 * MIN, Assign("f"), new(1, 80 * MIN, Match::Any)),
            // All free again: assigned at 40 (2), 40 (3) and 50 (1) minutes.
            (2 * 60 * MIN, Assign("g"), new(2, 150 * MIN, Match::Any)),
            (2 * 60 * MIN, Assign("h"), new(3, 150 * MIN, Match::Any)),
            (2 * 60 * MIN, Assign("i"), new(1, 150 * MIN, Match::Any)),
        ],
    );
}

#[test]
fn lowest_recent_call_volume_beats_recency() {
    use Op::*;
    run(
        &mut plain(3),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            // A call on a free number that was never assigned.
            (20 * MIN, Call(2), Out::Done),
            // 3 has no calls and was never assigned.
            (21 * MIN, Assign("b"), new(3, 51 * MIN, Match::Any)),
            // 1 (no calls, assigned at 0) beats 2 (one call, never assigned).
            (40 * MIN, Assign("c"), new(1, 70 * MIN, Match::Any)),
            // Calls on a leased number count once it is free again.
            (45 * MIN, Call(1), Out::Done),
            (45 * MIN, Call(1), Out::Done),
            (45 * MIN, Call(42), Out::Done),
            // Free at 70: 1 (two calls), 2 (one call, until 80), 3 (none).
            (70 * MIN, Assign("d"), new(3, 100 * MIN, Match::Any)),
            (70 * MIN, Assign("e"), new(2, 100 * MIN, Match::Any)),
            (70 * MIN, Assign("f"), new(1, 100 * MIN, Match::Any)),
        ],
    );
}

#[test]
fn call_volume_decays_out_after_the_window() {
    use Op::*;
    run(
        &mut plain(3),
        vec![
            (0, Call(2), Out::Done),
            (20 * MIN, Call(1), Out::Done),
            // 1 and 2 each have a call; 3 has none.
            (59 * MIN, Assign("a"), new(3, 89 * MIN, Match::Any)),
            // 2's call is an hour old: 2 now has fewer calls than 1.
            (RECENT_WINDOW_MS, Assign("b"), new(2, 90 * MIN, Match::Any)),
            (RECENT_WINDOW_MS, Assign("c"), new(1, 90 * MIN, Match::Any)),
        ],
    );
    // Decay while free re-orders the free numbers without any call or assignment in between.
    run(
        &mut plain(2),
        vec![
            (0, Call(1), Out::Done),
            (5 * MIN, Call(2), Out::Done),
            (5 * MIN, Call(2), Out::Done),
            (
                RECENT_WINDOW_MS - 1,
                Assign("a"),
                new(1, 90 * MIN - 1, Match::Any),
            ),
            (
                2 * RECENT_WINDOW_MS,
                Assign("b"),
                new(2, 150 * MIN, Match::Any),
            ),
        ],
    );
}

#[test]
fn exhaustion_frees_up_when_a_lease_expires() {
    use Op::*;
    run(
        &mut plain(2),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            (5 * MIN, Assign("b"), new(2, 35 * MIN, Match::Any)),
            (10 * MIN, Assign("c"), EXHAUSTED),
            (29 * MIN, Utilisation, Out::Counts(2, 2)),
            (30 * MIN, Assign("c"), new(1, 60 * MIN, Match::Any)),
            (31 * MIN, Assign("d"), EXHAUSTED),
            (35 * MIN, Assign("d"), new(2, 65 * MIN, Match::Any)),
        ],
    );
    run(
        &mut Pool::new(vec![]),
        vec![(0, Op::Assign("a"), EXHAUSTED)],
    );
}

#[test]
fn restore_re_establishes_leases_and_rejects_stale_ones() {
    use Op::*;
    let live = |_visitor: &str, n| Out::Lease(Some((n, 20 * MIN)));
    let cases: Vec<(&str, Script)> = vec![
        (
            "a live lease comes back and is renewed",
            vec![
                (0, Restore("a", 1, -10 * MIN, 20 * MIN), Out::Done),
                (0, LeaseOf("a"), live("a", 1)),
                (0, Assign("b"), new(2, 30 * MIN, Match::Any)),
                (MIN, Assign("a"), renewed(1, 31 * MIN)),
            ],
        ),
        (
            "a lease that ends at now is stale",
            vec![
                (0, Restore("a", 1, -40 * MIN, 0), Out::Done),
                (0, LeaseOf("a"), Out::Lease(None)),
                (0, Utilisation, Out::Counts(0, 2)),
            ],
        ),
        (
            "an unknown number is ignored",
            vec![
                (0, Restore("a", 9, -10 * MIN, 20 * MIN), Out::Done),
                (0, Utilisation, Out::Counts(0, 2)),
            ],
        ),
        (
            "a later-ending holder keeps the number",
            vec![
                (0, Restore("a", 1, -10 * MIN, 20 * MIN), Out::Done),
                (0, Restore("b", 1, -5 * MIN, 10 * MIN), Out::Done),
                (0, LeaseOf("b"), Out::Lease(None)),
                (0, LeaseOf("a"), live("a", 1)),
            ],
        ),
        (
            "an earlier-ending holder is displaced",
            vec![
                (0, Restore("a", 1, -10 * MIN, 10 * MIN), Out::Done),
                (0, Restore("b", 1, -5 * MIN, 20 * MIN), Out::Done),
                (0, LeaseOf("a"), Out::Lease(None)),
                (0, LeaseOf("b"), live("b", 1)),
                (0, Utilisation, Out::Counts(1, 2)),
            ],
        ),
        (
            "a visitor keeps its later-ending lease",
            vec![
                (0, Restore("a", 1, -10 * MIN, 20 * MIN), Out::Done),
                (0, Restore("a", 2, -5 * MIN, 10 * MIN), Out::Done),
                (0, LeaseOf("a"), live("a", 1)),
                (0, Utilisation, Out::Counts(1, 2)),
            ],
        ),
        (
            "assigned_at counts as the last assignment",
            vec![
                (0, Restore("a", 2, -50 * MIN, 5 * MIN), Out::Done),
                (0, Restore("b", 1, -20 * MIN, 5 * MIN), Out::Done),
                (5 * MIN, Assign("c"), new(2, 35 * MIN, Match::Any)),
            ],
        ),
    ];
    for (name, steps) in cases {
        eprintln!("case: {name}");
        run(&mut plain(2), steps);
    }
}

#[test]
fn sync_keeps_leases_on_surviving_numbers_and_drops_removed_ones() {
    use Op::*;
    let next = vec![
        number(1, "US", &["en", "es"]),
        number(3, "US", &["en"]),
        number(4, "MX", &["es"]),
        number(3, "FR", &["fr"]),
    ];
    run(
        &mut Pool::new(vec![
            number(1, "US", &["en"]),
            number(2, "US", &["en"]),
            number(3, "US", &["en"]),
        ]),
        vec![
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            (MIN, Assign("b"), new(2, 31 * MIN, Match::Any)),
            (2 * MIN, Call(3), Out::Done),
            (5 * MIN, Sync(next), Out::Done),
            (5 * MIN, Utilisation, Out::Counts(1, 3)),
            (5 * MIN, LeaseOf("b"), Out::Lease(None)),
            (6 * MIN, Assign("a"), renewed(1, 36 * MIN)),
            // 3 kept its call, so the new number 4 comes first.
            (6 * MIN, Assign("b"), new(4, 36 * MIN, Match::Any)),
            // 1 now speaks Spanish too; 3 stayed in the US (its duplicate was ignored).
            (
                36 * MIN,
                AssignGeo("c", Some("ES"), Some("es")),
                new(1, 66 * MIN, Match::Language),
            ),
            (
                36 * MIN,
                AssignGeo("d", Some("US"), Some("fr")),
                new(3, 66 * MIN, Match::Country),
            ),
        ],
    );
}

#[test]
fn utilisation_counts_live_leases() {
    use Op::*;
    run(
        &mut plain(3),
        vec![
            (0, Utilisation, Out::Counts(0, 3)),
            (0, Assign("a"), new(1, 30 * MIN, Match::Any)),
            (10 * MIN, Assign("b"), new(2, 40 * MIN, Match::Any)),
            (10 * MIN, Assign("a"), renewed(1, 40 * MIN)),
            (15 * MIN, Utilisation, Out::Counts(2, 3)),
            (39 * MIN, Assign("c"), new(3, 69 * MIN, Match::Any)),
            (39 * MIN, Utilisation, Out::Counts(3, 3)),
            (40 * MIN, Utilisation, Out::Counts(1, 3)),
            (69 * MIN, Utilisation, Out::Counts(0, 3)),
        ],
    );
}

#[test]
fn new_ignores_repeated_ids() {
    let pool = Pool::new(vec![
        number(1, "US", &[]),
        number(1, "FR", &[]),
        number(2, "FR", &[]),
    ]);
    assert_eq!(pool.len(), 2);
    assert!(!pool.is_empty());
    assert_eq!(pool.number(1).map(|n| n.country.as_str()), Some("US"));
    assert_eq!(pool.number(3), None);
    assert!(Pool::new(vec![]).is_empty());
    pool.assert_consistent();
}

/// 100,000 visitors on 100,000 numbers, then every one renewed: an O(n) step per operation
/// would make this suite crawl.
#[test]
fn a_hundred_thousand_visitors_assign_and_renew() {
    const N: i64 = 100_000;
    let countries = ["US", "CA", "MX", "FR", "DE"];
    let languages = ["en", "es", "fr", "de"];
    let shown = e164();
    let numbers = (0..N)
        .map(|i| PoolNumber {
            id: i + 1,
            e164: shown.clone(),
            country: countries[i as usize % 5].to_string(),
            languages: vec![languages[i as usize % 4].to_string()],
        })
        .collect();
    let mut pool = Pool::new(numbers);
    let visitors: Vec<VisitorId> = (0..N).map(|i| VisitorId(format!("v{i:08}"))).collect();
    let profile = |i: usize| VisitorProfile {
        visitor: &visitors[i],
        country: Some(countries[i % 3]),
        language: Some(languages[i % 4]),
    };
    let mut held = Vec::with_capacity(N as usize);
    for i in 0..N as usize {
        match pool.assign(&profile(i), i as Millis, IDLE) {
            Assignment::New { number_id, .. } => held.push(number_id),
            other => panic!("visitor {i}: {other:?}"),
        }
        if i % 10_000 == 0 {
            pool.record_call(held[i], i as Millis);
        }
    }
    let last = visitor("one-too-many");
    let who = VisitorProfile {
        visitor: &last,
        country: None,
        language: None,
    };
    assert_eq!(pool.assign(&who, N, IDLE), Assignment::Exhausted);
    for (i, &number_id) in held.iter().enumerate() {
        let now = N + i as Millis;
        let want = Assignment::Renewed {
            number_id,
            expires_at: now + IDLE,
        };
        assert_eq!(pool.assign(&profile(i), now, IDLE), want, "visitor {i}");
    }
    assert_eq!(pool.utilisation(2 * N), (N as usize, N as usize));
    pool.assert_consistent();
}

#[test]
fn the_peak_counts_leases_that_ended_between_two_looks() {
    let mut pool = plain(5);
    for (i, who) in ["a", "b", "c"].iter().enumerate() {
        assign(&mut pool, who, None, None, i as Millis * MIN);
    }
    // Two of the three leases have ended by the time anyone looks: the peak still says three.
    let later = IDLE + MIN + 30_000;
    assert_eq!(pool.utilisation(later), (1, 5));
    assert_eq!(pool.take_peak(later), (3, 5));
    // The next peak starts from what is leased now.
    assert_eq!(pool.take_peak(later), (1, 5));
    assign(&mut pool, "d", None, None, later);
    assert_eq!(pool.take_peak(later), (2, 5));
}

#[test]
fn candidates_come_in_the_order_assign_would_hand_them_out() {
    for (country, language) in [
        (Some("US"), Some("es")),
        (Some("CA"), Some("fr")),
        (None, Some("fr")),
        (None, None),
    ] {
        let mut offered = geo_pool();
        let who = VisitorProfile {
            visitor: &visitor("x"),
            country,
            language,
        };
        let all = offered.candidates(&who, 0, 10);
        let mut assigned = geo_pool();
        let mut one_by_one = Vec::new();
        for i in 0..10 {
            match assign(&mut assigned, &format!("v{i}"), country, language, 0) {
                Assignment::New { number_id, .. } => one_by_one.push(number_id),
                _ => break,
            }
        }
        assert_eq!(all, one_by_one, "{country:?} {language:?}");
        assert_eq!(offered.candidates(&who, 0, 2), one_by_one[..2]);
        assert_eq!(offered.utilisation(0), (0, 5), "offering leases nothing");
        offered.assert_consistent();
    }
}

#[test]
fn a_lease_held_elsewhere_displaces_what_this_pool_held() {
    let mut pool = plain(3);
    let (a, b) = (visitor("a"), visitor("b"));
    assert_eq!(
        Out::Assigned(assign(&mut pool, "a", None, None, 0)),
        new(1, IDLE, Match::Any)
    );
    // Another node leased number 1 to b: a loses it here, and b holds it.
    assert!(pool.hold(&b, 1, 10, 10 + IDLE, 10));
    assert_eq!(pool.lease_of(&a, 10), None);
    assert_eq!(pool.lease_of(&b, 10), Some((1, 10 + IDLE)));
    pool.assert_consistent();
    // b moves to number 2 (its lease on 1 ends), then renews there.
    assert!(pool.hold(&b, 2, 20, 20 + IDLE, 20));
    assert!(pool.hold(&b, 2, 20, 30 + IDLE, 30));
    assert_eq!(pool.lease_of(&b, 30), Some((2, 30 + IDLE)));
    assert_eq!(pool.utilisation(30), (1, 3));
    pool.assert_consistent();
    // Unknown numbers and leases already over change nothing.
    assert!(!pool.hold(&a, 99, 30, 30 + IDLE, 30));
    assert!(pool.hold(&a, 3, 30, 30, 30));
    assert_eq!(pool.utilisation(30), (1, 3));
    pool.release(&b, 40);
    assert_eq!(pool.utilisation(40), (0, 3));
    pool.assert_consistent();
}

//! The strategies of a routing plan: how one target is picked among the eligible targets of a
//! tier. Each is a pure function over candidates given in ascending target id order.

use std::cmp::Ordering;

/// An eligible target of the tier being decided, with what the strategies compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Index of the target in its compiled plan.
    pub index: usize,
    /// The target's id: candidates come in ascending id order, and ties go to the lowest.
    pub id: i64,
    /// The target's weight (weighted strategy).
    pub weight: u32,
    /// Calls ringing or connected on it now (least busy).
    pub live: u32,
    /// Its concurrency cap (least busy); `None` is unlimited.
    pub concurrent: Option<u32>,
    /// Attempts routed to it in the last hour (lowest volume); 0 for other strategies.
    pub volume: u32,
}

/// At random, in proportion to weight. A weight of 0 counts as 1: every eligible target can be
/// chosen. Returns a position in `candidates`, which must not be empty.
pub(crate) fn weighted(candidates: &[Candidate], rng: &mut impl rand::Rng) -> usize {
    let weight = |c: &Candidate| u64::from(c.weight.max(1));
    let total: u64 = candidates.iter().map(weight).sum();
    let mut pick = rng.random_range(0..total);
    for (pos, c) in candidates.iter().enumerate() {
        let w = weight(c);
        if pick < w {
            return pos;
        }
        pick -= w;
    }
    candidates.len() - 1
}

/// The first candidate after the last target chosen in this tier (by id), wrapping around.
pub(crate) fn round_robin(candidates: &[Candidate], last: Option<i64>) -> usize {
    match last {
        Some(last) => candidates.iter().position(|c| c.id > last).unwrap_or(0),
        None => 0,
    }
}

/// The lowest ratio of live calls to concurrency cap (an uncapped target's ratio is 0), then the
/// fewest live calls, then the lowest id.
pub(crate) fn least_busy(candidates: &[Candidate]) -> usize {
    best_by(candidates, |a, b| {
        busy_ratio(a)
            .cmp_ratio(busy_ratio(b))
            .then(a.live.cmp(&b.live))
    })
}

/// The fewest attempts in the last hour, then the lowest id.
pub(crate) fn lowest_volume(candidates: &[Candidate]) -> usize {
    best_by(candidates, |a, b| a.volume.cmp(&b.volume))
}

/// The position of the first candidate that no later one beats (`Less` is better): with
/// candidates in id order, ties go to the lowest id.
fn best_by(candidates: &[Candidate], cmp: impl Fn(&Candidate, &Candidate) -> Ordering) -> usize {
    let mut best = 0;
    for (pos, c) in candidates.iter().enumerate().skip(1) {
        if cmp(c, &candidates[best]) == Ordering::Less {
            best = pos;
        }
    }
    best
}

/// A fraction `num / den` with `den > 0`, compared exactly.
#[derive(Debug, Clone, Copy)]
struct Ratio {
    /// Numerator.
    num: u64,
    /// Denominator, never 0.
    den: u64,
}

impl Ratio {
    /// Compares two fractions by cross-multiplication (no rounding).
    fn cmp_ratio(self, other: Ratio) -> Ordering {
        (self.num * other.den).cmp(&(other.num * self.den))
    }
}

/// Live calls over the concurrency cap; 0 for an uncapped target. An eligible capped target has
/// a cap above its live count, so the cap is never 0 here (guarded all the same).
fn busy_ratio(c: &Candidate) -> Ratio {
    match c.concurrent {
        Some(cap) => Ratio {
            num: u64::from(c.live),
            den: u64::from(cap.max(1)),
        },
        None => Ratio { num: 0, den: 1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn cand(id: i64, live: u32, concurrent: Option<u32>, volume: u32) -> Candidate {
        Candidate {
            index: id as usize,
            id,
            weight: 1,
            live,
            concurrent,
            volume,
        }
    }

    #[test]
    fn least_busy_table() {
        // (candidates as (id, live, cap), chosen id, why)
        type Row<'a> = (&'a [(i64, u32, Option<u32>)], i64, &'a str);
        let table: &[Row] = &[
            (
                &[(1, 0, Some(5)), (2, 0, Some(5))],
                1,
                "tie goes to the lowest id",
            ),
            (
                &[(1, 2, Some(5)), (2, 1, Some(5))],
                2,
                "fewer live of equal cap",
            ),
            (&[(1, 2, Some(10)), (2, 1, Some(2))], 1, "2/10 beats 1/2"),
            (
                &[(1, 2, Some(4)), (2, 1, Some(2))],
                2,
                "equal ratio 2/4 = 1/2: fewer live",
            ),
            (&[(1, 1, Some(5)), (2, 3, None)], 2, "uncapped has ratio 0"),
            (
                &[(1, 0, Some(5)), (2, 3, None)],
                1,
                "ratio 0 both: fewer live",
            ),
            (&[(1, 4, None), (2, 3, None)], 2, "uncapped: fewer live"),
            (&[(1, 0, None), (2, 0, Some(1))], 1, "all idle: lowest id"),
        ];
        for (cands, want, why) in table {
            let cands: Vec<Candidate> = cands.iter().map(|&(id, l, c)| cand(id, l, c, 0)).collect();
            assert_eq!(cands[least_busy(&cands)].id, *want, "{why}");
        }
    }

    #[test]
    fn lowest_volume_table() {
        // (volumes of ids 1, 2, 3, chosen id)
        let table = [
            ([0, 0, 0], 1),
            ([3, 1, 2], 2),
            ([2, 2, 1], 3),
            ([1, 2, 1], 1),
        ];
        for (volumes, want) in table {
            let cands: Vec<Candidate> = (0..3)
                .map(|i| cand(i as i64 + 1, 0, None, volumes[i]))
                .collect();
            assert_eq!(cands[lowest_volume(&cands)].id, want, "{volumes:?}");
        }
    }

    #[test]
    fn round_robin_table() {
        let cands: Vec<Candidate> = [2, 5, 9].iter().map(|&id| cand(id, 0, None, 0)).collect();
        // (last chosen, chosen id)
        let table = [
            (None, 2),
            (Some(2), 5),
            (Some(5), 9),
            (Some(9), 2),
            (Some(3), 5),
            (Some(100), 2),
        ];
        for (last, want) in table {
            assert_eq!(cands[round_robin(&cands, last)].id, want, "{last:?}");
        }
    }

    #[test]
    fn weighted_is_deterministic_per_seed_and_skips_nothing() {
        let mut cands: Vec<Candidate> = (1..=3).map(|id| cand(id, 0, None, 0)).collect();
        cands[0].weight = 0;
        cands[2].weight = 1000;
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50)
                .map(|_| weighted(&cands, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let mut rng = StdRng::seed_from_u64(1);
        let picks: Vec<usize> = (0..20_000).map(|_| weighted(&cands, &mut rng)).collect();
        assert!(picks.contains(&0), "a weight of 0 counts as 1");
        assert!(picks.iter().filter(|&&p| p == 2).count() > 19_000);
    }
}

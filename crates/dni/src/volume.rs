//! Recent call volume per number: a ring of ten-minute buckets covering the last hour.

use crate::Millis;

/// How long a call counts toward its number's recent call volume: one hour.
pub const RECENT_WINDOW_MS: Millis = 3_600_000;

/// Width of one bucket of the ring: calls are counted per ten minutes.
pub const BUCKET_MS: Millis = 600_000;

/// Buckets in the ring: the window is six ten-minute buckets.
const BUCKETS: i64 = RECENT_WINDOW_MS / BUCKET_MS;

/// One number's calls over the last hour, in ten-minute buckets.
///
/// A call counts from the moment it is recorded until its bucket is six buckets old, that is for
/// between 50 and 60 minutes: never longer than [`RECENT_WINDOW_MS`]. The ring is 28 bytes per
/// number and every operation is constant time.
#[derive(Debug, Clone)]
pub(crate) struct RecentCalls {
    /// Calls per bucket, indexed by bucket number (time / [`BUCKET_MS`]) modulo the ring size.
    counts: [u32; BUCKETS as usize],
    /// Bucket number of the newest bucket the ring holds: it holds `head - 5 ..= head`.
    /// `i64::MIN` until the first call, so that any real time clears the ring.
    head: i64,
}

impl Default for RecentCalls {
    fn default() -> Self {
        Self {
            counts: [0; BUCKETS as usize],
            head: i64::MIN,
        }
    }
}

/// The bucket a time falls in.
fn bucket(t: Millis) -> i64 {
    t.div_euclid(BUCKET_MS)
}

/// The ring position of a bucket.
fn slot(b: i64) -> usize {
    b.rem_euclid(BUCKETS) as usize
}

impl RecentCalls {
    /// Moves the ring forward to `now`, dropping buckets that left the window. A `now` earlier
    /// than the newest bucket (a clock read out of order) changes nothing.
    pub fn advance(&mut self, now: Millis) {
        let cur = bucket(now);
        if cur <= self.head {
            return;
        }
        if cur.saturating_sub(self.head) >= BUCKETS {
            self.counts = [0; BUCKETS as usize];
        } else {
            for b in self.head + 1..=cur {
                self.counts[slot(b)] = 0;
            }
        }
        self.head = cur;
    }

    /// Counts one call at `now`. A call older than the window the ring holds is not counted.
    pub fn record(&mut self, now: Millis) {
        self.advance(now);
        let b = bucket(now);
        if b > self.head - BUCKETS {
            let c = &mut self.counts[slot(b)];
            *c = c.saturating_add(1);
        }
    }

    /// Calls in the window as of the last [`advance`](Self::advance) or [`record`](Self::record).
    pub fn total(&self) -> u32 {
        self.counts.iter().fold(0u32, |a, &c| a.saturating_add(c))
    }

    /// When the total next drops (the oldest counted bucket leaves the window), if anything is
    /// counted.
    pub fn next_drop(&self) -> Option<Millis> {
        if self.total() == 0 {
            return None;
        }
        (self.head - BUCKETS + 1..=self.head)
            .find(|&b| self.counts[slot(b)] > 0)
            .map(|b| (b + BUCKETS).saturating_mul(BUCKET_MS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    /// Name, calls at these minutes, read at this minute, expected total and next drop (minutes).
    type Case = (&'static str, &'static [Millis], Millis, u32, Option<Millis>);

    #[test]
    fn counts_calls_within_the_window() {
        let cases: &[Case] = &[
            ("nothing recorded", &[], 0, 0, None),
            ("one call, just after", &[5], 6, 1, Some(60)),
            ("one call, last moment of its window", &[5], 59, 1, Some(60)),
            ("one call, window over", &[5], 60, 0, None),
            ("two buckets, oldest dropped", &[5, 25], 61, 1, Some(80)),
            ("long silence clears the ring", &[1, 2, 3], 10_000, 0, None),
            ("same bucket counts twice", &[30, 31], 35, 2, Some(90)),
            (
                "late call older than the ring",
                &[200, 100],
                200,
                1,
                Some(260),
            ),
            ("negative times", &[-5], -1, 1, Some(50)),
        ];
        for (name, calls, at, total, next) in cases {
            let mut r = RecentCalls::default();
            for &m in *calls {
                r.record(m * MIN);
            }
            r.advance(at * MIN);
            assert_eq!(r.total(), *total, "{name}: total");
            assert_eq!(r.next_drop(), next.map(|m| m * MIN), "{name}: next drop");
        }
    }

    #[test]
    fn a_call_never_counts_past_the_window() {
        for t in [0, 1, BUCKET_MS - 1, BUCKET_MS, 7 * BUCKET_MS + 12_345] {
            let mut r = RecentCalls::default();
            r.record(t);
            r.advance(t + RECENT_WINDOW_MS - BUCKET_MS);
            assert_eq!(r.total(), 1, "call at {t} still counts 50 minutes later");
            r.advance(t + RECENT_WINDOW_MS);
            assert_eq!(r.total(), 0, "call at {t} gone after the window");
        }
    }
}

//! Per-target counters: connected calls in the current local hour, day and month (for the caps),
//! and attempts over the last hour in one-minute buckets (for lowest-volume routing).

use crate::hours::{period_end, Period};
use crate::Millis;
use chrono_tz::Tz;

/// Connected calls in one calendar period (the current one, as of the last call counted).
///
/// The bucket remembers when its period ends, so reading it needs no time-zone arithmetic: a
/// count whose period has ended counts as 0. Only counting a call after the period ended computes
/// the next period's end, once per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// Connected calls counted in the period.
    count: u32,
    /// The first instant after the period (ms); `Millis::MIN` when nothing was counted yet.
    ends: Millis,
}

impl Bucket {
    /// A bucket with nothing counted.
    pub const EMPTY: Self = Self {
        count: 0,
        ends: Millis::MIN,
    };

    /// Connected calls in the period that contains `now`. A `now` before the period (a clock
    /// read out of order) still sees the count: that errs on the side of the cap.
    pub fn count_at(&self, now: Millis) -> u32 {
        if now < self.ends {
            self.count
        } else {
            0
        }
    }

    /// Counts one connected call at `now`, starting a new period of `zone` when the last one has
    /// ended.
    pub fn add(&mut self, zone: Tz, period: Period, now: Millis) {
        if now < self.ends {
            self.count = self.count.saturating_add(1);
        } else {
            self.ends = period_end(zone, period, now);
            self.count = 1;
        }
    }

    /// Counts `count` connected calls made earlier in the period that ends at `ends` and
    /// contains `now` (read from the store at start); a bucket already counting that period
    /// keeps the larger of the two counts.
    pub fn restore(&mut self, count: u32, ends: Millis, now: Millis) {
        if now < self.ends {
            self.count = self.count.max(count);
        } else {
            self.ends = ends;
            self.count = count;
        }
    }

    /// Whether the bucket holds nothing that counts at `now`.
    pub fn is_idle(&self, now: Millis) -> bool {
        self.count_at(now) == 0
    }
}

/// Width of one bucket of the volume ring: one minute.
pub const VOLUME_BUCKET_MS: Millis = 60_000;

/// Buckets in the volume ring: sixty minutes.
const VOLUME_BUCKETS: usize = 60;

/// Attempts routed to a target over the last hour: the current minute and the 59 before it.
///
/// 248 bytes per target; recording is constant time, reading walks at most the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Volume {
    /// Attempts per minute, indexed by minute number modulo the ring size.
    counts: [u32; VOLUME_BUCKETS],
    /// Minute number of the newest minute the ring holds (it holds `head - 59 ..= head`);
    /// `i64::MIN` until the first attempt.
    head: i64,
}

impl Volume {
    /// A ring with nothing recorded.
    pub const EMPTY: Self = Self {
        counts: [0; VOLUME_BUCKETS],
        head: i64::MIN,
    };

    /// Records one attempt at `now`. An attempt older than the ring is not recorded; one in an
    /// earlier minute still in the ring counts in that minute.
    pub fn record(&mut self, now: Millis) {
        self.record_many(now, 1);
    }

    /// Records `n` attempts at `at`, as [`Volume::record`] records one.
    pub fn record_many(&mut self, at: Millis, n: u32) {
        let now = at;
        let minute = now.div_euclid(VOLUME_BUCKET_MS);
        if minute > self.head {
            if minute.saturating_sub(self.head) >= VOLUME_BUCKETS as i64 {
                self.counts = [0; VOLUME_BUCKETS];
            } else {
                for m in self.head + 1..=minute {
                    self.counts[slot(m)] = 0;
                }
            }
            self.head = minute;
        } else if self.head - minute >= VOLUME_BUCKETS as i64 {
            return;
        }
        let c = &mut self.counts[slot(minute)];
        *c = c.saturating_add(n);
    }

    /// Attempts in the hour that ends with the minute of `now`.
    pub fn at(&self, now: Millis) -> u32 {
        let minute = now.div_euclid(VOLUME_BUCKET_MS);
        let oldest = minute.saturating_sub(VOLUME_BUCKETS as i64 - 1);
        let from = oldest.max(self.head.saturating_sub(VOLUME_BUCKETS as i64 - 1));
        let to = minute.min(self.head);
        (from..=to).map(|m| self.counts[slot(m)]).sum()
    }

    /// Whether nothing recorded still counts at `now`.
    pub fn is_idle(&self, now: Millis) -> bool {
        now.div_euclid(VOLUME_BUCKET_MS).saturating_sub(self.head) >= VOLUME_BUCKETS as i64
    }
}

/// The ring position of a minute.
fn slot(minute: i64) -> usize {
    minute.rem_euclid(VOLUME_BUCKETS as i64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_slides_by_the_minute() {
        let mut v = Volume::EMPTY;
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % VOLUME_BUCKET_MS;
        assert_eq!(v.at(t0), 0);
        v.record(t0);
        v.record(t0 + 30_000);
        v.record(t0 + 10 * VOLUME_BUCKET_MS);
        // (time of reading, attempts counted)
        let table = [
            (t0, 2),
            (t0 + 59_999, 2),
            (t0 + 10 * VOLUME_BUCKET_MS, 3),
            (t0 + 59 * VOLUME_BUCKET_MS, 3),
            (t0 + 60 * VOLUME_BUCKET_MS, 1),
            (t0 + 69 * VOLUME_BUCKET_MS, 1),
            (t0 + 70 * VOLUME_BUCKET_MS, 0),
            (t0 - VOLUME_BUCKET_MS, 0),
        ];
        for (now, want) in table {
            assert_eq!(v.at(now), want, "at {}", now - t0);
        }
        assert!(!v.is_idle(t0 + 69 * VOLUME_BUCKET_MS));
        assert!(v.is_idle(t0 + 70 * VOLUME_BUCKET_MS));
        // A late record in a minute still held counts there; one older than the ring is dropped.
        v.record(t0 + 5 * VOLUME_BUCKET_MS);
        v.record(t0 - 60 * VOLUME_BUCKET_MS);
        assert_eq!(v.at(t0 + 10 * VOLUME_BUCKET_MS), 4);
        // Far ahead, the ring starts again.
        v.record(t0 + 1000 * VOLUME_BUCKET_MS);
        assert_eq!(v.at(t0 + 1000 * VOLUME_BUCKET_MS), 1);
    }

    #[test]
    fn buckets_reset_at_the_end_of_their_period() {
        let hour = 3_600_000;
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % hour;
        let mut b = Bucket::EMPTY;
        assert_eq!(b.count_at(t0), 0);
        b.add(Tz::UTC, Period::Hour, t0 + 10);
        b.add(Tz::UTC, Period::Hour, t0 + hour - 1);
        assert_eq!(b.count_at(t0 + hour - 1), 2);
        assert_eq!(b.count_at(t0 - 5), 2, "an earlier clock read still sees it");
        assert_eq!(b.count_at(t0 + hour), 0);
        b.add(Tz::UTC, Period::Hour, t0 + hour);
        assert_eq!(b.count_at(t0 + hour), 1);
        assert!(b.is_idle(t0 + 2 * hour));
    }
}

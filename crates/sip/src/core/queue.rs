//! The core's timers: one first-in-first-out queue per delay.
//!
//! Nearly every timer the core sets is one of a few delays after the present (T1 and its
//! doublings up to T2, 64×T1, Timer D's 32 s, a ring timeout), and the present only moves
//! forward, so the timers of one delay come due in the order they were set. A queue per delay
//! keeps them in that order at the cost of an append, where one heap of every timer cost a
//! sift through a heap of millions (a timer lives up to 64×T1, and a busy router sets a dozen
//! per call) and moved that heap whole each time it grew. The next timer is the soonest of the
//! queues' fronts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Past this many distinct delays, further ones share one queue kept in order by insertion
/// (a delay drawn from configuration per target could otherwise add a queue each).
const MAX_QUEUES: usize = 32;

/// Timers as (due, order set, timer), sorted by (due, order set).
type Queue<T> = VecDeque<(Instant, u64, T)>;

/// Timers of type `T`, each due at an instant and fired soonest first; timers due at the same
/// instant fire in the order they were set.
#[derive(Debug)]
pub(super) struct TimerQueues<T> {
    /// Each queue's delay (`None`: the shared queue of any delay) and its timers.
    queues: Vec<(Option<Duration>, Queue<T>)>,
    /// The order of the next timer set.
    seq: u64,
    /// Timers held.
    len: usize,
}

impl<T> Default for TimerQueues<T> {
    fn default() -> Self {
        Self {
            queues: Vec::new(),
            seq: 0,
            len: 0,
        }
    }
}

impl<T> TimerQueues<T> {
    /// Sets `timer` to fire `after` from `now`.
    pub(super) fn set(&mut self, now: Instant, after: Duration, timer: T) {
        let entry = (now + after, self.seq, timer);
        self.seq += 1;
        self.len += 1;
        let i = match self.queues.iter().position(|(d, _)| *d == Some(after)) {
            Some(i) => i,
            None if self.queues.len() < MAX_QUEUES => {
                self.queues.push((Some(after), VecDeque::new()));
                self.queues.len() - 1
            }
            None => match self.queues.iter().position(|(d, _)| d.is_none()) {
                Some(i) => i,
                None => {
                    self.queues.push((None, VecDeque::new()));
                    self.queues.len() - 1
                }
            },
        };
        let queue = &mut self.queues[i].1;
        if queue.back().is_none_or(|(at, _, _)| *at <= entry.0) {
            queue.push_back(entry);
        } else {
            // Only the shared queue, or a present that went back (a caller's clock), lands here.
            let at = queue.partition_point(|(at, _, _)| *at <= entry.0);
            queue.insert(at, entry);
        }
    }

    /// The queue whose front is due soonest.
    fn soonest(&self) -> Option<usize> {
        let mut best: Option<(usize, (Instant, u64))> = None;
        for (i, (_, queue)) in self.queues.iter().enumerate() {
            if let Some((at, seq, _)) = queue.front() {
                if best.is_none_or(|(_, b)| (*at, *seq) < b) {
                    best = Some((i, (*at, *seq)));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// When the soonest timer is due.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.soonest()
            .and_then(|i| self.queues[i].1.front())
            .map(|(at, _, _)| *at)
    }

    /// Takes the soonest timer if it is due at or before `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<T> {
        let i = self.soonest()?;
        let queue = &mut self.queues[i].1;
        if queue.front().is_some_and(|(at, _, _)| *at <= now) {
            self.len -= 1;
            let timer = queue.pop_front().map(|(_, _, t)| t);
            if queue.is_empty() && queue.capacity() > 4096 {
                // A burst is over: give its memory back.
                queue.shrink_to(4096);
            }
            timer
        } else {
            None
        }
    }

    /// Timers held.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fires every timer due by `now`, in order.
    fn due(q: &mut TimerQueues<u32>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| q.pop_due(now)).collect()
    }

    #[test]
    fn timers_fire_soonest_first_across_delays_and_in_setting_order_when_due_together() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q = TimerQueues::default();
        q.set(t0, ms(500), 1);
        q.set(t0, ms(100), 2);
        q.set(t0 + ms(100), ms(400), 3); // due with 1, set after it
        q.set(t0 + ms(200), ms(100), 4);
        q.set(t0 + ms(200), ms(32_000), 5);
        assert_eq!(q.len(), 5);
        assert_eq!(q.next_due(), Some(t0 + ms(100)));
        assert_eq!(due(&mut q, t0 + ms(99)), Vec::<u32>::new());
        assert_eq!(due(&mut q, t0 + ms(300)), vec![2, 4]);
        assert_eq!(due(&mut q, t0 + ms(500)), vec![1, 3]);
        assert_eq!(q.next_due(), Some(t0 + ms(32_200)));
        assert_eq!(due(&mut q, t0 + ms(40_000)), vec![5]);
        assert_eq!((q.len(), q.next_due()), (0, None));
    }

    #[test]
    fn a_present_that_goes_back_and_more_delays_than_queues_keep_the_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut q = TimerQueues::default();
        let n = u32::try_from(MAX_QUEUES).expect("small") + 20;
        // Distinct delays, set from the latest present back to the earliest: every timer
        // is due at t0 + 1000 + i ms, the reverse of the setting order.
        for i in (0..n).rev() {
            q.set(t0 + ms(u64::from(i)), ms(1000), i);
        }
        for i in 0..n {
            q.set(t0, ms(2000 + u64::from(i) * 7), 1000 + i);
        }
        assert!(q.queues.len() <= MAX_QUEUES + 1);
        let fired = due(&mut q, t0 + ms(1_000_000));
        let mut expected: Vec<(u64, u32)> = (0..n)
            .map(|i| (1000 + u64::from(i), i))
            .chain((0..n).map(|i| (2000 + u64::from(i) * 7, 1000 + i)))
            .collect();
        expected.sort();
        assert_eq!(
            fired,
            expected.into_iter().map(|(_, t)| t).collect::<Vec<_>>()
        );
        assert_eq!(q.len(), 0);
    }
}

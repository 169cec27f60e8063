//! A campaign's pool of tracking numbers and the visitor leases on them.

use crate::free::{self, FreeIndex, Key};
use crate::volume::RecentCalls;
use crate::{Assignment, Millis, PoolNumber, VisitorProfile};
use callopt_domain::VisitorId;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// A visitor's hold on a number.
#[derive(Debug, Clone)]
struct Lease {
    /// Who holds the number, so that ending the lease can forget them.
    visitor: VisitorId,
    /// The first instant at which the lease is over: it is live while `now < expires_at`.
    expires_at: Millis,
}

/// What a number keeps across [`Pool::sync`]: its lease and what it is chosen by.
#[derive(Debug, Default)]
struct History {
    /// The lease on the number, if any.
    lease: Option<Lease>,
    /// When the number was last assigned; `None` if never.
    last_assigned: Option<Millis>,
    /// Calls on the number over the last hour.
    calls: RecentCalls,
}

/// One number and everything assignment tracks about it.
#[derive(Debug, Clone)]
struct Slot {
    /// The number as the pool was given it.
    number: PoolNumber,
    /// The free-index sets the number belongs to (its country, languages and pairs), by set id.
    sets: Vec<u32>,
    /// The current lease; `None` exactly while the number is free and in the free index.
    lease: Option<Lease>,
    /// When the number was last assigned, for least-recently-assigned choice; `None` if never,
    /// which sorts first.
    last_assigned: Option<Millis>,
    /// Calls on the number over the last hour.
    calls: RecentCalls,
    /// The call volume the free index sorts the number by (`calls.total()` at the last change),
    /// kept so that removing the number from the index finds its exact key.
    volume: u32,
    /// When `calls` next drops, exactly as entered in the aging index; `None` if no call counts.
    next_drop: Option<Millis>,
}

impl Slot {
    /// How the number sorts among free numbers: it is at position `slot` of the pool.
    fn key(&self, slot: usize) -> Key {
        free::key(self.volume, self.last_assigned, slot)
    }
}

/// An entry of a time-ordered index: `(at, slot)` packed so that it sorts by time, then slot.
fn timed(at: Millis, slot: usize) -> u128 {
    (u128::from(free::ordered(at)) << 64) | slot as u128
}

/// The time of a time-ordered entry (`slot` is `free::slot_of`).
fn time_of(entry: u128) -> Millis {
    ((entry >> 64) as u64 ^ (1 << 63)) as i64
}

/// Interned tier values: each country, language and (country, language) pair gets the id of
/// its set in the free index.
#[derive(Debug, Clone, Default)]
struct Tiers {
    /// Set id of each country (upper case).
    countries: HashMap<String, u32>,
    /// Set id of each language (lower-case primary subtag).
    languages: HashMap<String, u32>,
    /// Set id of each (country set id, language set id) pair.
    pairs: HashMap<(u32, u32), u32>,
    /// The next set id to hand out.
    next: u32,
}

impl Tiers {
    /// The set ids a number with this country and these languages belongs to, interning new
    /// values.
    fn intern(&mut self, country: &str, languages: &[String]) -> Vec<u32> {
        let mut sets = Vec::with_capacity(1 + 2 * languages.len());
        let country = country_key(country).map(|c| fresh(&mut self.countries, &mut self.next, c));
        sets.extend(country);
        for l in languages.iter().filter_map(|l| language_key(l)) {
            let l = fresh(&mut self.languages, &mut self.next, l);
            sets.push(l);
            if let Some(c) = country {
                let next = &mut self.next;
                sets.push(*self.pairs.entry((c, l)).or_insert_with(|| take(next)));
            }
        }
        sets.sort_unstable();
        sets.dedup();
        sets
    }

    /// The set ids of a visitor's (pair, country, language); `None` where no number has it.
    fn lookup(&self, who: &VisitorProfile<'_>) -> (Option<u32>, Option<u32>, Option<u32>) {
        let country = who.country.and_then(country_key);
        let country = country.and_then(|c| self.countries.get(c.as_ref()).copied());
        let language = who.language.and_then(language_key);
        let language = language.and_then(|l| self.languages.get(l.as_ref()).copied());
        let pair = country
            .zip(language)
            .and_then(|p| self.pairs.get(&p).copied());
        (pair, country, language)
    }
}

/// Takes the next set id.
fn take(next: &mut u32) -> u32 {
    *next += 1;
    *next - 1
}

/// The set id of `value`, interning it if new.
fn fresh(table: &mut HashMap<String, u32>, next: &mut u32, value: Cow<'_, str>) -> u32 {
    if let Some(&id) = table.get(value.as_ref()) {
        return id;
    }
    let id = take(next);
    table.insert(value.into_owned(), id);
    id
}

/// A pool of tracking numbers with its leases, indexed so that every operation is O(log n).
///
/// Time only moves when a method is given `now`: leases that expired and call volumes that aged
/// are settled lazily, in time order, at the start of each method that takes it.
#[derive(Clone, Default)]
pub struct Pool {
    /// The numbers and their state in id order (so that a slot breaks ties like its id); slots
    /// change only on `sync`.
    slots: Vec<Slot>,
    /// The slot of each number id.
    by_id: HashMap<i64, usize>,
    /// Countries, languages and pairs interned as free-index set ids.
    tiers: Tiers,
    /// Free numbers, ordered for choice within each matching tier.
    free: FreeIndex,
    /// The slot each lease holder holds, to find a returning visitor's number.
    visitors: HashMap<VisitorId, usize>,
    /// `(expires_at, slot)` of every lease, exactly one entry per leased slot (renewal moves it),
    /// so that leases are freed in expiry order and never by a stale entry.
    expiry: BTreeSet<u128>,
    /// `(next_drop, slot)` of every number with calls in the window, so that a number's volume is
    /// re-keyed in the free index when its calls age out.
    aging: BTreeSet<u128>,
    /// The most numbers leased at once since [`Pool::take_peak`] last ran: utilisation history
    /// records peaks, which sampling the count now and then would miss.
    peak: usize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("numbers", &self.slots.len())
            .field("leased", &self.expiry.len())
            .finish_non_exhaustive()
    }
}

/// When a lease taken or renewed at `now` ends. A lease lasts at least a millisecond, so that
/// the number handed out is leased when the caller reads it back.
fn lease_end(now: Millis, idle_ms: Millis) -> Millis {
    now.saturating_add(idle_ms.max(1))
}

/// A country code as the indexes spell it: trimmed, upper case; `None` if empty.
fn country_key(raw: &str) -> Option<Cow<'_, str>> {
    let c = raw.trim();
    match c {
        "" => None,
        _ if c.bytes().any(|b| b.is_ascii_lowercase()) => Some(Cow::Owned(c.to_ascii_uppercase())),
        _ => Some(Cow::Borrowed(c)),
    }
}

/// A language as the indexes spell it: the primary subtag (`pt` of `pt-BR`), lower case;
/// `None` if empty.
fn language_key(raw: &str) -> Option<Cow<'_, str>> {
    let l = raw.trim().split(['-', '_']).next().unwrap_or("");
    match l {
        "" => None,
        _ if l.bytes().any(|b| b.is_ascii_uppercase()) => Some(Cow::Owned(l.to_ascii_lowercase())),
        _ => Some(Cow::Borrowed(l)),
    }
}

impl Pool {
    /// A pool of numbers, all free. Number ids are unique: a repeated id is ignored (the first
    /// one counts). O(n log n).
    pub fn new(numbers: Vec<PoolNumber>) -> Self {
        Self::build(numbers, |_| History::default())
    }

    /// Assigns or renews. A visitor holding a live lease at `now` keeps the number and the lease
    /// is renewed to `now + idle_ms` ([`Assignment::Renewed`]). Otherwise a free number is
    /// chosen ([`Assignment::New`]): from the first non-empty tier of those matching the visitor's
    /// country and language, country only, language only, then any; within the tier, the lowest
    /// recent call volume, then the least recently assigned (never assigned first), then the
    /// lowest id. Leases that expired at or before `now` are freed first, in expiry order.
    pub fn assign(&mut self, who: &VisitorProfile<'_>, now: Millis, idle_ms: Millis) -> Assignment {
        if let Some((number_id, expires_at)) = self.renew(who.visitor, now, idle_ms) {
            return Assignment::Renewed {
                number_id,
                expires_at,
            };
        }
        let (pair, country, language) = self.tiers.lookup(who);
        let Some((key, matched)) = self.free.pick(pair, country, language) else {
            return Assignment::Exhausted;
        };
        let slot = free::slot_of(key);
        let expires_at = lease_end(now, idle_ms);
        self.start_lease(slot, who.visitor.clone(), now, expires_at);
        self.peak = self.peak.max(self.expiry.len());
        Assignment::New {
            number_id: self.slots[slot].number.id,
            expires_at,
            matched,
        }
    }

    /// Renews only: if `visitor` holds a live lease at `now`, it now ends at `now + idle_ms`
    /// and this returns `(number_id, expires_at)`; otherwise `None`, and nothing is assigned.
    pub fn renew(
        &mut self,
        visitor: &VisitorId,
        now: Millis,
        idle_ms: Millis,
    ) -> Option<(i64, Millis)> {
        self.settle(now);
        let slot = *self.visitors.get(visitor)?;
        let expires_at = lease_end(now, idle_ms);
        let lease = self.slots[slot].lease.as_mut()?;
        self.expiry.remove(&timed(lease.expires_at, slot));
        lease.expires_at = expires_at;
        self.expiry.insert(timed(expires_at, slot));
        Some((self.slots[slot].number.id, expires_at))
    }

    /// Re-establishes a lease read back from the store at start-up; the number counts as last
    /// assigned at `assigned_at`. Ignored if the number is unknown, if `expires_at <= now`, or if
    /// the number or the visitor already holds a lease that ends later (one lease per number and
    /// per visitor: the later-ending one wins, and a lease it displaces ends).
    pub fn restore(
        &mut self,
        visitor: VisitorId,
        number_id: i64,
        assigned_at: Millis,
        expires_at: Millis,
        now: Millis,
    ) {
        self.settle(now);
        let Some(&slot) = self.by_id.get(&number_id) else {
            return;
        };
        let mine = self.visitors.get(&visitor).copied();
        let ends = |s: usize| {
            self.slots[s]
                .lease
                .as_ref()
                .map_or(i64::MIN, |l| l.expires_at)
        };
        if expires_at <= now
            || ends(slot) > expires_at
            || mine.is_some_and(|s| ends(s) > expires_at)
        {
            return;
        }
        self.end_lease(slot, now);
        if let Some(mine) = mine {
            self.end_lease(mine, now);
        }
        self.start_lease(slot, visitor, assigned_at, expires_at);
    }

    /// Records a lease decided elsewhere (by the leases all nodes share): `visitor` holds
    /// `number_id` until `expires_at`, whatever this pool held. A lease on the number and the
    /// visitor's lease on another number end. Ignored if the number is unknown or
    /// `expires_at <= now`; the number counts as last assigned at `assigned_at` when the lease
    /// is new. Returns whether the number is in the pool.
    pub fn hold(
        &mut self,
        visitor: &VisitorId,
        number_id: i64,
        assigned_at: Millis,
        expires_at: Millis,
        now: Millis,
    ) -> bool {
        self.settle(now);
        let Some(&slot) = self.by_id.get(&number_id) else {
            return false;
        };
        if expires_at <= now {
            return true;
        }
        let same = self.slots[slot]
            .lease
            .as_ref()
            .is_some_and(|l| l.visitor == *visitor);
        if same {
            let lease = self.slots[slot].lease.as_mut().expect("leased");
            self.expiry.remove(&timed(lease.expires_at, slot));
            lease.expires_at = expires_at;
            self.expiry.insert(timed(expires_at, slot));
            return true;
        }
        self.end_lease(slot, now);
        if let Some(mine) = self.visitors.get(visitor).copied() {
            self.end_lease(mine, now);
        }
        self.start_lease(slot, visitor.clone(), assigned_at, expires_at);
        self.peak = self.peak.max(self.expiry.len());
        true
    }

    /// Up to `k` free numbers for the visitor at `now`, best first, in the order
    /// [`Pool::assign`] would choose them one after another; nothing is leased. For leases
    /// decided elsewhere: the caller offers these and [`Pool::hold`]s the one taken.
    pub fn candidates(&mut self, who: &VisitorProfile<'_>, now: Millis, k: usize) -> Vec<i64> {
        self.settle(now);
        let (pair, country, language) = self.tiers.lookup(who);
        self.free
            .pick_many(pair, country, language, k)
            .into_iter()
            .map(|key| self.slots[free::slot_of(key)].number.id)
            .collect()
    }

    /// Ends `visitor`'s lease, if any (the shared leases hold it no more).
    pub fn release(&mut self, visitor: &VisitorId, now: Millis) {
        if let Some(slot) = self.visitors.get(visitor).copied() {
            self.end_lease(slot, now);
        }
    }

    /// A call arrived on this number at `now`: it counts toward the number's recent call volume
    /// for the next hour (see [`RECENT_WINDOW_MS`](crate::RECENT_WINDOW_MS)). Unknown ids are
    /// ignored.
    pub fn record_call(&mut self, number_id: i64, now: Millis) {
        self.settle(now);
        if let Some(&slot) = self.by_id.get(&number_id) {
            self.update_calls(slot, now, true);
        }
    }

    /// Replaces the pool's numbers. Numbers still present keep their lease, last assignment and
    /// call volume (and take their new country and languages); leases on removed numbers end.
    /// O(n log n): this is an administrative change, not a request.
    pub fn sync(&mut self, numbers: Vec<PoolNumber>, now: Millis) {
        self.settle(now);
        let mut histories: HashMap<i64, History> = std::mem::take(&mut self.slots)
            .into_iter()
            .map(|s| {
                let history = History {
                    lease: s.lease,
                    last_assigned: s.last_assigned,
                    calls: s.calls,
                };
                (s.number.id, history)
            })
            .collect();
        *self = Self::build(numbers, |id| histories.remove(&id).unwrap_or_default());
    }

    /// `(most numbers leased at once since the last call, numbers in the pool)`; the peak starts
    /// again from the numbers leased at `now`.
    pub fn take_peak(&mut self, now: Millis) -> (usize, usize) {
        self.settle(now);
        let peak = self.peak.max(self.expiry.len());
        self.peak = self.expiry.len();
        (peak, self.slots.len())
    }

    /// `(numbers leased at now, numbers in the pool)`.
    pub fn utilisation(&mut self, now: Millis) -> (usize, usize) {
        self.settle(now);
        (self.expiry.len(), self.slots.len())
    }

    /// The visitor's current lease, if live at `now`: `(number_id, expires_at)`.
    pub fn lease_of(&self, visitor: &VisitorId, now: Millis) -> Option<(i64, Millis)> {
        let slot = &self.slots[*self.visitors.get(visitor)?];
        let lease = slot.lease.as_ref().filter(|l| l.expires_at > now)?;
        Some((slot.number.id, lease.expires_at))
    }

    /// The number by id.
    pub fn number(&self, id: i64) -> Option<&PoolNumber> {
        self.by_id.get(&id).map(|&s| &self.slots[s].number)
    }

    /// How many numbers the pool has.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the pool has no numbers.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A pool of `numbers` (first of each id, in id order), each with the history `history_of`
    /// gives its id, and every index built in bulk.
    fn build(mut numbers: Vec<PoolNumber>, mut history_of: impl FnMut(i64) -> History) -> Self {
        numbers.sort_by_key(|n| n.id);
        numbers.dedup_by_key(|n| n.id);
        let mut pool = Self::default();
        for number in numbers {
            let history = history_of(number.id);
            pool.by_id.insert(number.id, pool.slots.len());
            pool.slots.push(Slot {
                sets: pool.tiers.intern(&number.country, &number.languages),
                number,
                lease: history.lease,
                last_assigned: history.last_assigned,
                volume: history.calls.total(),
                next_drop: history.calls.next_drop(),
                calls: history.calls,
            });
        }
        for (i, s) in pool.slots.iter().enumerate() {
            if let Some(lease) = &s.lease {
                pool.expiry.insert(timed(lease.expires_at, i));
                pool.visitors.insert(lease.visitor.clone(), i);
            }
        }
        let slots = pool.slots.iter().enumerate();
        pool.aging = (slots.clone())
            .filter_map(|(i, s)| Some(timed(s.next_drop?, i)))
            .collect();
        let free = slots.filter(|(_, s)| s.lease.is_none());
        pool.free = FreeIndex::build(free.map(|(i, s)| (s.key(i), &s.sets[..])));
        pool
    }

    /// Brings the pool to `now`: frees expired leases, then re-keys numbers whose calls aged out.
    fn settle(&mut self, now: Millis) {
        while let Some(&entry) = self.expiry.first() {
            if time_of(entry) > now {
                break;
            }
            self.end_lease(free::slot_of(entry), now);
        }
        while let Some(&entry) = self.aging.first() {
            if time_of(entry) > now {
                break;
            }
            self.aging.pop_first();
            let slot = free::slot_of(entry);
            self.slots[slot].next_drop = None;
            self.update_calls(slot, now, false);
        }
    }

    /// Gives a free number to `visitor`.
    fn start_lease(&mut self, slot: usize, visitor: VisitorId, at: Millis, expires_at: Millis) {
        self.unindex(slot);
        self.expiry.insert(timed(expires_at, slot));
        self.visitors.insert(visitor.clone(), slot);
        let s = &mut self.slots[slot];
        s.last_assigned = Some(at);
        s.lease = Some(Lease {
            visitor,
            expires_at,
        });
    }

    /// Ends the lease on a number, if any, and puts the number back among the free ones.
    fn end_lease(&mut self, slot: usize, now: Millis) {
        let Some(lease) = self.slots[slot].lease.take() else {
            return;
        };
        self.expiry.remove(&timed(lease.expires_at, slot));
        if self.visitors.get(&lease.visitor) == Some(&slot) {
            self.visitors.remove(&lease.visitor);
        }
        self.recount(slot, now, false);
        self.index(slot);
    }

    /// Moves a number's calls to `now` (counting one more call if `record`), keeping the free
    /// index in step with its volume.
    fn update_calls(&mut self, slot: usize, now: Millis, record: bool) {
        let indexed = self.slots[slot].lease.is_none();
        if indexed {
            self.unindex(slot);
        }
        self.recount(slot, now, record);
        if indexed {
            self.index(slot);
        }
    }

    /// Moves a number's calls to `now`, updates its volume and its aging entry. The caller keeps
    /// the free index in step.
    fn recount(&mut self, slot: usize, now: Millis, record: bool) {
        let s = &mut self.slots[slot];
        if record {
            s.calls.record(now);
        } else {
            s.calls.advance(now);
        }
        s.volume = s.calls.total();
        let next = s.calls.next_drop();
        if next != s.next_drop {
            if let Some(t) = s.next_drop {
                self.aging.remove(&timed(t, slot));
            }
            if let Some(t) = next {
                self.aging.insert(timed(t, slot));
            }
            s.next_drop = next;
        }
    }

    /// Puts a free number into the free index.
    fn index(&mut self, slot: usize) {
        let s = &self.slots[slot];
        self.free.insert(s.key(slot), &s.sets);
    }

    /// Takes a number out of the free index (before leasing it or changing its key).
    fn unindex(&mut self, slot: usize) {
        let s = &self.slots[slot];
        self.free.remove(s.key(slot), &s.sets);
    }
}

#[cfg(test)]
impl Pool {
    /// Checks every index against the slots (O(n); tests only), naming the first mismatch.
    pub(crate) fn assert_consistent(&self) {
        let mut free_entries = 0;
        let ids = self.slots.iter().map(|s| s.number.id);
        assert!(
            ids.clone().zip(ids.skip(1)).all(|(a, b)| a < b),
            "slots in id order"
        );
        for (i, s) in self.slots.iter().enumerate() {
            assert_eq!(
                self.by_id.get(&s.number.id),
                Some(&i),
                "by_id of {}",
                s.number.id
            );
            assert_eq!(s.volume, s.calls.total(), "volume of {}", s.number.id);
            assert_eq!(
                s.next_drop,
                s.calls.next_drop(),
                "next drop of {}",
                s.number.id
            );
            if let Some(t) = s.next_drop {
                assert!(
                    self.aging.contains(&timed(t, i)),
                    "aging of {}",
                    s.number.id
                );
            }
            match &s.lease {
                Some(l) => {
                    let entry = timed(l.expires_at, i);
                    assert!(self.expiry.contains(&entry), "expiry of {}", s.number.id);
                    assert_eq!(
                        self.visitors.get(&l.visitor),
                        Some(&i),
                        "holder of {}",
                        s.number.id
                    );
                }
                None => {
                    assert!(self.free.holds(s.key(i), &s.sets), "free {}", s.number.id);
                    free_entries += 1 + s.sets.len();
                }
            }
        }
        let leased = self.slots.iter().filter(|s| s.lease.is_some()).count();
        assert_eq!(self.expiry.len(), leased, "one expiry entry per lease");
        assert_eq!(self.visitors.len(), leased, "one visitor per lease");
        assert_eq!(self.free.len(), self.slots.len() - leased, "free count");
        assert_eq!(self.free.entries(), free_entries, "no stale free entries");
        let aging = self.slots.iter().filter(|s| s.next_drop.is_some()).count();
        assert_eq!(
            self.aging.len(),
            aging,
            "one aging entry per number with calls"
        );
    }
}

//! The free numbers of a pool, ordered for choice within each matching tier.

use crate::{Match, Millis};
use std::collections::BTreeSet;

/// How a free number sorts within a tier, packed into one integer so that the ordered sets
/// compare cheaply: recent call volume (high 32 bits), then when it was last assigned (64 bits,
/// never assigned sorting first), then its slot (low 32 bits). Slots are in number id order, so
/// the slot is also the lowest-id tie-break, and the chosen key names its slot directly.
pub(crate) type Key = u128;

/// Packs a free number's sort key.
pub(crate) fn key(volume: u32, last_assigned: Option<Millis>, slot: usize) -> Key {
    let last = last_assigned.unwrap_or(i64::MIN);
    (u128::from(volume) << 96) | (u128::from(ordered(last)) << 32) | slot as u128
}

/// The slot a key names.
pub(crate) fn slot_of(key: Key) -> usize {
    (key & 0xffff_ffff) as usize
}

/// A time mapped onto `u64` preserving order (`i64::MIN` becomes 0).
pub(crate) fn ordered(t: Millis) -> u64 {
    (t as u64) ^ (1 << 63)
}

/// The tier sets a number is in: every set of its country, of its languages and of its
/// (country, language) pairs, by set id. Every number is also in the set of all free numbers.
pub(crate) type Sets = [u32];

/// One ordered set of free numbers per tier value (a country, a language, or a country and
/// language pair), by set id, plus the set of all free numbers.
#[derive(Debug, Clone, Default)]
pub(crate) struct FreeIndex {
    /// Free numbers per tier value, indexed by the set id the pool interned for it.
    sets: Vec<BTreeSet<Key>>,
    /// Every free number: the last tier.
    all: BTreeSet<Key>,
}

impl FreeIndex {
    /// Builds the index in one go from free numbers and their sets (faster than inserting).
    pub fn build<'a>(free: impl Iterator<Item = (Key, &'a Sets)>) -> Self {
        let mut sets: Vec<Vec<Key>> = Vec::new();
        let mut all = Vec::new();
        for (key, ids) in free {
            all.push(key);
            for &id in ids {
                let id = id as usize;
                if sets.len() <= id {
                    sets.resize_with(id + 1, Vec::new);
                }
                sets[id].push(key);
            }
        }
        Self {
            sets: sets.into_iter().map(BTreeSet::from_iter).collect(),
            all: all.into_iter().collect(),
        }
    }

    /// Adds a free number to every set it is in.
    pub fn insert(&mut self, key: Key, ids: &Sets) {
        self.all.insert(key);
        for &id in ids {
            let id = id as usize;
            if self.sets.len() <= id {
                self.sets.resize_with(id + 1, BTreeSet::new);
            }
            self.sets[id].insert(key);
        }
    }

    /// Removes a number (now leased, or about to be re-keyed) from every set it is in.
    pub fn remove(&mut self, key: Key, ids: &Sets) {
        self.all.remove(&key);
        for &id in ids {
            if let Some(set) = self.sets.get_mut(id as usize) {
                set.remove(&key);
            }
        }
    }

    /// The number to hand out to a visitor, given the set ids of the visitor's (country,
    /// language) pair, country and language: the first of the first non-empty tier, and which
    /// tier that was.
    pub fn pick(
        &self,
        pair: Option<u32>,
        country: Option<u32>,
        language: Option<u32>,
    ) -> Option<(Key, Match)> {
        let first = |id: Option<u32>| {
            let set = self.sets.get(id? as usize)?;
            set.first().copied()
        };
        if let Some(k) = first(pair) {
            return Some((k, Match::CountryAndLanguage));
        }
        if let Some(k) = first(country) {
            return Some((k, Match::Country));
        }
        if let Some(k) = first(language) {
            return Some((k, Match::Language));
        }
        self.all.first().map(|&k| (k, Match::Any))
    }

    /// Up to `k` distinct free numbers in the order [`FreeIndex::pick`] would hand them out
    /// one after another: the best of the first non-empty tier first, then the next ones of that
    /// tier, then those of the following tiers.
    pub fn pick_many(
        &self,
        pair: Option<u32>,
        country: Option<u32>,
        language: Option<u32>,
        k: usize,
    ) -> Vec<Key> {
        let mut picked: Vec<Key> = Vec::with_capacity(k);
        let tiers = [pair, country, language]
            .into_iter()
            .map(|id| id.and_then(|id| self.sets.get(id as usize)))
            .chain([Some(&self.all)]);
        for set in tiers.flatten() {
            for &key in set {
                if picked.len() == k {
                    return picked;
                }
                if !picked.contains(&key) {
                    picked.push(key);
                }
            }
        }
        picked
    }

    /// How many numbers are free.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether `key` is in every set it should be (for consistency checks in tests).
    #[cfg(test)]
    pub fn holds(&self, key: Key, ids: &Sets) -> bool {
        self.all.contains(&key)
            && ids
                .iter()
                .all(|&id| self.sets.get(id as usize).is_some_and(|s| s.contains(&key)))
    }

    /// Entries across all sets (for consistency checks in tests).
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.all.len() + self.sets.iter().map(BTreeSet::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_volume_then_last_assigned_then_slot() {
        let ordered_keys = [
            key(0, None, 7),
            key(0, Some(-5), 1),
            key(0, Some(0), 0),
            key(0, Some(0), 1),
            key(0, Some(i64::MAX), 0),
            key(1, None, 0),
            key(u32::MAX, None, 0),
        ];
        for pair in ordered_keys.windows(2) {
            assert!(pair[0] < pair[1], "{:x} < {:x}", pair[0], pair[1]);
        }
        assert_eq!(slot_of(key(3, Some(-1), 12_345)), 12_345);
    }
}

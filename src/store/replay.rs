//! Replay protection: every accepted envelope id is remembered while the envelope could still
//! be valid (SPEC section 6 step 10).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use sha2::{Digest as _, Sha256};

use crate::clock::UnixTime;
use crate::error::{StoreError, StoreErrorKind};
use crate::limits::DEFAULT_REPLAY_CAPACITY;
use crate::wire::TokenId;

/// Whether an envelope id was new.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Freshness {
    /// Not seen before; now recorded.
    Fresh,
    /// Seen before while it could still be valid.
    Replayed,
}

/// A replay cache. `check_and_insert` must be atomic: of any number of concurrent calls with
/// the same id, exactly one returns [`Freshness::Fresh`]. A cache that cannot answer (full,
/// unreachable) returns `Err`, and the verifier denies with `unavailable`.
pub trait ReplayCache: fmt::Debug + Send + Sync {
    /// Records `id` until `keep_until` unless it is already recorded.
    fn check_and_insert(
        &self,
        id: &TokenId,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, StoreError>;
}

impl<T: ReplayCache + ?Sized> ReplayCache for Arc<T> {
    fn check_and_insert(
        &self,
        id: &TokenId,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, StoreError> {
        (**self).check_and_insert(id, keep_until, now)
    }
}

const SHARDS: usize = 16;

#[derive(Debug, Default)]
struct Shard {
    /// First 128 bits of SHA-256(jti), as two `u64`s (a `u128` would pad each slot to 32
    /// bytes) → seconds until which the entry is kept.
    entries: HashMap<(u64, u64), u64>,
    /// No entry expires before this, so a sweep before it would free nothing.
    next_sweep: u64,
}

/// A bounded, sharded, in-memory replay cache.
///
/// Per-entry cost: a 16-byte key (the first 128 bits of SHA-256 of the id) and an 8-byte
/// expiry, a 24-byte slot plus one control byte in the standard hash table, which keeps at
/// most 7/8 of its power-of-two bucket count in use: from about 29 bytes per live entry (a
/// table just before it grows) to 50 bytes (just after). A full default cache (1 Mi ids,
/// 16 shards of 64 Ki) holds 16 × 131,072 buckets × 25 bytes = 50 MiB; size `capacity` to
/// (envelopes accepted per second) × (longest envelope lifetime + leeway). Memory is
/// allocated as entries arrive, never up front. Expired entries are swept when a shard fills. When a
/// shard is full of live entries the cache answers `Err` (the verifier denies with
/// `unavailable`) instead of evicting an entry that could still be replayed.
///
/// Clones share the same entries.
#[derive(Clone, Debug)]
pub struct MemoryReplayCache {
    shards: Arc<[Mutex<Shard>; SHARDS]>,
    per_shard: usize,
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        MemoryReplayCache::new(DEFAULT_REPLAY_CAPACITY)
    }
}

impl MemoryReplayCache {
    /// A cache for at most `capacity` live ids (rounded up to a multiple of 16).
    #[must_use]
    pub fn new(capacity: usize) -> MemoryReplayCache {
        MemoryReplayCache {
            shards: Arc::new(std::array::from_fn(|_| Mutex::new(Shard::default()))),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// How many ids are recorded (live or not yet swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.entries.len()).unwrap_or(0))
            .sum()
    }

    /// Whether no id is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }
}

impl ReplayCache for MemoryReplayCache {
    fn check_and_insert(
        &self,
        id: &TokenId,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> Result<Freshness, StoreError> {
        let digest = Sha256::digest(id.as_str().as_bytes());
        let half = |range: std::ops::Range<usize>| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(digest.get(range).unwrap_or(&[0u8; 8]));
            u64::from_le_bytes(bytes)
        };
        let key = (half(0..8), half(8..16));
        let shard_index = (key.0 % SHARDS as u64) as usize;
        let shard = self
            .shards
            .get(shard_index)
            .ok_or_else(|| StoreError::new("replay cache", "no shard"))?;
        let mut shard = shard
            .lock()
            .map_err(|_| StoreError::poisoned("replay cache"))?;
        let now_s = now.as_secs();
        if let Some(until) = shard.entries.get(&key) {
            if *until > now_s {
                return Ok(Freshness::Replayed);
            }
        }
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(&key) {
            if now_s >= shard.next_sweep {
                shard.entries.retain(|_, until| *until > now_s);
                shard.next_sweep = shard.entries.values().copied().min().unwrap_or(0);
            }
            if shard.entries.len() >= self.per_shard {
                return Err(StoreError::new(
                    "replay cache",
                    "full of live envelope ids; raise its capacity or shorten envelope lifetimes",
                )
                .with_kind(StoreErrorKind::Full));
            }
        }
        shard.entries.insert(key, keep_until.as_secs());
        // Keep `next_sweep` a lower bound of every entry's expiry, or a full shard would refuse
        // ids while holding entries that expired before the last sweep's horizon.
        shard.next_sweep = shard.next_sweep.min(keep_until.as_secs());
        Ok(Freshness::Fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> TokenId {
        format!("envelope-id-{n:08}").parse().unwrap()
    }

    #[test]
    fn second_insert_is_a_replay_until_expiry() {
        let cache = MemoryReplayCache::new(64);
        let now = UnixTime::from_secs(1000);
        let until = UnixTime::from_secs(1100);
        assert_eq!(
            cache.check_and_insert(&id(1), until, now).unwrap(),
            Freshness::Fresh
        );
        assert_eq!(
            cache.check_and_insert(&id(1), until, now).unwrap(),
            Freshness::Replayed
        );
        let later = UnixTime::from_secs(1100);
        assert_eq!(
            cache
                .check_and_insert(&id(1), UnixTime::from_secs(1200), later)
                .unwrap(),
            Freshness::Fresh
        );
    }

    /// Computes the table memory of a full cache from its bucket count and slot size (run with
    /// `--nocapture` to see the numbers).
    #[test]
    fn per_entry_cost_is_as_documented() {
        let capacity = 1 << 16;
        let cache = MemoryReplayCache::new(capacity);
        let now = UnixTime::from_secs(1000);
        let until = UnixTime::from_secs(2000);
        let mut live = 0usize;
        for n in 0..(capacity as u32 * 2) {
            if cache.check_and_insert(&id(n), until, now).is_ok() {
                live += 1;
            }
        }
        let slot = std::mem::size_of::<((u64, u64), u64)>() + 1;
        let bytes: usize = cache
            .shards
            .iter()
            .map(|s| {
                let usable = s.lock().unwrap().entries.capacity();
                // hashbrown keeps at most 7/8 of its buckets in use.
                usable * 8 / 7 * slot
            })
            .sum();
        let per_entry = bytes as f64 / live as f64;
        println!(
            "replay cache: {live} live ids, {bytes} table bytes, {per_entry:.1} bytes per entry"
        );
        assert_eq!(slot, 25);
        assert!(live <= cache.capacity());
        assert!(per_entry <= 50.5, "{per_entry}");
    }

    #[test]
    fn full_cache_denies_instead_of_evicting_live_entries() {
        let cache = MemoryReplayCache::new(16);
        let now = UnixTime::from_secs(1000);
        let until = UnixTime::from_secs(2000);
        let mut full = 0;
        for n in 0..200 {
            if let Err(e) = cache.check_and_insert(&id(n), until, now) {
                assert_eq!(e.kind(), crate::error::StoreErrorKind::Full, "{e}");
                full += 1;
            }
        }
        assert!(full > 0, "a bounded cache must refuse once full");
        assert!(cache.len() <= cache.capacity());
        // Every id that was accepted is still a replay.
        let mut replays = 0;
        for n in 0..200 {
            if let Ok(Freshness::Replayed) = cache.check_and_insert(&id(n), until, now) {
                replays += 1;
            }
        }
        assert_eq!(replays, 200 - full);
        // After expiry, the cache makes room again.
        let later = UnixTime::from_secs(2000);
        assert_eq!(
            cache
                .check_and_insert(&id(9999), UnixTime::from_secs(3000), later)
                .unwrap(),
            Freshness::Fresh
        );
    }
}

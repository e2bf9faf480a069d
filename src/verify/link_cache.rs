//! The verified-link cache: "the token with this SHA-256 decoded to these claims and this
//! header `kid`, and its signature verified under the key registered for its (`iss`, `kid`) at
//! resolver generation `g`".
//!
//! Links are immutable and hash-addressed (SPEC section 4 `parent`): the SHA-256 of a link's
//! compact text covers its header, its claims and its signature, so two links with the same
//! hash are the same bytes, and decode to the same claims. Remembering the decoded claims and
//! that the signature verified lets a warm handoff skip the link's base64, JSON and signature
//! work and cost one signature check (the envelope's). Nothing else is remembered: binding,
//! time, `cnf` key registration, revocation, task, policy and narrowing checks run on every
//! request, on the remembered claims.
//!
//! An entry is used only while
//! - the resolver's generation is the one it was verified at (any key change invalidates it),
//! - `now < exp + leeway` of the token (after that the time check rejects it regardless).
//!
//! The cache is bounded: when a shard is full, dead entries (expired or of an older
//! generation) are swept, and if it is still full the entry expiring soonest is evicted.
//! Evicting only costs a signature check later. No lock is held while a signature is checked:
//! the verifier looks up (lock, copy, unlock), verifies, then inserts (lock, insert, unlock).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::UnixTime;
use crate::grant::{ParsedLink, TokenHash};

const SHARDS: usize = 16;

/// Counters of a verifier's verified-link cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkCacheStats {
    /// Links whose signature check was skipped because the exact link had verified before
    /// under the same key generation.
    pub hits: u64,
    /// Links looked up and not found (or found stale): their signature was checked.
    pub misses: u64,
    /// Entries held now (some may be stale until swept).
    pub entries: usize,
    /// Most entries held (0: the cache is disabled).
    pub capacity: usize,
}

struct Entry {
    link: Arc<ParsedLink>,
    generation: u64,
    /// Seconds: `exp + leeway` of the token. The entry is dead from then on.
    drop_at: u64,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<[u8; 32], Entry>,
    hits: u64,
    misses: u64,
}

/// A bounded, sharded map from link hash to "verified under (iss, kid) at generation g".
pub(crate) struct LinkCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

impl fmt::Debug for LinkCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkCache")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl LinkCache {
    /// A cache for about `capacity` links (rounded up to a multiple of the shard count);
    /// `0` disables it.
    pub(crate) fn new(capacity: usize) -> LinkCache {
        let shards = if capacity == 0 { 0 } else { SHARDS };
        LinkCache {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
        }
    }

    fn capacity(&self) -> usize {
        self.per_shard * self.shards.len()
    }

    /// The shard of a hash, locked. `None` if the cache is disabled or its lock is poisoned
    /// (a poisoned cache only costs signature checks: it is never trusted).
    fn shard(&self, hash: &TokenHash) -> Option<MutexGuard<'_, Shard>> {
        let len = self.shards.len();
        if len == 0 {
            return None;
        }
        let index = usize::from(hash.0[0]) % len;
        self.shards.get(index)?.lock().ok()
    }

    /// The decoded link with this hash, if its signature verified at `generation` and it is
    /// not past `exp + leeway`. Drops the entry if it is stale.
    pub(crate) fn get(
        &self,
        hash: &TokenHash,
        generation: u64,
        now: UnixTime,
    ) -> Option<Arc<ParsedLink>> {
        let mut shard = self.shard(hash)?;
        let hit = match shard.entries.get(&hash.0) {
            Some(e) if e.generation == generation && now.as_secs() < e.drop_at => {
                Some(Arc::clone(&e.link))
            }
            Some(_) => {
                shard.entries.remove(&hash.0);
                None
            }
            None => None,
        };
        if hit.is_some() {
            shard.hits += 1;
        } else {
            shard.misses += 1;
        }
        hit
    }

    /// Records that the link with this hash decoded to `link` and verified under the key
    /// registered for its (`iss`, `kid`) at `generation`, until `drop_at` (`exp + leeway`).
    pub(crate) fn insert(
        &self,
        hash: &TokenHash,
        link: &Arc<ParsedLink>,
        generation: u64,
        drop_at: UnixTime,
        now: UnixTime,
    ) {
        let now = now.as_secs();
        let drop_at = drop_at.as_secs();
        if drop_at <= now {
            return;
        }
        let Some(mut shard) = self.shard(hash) else {
            return;
        };
        if shard.entries.len() >= self.per_shard && !shard.entries.contains_key(&hash.0) {
            shard
                .entries
                .retain(|_, e| e.generation == generation && e.drop_at > now);
            if shard.entries.len() >= self.per_shard {
                let soonest = shard
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.drop_at)
                    .map(|(k, _)| *k);
                if let Some(k) = soonest {
                    shard.entries.remove(&k);
                }
            }
        }
        shard.entries.insert(
            hash.0,
            Entry {
                link: Arc::clone(link),
                generation,
                drop_at,
            },
        );
    }

    pub(crate) fn stats(&self) -> LinkCacheStats {
        let mut stats = LinkCacheStats {
            capacity: self.capacity(),
            ..LinkCacheStats::default()
        };
        for shard in self.shards.iter().filter_map(|s| s.lock().ok()) {
            stats.hits += shard.hits;
            stats.misses += shard.misses;
            stats.entries += shard.entries.len();
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::TokenClaims;
    use crate::wire::KeyId;

    fn hash(n: u32) -> TokenHash {
        TokenHash::of(&format!("token-{n}"))
    }

    fn link() -> Arc<ParsedLink> {
        let claims = TokenClaims::parse(
            br#"{"jti":"link-cache-test-0001","iss":"spiffe://a.example/o","sub":"spiffe://a.example/p",
                "cnf":{"jkt":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},"task":"t",
                "caps":[{"action":"a","resource":"r"}],"depth":0,"iat":1,"exp":2}"#,
        )
        .unwrap();
        Arc::new(ParsedLink {
            claims,
            kid: KeyId::thumbprint(&[7u8; 32]),
        })
    }

    const NOW: UnixTime = UnixTime::from_secs(1_000);
    const LATER: UnixTime = UnixTime::from_secs(2_000);

    #[test]
    fn hit_only_for_same_hash_and_generation_and_before_drop() {
        let cache = LinkCache::new(64);
        let l = link();
        assert!(cache.get(&hash(1), 5, NOW).is_none());
        cache.insert(&hash(1), &l, 5, LATER, NOW);
        let got = cache.get(&hash(1), 5, NOW).unwrap();
        assert!(Arc::ptr_eq(&got, &l));
        assert!(cache.get(&hash(2), 5, NOW).is_none(), "other hash");
        assert!(cache.get(&hash(1), 5, NOW).is_some(), "still there");
        assert!(cache.get(&hash(1), 6, NOW).is_none(), "new generation");
        assert!(
            cache.get(&hash(1), 5, NOW).is_none(),
            "a stale entry is dropped, not kept for the old generation"
        );
        cache.insert(&hash(1), &l, 6, LATER, NOW);
        assert!(cache.get(&hash(1), 6, LATER).is_none(), "at drop time");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 5, 0));
    }

    #[test]
    fn stays_bounded_and_refuses_dead_inserts() {
        let cache = LinkCache::new(32);
        let l = link();
        cache.insert(&hash(0), &l, 1, NOW, NOW);
        assert_eq!(cache.stats().entries, 0, "already past its drop time");
        for n in 0..1_000 {
            cache.insert(&hash(n), &l, 1, LATER, NOW);
        }
        let stats = cache.stats();
        assert!(stats.entries <= stats.capacity, "{stats:?}");
        assert_eq!(stats.capacity, 32);
        // The last insert is always kept.
        assert!(cache.get(&hash(999), 1, NOW).is_some());
    }

    #[test]
    fn disabled_cache_never_hits() {
        let cache = LinkCache::new(0);
        cache.insert(&hash(1), &link(), 1, LATER, NOW);
        assert!(cache.get(&hash(1), 1, NOW).is_none());
        assert_eq!(cache.stats(), LinkCacheStats::default());
    }
}

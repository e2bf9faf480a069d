//! Time: a [`UnixTime`] value type and the injected [`Clock`].
//!
//! The verifier never reads the system time by itself; it asks its clock. Tests, replays of
//! past decisions (`handoff verify --now`) and simulations use a [`FixedClock`].

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as in a JWT NumericDate (an integer in `0..=2^53-1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The largest NumericDate the wire format allows: 2^53 - 1.
    pub const MAX_SECS: u64 = (1 << 53) - 1;

    /// A time from seconds since the epoch, saturating at [`UnixTime::MAX_SECS`].
    #[must_use]
    pub const fn from_secs(secs: u64) -> UnixTime {
        if secs > Self::MAX_SECS {
            UnixTime(Self::MAX_SECS)
        } else {
            UnixTime(secs)
        }
    }

    /// Seconds since the epoch.
    #[must_use]
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// The system time now, truncated to whole seconds.
    #[must_use]
    pub fn now() -> UnixTime {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        UnixTime::from_secs(secs)
    }

    /// This time plus a duration (whole seconds), saturating.
    #[must_use]
    pub fn plus(self, d: Duration) -> UnixTime {
        UnixTime::from_secs(self.0.saturating_add(d.as_secs()))
    }

    /// This time minus a duration (whole seconds), saturating at the epoch.
    #[must_use]
    pub fn minus(self, d: Duration) -> UnixTime {
        UnixTime(self.0.saturating_sub(d.as_secs()))
    }

    /// Seconds from `earlier` to `self`, or zero when `earlier` is later.
    #[must_use]
    pub fn since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// RFC 3339 in UTC, such as `2026-11-29T06:24:08Z`.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let secs = i64::try_from(self.0).unwrap_or(i64::MAX);
        time::OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| format!("@{}", self.0))
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A source of the current time.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> UnixTime;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// A clock that says what it is told; clones share the same time.
///
/// ```
/// use agent_handoff::{clock::Clock, clock::FixedClock, UnixTime};
/// use std::time::Duration;
/// let clock = FixedClock::new(UnixTime::from_secs(1_800_000_000));
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now().as_secs(), 1_800_000_060);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FixedClock(Arc<AtomicU64>);

impl FixedClock {
    /// A clock stopped at `at`.
    #[must_use]
    pub fn new(at: UnixTime) -> FixedClock {
        FixedClock(Arc::new(AtomicU64::new(at.as_secs())))
    }

    /// Sets the time.
    pub fn set(&self, at: UnixTime) {
        self.0.store(at.as_secs(), Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        let now = self.now();
        self.set(now.plus(by));
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        UnixTime::from_secs(self.0.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> UnixTime {
        (**self).now()
    }
}

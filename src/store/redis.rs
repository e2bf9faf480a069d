//! Replay protection and revocation shared by verifier replicas through Redis (feature `redis`).
//!
//! - [`RedisReplayCache`]: one atomic `SET key 1 NX PXAT <ms>` per accepted envelope, so of any
//!   number of replicas that see the same envelope, exactly one accepts it.
//! - [`RedisRevocations`]: revocations are written to Redis and announced on a pub/sub channel;
//!   every replica keeps a local in-memory view (a [`MemoryRevocations`]) that a background
//!   thread keeps up to date, so the verifier's hot path never touches the network. A replica
//!   that has not heard from Redis for longer than the staleness bound denies (`unavailable`).
//!
//! Both fail closed: any Redis error, timeout or missing answer becomes a [`StoreError`], which
//! the verifier turns into `unavailable`. Neither panics, and both recover by themselves when
//! Redis comes back.
//!
//! # Redis layout (namespace `agent-handoff` by default)
//!
//! | key | type | content |
//! |---|---|---|
//! | `<ns>:replay:<recipient>:<jti>` | string | `1`, expires at envelope `exp` + leeway + skew margin |
//! | `<ns>:revocations:tokens` | sorted set | token id → revoked at (Unix seconds) |
//! | `<ns>:revocations:tasks` | sorted set | task id → revoked at (tokens issued up to it are revoked) |
//! | `<ns>:revocations:agents` | set | revoked agent ids |
//! | `<ns>:revocations:cutoff` | sorted set | `cutoff` → the issued-before cut-off |
//! | `<ns>:revocations:retention` | sorted set | `retention` → the longest retention (s) of any instance |
//! | `<ns>:revocations:events` | channel | `token <id>`, `task <id>`, `agent <id>`, `cutoff -` |
//!
//! Token and task entries are dropped from Redis once nothing they revoke can still be valid
//! (revoked at + the longest [`retention`](RedisOptions::retention) that any instance using
//! the namespace recorded, so one instance configured shorter cannot purge what another still
//! needs); agent revocations and the cut-off stay until restored or replaced.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ::redis::{Client, Commands as _, Connection, RedisError, RedisResult};

use crate::clock::UnixTime;
use crate::error::{Error, StoreError, StoreErrorKind};
use crate::limits::DEFAULT_RETENTION;
use crate::store::{
    Freshness, MemoryRevocations, ReplayCache, RevocationQuery, RevocationStats, Revocations,
    Revoked,
};
use crate::wire::{AgentId, TaskId, TokenId};

const REPLAY: &str = "replay cache";
const REVOCATIONS: &str = "revocations";
/// Idle connections kept per store; more concurrent callers open (and then drop) extra ones.
const MAX_IDLE: usize = 16;

/// Timeouts, names and bounds for [`RedisReplayCache`] and [`RedisRevocations`].
///
/// ```
/// # #[cfg(feature = "redis")] {
/// use agent_handoff::store::redis::RedisOptions;
/// use std::time::Duration;
/// let mut options = RedisOptions::default();
/// options.io_timeout = Duration::from_millis(200);
/// options.staleness_bound = Duration::from_secs(2);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisOptions {
    /// How long to wait for a TCP connection (default 500 ms).
    pub connect_timeout: Duration,
    /// How long to wait for one read or write on a connection (default 500 ms). A slow Redis
    /// means a denial (`unavailable`) after about this long, not a stuck verifier.
    pub io_timeout: Duration,
    /// The prefix of every key and channel (default `agent-handoff`). Replicas that must share
    /// state use the same namespace.
    pub namespace: String,
    /// Replay keys live this much longer than the envelope's `exp` plus leeway (default 30 s),
    /// to absorb clock differences between the verifiers and Redis (`PXAT` uses Redis's clock).
    pub clock_skew_margin: Duration,
    /// A replica whose revocation view has not been confirmed by Redis for longer than this
    /// denies every handoff with `unavailable` (default 5 s).
    pub staleness_bound: Duration,
    /// How often the subscriber pings Redis on the subscription (default 1 s). Must be well
    /// below the staleness bound.
    pub heartbeat: Duration,
    /// How long the subscriber waits between reconnection attempts (default 250 ms).
    pub retry_interval: Duration,
    /// How long token and task revocations are kept after they are made (default
    /// [`DEFAULT_RETENTION`], 3900 s, like [`MemoryRevocations`]). It must be at least the
    /// `max_token_ttl + leeway` of the verifier using this instance: the verifier's builder
    /// refuses less. Redis keeps entries for the longest retention any instance using the
    /// namespace recorded, so a shorter one elsewhere cannot purge what this one needs.
    pub retention: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_millis(500),
            namespace: "agent-handoff".to_owned(),
            clock_skew_margin: Duration::from_secs(30),
            staleness_bound: Duration::from_secs(5),
            heartbeat: Duration::from_secs(1),
            retry_interval: Duration::from_millis(250),
            retention: DEFAULT_RETENTION,
        }
    }
}

impl RedisOptions {
    fn validate(&self) -> Result<(), Error> {
        let zero = |name: &str, d: Duration| {
            if d.is_zero() {
                Err(config(format!(
                    "option `{name}` is zero; give it a positive duration"
                )))
            } else {
                Ok(())
            }
        };
        zero("connect_timeout", self.connect_timeout)?;
        zero("io_timeout", self.io_timeout)?;
        zero("staleness_bound", self.staleness_bound)?;
        zero("heartbeat", self.heartbeat)?;
        zero("retry_interval", self.retry_interval)?;
        zero("retention", self.retention)?;
        // Redis prints sorted-set scores with 17 significant digits: far larger values come
        // back in exponent form, which no replica could read (every one would deny).
        if self.retention > MAX_RETENTION {
            return Err(config(format!(
                "`retention` ({} s) is longer than the {} s (10 years) this store can keep; \
                 revocations of tokens and tasks only need `max_token_ttl + leeway`",
                self.retention.as_secs(),
                MAX_RETENTION.as_secs()
            )));
        }
        if self.heartbeat >= self.staleness_bound {
            return Err(config(format!(
                "`heartbeat` ({} ms) must be shorter than `staleness_bound` ({} ms); \
                 a third of it or less is a good choice",
                self.heartbeat.as_millis(),
                self.staleness_bound.as_millis()
            )));
        }
        if self.namespace.is_empty()
            || !self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(config(format!(
                "namespace `{}` must be non-empty `A-Z`, `a-z`, `0-9`, `-`, `_`, `.`, `:`",
                self.namespace.chars().take(64).collect::<String>()
            )));
        }
        Ok(())
    }
}

/// Invalid or inconsistent [`RedisOptions`].
fn config(problem: String) -> Error {
    Error::StoreConfig {
        store: "redis",
        problem,
        source: None,
    }
}

/// The longest [`RedisOptions::retention`]: 10 years, far below where Redis would print a
/// score in exponent form.
const MAX_RETENTION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses a Redis URL without connecting. The error never repeats the URL (it may hold a
/// password); the `redis` crate's parse errors are fixed texts.
fn client(url: &str) -> Result<Client, Error> {
    Client::open(url).map_err(|e| Error::StoreConfig {
        store: "redis",
        problem: format!(
            "the url is not valid ({e}); use `redis://[user:password@]host:port/db` \
             (or `rediss://` with the `redis` crate's `tls-rustls` feature enabled)"
        ),
        source: Some(Box::new(e)),
    })
}

/// Where a client connects, without credentials.
fn address(client: &Client) -> String {
    let info = client.get_connection_info();
    format!("{}/{}", info.addr(), info.redis_settings().db())
}

/// A Redis error as a store error: its kind, our words for it, and the error as its source.
fn store_error(store: &'static str, e: &RedisError) -> StoreError {
    StoreError::new(store, redis_problem(e))
        .with_kind(kind_of(e))
        .with_source(e.clone())
}

/// What kind of store failure a Redis error is.
fn kind_of(e: &RedisError) -> StoreErrorKind {
    if e.is_timeout() {
        StoreErrorKind::Timeout
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        StoreErrorKind::Unreachable
    } else if e.code() == Some("OOM") {
        StoreErrorKind::Full
    } else if e.code() == Some("WRONGTYPE") || e.kind() == ::redis::ErrorKind::UnexpectedReturnType
    {
        StoreErrorKind::WrongType
    } else if matches!(
        e.kind(),
        ::redis::ErrorKind::Parse
            | ::redis::ErrorKind::Server(_)
            | ::redis::ErrorKind::Extension
            | ::redis::ErrorKind::RESP3NotSupported
    ) {
        StoreErrorKind::Protocol
    } else {
        StoreErrorKind::Other
    }
}

fn redis_problem(e: &RedisError) -> String {
    if e.is_timeout() {
        "redis did not answer in time".to_owned()
    } else if e.is_connection_refusal() {
        "redis refused the connection (is it running?)".to_owned()
    } else {
        format!("redis error: {e}")
    }
}

/// Why a key of the revocation state could not be read, naming it.
fn key_problem(key: &str, expected: &str, e: &RedisError) -> String {
    if e.code() == Some("WRONGTYPE") || e.kind() == ::redis::ErrorKind::UnexpectedReturnType {
        format!(
            "key `{key}` does not hold {expected} ({e}); something other than this library \
             wrote under its namespace: inspect it with `TYPE {key}`, then delete it \
             (revocations it should hold must be made again)"
        )
    } else {
        format!("reading `{key}`: {}", redis_problem(e))
    }
}

/// A few connections to one Redis, each with timeouts; a connection that failed is dropped and
/// a new one is made on the next call.
struct Pool {
    client: Client,
    connect_timeout: Duration,
    io_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    store: &'static str,
}

impl Pool {
    fn new(client: Client, options: &RedisOptions, store: &'static str) -> Pool {
        Pool {
            client,
            connect_timeout: options.connect_timeout,
            io_timeout: options.io_timeout,
            idle: Mutex::new(Vec::new()),
            store,
        }
    }

    fn connect(&self) -> RedisResult<Connection> {
        connect(&self.client, self.connect_timeout, self.io_timeout)
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn put(&self, con: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(con);
            }
        }
    }

    fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Runs `f` on a connection. A reused connection that turns out to be dead (Redis was
    /// restarted) is replaced once by a fresh one; any other error is returned.
    fn run<T>(&self, f: impl Fn(&mut Connection) -> RedisResult<T>) -> Result<T, StoreError> {
        if let Some(mut con) = self.take() {
            match f(&mut con) {
                Ok(v) => {
                    self.put(con);
                    return Ok(v);
                }
                Err(e) if e.is_connection_dropped() => {
                    // Every idle connection is probably as dead as this one.
                    self.clear();
                }
                Err(e) => return Err(store_error(self.store, &e)),
            }
        }
        let mut con = self.connect().map_err(|e| store_error(self.store, &e))?;
        let v = f(&mut con).map_err(|e| store_error(self.store, &e))?;
        self.put(con);
        Ok(v)
    }
}

fn connect(
    client: &Client,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> RedisResult<Connection> {
    let con = client.get_connection_with_timeout(connect_timeout)?;
    con.set_read_timeout(Some(io_timeout))?;
    con.set_write_timeout(Some(io_timeout))?;
    Ok(con)
}

// ------------------------------------------------------------------------------------ replay

/// A replay cache in Redis, shared by every replica of one recipient.
///
/// Each accepted envelope costs one round trip: `SET <ns>:replay:<recipient>:<jti> 1 NX PXAT
/// <ms>`, which is atomic in Redis, so of any number of concurrent verifications of one
/// envelope on any number of replicas exactly one sees [`Freshness::Fresh`]. The key expires
/// at the envelope's `exp` plus the verifier's leeway plus
/// [`clock_skew_margin`](RedisOptions::clock_skew_margin), measured by Redis's clock.
///
/// Errors, timeouts and a Redis that is down give `Err` (the verifier denies `unavailable`);
/// a broken connection is replaced on the next call. If Redis loses its data (a restart without
/// persistence, a failover to a replica that lagged), envelopes accepted before could be
/// accepted once more until they expire: see the trade-offs in `docs/operations.md`.
///
/// ```no_run
/// use agent_handoff::{AgentId, store::redis::RedisReplayCache};
/// let me: AgentId = "spiffe://acme.example/agents/executor".parse()?;
/// let replay = RedisReplayCache::open("redis://127.0.0.1:6379/0", &me)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisReplayCache {
    pool: Pool,
    prefix: String,
    margin: Duration,
    address: String,
}

impl fmt::Debug for RedisReplayCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisReplayCache")
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisReplayCache {
    /// A cache for envelopes addressed to `recipient`, at `url`
    /// (`redis://[user:password@]host:port/db`), with default options. Does not connect yet:
    /// a Redis that is down makes verifications deny until it is up.
    pub fn open(url: &str, recipient: &AgentId) -> Result<RedisReplayCache, Error> {
        RedisReplayCache::open_with(url, recipient, &RedisOptions::default())
    }

    /// Like [`open`](RedisReplayCache::open), with options.
    pub fn open_with(
        url: &str,
        recipient: &AgentId,
        options: &RedisOptions,
    ) -> Result<RedisReplayCache, Error> {
        options.validate()?;
        let client = client(url)?;
        Ok(RedisReplayCache {
            address: address(&client),
            pool: Pool::new(client, options, REPLAY),
            prefix: format!("{}:replay:{}:", options.namespace, recipient),
            margin: options.clock_skew_margin,
        })
    }

    /// The Redis key of an envelope id.
    #[must_use]
    pub fn key(&self, id: &TokenId) -> String {
        format!("{}{}", self.prefix, id)
    }

    /// Checks that Redis answers (`PING`).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.pool
            .run(|con| ::redis::cmd("PING").query::<String>(con))
            .map(|_| ())
    }
}

impl ReplayCache for RedisReplayCache {
    fn check_and_insert(
        &self,
        id: &TokenId,
        keep_until: UnixTime,
        _now: UnixTime,
    ) -> Result<Freshness, StoreError> {
        let key = self.key(id);
        let expire_ms = keep_until.plus(self.margin).as_secs().saturating_mul(1000);
        let reply = self.pool.run(|con| {
            ::redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PXAT")
                .arg(expire_ms)
                .query::<Option<String>>(con)
        })?;
        match reply.as_deref() {
            Some("OK") => Ok(Freshness::Fresh),
            None => Ok(Freshness::Replayed),
            Some(_) => Err(
                StoreError::new(REPLAY, "redis gave an unexpected answer to `SET NX`")
                    .with_kind(StoreErrorKind::Protocol),
            ),
        }
    }
}

// ------------------------------------------------------------------------------- revocations

/// Key names of the revocation state.
#[derive(Clone, Debug)]
struct Keys {
    tokens: String,
    tasks: String,
    agents: String,
    cutoff: String,
    retention: String,
    channel: String,
}

impl Keys {
    fn new(namespace: &str) -> Keys {
        let p = format!("{namespace}:revocations");
        Keys {
            tokens: format!("{p}:tokens"),
            tasks: format!("{p}:tasks"),
            agents: format!("{p}:agents"),
            cutoff: format!("{p}:cutoff"),
            retention: format!("{p}:retention"),
            channel: format!("{p}:events"),
        }
    }
}

/// What the verifier reads and the subscriber writes.
#[derive(Debug)]
struct Shared {
    /// The local view of Redis's state; replaced wholesale by a resync.
    view: RwLock<MemoryRevocations>,
    /// Revocations made on this instance whose write to Redis failed. Never replaced by a
    /// resync nor loosened by an announcement: what Redis lacks cannot undo them. Token and
    /// task entries expire after the retention; an agent stays until this instance revokes
    /// or restores it successfully.
    pinned: MemoryRevocations,
    /// When Redis last confirmed the view (None: never).
    heard: Mutex<Option<Instant>>,
    /// Why the subscriber last failed to synchronise (cleared by a successful resync).
    problem: Mutex<Option<String>>,
    bound: Duration,
    retention: Duration,
}

impl Shared {
    fn view(&self) -> Result<MemoryRevocations, StoreError> {
        self.view
            .read()
            .map(|v| v.clone())
            .map_err(|_| StoreError::poisoned(REVOCATIONS))
    }

    fn mark_heard(&self, at: Instant) {
        if let Ok(mut heard) = self.heard.lock() {
            if heard.is_none_or(|h| h < at) {
                *heard = Some(at);
            }
        }
    }

    /// Records why synchronising failed; a new reason is also reported once as a tracing
    /// event (feature `tracing`), not on every retry.
    fn set_problem(&self, problem: String) {
        if let Ok(mut current) = self.problem.lock() {
            if current.as_deref() != Some(problem.as_str()) {
                #[cfg(feature = "tracing")]
                tracing::error!(
                    target: "agent_handoff::store::redis",
                    problem = %problem,
                    "revocations cannot synchronise with redis; every handoff is denied \
                     (unavailable) until this is fixed"
                );
                *current = Some(problem);
            }
        }
    }

    fn clear_problem(&self) {
        if let Ok(mut current) = self.problem.lock() {
            *current = None;
        }
    }

    /// `"; last problem: ..."`, or nothing.
    fn last_problem(&self) -> String {
        match self
            .problem
            .lock()
            .ok()
            .as_deref()
            .and_then(Option::as_deref)
        {
            Some(p) => format!("; last problem: {p}"),
            None => String::new(),
        }
    }

    /// Err if the view is older than the bound.
    fn fresh(&self) -> Result<(), StoreError> {
        let heard = *self
            .heard
            .lock()
            .map_err(|_| StoreError::poisoned(REVOCATIONS))?;
        match heard {
            None => Err(StoreError::new(
                REVOCATIONS,
                format!(
                    "not yet synchronised with redis; denying until the first sync succeeds{}",
                    self.last_problem()
                ),
            )
            .with_kind(StoreErrorKind::Stale)),
            Some(at) if at.elapsed() > self.bound => Err(StoreError::new(
                REVOCATIONS,
                format!(
                    "no word from redis for {} ms (bound {} ms); denying until it answers \
                     again{}",
                    at.elapsed().as_millis(),
                    self.bound.as_millis(),
                    self.last_problem()
                ),
            )
            .with_kind(StoreErrorKind::Stale)),
            Some(_) => Ok(()),
        }
    }
}

/// Revocations shared by every verifier replica through Redis.
///
/// Writes ([`revoke_token`](RedisRevocations::revoke_token) and friends) go to Redis and are
/// announced on a pub/sub channel in one `MULTI` transaction; every instance keeps a local
/// in-memory view that a background thread keeps up to date:
///
/// 1. it subscribes to the channel, then reads the whole state from Redis and replaces its view
///    (subscribing first means no announcement made during the read is lost);
/// 2. on each announcement it reads the current value of the one entry named and applies it;
/// 3. it pings Redis on the subscription every [`heartbeat`](RedisOptions::heartbeat); each
///    answer confirms that every announcement made before it has been seen;
/// 4. on any error it reconnects (every [`retry_interval`](RedisOptions::retry_interval)) and
///    starts again at 1.
///
/// A revocation whose write to Redis fails returns the error and is pinned on this instance:
/// no resync, announcement or missing entry lifts it here (anyone who can publish on the
/// channel can make an instance re-read Redis, and that must never loosen it). The local view
/// loosens only to follow Redis's state; [`restore_agent`](RedisRevocations::restore_agent)
/// writes Redis first and changes nothing if that fails.
///
/// [`check`](Revocations::check) reads memory only. If the view has not been confirmed for
/// longer than the [`staleness_bound`](RedisOptions::staleness_bound) (or never was), it
/// returns `Err` and the verifier denies `unavailable`: a replica cut off from Redis never
/// trusts an old view for longer than the bound.
///
/// The semantics are those of [`MemoryRevocations`] (which holds the local view). Dropping the
/// value stops the thread. Share one instance between a verifier and the code that revokes
/// through an [`Arc`].
///
/// ```no_run
/// use agent_handoff::{store::redis::RedisRevocations, UnixTime};
/// use std::sync::Arc;
/// use std::time::Duration;
/// let revocations = Arc::new(RedisRevocations::open("redis://127.0.0.1:6379/0")?);
/// revocations.wait_until_synced(Duration::from_secs(2))?;
/// revocations.revoke_task(&"task-42".parse()?, UnixTime::now())?;
/// // HandoffVerifier::builder(..).revocations(revocations.clone())
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisRevocations {
    shared: Arc<Shared>,
    pool: Pool,
    keys: Keys,
    address: String,
    stop: Option<Sender<()>>,
    stopped: Arc<AtomicBool>,
    worker: Option<JoinHandle<()>>,
}

impl fmt::Debug for RedisRevocations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRevocations")
            .field("address", &self.address)
            .field("channel", &self.keys.channel)
            .field("staleness_bound", &self.shared.bound)
            .finish_non_exhaustive()
    }
}

impl RedisRevocations {
    /// Revocations at `url` (`redis://[user:password@]host:port/db`) with default options.
    /// Starts the subscriber thread and returns at once; until the first sync, `check` denies
    /// (see [`wait_until_synced`](RedisRevocations::wait_until_synced)).
    pub fn open(url: &str) -> Result<RedisRevocations, Error> {
        RedisRevocations::open_with(url, &RedisOptions::default())
    }

    /// Like [`open`](RedisRevocations::open), with options.
    pub fn open_with(url: &str, options: &RedisOptions) -> Result<RedisRevocations, Error> {
        options.validate()?;
        let client = client(url)?;
        let shared = Arc::new(Shared {
            view: RwLock::new(MemoryRevocations::with_retention(options.retention)),
            pinned: MemoryRevocations::with_retention(options.retention),
            heard: Mutex::new(None),
            problem: Mutex::new(None),
            bound: options.staleness_bound,
            retention: options.retention,
        });
        let keys = Keys::new(&options.namespace);
        let (stop_tx, stop_rx) = mpsc::channel();
        let stopped = Arc::new(AtomicBool::new(false));
        let subscriber = Subscriber {
            client: client.clone(),
            shared: Arc::clone(&shared),
            keys: keys.clone(),
            connect_timeout: options.connect_timeout,
            io_timeout: options.io_timeout,
            heartbeat: options.heartbeat,
            retry: options.retry_interval,
            poll: options
                .heartbeat
                .min(Duration::from_millis(50))
                .max(Duration::from_millis(1)),
            stop: stop_rx,
            stopped: Arc::clone(&stopped),
        };
        let worker = std::thread::Builder::new()
            .name("agent-handoff-revocations".to_owned())
            .spawn(move || subscriber.run())
            .map_err(|source| Error::Thread {
                what: "revocation subscriber",
                source,
            })?;
        Ok(RedisRevocations {
            address: address(&client),
            pool: Pool::new(client, options, REVOCATIONS),
            shared,
            keys,
            stop: Some(stop_tx),
            stopped,
            worker: Some(worker),
        })
    }

    /// Waits until the local view is synchronised with Redis (fresh within the bound), or
    /// `timeout` passes (then the error says why).
    pub fn wait_until_synced(&self, timeout: Duration) -> Result<(), StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.shared.fresh() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    /// Whether the local view is fresh (confirmed by Redis within the bound).
    #[must_use]
    pub fn is_synced(&self) -> bool {
        self.shared.fresh().is_ok()
    }

    /// Counts of entries in the local view.
    pub fn stats(&self) -> Result<RevocationStats, StoreError> {
        self.shared.view()?.stats()
    }

    /// Applies a revocation to the local view, then writes it to Redis and announces it
    /// atomically (`MULTI` or one script). If Redis fails, the call returns the error (the
    /// revocation is not shared with the other replicas) and the revocation is pinned on this
    /// instance: no announcement, resync or absence of the entry in Redis can undo it here.
    fn write(
        &self,
        local: impl Fn(&MemoryRevocations) -> Result<(), StoreError>,
        remote: impl Fn(&mut Connection) -> RedisResult<()>,
        keys: &[&str],
    ) -> Result<(), StoreError> {
        // Pinned first, whatever Redis answers: a resync from a snapshot read before this
        // write, an announcement, or an entry lost in Redis (a failover) must never lift a
        // revocation made here. Token and task pins expire with the retention; an agent pin is
        // released by `revoke_agent` once Redis holds it, so that a restore made on any replica
        // can lift it.
        local(&self.shared.pinned)?;
        local(&self.shared.view()?)?;
        self.pool.run(|con| remote(con)).map_err(|e| {
            let explained = explain_write(&e, keys);
            e.explained(format!(
                "{explained}; the revocation was not written to redis, so the other replicas do \
                     not enforce it; it holds on this instance only (pinned: nothing read \
                     from redis lifts it here): retry it"
            ))
        })
    }

    /// A token or task revocation: one script that keeps the entry (the later of the old and
    /// new revocation time), records this instance's retention in the namespace, purges the
    /// entries older than the longest retention any instance recorded, and announces it.
    fn write_entry(&self, key: &str, member: &str, now: UnixTime, announce: &str) -> ::redis::Cmd {
        let mut cmd = ::redis::cmd("EVAL");
        cmd.arg(WRITE_ENTRY)
            .arg(2)
            .arg(key)
            .arg(&self.keys.retention)
            .arg(now.as_secs())
            .arg(member)
            .arg(self.shared.retention.as_secs())
            .arg(&self.keys.channel)
            .arg(announce);
        cmd
    }

    /// Revokes a token (and every chain through it), on every replica. On an error the
    /// revocation holds on this instance only: retry it.
    pub fn revoke_token(&self, id: &TokenId, now: UnixTime) -> Result<(), StoreError> {
        let announce = format!("token {id}");
        self.write(
            |v| v.revoke_token(id, now),
            |con| {
                self.write_entry(&self.keys.tokens, id.as_str(), now, &announce)
                    .query::<()>(con)
            },
            &[&self.keys.tokens, &self.keys.retention],
        )
    }

    /// Revokes every token of a task issued up to `now`, on every replica. On an error the
    /// revocation holds on this instance only: retry it.
    pub fn revoke_task(&self, task: &TaskId, now: UnixTime) -> Result<(), StoreError> {
        let announce = format!("task {task}");
        self.write(
            |v| v.revoke_task(task, now),
            |con| {
                self.write_entry(&self.keys.tasks, task.as_str(), now, &announce)
                    .query::<()>(con)
            },
            &[&self.keys.tasks, &self.keys.retention],
        )
    }

    /// Revokes an agent on every replica, until [`restore_agent`](RedisRevocations::restore_agent).
    /// On an error the revocation holds on this instance only: retry it.
    pub fn revoke_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        self.write(
            |v| v.revoke_agent(agent),
            |con| {
                ::redis::pipe()
                    .atomic()
                    .sadd(&self.keys.agents, agent.as_str())
                    .ignore()
                    .publish(&self.keys.channel, format!("agent {agent}"))
                    .ignore()
                    .query::<()>(con)
            },
            &[&self.keys.agents],
        )?;
        // Durable in Redis now: a restore made on any replica may lift it.
        self.shared.pinned.restore_agent(agent)
    }

    /// Lifts an agent revocation on every replica. Redis is written first: on an error
    /// nothing changed, here or elsewhere, and the agent is still revoked.
    pub fn restore_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        self.pool
            .run(|con| {
                ::redis::pipe()
                    .atomic()
                    .srem(&self.keys.agents, agent.as_str())
                    .ignore()
                    .publish(&self.keys.channel, format!("agent {agent}"))
                    .ignore()
                    .query::<()>(con)
            })
            .map_err(|e| {
                let explained = explain_write(&e, &[&self.keys.agents]);
                e.explained(format!("{explained}; the agent is still revoked: retry it"))
            })?;
        self.shared.pinned.restore_agent(agent)?;
        self.shared.view()?.restore_agent(agent)
    }

    /// Revokes every token and envelope issued before `cutoff`, on every replica. A later
    /// cut-off replaces an earlier one; an earlier one is ignored. On an error the cut-off
    /// holds on this instance only: retry it.
    pub fn revoke_issued_before(&self, cutoff: UnixTime) -> Result<(), StoreError> {
        self.write(
            |v| v.revoke_issued_before(cutoff),
            |con| {
                ::redis::pipe()
                    .atomic()
                    .cmd("ZADD")
                    .arg(&self.keys.cutoff)
                    .arg("GT")
                    .arg(cutoff.as_secs())
                    .arg("cutoff")
                    .ignore()
                    .publish(&self.keys.channel, "cutoff -")
                    .ignore()
                    .query::<()>(con)
            },
            &[&self.keys.cutoff],
        )
    }
}

/// The script of a token or task revocation. KEYS: the entries, the retention record. ARGV:
/// now, member, this instance's retention (s), channel, announcement.
const WRITE_ENTRY: &str = r"
local recorded = tonumber(redis.call('ZSCORE', KEYS[2], 'retention') or '0')
local own = tonumber(ARGV[3])
if recorded < own then
  redis.call('ZADD', KEYS[2], own, 'retention')
  recorded = own
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - recorded)
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
";

/// A write's error, naming the keys it uses when one holds the wrong type.
fn explain_write(e: &StoreError, keys: &[&str]) -> String {
    let problem = e.problem();
    if e.kind() == StoreErrorKind::WrongType {
        let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
        format!(
            "{problem} (one of {} holds a value of the wrong type: only this library may write \
             under its namespace; inspect it with `TYPE <key>` and delete it)",
            keys.join(", ")
        )
    } else {
        problem.to_owned()
    }
}

impl Revocations for RedisRevocations {
    fn check(&self, query: &RevocationQuery<'_>) -> Result<Option<Revoked>, StoreError> {
        self.shared.fresh()?;
        let view = self
            .shared
            .view
            .read()
            .map_err(|_| StoreError::poisoned(REVOCATIONS))?;
        match view.check(query)? {
            Some(revoked) => Ok(Some(revoked)),
            None => self.shared.pinned.check(query),
        }
    }

    fn retention(&self) -> Option<Duration> {
        Some(self.shared.retention)
    }
}

impl Drop for RedisRevocations {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        drop(self.stop.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Why a subscription session ended.
enum End {
    Stop,
    Failed,
}

/// The background thread of a [`RedisRevocations`].
struct Subscriber {
    client: Client,
    shared: Arc<Shared>,
    keys: Keys,
    connect_timeout: Duration,
    io_timeout: Duration,
    heartbeat: Duration,
    retry: Duration,
    poll: Duration,
    stop: Receiver<()>,
    stopped: Arc<AtomicBool>,
}

impl Subscriber {
    fn stopping(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
            || matches!(
                self.stop.try_recv(),
                Ok(()) | Err(TryRecvError::Disconnected)
            )
    }

    fn run(self) {
        loop {
            if self.stopping() {
                return;
            }
            if let End::Stop = self.session() {
                return;
            }
            match self.stop.recv_timeout(self.retry) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// One connection's life: subscribe, resync, then follow announcements and heartbeats.
    fn session(&self) -> End {
        let failed = |problem: String| {
            self.shared.set_problem(problem);
            End::Failed
        };
        let connection = || connect(&self.client, self.connect_timeout, self.io_timeout);
        let mut sub_con = match connection() {
            Ok(con) => con,
            Err(e) => return failed(format!("cannot connect: {}", redis_problem(&e))),
        };
        let mut con = match connection() {
            Ok(con) => con,
            Err(e) => return failed(format!("cannot connect: {}", redis_problem(&e))),
        };
        let mut pubsub = sub_con.as_pubsub();
        if let Err(e) = pubsub.subscribe(&self.keys.channel) {
            return failed(format!(
                "cannot subscribe to `{}`: {}",
                self.keys.channel,
                redis_problem(&e)
            ));
        }
        // Subscribed first: anything announced from now on reaches us, so a snapshot read now
        // plus the announcements that follow is complete.
        let started = Instant::now();
        if let Err(problem) = self.register_retention(&mut con) {
            return failed(problem);
        }
        if let Err(problem) = self.resync(&mut con) {
            return failed(problem);
        }
        self.shared.clear_problem();
        self.shared.mark_heard(started);
        if pubsub.set_read_timeout(Some(self.poll)).is_err() {
            return End::Failed;
        }
        let mut last_ping = Instant::now();
        // A pong confirms every announcement made before the ping; it counts once the messages
        // that arrived with it are applied (the next read that times out on an empty queue).
        let mut confirmed: Option<Instant> = None;
        loop {
            if self.stopping() {
                return End::Stop;
            }
            if last_ping.elapsed() >= self.heartbeat {
                let sent = Instant::now();
                if pubsub.set_read_timeout(Some(self.io_timeout)).is_err()
                    || pubsub.ping::<::redis::Value>().is_err()
                    || pubsub.set_read_timeout(Some(self.poll)).is_err()
                {
                    return End::Failed;
                }
                confirmed = Some(sent);
                last_ping = sent;
            }
            match pubsub.get_message() {
                Ok(msg) => {
                    let Ok(payload) = msg.get_payload::<String>() else {
                        return End::Failed;
                    };
                    if self.apply(&mut con, &payload).is_err() {
                        return End::Failed;
                    }
                }
                Err(e) if e.is_timeout() => {
                    if let Some(at) = confirmed.take() {
                        self.shared.mark_heard(at);
                    }
                }
                Err(_) => return End::Failed,
            }
        }
    }

    /// Records this instance's retention in the namespace (if it is longer than the one
    /// recorded), so that no writer purges an entry this instance still needs. Only reads
    /// when the record is already long enough.
    fn register_retention(&self, con: &mut Connection) -> Result<(), String> {
        let key = &self.keys.retention;
        let own = self.shared.retention.as_secs();
        let recorded: Option<u64> = con
            .zscore(key, "retention")
            .map_err(|e| key_problem(key, "a sorted set", &e))?;
        if recorded.is_none_or(|r| r < own) {
            ::redis::cmd("ZADD")
                .arg(key)
                .arg("GT")
                .arg(own)
                .arg("retention")
                .query::<()>(con)
                .map_err(|e| key_problem(key, "a sorted set", &e))?;
        }
        Ok(())
    }

    /// Reads the whole state and replaces the local view. The error names the key that
    /// could not be read and why.
    fn resync(&self, con: &mut Connection) -> Result<(), String> {
        let view = MemoryRevocations::with_retention(self.shared.retention);
        let keys = &self.keys;
        let tokens: Vec<(String, u64)> = con
            .zrange_withscores(&keys.tokens, 0, -1)
            .map_err(|e| key_problem(&keys.tokens, "a sorted set", &e))?;
        for (id, at) in tokens {
            if let Ok(id) = id.parse::<TokenId>() {
                let _ = view.revoke_token(&id, UnixTime::from_secs(at));
            }
        }
        let tasks: Vec<(String, u64)> = con
            .zrange_withscores(&keys.tasks, 0, -1)
            .map_err(|e| key_problem(&keys.tasks, "a sorted set", &e))?;
        for (task, at) in tasks {
            if let Ok(task) = task.parse::<TaskId>() {
                let _ = view.revoke_task(&task, UnixTime::from_secs(at));
            }
        }
        let agents: Vec<String> = con
            .smembers(&keys.agents)
            .map_err(|e| key_problem(&keys.agents, "a set", &e))?;
        for agent in agents {
            if let Ok(agent) = agent.parse::<AgentId>() {
                let _ = view.revoke_agent(&agent);
            }
        }
        let cutoff = con
            .zscore::<_, _, Option<u64>>(&keys.cutoff, "cutoff")
            .map_err(|e| key_problem(&keys.cutoff, "a sorted set", &e))?;
        if let Some(cutoff) = cutoff {
            let _ = view.revoke_issued_before(UnixTime::from_secs(cutoff));
        }
        match self.shared.view.write() {
            Ok(mut current) => {
                *current = view;
                Ok(())
            }
            Err(_) => Err("revocation view lock poisoned".to_owned()),
        }
    }

    /// Applies one announcement by reading the current value of the entry it names, so the
    /// view converges on Redis's state whatever order announcements arrive in.
    fn apply(&self, con: &mut Connection, payload: &str) -> Result<(), ()> {
        let (kind, name) = payload.split_once(' ').ok_or(())?;
        let view = self.shared.view().map_err(|_| ())?;
        match kind {
            "token" => {
                let id: TokenId = name.parse().map_err(|_| ())?;
                let at: Option<u64> = con.zscore(&self.keys.tokens, name).map_err(|_| ())?;
                if let Some(at) = at {
                    view.revoke_token(&id, UnixTime::from_secs(at))
                        .map_err(|_| ())?;
                }
            }
            "task" => {
                let task: TaskId = name.parse().map_err(|_| ())?;
                let at: Option<u64> = con.zscore(&self.keys.tasks, name).map_err(|_| ())?;
                if let Some(at) = at {
                    view.revoke_task(&task, UnixTime::from_secs(at))
                        .map_err(|_| ())?;
                }
            }
            "agent" => {
                let agent: AgentId = name.parse().map_err(|_| ())?;
                let revoked: bool = con.sismember(&self.keys.agents, name).map_err(|_| ())?;
                if revoked {
                    view.revoke_agent(&agent).map_err(|_| ())?;
                } else {
                    view.restore_agent(&agent).map_err(|_| ())?;
                }
            }
            "cutoff" => {
                let cutoff: Option<u64> =
                    con.zscore(&self.keys.cutoff, "cutoff").map_err(|_| ())?;
                if let Some(cutoff) = cutoff {
                    view.revoke_issued_before(UnixTime::from_secs(cutoff))
                        .map_err(|_| ())?;
                }
            }
            // Unknown announcement (a newer writer?): resync to be safe.
            _ => return Err(()),
        }
        Ok(())
    }
}

impl crate::store::RevocationWriter for RedisRevocations {
    fn revoke_token(&self, id: &TokenId, now: UnixTime) -> Result<(), StoreError> {
        RedisRevocations::revoke_token(self, id, now)
    }
    fn revoke_task(&self, task: &TaskId, now: UnixTime) -> Result<(), StoreError> {
        RedisRevocations::revoke_task(self, task, now)
    }
    fn revoke_agent(&self, agent: &AgentId) -> Result<(), StoreError> {
        RedisRevocations::revoke_agent(self, agent)
    }
    fn revoke_issued_before(&self, cutoff: UnixTime) -> Result<(), StoreError> {
        RedisRevocations::revoke_issued_before(self, cutoff)
    }
}

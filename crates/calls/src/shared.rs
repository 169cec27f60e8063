//! Target counters shared by the nodes of one deployment, in Redis: each target's ringing and
//! connected calls (for its concurrency cap) and its connected calls in the current local hour,
//! day and month (for its calendar caps).
//!
//! A reservation is one Lua script that checks every cap and adds the attempt, so two nodes
//! never both take a target's last slot: Redis runs one script at a time. Each live call is a
//! member of its target's `ring` or `conn` set, scored by when it stops counting; the node that
//! holds the call moves that forward every third of a lease ([`SharedCounters::keep_alive`]),
//! so the calls of a node that died stop holding the target's caps within [`LEASE_MS`]. Those
//! times are Redis's (`TIME`), so nodes whose clocks disagree still agree on them. Calendar
//! counters expire a day after their period ends.
//!
//! Keys carry the target in a hash tag (`callopt:{t:42}:ring`), so that a target's keys stay in
//! one slot of a Redis Cluster.

use callopt_domain::Caps;
use redis::aio::ConnectionManager;
use redis::Script;

/// How long a live call counts after its node last beat for it.
pub const LEASE_MS: i64 = 60_000;

/// How long a calendar counter is kept after its period ends (clock skew between nodes).
const COUNTER_SLACK_MS: i64 = 86_400_000;

/// Redis's clock in ms, the one clock every node's expiries are read against (nodes' clocks may
/// disagree).
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Sets a key's expiry to `at` unless it already lasts longer.
const EXTEND: &str = r"
local function extend(key, at)
  if redis.call('PEXPIRETIME', key) < at then redis.call('PEXPIREAT', key, at) end
end
";

/// Check every cap of the target and add the attempt, or add nothing.
/// KEYS: ring, conn, hour, day, month. ARGV: member, lease (ms), concurrent, hourly, daily,
/// monthly (a cap below 0 is none). Returns 1 when reserved.
const RESERVE: &str = r"
local expiry = now + tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local ringing = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then ringing = ringing - 1 end
local live = ringing + redis.call('ZCARD', KEYS[2])
local concurrent = tonumber(ARGV[3])
if concurrent >= 0 and live >= concurrent then return 0 end
for i = 1, 3 do
  local cap = tonumber(ARGV[3 + i])
  if cap >= 0 then
    local used = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
    if used + ringing >= cap then return 0 end
  end
end
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
extend(KEYS[1], expiry)
return 1
";

/// The attempt was answered: counted in its periods, and from ringing to connected unless it
/// was released already (a hang-up may overtake its answer).
/// KEYS: ring, conn, hour, day, month. ARGV: member, lease (ms), then when each counter expires.
const ANSWER: &str = r"
local expiry = now + tonumber(ARGV[2])
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[2], expiry, ARGV[1])
  extend(KEYS[2], expiry)
end
for i = 1, 3 do
  redis.call('INCR', KEYS[2 + i])
  extend(KEYS[2 + i], tonumber(ARGV[2 + i]))
end
return 1
";

/// A live call still holds its target: it counts for another lease, if it still counts at all.
/// KEYS: ring, conn. ARGV: member, lease (ms).
const KEEP: &str = r"
local expiry = now + tonumber(ARGV[2])
for i = 1, 2 do
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', expiry, ARGV[1]) == 1 then
    extend(KEYS[i], expiry)
  end
end
return 1
";

/// A script with the clock and the expiry helper before it.
fn script(body: &str) -> std::sync::Arc<Script> {
    std::sync::Arc::new(Script::new(&format!("{NOW}{EXTEND}{body}")))
}

/// Counters shared between nodes, in one Redis.
#[derive(Clone)]
pub struct SharedCounters {
    redis: ConnectionManager,
    client: redis::Client,
    reserve: std::sync::Arc<Script>,
    answer: std::sync::Arc<Script>,
    keep: std::sync::Arc<Script>,
}

impl std::fmt::Debug for SharedCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCounters").finish_non_exhaustive()
    }
}

/// A call's place in the counters: its target and its member name (unique per call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The target the call is on.
    pub target: i64,
    /// The call's member name: its key, which call ids make unique across nodes.
    pub member: String,
}

impl Slot {
    /// The slot of call `key` on `target`.
    pub fn new(target: i64, key: u64) -> Self {
        Self {
            target,
            member: key.to_string(),
        }
    }

    fn key(&self, what: &str) -> String {
        format!("callopt:{{t:{}}}:{what}", self.target)
    }

    fn keys(&self, periods: &[i64; 3]) -> [String; 5] {
        [
            self.key("ring"),
            self.key("conn"),
            self.key(&format!("h:{}", periods[0])),
            self.key(&format!("d:{}", periods[1])),
            self.key(&format!("m:{}", periods[2])),
        ]
    }
}

/// A cap as the scripts take it: below 0 for none.
fn cap(c: Option<u32>) -> i64 {
    c.map_or(-1, i64::from)
}

impl SharedCounters {
    /// Connects to the Redis at `url` (`redis://host:port/db`); the connection is re-made by
    /// itself when it drops.
    pub async fn connect(url: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let redis = ConnectionManager::new(client.clone()).await?;
        Ok(Self {
            redis,
            client,
            reserve: script(RESERVE),
            answer: script(ANSWER),
            keep: script(KEEP),
        })
    }

    /// Reserves a ringing attempt of `slot` if every cap allows one more; `periods` are the
    /// ends of the target's current hour, day and month ([`callopt_routing::cap_periods`]).
    pub async fn reserve(
        &self,
        slot: &Slot,
        caps: &Caps,
        periods: &[i64; 3],
    ) -> redis::RedisResult<bool> {
        let mut invocation = self.reserve.prepare_invoke();
        for key in slot.keys(periods) {
            invocation.key(key);
        }
        invocation
            .arg(&slot.member)
            .arg(LEASE_MS)
            .arg(cap(caps.concurrent))
            .arg(cap(caps.hourly))
            .arg(cap(caps.daily))
            .arg(cap(caps.monthly));
        let reserved: i64 = invocation.invoke_async(&mut self.redis.clone()).await?;
        Ok(reserved == 1)
    }

    /// The attempt of `slot` was answered: it is connected, and counted in the target's current
    /// hour, day and month.
    pub async fn answered(&self, slot: &Slot, periods: &[i64; 3]) -> redis::RedisResult<()> {
        let mut invocation = self.answer.prepare_invoke();
        for key in slot.keys(periods) {
            invocation.key(key);
        }
        invocation.arg(&slot.member).arg(LEASE_MS);
        for end in periods {
            invocation.arg(end.saturating_add(COUNTER_SLACK_MS));
        }
        let _: i64 = invocation.invoke_async(&mut self.redis.clone()).await?;
        Ok(())
    }

    /// The call of `slot` no longer holds its target (an attempt that failed, a call that
    /// ended).
    pub async fn released(&self, slot: &Slot) -> redis::RedisResult<()> {
        redis::pipe()
            .zrem(slot.key("ring"), &slot.member)
            .ignore()
            .zrem(slot.key("conn"), &slot.member)
            .ignore()
            .query_async::<()>(&mut self.redis.clone())
            .await
    }

    /// This node's live calls still hold their targets: each counts for another [`LEASE_MS`].
    /// A call that was released meanwhile is not added back.
    pub async fn keep_alive(&self, slots: &[Slot]) -> redis::RedisResult<()> {
        for slot in slots {
            let _: i64 = self
                .keep
                .key(slot.key("ring"))
                .key(slot.key("conn"))
                .arg(&slot.member)
                .arg(LEASE_MS)
                .invoke_async(&mut self.redis.clone())
                .await?;
        }
        Ok(())
    }

    /// The connection and the client it was made from, for the other state kept in this Redis.
    pub(crate) fn connection(&self) -> (ConnectionManager, redis::Client) {
        (self.redis.clone(), self.client.clone())
    }

    /// Whether Redis answers, and how long it took.
    pub async fn ping(&self) -> redis::RedisResult<std::time::Duration> {
        let started = std::time::Instant::now();
        redis::cmd("PING")
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(started.elapsed())
    }
}

//! Target counters shared by the nodes of one deployment, in Redis: each target's ringing and
//! connected calls (for its concurrency cap) and its connected calls in the current local hour,
//! day and month (for its calendar caps).
//!
//! A reservation is one Lua script that checks every cap and adds the attempt, so two nodes
//! never both take a target's last slot: Redis runs one script at a time. Each live call is a
//! member of its target's `ring` or `conn` set, scored by when it stops counting; the node that
//! holds the call moves that forward at each beat ([`SharedCounters::keep_alive`]), so the
//! calls of a node that died stop holding the target's caps within [`LEASE_MS`]. Calendar
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

/// Check every cap of the target and add the attempt, or add nothing.
/// KEYS: ring, conn, hour, day, month. ARGV: member, now, expiry, concurrent, hourly, daily,
/// monthly (a cap below 0 is none). Returns 1 when reserved.
const RESERVE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
local ringing = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then ringing = ringing - 1 end
local live = ringing + redis.call('ZCARD', KEYS[2])
local concurrent = tonumber(ARGV[4])
if concurrent >= 0 and live >= concurrent then return 0 end
for i = 1, 3 do
  local cap = tonumber(ARGV[4 + i])
  if cap >= 0 then
    local used = tonumber(redis.call('GET', KEYS[2 + i]) or '0')
    if used + ringing >= cap then return 0 end
  end
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
end
return 1
";

/// The attempt was answered: from ringing to connected, and counted in its periods.
/// KEYS: ring, conn, hour, day, month. ARGV: member, expiry, then when each counter expires.
const ANSWER: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
if redis.call('PEXPIRETIME', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIREAT', KEYS[2], ARGV[2])
end
for i = 1, 3 do
  redis.call('INCR', KEYS[2 + i])
  redis.call('PEXPIREAT', KEYS[2 + i], ARGV[2 + i])
end
return 1
";

/// Counters shared between nodes, in one Redis.
#[derive(Clone)]
pub struct SharedCounters {
    redis: ConnectionManager,
    reserve: std::sync::Arc<Script>,
    answer: std::sync::Arc<Script>,
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
        let redis = ConnectionManager::new(client).await?;
        Ok(Self {
            redis,
            reserve: std::sync::Arc::new(Script::new(RESERVE)),
            answer: std::sync::Arc::new(Script::new(ANSWER)),
        })
    }

    /// Reserves a ringing attempt of `slot` at `now` if every cap allows one more; `periods`
    /// are the ends of the target's current hour, day and month ([`callopt_routing::cap_periods`]).
    pub async fn reserve(
        &self,
        slot: &Slot,
        caps: &Caps,
        periods: &[i64; 3],
        now: i64,
    ) -> redis::RedisResult<bool> {
        let mut invocation = self.reserve.prepare_invoke();
        for key in slot.keys(periods) {
            invocation.key(key);
        }
        invocation
            .arg(&slot.member)
            .arg(now)
            .arg(now + LEASE_MS)
            .arg(cap(caps.concurrent))
            .arg(cap(caps.hourly))
            .arg(cap(caps.daily))
            .arg(cap(caps.monthly));
        let reserved: i64 = invocation.invoke_async(&mut self.redis.clone()).await?;
        Ok(reserved == 1)
    }

    /// The attempt of `slot` was answered at `now`: it is connected, and counted in the
    /// target's current hour, day and month.
    pub async fn answered(
        &self,
        slot: &Slot,
        periods: &[i64; 3],
        now: i64,
    ) -> redis::RedisResult<()> {
        let mut invocation = self.answer.prepare_invoke();
        for key in slot.keys(periods) {
            invocation.key(key);
        }
        invocation.arg(&slot.member).arg(now + LEASE_MS);
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

    /// This node's live calls still hold their targets at `now`: each counts for another
    /// [`LEASE_MS`]. A call that was released meanwhile is not added back.
    pub async fn keep_alive(&self, slots: &[Slot], now: i64) -> redis::RedisResult<()> {
        if slots.is_empty() {
            return Ok(());
        }
        let until = now + LEASE_MS;
        let mut pipe = redis::pipe();
        for slot in slots {
            for set in ["ring", "conn"] {
                pipe.cmd("ZADD")
                    .arg(slot.key(set))
                    .arg("XX")
                    .arg(until)
                    .arg(&slot.member)
                    .ignore();
                pipe.cmd("PEXPIREAT")
                    .arg(slot.key(set))
                    .arg(until)
                    .arg("GT")
                    .ignore();
            }
        }
        pipe.query_async::<()>(&mut self.redis.clone()).await
    }

    /// Whether Redis answers, and how long it took.
    pub async fn ping(&self) -> redis::RedisResult<std::time::Duration> {
        let started = std::time::Instant::now();
        redis::cmd("PING")
            .query_async::<()>(&mut self.redis.clone())
            .await?;
        Ok(started.elapsed())
    }

    /// Live calls on `target` by the shared counters at `now` (ringing + connected).
    pub async fn live_calls(&self, target: i64, now: i64) -> redis::RedisResult<u64> {
        let slot = Slot::new(target, 0);
        let (ringing, connected): (u64, u64) = redis::pipe()
            .zcount(slot.key("ring"), now, "+inf")
            .zcount(slot.key("conn"), now, "+inf")
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(ringing + connected)
    }
}

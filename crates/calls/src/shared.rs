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

use crate::{Next, Switchboard};
use callopt_domain::{AttemptOutcome, Caps, Destination};
use callopt_routing::Shared;
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::Weak;
use std::time::Duration;

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

    /// Reserves the target of `next` for call `key` on `board`, withdrawing targets whose caps
    /// are full counting the other nodes' calls until one holds or the plan has nothing left;
    /// the next step to take. A target this call path cannot reach (`reaches` says no) fails
    /// as unreachable and the plan goes on. If Redis cannot be reached the target is taken on
    /// this node's counters alone: a cap may be exceeded, no call is lost.
    pub async fn reserve_next(
        &self,
        board: &Switchboard,
        key: u64,
        mut next: Next,
        reaches: fn(&Destination) -> bool,
    ) -> Next {
        loop {
            let Next::Target {
                target,
                destination,
                ..
            } = &next
            else {
                return next;
            };
            let target = *target;
            let (true, Some(t)) = (reaches(destination), board.target(target)) else {
                board.confirm(key);
                next = board.attempt_failed(key, target, AttemptOutcome::Unreachable, None);
                continue;
            };
            let periods = callopt_routing::cap_periods(&t, board.now());
            let slot = Slot::new(target, key);
            match self.reserve(&slot, &t.caps, &periods).await {
                Ok(true) => {
                    if !board.confirm(key) {
                        // The caller hung up meanwhile: nothing holds the slot.
                        let _ = self.released(&slot).await;
                    }
                    return next;
                }
                Ok(false) => {
                    metrics::counter!("callopt_shared_caps_refusals_total").increment(1);
                    next = board.withdraw(key, target);
                }
                Err(e) => {
                    metrics::counter!("callopt_shared_caps_errors_total").increment(1);
                    tracing::warn!(error = %e, "shared counters unreachable: routing on this node's");
                    board.confirm(key);
                    return next;
                }
            }
        }
    }

    /// Call `key` was answered on `target`: counted in the target's current periods.
    pub async fn count_answer(&self, board: &Switchboard, key: u64, target: i64) {
        let Some(t) = board.target(target) else {
            return;
        };
        let periods = callopt_routing::cap_periods(&t, board.now());
        if let Err(e) = self.answered(&Slot::new(target, key), &periods).await {
            tracing::warn!(error = %e, target, "shared counters: answer not counted");
        }
    }

    /// Call `key` no longer holds `target`.
    pub async fn let_go(&self, key: u64, target: i64) {
        if let Err(e) = self.released(&Slot::new(target, key)).await {
            tracing::warn!(error = %e, target, "shared counters: release not recorded");
        }
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

/// Keeps the attempts under way on `board` (ringing or connected, whichever path they came
/// through) counted in `shared`, three times per lease, while the board lives.
pub(crate) fn keep_alive(board: Weak<Switchboard>, shared: SharedCounters) {
    let every = Duration::from_millis((LEASE_MS / 3) as u64);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(board) = board.upgrade() else { return };
            let slots: Vec<Slot> = board
                .attempts_under_way()
                .into_iter()
                .map(|(key, target)| Slot::new(target, key))
                .collect();
            drop(board);
            if let Err(e) = shared.keep_alive(&slots).await {
                tracing::warn!(error = %e, "shared counters: live calls not kept");
            }
        }
    });
}

/// The channel routing decisions are told on ([`callopt_routing::Shared`]).
const ROUTING: &str = "callopt:routing";

/// A routing decision as the channel carries it: the node it comes from, then the decision.
fn encode(origin: &str, shared: &Shared) -> String {
    match shared {
        Shared::Cursor {
            plan,
            priority,
            target,
        } => format!("{origin}\tc\t{plan}\t{priority}\t{target}"),
        Shared::Caller {
            plan,
            caller,
            target,
            answered_at,
            forget_at,
        } => format!("{origin}\td\t{plan}\t{target}\t{answered_at}\t{forget_at}\t{caller}"),
    }
}

/// The origin and decision of a message; `None` for anything else.
fn decode(raw: &str) -> Option<(&str, Shared)> {
    let f: Vec<&str> = raw.split('\t').collect();
    let n = |i: usize| f.get(i)?.parse::<i64>().ok();
    let shared = match (f.get(1).copied(), f.len()) {
        (Some("c"), 5) => Shared::Cursor {
            plan: n(2)?,
            priority: f[3].parse().ok()?,
            target: n(4)?,
        },
        (Some("d"), 7) => Shared::Caller {
            plan: n(2)?,
            target: n(3)?,
            answered_at: n(4)?,
            forget_at: n(5)?,
            caller: f[6].to_string(),
        },
        _ => return None,
    };
    Some((f[0], shared))
}

/// Hands every message on `channel` of the Redis at `client` to `apply`, from a task of its
/// own, until `apply` returns false. The subscription is made again a second after it drops.
pub(crate) fn subscribe(
    client: redis::Client,
    channel: &'static str,
    apply: impl Fn(&str) -> bool + Send + 'static,
) {
    use futures_util::StreamExt;
    tokio::spawn(async move {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(channel).await {
                    Ok(()) => {
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            if let Ok(payload) = msg.get_payload::<String>() {
                                if !apply(&payload) {
                                    return;
                                }
                            }
                        }
                        tracing::warn!(channel, "Redis subscription dropped");
                    }
                    Err(e) => tracing::warn!(error = %e, channel, "Redis: not subscribed"),
                },
                Err(e) => tracing::warn!(error = %e, channel, "Redis: no subscription"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Tells the other nodes what `board`'s routing decides (cursor moves, answered callers) and
/// applies what they tell, while the board lives: each node then walks round-robin tiers as
/// one, and knows the callers any node answered. A message lost (Redis away) only makes the
/// nodes disagree for a while; routing never waits for it.
pub(crate) fn share_routing(
    board: &std::sync::Arc<Switchboard>,
    shared: &SharedCounters,
    origin: &str,
    mut decisions: tokio::sync::mpsc::Receiver<Shared>,
) {
    let redis = shared.redis.clone();
    let me = origin.to_string();
    tokio::spawn(async move {
        while let Some(decision) = decisions.recv().await {
            let sent = redis::cmd("PUBLISH")
                .arg(ROUTING)
                .arg(encode(&me, &decision))
                .query_async::<()>(&mut redis.clone())
                .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "routing decision not told to the other nodes");
            }
        }
    });
    let weak = std::sync::Arc::downgrade(board);
    let me = origin.to_string();
    subscribe(shared.client.clone(), ROUTING, move |raw| {
        let Some(board) = weak.upgrade() else {
            return false;
        };
        if let Some((from, decision)) = decode(raw) {
            if from != me {
                board.apply_shared(decision);
            }
        }
        true
    });
}

#[cfg(test)]
mod tests {
    use super::{decode, encode, Shared};

    #[test]
    fn routing_decisions_travel_whole_and_garbage_is_refused() {
        let decisions = [
            Shared::Cursor {
                plan: 3,
                priority: 2,
                target: 9,
            },
            Shared::Caller {
                plan: 3,
                caller: "+14155550100".into(),
                target: 9,
                answered_at: 1_700_000_000_000,
                forget_at: 1_700_003_600_000,
            },
        ];
        for d in decisions {
            assert_eq!(decode(&encode("node-a", &d)), Some(("node-a", d.clone())));
        }
        for bad in [
            "",
            "a\tc\t1\t2",
            "a\tx\t1\t2\t3",
            "a\tc\tp\t2\t3",
            "a\td\t1\t2\t3\t4",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}

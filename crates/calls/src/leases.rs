//! Visitor-number leases shared by the nodes of one deployment, in Redis: which visitor holds
//! which tracking number of a pool, whichever node served them.
//!
//! Each node still chooses numbers with its own copy of the pool (tiers, call volume, least
//! recently assigned); Redis only decides. One Lua script renews the visitor's lease if it
//! holds one, or else takes the first of the numbers the node offers that no visitor holds, and
//! names the holders of those it could not take. Redis runs one script at a time, so two nodes
//! never lease one number to two visitors, and a visitor moving between nodes keeps its number
//! and session. A lease is two keys that expire together after the campaign's idle timeout:
//! the visitor's (`callopt:{p:7}:v:<visitor>` → `<number id> <session>`) and the number's
//! (`callopt:{p:7}:n:<number id>` → `<visitor> <session>`). The pool id is the hash tag, so a
//! pool's keys stay in one slot of a Redis Cluster.
//!
//! Nodes tell each other of new leases over a channel ([`Hold`]), so each node's copy of the
//! pool mostly offers free numbers, and a call reaching any node is attributed to the session
//! that showed its number.

use crate::shared::SharedCounters;
use redis::aio::ConnectionManager;
use redis::Script;
use std::sync::Arc;

/// The channel new and renewed leases are announced on.
const HOLDS: &str = "callopt:holds";

/// Renew the visitor's lease, or take the first free number offered.
/// KEYS: the visitor's key, then one key per number offered. ARGV: visitor, lease (ms), session
/// for a new lease, the number keys' prefix, then the number ids offered.
/// Returns `renewed <number> <session>`, `new <number> <session>`, `none`, or `taken` followed
/// by `<number> <holder> <ms left>` for each number offered.
const LEASE: &str = r"
local idle = tonumber(ARGV[2])
local held = redis.call('GET', KEYS[1])
if held then
  local sp = string.find(held, ' ', 1, true)
  local number = string.sub(held, 1, sp - 1)
  local session = string.sub(held, sp + 1)
  local nkey = ARGV[4] .. number
  if redis.call('GET', nkey) == ARGV[1] .. ' ' .. session then
    redis.call('PEXPIRE', KEYS[1], idle)
    redis.call('PEXPIRE', nkey, idle)
    return {'renewed', number, session}
  end
  redis.call('DEL', KEYS[1])
end
if #KEYS == 1 then return {'none'} end
local taken = {'taken'}
for i = 2, #KEYS do
  local number = ARGV[3 + i]
  if redis.call('SET', KEYS[i], ARGV[1] .. ' ' .. ARGV[3], 'NX', 'PX', idle) then
    redis.call('SET', KEYS[1], number .. ' ' .. ARGV[3], 'PX', idle)
    return {'new', number, ARGV[3]}
  end
  taken[#taken + 1] = number
  taken[#taken + 1] = redis.call('GET', KEYS[i]) or ''
  taken[#taken + 1] = tostring(redis.call('PTTL', KEYS[i]))
end
return taken
";

/// End a lease if it is still the one named. KEYS: the visitor's key, the number's key.
/// ARGV: the visitor's value, the number's value.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
";

/// What Redis decided for a visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leased {
    /// The visitor held a lease, now renewed: same number, same session.
    Renewed {
        /// The number held.
        number_id: i64,
        /// The session the lease belongs to.
        session: String,
    },
    /// A new lease on one of the numbers offered.
    New {
        /// The number taken.
        number_id: i64,
    },
    /// The visitor holds no lease and no number was offered.
    None,
    /// Every number offered is held by another visitor: `(number, holder, ms left)`.
    Taken(Vec<(i64, String, i64)>),
}

/// A lease announced to every node: its pool's copy on each node records it, and a call on the
/// number is attributed to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The pool the number is in.
    pub pool_id: i64,
    /// The number's id.
    pub number_id: i64,
    /// The number, E.164.
    pub number: String,
    /// Who holds it.
    pub visitor: String,
    /// The session the lease belongs to.
    pub session: String,
    /// The visitor's language, for the call's routing.
    pub language: Option<String>,
    /// Until when the lease holds at least (ms since the epoch).
    pub until: i64,
}

impl Hold {
    fn encode(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.pool_id,
            self.number_id,
            self.number,
            self.visitor,
            self.session,
            self.language.as_deref().unwrap_or(""),
            self.until
        )
    }

    fn decode(raw: &str) -> Option<Self> {
        let mut f = raw.split('\t');
        let hold = Self {
            pool_id: f.next()?.parse().ok()?,
            number_id: f.next()?.parse().ok()?,
            number: f.next()?.to_string(),
            visitor: f.next()?.to_string(),
            session: f.next()?.to_string(),
            language: Some(f.next()?.to_string()).filter(|l| !l.is_empty()),
            until: f.next()?.parse().ok()?,
        };
        f.next().is_none().then_some(hold)
    }
}

/// The visitor-number leases of every pool, shared between nodes in one Redis.
#[derive(Clone)]
pub struct SharedLeases {
    redis: ConnectionManager,
    client: redis::Client,
    lease: Arc<Script>,
    release: Arc<Script>,
}

fn visitor_key(pool: i64, visitor: &str) -> String {
    format!("callopt:{{p:{pool}}}:v:{visitor}")
}

fn number_prefix(pool: i64) -> String {
    format!("callopt:{{p:{pool}}}:n:")
}

fn protocol(what: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::UnexpectedReturnType,
        "unexpected answer from the lease script",
        what.to_string(),
    ))
}

impl SharedLeases {
    /// The leases in the Redis `counters` use, over the same connection.
    pub fn new(counters: &SharedCounters) -> Self {
        let (redis, client) = counters.connection();
        Self {
            redis,
            client,
            lease: Arc::new(Script::new(LEASE)),
            release: Arc::new(Script::new(RELEASE)),
        }
    }

    /// Renews `visitor`'s lease in `pool` for `idle_ms`, or leases it the first of `offered`
    /// that nobody holds, under `session`.
    pub async fn lease(
        &self,
        pool: i64,
        visitor: &str,
        offered: &[i64],
        session: &str,
        idle_ms: i64,
    ) -> redis::RedisResult<Leased> {
        let prefix = number_prefix(pool);
        let mut invocation = self.lease.prepare_invoke();
        invocation.key(visitor_key(pool, visitor));
        for id in offered {
            invocation.key(format!("{prefix}{id}"));
        }
        invocation
            .arg(visitor)
            .arg(idle_ms.max(1))
            .arg(session)
            .arg(&prefix);
        for id in offered {
            invocation.arg(id);
        }
        let answer: Vec<String> = invocation.invoke_async(&mut self.redis.clone()).await?;
        let id = |s: &String| s.parse::<i64>().map_err(|_| protocol(s));
        match answer.as_slice() {
            [kind, number, session] if kind == "renewed" => Ok(Leased::Renewed {
                number_id: id(number)?,
                session: session.clone(),
            }),
            [kind, number, _] if kind == "new" => Ok(Leased::New {
                number_id: id(number)?,
            }),
            [kind] if kind == "none" => Ok(Leased::None),
            [kind, rest @ ..] if kind == "taken" && rest.len() % 3 == 0 => rest
                .chunks(3)
                .map(|c| {
                    let holder = c[1].split(' ').next().unwrap_or("").to_string();
                    Ok((
                        id(&c[0])?,
                        holder,
                        c[2].parse().map_err(|_| protocol(&c[2]))?,
                    ))
                })
                .collect::<redis::RedisResult<_>>()
                .map(Leased::Taken),
            _ => Err(protocol(&answer.join(" "))),
        }
    }

    /// Ends `visitor`'s lease of `number_id` under `session` in `pool`, if it is still that
    /// lease.
    pub async fn release(
        &self,
        pool: i64,
        visitor: &str,
        number_id: i64,
        session: &str,
    ) -> redis::RedisResult<()> {
        let _: i64 = self
            .release
            .key(visitor_key(pool, visitor))
            .key(format!("{}{number_id}", number_prefix(pool)))
            .arg(format!("{number_id} {session}"))
            .arg(format!("{visitor} {session}"))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Tells every node of a lease.
    pub async fn announce(&self, hold: &Hold) -> redis::RedisResult<()> {
        redis::cmd("PUBLISH")
            .arg(HOLDS)
            .arg(hold.encode())
            .query_async::<()>(&mut self.redis.clone())
            .await
    }

    /// Hands every lease any node announces to `apply`, from a task of its own, until `apply`
    /// returns false. The subscription is made again when it drops (leases announced meanwhile
    /// are learnt from the lease script instead).
    pub fn follow(&self, apply: impl Fn(Hold) -> bool + Send + 'static) {
        crate::shared::subscribe(self.client.clone(), HOLDS, move |raw| {
            Hold::decode(raw).is_none_or(&apply)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Hold;

    #[test]
    fn holds_travel_whole_and_garbage_is_refused() {
        let hold = Hold {
            pool_id: 7,
            number_id: 42,
            number: "+14155550100".into(),
            visitor: "visitor-1".into(),
            session: "ses_abc".into(),
            language: Some("es".into()),
            until: 1_700_000_000_000,
        };
        assert_eq!(Hold::decode(&hold.encode()), Some(hold.clone()));
        let bare = Hold {
            language: None,
            ..hold
        };
        assert_eq!(Hold::decode(&bare.encode()), Some(bare));
        for bad in [
            "",
            "7\t42",
            "x\t42\t+1\tv\ts\t\t1",
            "7\t42\t+1\tv\ts\t\t1\textra",
        ] {
            assert_eq!(Hold::decode(bad), None, "{bad:?}");
        }
    }
}

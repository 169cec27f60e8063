//! The switchboard: every call, from the SIP router or a carrier webhook, is started, routed,
//! answered and ended through it, against the routing table and the live counters.

use crate::table::Table;
use crate::writer::CallWriter;
use arc_swap::ArcSwap;
use callopt_domain::{AttemptOutcome, CallOutcome, Destination, HungUpBy, SipUri, E164};
use callopt_routing::{CallFacts, CompiledPlan, Decision, Live};
use callopt_store::{AttemptRecord, CallRecord, Store, StoreError, NODE_SLOTS};
use foldhash::{HashMap, HashMapExt};
use rand::{rngs::StdRng, SeedableRng};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest a call may stay up before Callopt ends its record (ms): twelve hours, far past
/// any real call, short enough that a lost hang-up does not hold a cap slot for long.
pub const MAX_CALL_MS: i64 = 12 * 3600 * 1000;

/// How many finished calls the switchboard keeps for the live view.
pub const RECENT: usize = 1000;

/// Where a call goes next, or how it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try this target.
    Target {
        /// The target's id.
        target: i64,
        /// Where to send the attempt.
        destination: Destination,
        /// How long to ring it.
        ring_timeout: Duration,
    },
    /// Answer the caller with this final status and end the call.
    Reject {
        /// SIP status (carriers map it to a hang-up).
        status: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// Where a call in progress stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallState {
    /// The call's key (its record id).
    pub key: u64,
    /// The attempt in progress or last made (1-based; 0 before the first).
    pub seq: u32,
    /// Its target.
    pub target: Option<i64>,
    /// Whether that attempt was answered.
    pub answered: bool,
    /// Targets tried so far.
    pub tried: Vec<i64>,
    /// The channel's id of the call (a carrier's call id).
    pub external_id: String,
    /// The attempt under way, as it was handed out (None once answered, or after a resume).
    pub dialling: Option<Next>,
}

impl CallState {
    fn of(key: u64, c: &LiveCall) -> Self {
        let last = c.record.attempts.last();
        Self {
            key,
            seq: c.record.attempts.len() as u32,
            target: last.and_then(|a| a.target_id),
            answered: c.record.answered_at.is_some(),
            tried: c.tried.clone(),
            external_id: c.record.external_id.to_string(),
            dialling: c
                .dialling
                .clone()
                .filter(|_| c.record.answered_at.is_none()),
        }
    }
}

/// The visitor session that holds a tracking number now.
#[derive(Debug, Clone)]
struct Holder {
    /// Session id.
    session: String,
    /// The visitor's language.
    language: Option<String>,
    /// End of the session's lease, ms.
    until: i64,
}

/// A call in progress.
struct LiveCall {
    /// The record as it will be written.
    record: CallRecord,
    /// The plan routing it.
    plan: Arc<CompiledPlan>,
    /// What routing knows of it.
    facts: CallFacts,
    /// Targets attempted so far.
    tried: Vec<i64>,
    /// The attempt handed out last, while it is under way: what a repeated request for the
    /// call (a carrier retrying its webhook) is answered again.
    dialling: Option<Next>,
    /// When a carrier reported the answer with its talk time: the call's end, the answer plus
    /// that talk time (so the record keeps the carrier's count to the millisecond).
    ends_after: Option<i64>,
    /// Whether each attempt waits for [`Switchboard::confirm`] before it is recorded: its
    /// target may still be refused by counters shared with other nodes.
    confirms: bool,
    /// The last attempt is waiting for its confirmation (it has not been sent).
    unconfirmed: bool,
}

/// The state every call path changes, behind one short lock.
struct Calls {
    /// Live counters of every target and plan.
    live: Live,
    /// Calls in progress by id.
    calls: HashMap<u64, LiveCall>,
    /// The routing decisions' randomness.
    rng: StdRng,
    /// The last call id handed out.
    last_id: i64,
    /// This node's call-id slot ([`callopt_store::NodeRecord::slot`]).
    slot: i64,
}

/// This process as one node of several sharing a database.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// The node's name: unique among the nodes sharing the database, and the same across its
    /// restarts (a node starting closes the calls its earlier run left in progress).
    pub name: String,
    /// How long a node may go unheard before the others close its calls as interrupted.
    pub timeout: Duration,
    /// The counters shared with the other nodes, if any: the targets held by calls this node
    /// closes for a gone node are let go there at once, not a lease later.
    pub shared: Option<crate::SharedCounters>,
}

impl NodeSettings {
    /// How often the node beats: five times per timeout, at least once a second.
    pub fn beat(&self) -> Duration {
        (self.timeout / 5).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    fn timeout_ms(&self) -> i64 {
        i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX / 2)
    }
}

impl Default for NodeSettings {
    fn default() -> Self {
        Self {
            name: "local".into(),
            timeout: Duration::from_secs(30),
            shared: None,
        }
    }
}

/// The first call id after `last` at `now` in `slot`: at least `now` × 1000 (reports find a
/// time range's calls by id), and equal to the slot modulo [`NODE_SLOTS`].
fn next_call_id(last: i64, now: i64, slot: i64) -> i64 {
    let base = now * 1000;
    let first = base + (slot - base).rem_euclid(NODE_SLOTS);
    first.max(last + NODE_SLOTS)
}

/// Gives `live` what the calls on record say routing counted before `now` (an earlier run of
/// this node, other nodes): the targets' connected calls in their current hour, day and month,
/// their attempts over the last hour, and the callers answered within the windows of the
/// duplicate-caller rules. Without it a restart would hand every target its caps afresh.
async fn restore_history(
    store: &Arc<dyn Store>,
    table: &Table,
    live: &mut Live,
    now: i64,
) -> Result<(), StoreError> {
    let mut periods: Vec<[i64; 3]> = Vec::new();
    let mut calendar: HashMap<i64, usize> = HashMap::new();
    for (id, target) in &table.targets {
        let starts = callopt_routing::cap_period_starts(target, now);
        let index = match periods.iter().position(|p| *p == starts) {
            Some(i) => i,
            None => {
                periods.push(starts);
                periods.len() - 1
            }
        };
        calendar.insert(*id, index);
    }
    let mut plans: HashMap<i64, Arc<CompiledPlan>> = HashMap::new();
    for route in table.by_number.values() {
        if let Some(plan) = &route.plan {
            if plan.plan().duplicate_caller.is_some() {
                plans.insert(plan.plan().id, plan.clone());
            }
        }
    }
    let callers_since = plans
        .values()
        .filter_map(|p| {
            p.plan()
                .duplicate_caller
                .map(|r| (p.plan().id, r.window_hours))
        })
        .map(|(plan, hours)| (plan, now - i64::from(hours) * 3_600_000))
        .collect();
    let query = callopt_store::HistoryQuery {
        now,
        periods,
        attempts_since: now - 3_600_000,
        callers_since,
    };
    let history = store.routing_history(&query).await?;
    for (index, target, counts) in &history.answered {
        if let Some(t) = table.targets.get(target) {
            if calendar.get(target) == Some(index) {
                live.restore_connected(t, *counts, now);
            }
        }
    }
    for (target, at, n) in &history.attempts {
        if table.targets.contains_key(target) {
            live.restore_attempts(*target, *at, *n);
        }
    }
    let remembered = history.callers.len();
    for (plan, caller, target, answered_at) in history.callers {
        let (Some(compiled), Some(caller)) = (
            plans.get(&plan),
            CallFacts::from_caller_id(&caller, None).caller,
        ) else {
            continue;
        };
        let Some(rule) = compiled.plan().duplicate_caller else {
            continue;
        };
        live.apply(callopt_routing::Shared::Caller {
            plan,
            caller,
            target,
            answered_at,
            forget_at: answered_at + i64::from(rule.window_hours) * 3_600_000,
        });
    }
    tracing::info!(
        targets = history.answered.len(),
        callers = remembered,
        "routing counters restored from the calls on record"
    );
    Ok(())
}

/// Call handling for the whole service.
pub struct Switchboard {
    /// The durable store.
    store: Arc<dyn Store>,
    /// The routing table, swapped whole on every change.
    table: ArcSwap<Table>,
    /// Counters and calls in progress.
    calls: Mutex<Calls>,
    /// Which visitor session holds each tracking number (E.164): attribution.
    holders: Mutex<HashMap<String, Holder>>,
    /// Where call records go.
    writer: CallWriter,
    /// Every change of a call record, for whoever watches calls live (the dashboard).
    changes: tokio::sync::broadcast::Sender<CallRecord>,
    /// The latest finished calls of every account (at most [`RECENT`]), newest last.
    recent: Mutex<std::collections::VecDeque<CallRecord>>,
    /// Serialises table rebuilds.
    refreshing: tokio::sync::Mutex<()>,
    /// The clock (ms since the epoch); tests may replace it.
    clock: fn() -> i64,
    /// A time that replaces the clock when non-zero ([`Switchboard::pin_clock`]).
    pinned: std::sync::atomic::AtomicI64,
    /// Where routing decisions the other nodes are to be told go, when there are several.
    routing: Option<tokio::sync::mpsc::Sender<callopt_routing::Shared>>,
    /// `callopt_calls_total` of each outcome in [`CallOutcome::ALL`]'s order, registered once:
    /// a handle looked up by its labels at every call end cost a hash of them and a registry
    /// look-up.
    ended: [metrics::Counter; CallOutcome::ALL.len()],
}

fn system_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Refuses to start a node under the name of one that is running: both would close each
/// other's calls as an earlier run's. A namesake that beat within the last few beats may be a
/// run that just died (a restart after a crash): it is watched for one and a half beats.
async fn refuse_a_running_namesake(
    store: &Arc<dyn Store>,
    node: &NodeSettings,
) -> Result<(), StoreError> {
    let Some(seen) = store.node_last_beat(&node.name).await? else {
        return Ok(());
    };
    let beat_ms = i64::try_from(node.beat().as_millis()).unwrap_or(i64::MAX / 4);
    if system_clock() - seen > 3 * beat_ms {
        return Ok(());
    }
    tokio::time::sleep(node.beat() * 3 / 2).await;
    if store.node_last_beat(&node.name).await?.unwrap_or(seen) > seen {
        return Err(StoreError::Conflict(format!(
            "a running node named {:?}",
            node.name
        )));
    }
    Ok(())
}

/// Beats for the node while the board lives ([`NodeSettings::beat`]), and at each beat closes
/// the calls of nodes gone unheard for a timeout (whichever node notices first does). A node
/// whose row is gone (it went unheard for a timeout itself) registers again, with a slot that
/// is free now.
fn beat(board: std::sync::Weak<Switchboard>, node: NodeSettings) {
    let every = node.beat();
    let timeout_ms = node.timeout_ms();
    tokio::spawn(async move {
        // The start registered the node and closed gone nodes' calls: the first beat is later.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(store) = board.upgrade().map(|b| b.store.clone()) else {
                return;
            };
            let now = system_clock();
            match store.node_heartbeat(now).await {
                Ok(true) => {}
                Ok(false) => match store.register_node(&node.name, now, now - timeout_ms).await {
                    Ok(me) => {
                        tracing::warn!(
                            slot = me.slot,
                            "node unheard for a timeout: registered again"
                        );
                        if let Some(board) = board.upgrade() {
                            board.lock().slot = me.slot;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "node not registered again"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "node heartbeat not written");
                    continue;
                }
            }
            match store
                .interrupt_calls(&node.name, now, now - timeout_ms)
                .await
            {
                Ok(done) if done.calls == 0 => {}
                Ok(done) => {
                    tracing::warn!(
                        interrupted = done.calls,
                        "calls in progress on a node gone unheard recorded as interrupted"
                    );
                    let_go(&node, done.attempts);
                }
                Err(e) => tracing::warn!(error = %e, "calls of gone nodes not checked"),
            }
        }
    });
}

/// Lets go, in the shared counters, of the targets that attempts of calls closed for a gone
/// node held.
fn let_go(node: &NodeSettings, attempts: Vec<(i64, i64)>) {
    let Some(shared) = node.shared.clone() else {
        return;
    };
    if attempts.is_empty() {
        return;
    }
    tokio::spawn(async move {
        for (call, target) in attempts {
            let slot = crate::Slot::new(target, call as u64);
            if let Err(e) = shared.released(&slot).await {
                tracing::warn!(error = %e, target, "shared counters: gone node's call kept");
            }
        }
    });
}

impl Switchboard {
    /// Registers the node, closes the calls a previous run left in progress (as interrupted),
    /// loads the routing table and the live visitor sessions, and starts the call writer.
    pub async fn start(store: Arc<dyn Store>) -> Result<Arc<Self>, StoreError> {
        let max_call = Duration::from_millis(MAX_CALL_MS as u64);
        Self::start_with(store, max_call, &NodeSettings::default()).await
    }

    /// As [`Switchboard::start`], ending calls still up after `max_call` (their hang-up never
    /// came) instead of after [`MAX_CALL_MS`], as the node `node`.
    pub async fn start_with(
        store: Arc<dyn Store>,
        max_call: Duration,
        node: &NodeSettings,
    ) -> Result<Arc<Self>, StoreError> {
        let max_call_ms = i64::try_from(max_call.as_millis())
            .unwrap_or(MAX_CALL_MS)
            .max(1);
        refuse_a_running_namesake(&store, node).await?;
        let now = system_clock();
        let timeout_ms = node.timeout_ms();
        let me = store
            .register_node(&node.name, now, now - timeout_ms)
            .await?;
        let done = store
            .interrupt_calls(&node.name, now, now - timeout_ms)
            .await?;
        let interrupted = done.calls;
        let_go(node, done.attempts);
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "calls in progress at the last stop recorded as interrupted"
            );
        }
        // With nodes sharing counters, the survivors learn of a dead node's calls from the
        // store, and let go of the slots they held: each record is written at once.
        let hold = match node.shared {
            Some(_) => Duration::ZERO,
            None => crate::writer::HOLD,
        };
        let (writer, _) = CallWriter::spawn(store.clone(), hold);
        let (routing, decisions) = match &node.shared {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::channel(4096);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let mut live = Live::new();
        let table = Table::load(&store).await?;
        restore_history(&store, &table, &mut live, now).await?;
        if routing.is_some() {
            live.share();
        }
        let board = Arc::new(Self {
            routing,
            table: ArcSwap::from_pointee(table),
            store: store.clone(),
            calls: Mutex::new(Calls {
                live,
                calls: HashMap::new(),
                rng: StdRng::from_rng(&mut rand::rng()),
                last_id: 0,
                slot: me.slot,
            }),
            holders: Mutex::new(HashMap::new()),
            writer,
            changes: tokio::sync::broadcast::channel(1024).0,
            recent: Mutex::new(std::collections::VecDeque::with_capacity(RECENT)),
            refreshing: tokio::sync::Mutex::new(()),
            clock: system_clock,
            pinned: std::sync::atomic::AtomicI64::new(0),
            ended: CallOutcome::ALL
                .map(|o| metrics::counter!("callopt_calls_total", "outcome" => o.as_str())),
        });
        for s in store.live_sessions(now).await? {
            if s.attributed {
                board.hold(
                    &s.number_e164,
                    &s.id,
                    s.language.as_deref(),
                    s.lease_expires_at,
                );
            }
        }
        beat(Arc::downgrade(&board), node.clone());
        if let (Some(shared), Some(decisions)) = (&node.shared, decisions) {
            crate::shared::keep_alive(Arc::downgrade(&board), shared.clone());
            crate::shared::share_routing(&board, shared, &node.name, decisions);
        }
        let weak = Arc::downgrade(&board);
        // Look a few times per bound, at most once a minute.
        let every = Duration::from_millis((max_call_ms as u64 / 4).clamp(100, 60_000));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(board) = weak.upgrade() else { return };
                let now = board.now();
                board.expire_started_before(now - max_call_ms);
            }
        });
        Ok(board)
    }

    /// Rebuilds the routing table from the store: call after any change to targets, plans,
    /// campaigns or tracking numbers. Calls in progress keep the plan they started with.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let _guard = self.refreshing.lock().await;
        let table = Table::load(&self.store).await?;
        let known: HashSet<i64> = table.targets.keys().copied().collect();
        self.table.store(Arc::new(table));
        let now = self.now();
        self.lock().live.prune(&known, now);
        Ok(())
    }

    /// The time now (ms since the epoch).
    /// The switchboard's clock (ms since the epoch).
    pub fn now(&self) -> i64 {
        match self.pinned.load(std::sync::atomic::Ordering::Relaxed) {
            0 => (self.clock)(),
            pinned => pinned,
        }
    }

    /// Makes the switchboard's time `ms` (0 goes back to the system clock): for tests of what
    /// depends on when calls happen (reports across a daylight-saving change, caps per hour).
    #[doc(hidden)]
    pub fn pin_clock(&self, ms: i64) {
        self.pinned.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Hands what `live` keeps for the other nodes to the task that tells them; when it falls
    /// behind, decisions are dropped (the nodes then disagree for a while; no call waits).
    fn tell(&self, live: &mut Live) {
        if let Some(tx) = &self.routing {
            for decision in live.take_shared() {
                if tx.try_send(decision).is_err() {
                    metrics::counter!("callopt_shared_routing_dropped_total").increment(1);
                }
            }
        }
    }

    /// Applies a routing decision another node told (a cursor move, an answered caller).
    pub fn apply_shared(&self, decision: callopt_routing::Shared) {
        self.lock().live.apply(decision);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that a visitor session shows `number` until `until` (ms): calls on it meanwhile
    /// are attributed to that session.
    pub fn hold(&self, number: &str, session: &str, language: Option<&str>, until: i64) {
        let mut holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
        holders.insert(
            number.to_string(),
            Holder {
                session: session.to_string(),
                language: language.map(str::to_string),
                until,
            },
        );
    }

    fn holder(&self, number: &str, now: i64) -> Option<Holder> {
        let holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
        holders.get(number).filter(|h| h.until >= now).cloned()
    }

    /// Live calls (ringing or connected) on a target.
    pub fn live_calls(&self, target: i64) -> u32 {
        self.lock().live.live_calls(target)
    }

    /// Calls in progress.
    pub fn calls_in_progress(&self) -> usize {
        self.lock().calls.len()
    }

    /// A new inbound call on `called` from `caller`. Returns the call's key (None when no
    /// record is kept: the number is not a tracking number) and where it goes first.
    pub fn start_call(
        &self,
        channel: &str,
        external_id: &str,
        called: &str,
        caller: &str,
    ) -> (Option<u64>, Next) {
        self.start_call_with(channel, external_id, called, caller, false)
    }

    /// As [`Switchboard::start_call`]; with `confirms`, each target handed out is recorded as
    /// an attempt only once [`Switchboard::confirm`]ed, and may be [`Switchboard::withdraw`]n
    /// instead (counters shared with other nodes are asked in between).
    pub fn start_call_with(
        &self,
        channel: &str,
        external_id: &str,
        called: &str,
        caller: &str,
        confirms: bool,
    ) -> (Option<u64>, Next) {
        let now = self.now();
        let table = self.table.load();
        let Some(route) = table.route(called) else {
            metrics::counter!("callopt_calls_total", "outcome" => "unknown_number").increment(1);
            tracing::info!(called, "call on a number that is no tracking number");
            return (None, reject(404, "Not Found"));
        };
        let number = format!("+{}", called.trim_start_matches('+'));
        let holder = self.holder(&number, now);
        let language = holder
            .as_ref()
            .and_then(|h| h.language.clone())
            .or_else(|| route.languages.first().cloned());
        let facts = match &route.plan {
            Some(plan) => CallFacts::for_plan(plan.plan(), caller, language),
            None => CallFacts::default(),
        };
        let mut calls = self.lock();
        let id = next_call_id(calls.last_id, now, calls.slot);
        calls.last_id = id;
        let record = CallRecord {
            id,
            account: route.account,
            campaign_id: Some(route.campaign_id),
            routing_plan_id: route.plan.as_ref().map(|p| p.plan().id),
            tracking_number: number.into(),
            caller: prefix(caller, 64).into(),
            session_id: holder.map(|h| h.session.into()),
            channel: channel.into(),
            external_id: prefix(external_id, 256).into(),
            outcome: CallOutcome::InProgress,
            reason: None,
            hung_up_by: None,
            started_at: now,
            answered_at: None,
            ended_at: None,
            attempts: Vec::new(),
        };
        let Some(plan) = route.plan.clone() else {
            let next = reject(480, "No Routing Plan");
            self.finish(
                record,
                CallOutcome::Rejected,
                Some("the campaign has no routing plan"),
                now,
            );
            return (None, next);
        };
        let call = LiveCall {
            record,
            plan,
            facts,
            tried: Vec::new(),
            dialling: None,
            ends_after: None,
            confirms,
            unconfirmed: false,
        };
        if confirms {
            // The call is on record at once; its attempts once confirmed.
            self.publish(call.record.clone());
        }
        let key = id as u64;
        let next = self.route(&mut calls, call, key, None, now);
        (next.0, next.1)
    }

    /// Routes `call` to its next target, or ends it. `failed` is the outcome of the attempt
    /// that just failed, if any, for the answer when nothing else is tried.
    fn route(
        &self,
        calls: &mut Calls,
        mut call: LiveCall,
        key: u64,
        failed: Option<(AttemptOutcome, Option<u16>)>,
        now: i64,
    ) -> (Option<u64>, Next) {
        let Calls { live, rng, .. } = calls;
        let decision = live.route(&call.plan, &call.facts, &call.tried, now, rng);
        self.tell(live);
        match decision {
            Decision::Target {
                target,
                ring_timeout_secs,
                ..
            } => {
                let Some(t) = call.plan.target(target) else {
                    live.attempt_failed(target, now);
                    return (Some(key), reject(500, "Server Internal Error"));
                };
                let destination = t.destination.clone();
                call.tried.push(target);
                call.record.attempts.push(AttemptRecord {
                    seq: call.record.attempts.len() as u32 + 1,
                    target_id: Some(target),
                    destination: destination.as_str().into(),
                    outcome: None,
                    sip_status: None,
                    started_at: now,
                    answered_at: None,
                    ended_at: None,
                });
                if call.confirms {
                    call.unconfirmed = true;
                } else {
                    self.publish(call.record.clone());
                }
                let next = Next::Target {
                    target,
                    destination,
                    ring_timeout: Duration::from_secs(u64::from(ring_timeout_secs)),
                };
                call.dialling = Some(next.clone());
                calls.calls.insert(key, call);
                (Some(key), next)
            }
            Decision::Reject { status, reason, .. } => {
                let (outcome, answer) = match failed {
                    None => (CallOutcome::Rejected, reject(status, &reason)),
                    Some((AttemptOutcome::Busy, _)) => {
                        (CallOutcome::Busy, reject(486, "Busy Here"))
                    }
                    Some((AttemptOutcome::NoAnswer, _)) => {
                        (CallOutcome::NoAnswer, reject(480, "No Answer"))
                    }
                    Some(_) => (CallOutcome::Failed, reject(status, &reason)),
                };
                let why = (outcome == CallOutcome::Rejected).then_some(reason.as_str());
                self.finish(call.record, outcome, why, now);
                (Some(key), answer)
            }
        }
    }

    /// Ends a call record and queues it.
    fn finish(&self, mut record: CallRecord, outcome: CallOutcome, reason: Option<&str>, now: i64) {
        record.outcome = outcome;
        record.reason = reason.map(str::to_string);
        record.ended_at = Some(now);
        if let Some(i) = CallOutcome::ALL.iter().position(|o| *o == outcome) {
            self.ended[i].increment(1);
        }
        self.publish(record);
    }

    /// The target just handed out for call `key` holds: its attempt, which starts now, is
    /// recorded. False when the call is over already (the caller hung up meanwhile).
    pub fn confirm(&self, key: u64) -> bool {
        let now = self.now();
        let mut calls = self.lock();
        let Some(call) = calls.calls.get_mut(&key) else {
            return false;
        };
        if let Some(a) = call.record.attempts.last_mut() {
            if a.outcome.is_none() && a.started_at < now {
                a.started_at = now;
            }
        }
        call.unconfirmed = false;
        self.publish(call.record.clone());
        true
    }

    /// The target just handed out for call `key` cannot take it after all (its caps are full
    /// counting the other nodes' calls): the attempt is taken back unrecorded, the target is
    /// not tried again for this call, and the call is routed on.
    pub fn withdraw(&self, key: u64, target: i64) -> Next {
        let now = self.now();
        let mut calls = self.lock();
        // A call that ended meanwhile released its target then.
        let Some(mut call) = calls.calls.remove(&key) else {
            return reject(481, "Call Does Not Exist");
        };
        calls.live.attempt_failed(target, now);
        let last = call.record.attempts.last();
        if last.is_some_and(|a| a.target_id == Some(target) && a.outcome.is_none()) {
            call.record.attempts.pop();
        }
        call.unconfirmed = false;
        call.dialling = None;
        self.route(&mut calls, call, key, None, now).1
    }

    /// The target of each call's attempt under way (ringing or connected): what this node holds
    /// in counters shared with other nodes.
    pub fn attempts_under_way(&self) -> Vec<(u64, i64)> {
        let calls = self.lock();
        calls
            .calls
            .iter()
            .filter_map(|(key, c)| {
                let a = c.record.attempts.last()?;
                a.ended_at.is_none().then_some((*key, a.target_id?))
            })
            .collect()
    }

    /// A target as the routing table has it now.
    pub fn target(&self, id: i64) -> Option<callopt_domain::Target> {
        self.table.load().targets.get(&id).cloned()
    }

    /// The attempt on `target` ended unanswered: the next target, or the final answer.
    pub fn attempt_failed(
        &self,
        key: u64,
        target: i64,
        outcome: AttemptOutcome,
        sip_status: Option<u16>,
    ) -> Next {
        let now = self.now();
        let mut calls = self.lock();
        // A call that ended meanwhile released its target then.
        let Some(mut call) = calls.calls.remove(&key) else {
            return reject(481, "Call Does Not Exist");
        };
        calls.live.attempt_failed(target, now);
        close_attempt(&mut call.record, target, outcome, sip_status, now);
        if call.plan.plan().reroute.on(outcome) {
            return self
                .route(&mut calls, call, key, Some((outcome, sip_status)), now)
                .1;
        }
        let (final_outcome, answer) = match outcome {
            AttemptOutcome::Busy => (CallOutcome::Busy, reject(486, "Busy Here")),
            AttemptOutcome::NoAnswer => (CallOutcome::NoAnswer, reject(480, "No Answer")),
            _ => (
                CallOutcome::Failed,
                reject(
                    sip_status.filter(|s| (400..700).contains(s)).unwrap_or(503),
                    "Target Failed",
                ),
            ),
        };
        self.finish(call.record, final_outcome, None, now);
        answer
    }

    /// The attempt on `target` was answered.
    pub fn answered(&self, key: u64, target: i64, sip_status: u16) {
        self.answered_at(key, target, sip_status, self.now());
    }

    /// The attempt on `target` was answered at `at` (ms): a carrier reports the answer only
    /// when the attempt ends, with how long it was connected.
    pub fn answered_at(&self, key: u64, target: i64, sip_status: u16, at: i64) {
        self.answer(key, target, sip_status, at, self.now());
    }

    /// The attempt on `target` was answered and connected for `talk_ms` until now: what a
    /// carrier reports when the attempt ends. The talk time is kept exactly.
    pub fn answered_for(&self, key: u64, target: i64, sip_status: u16, talk_ms: i64) {
        let clock = self.now();
        self.answer(key, target, sip_status, clock - talk_ms.max(0), clock);
    }

    /// The answer at `at`, told at `clock`.
    fn answer(&self, key: u64, target: i64, sip_status: u16, at: i64, clock: i64) {
        let mut now = at.min(clock);
        let mut calls = self.lock();
        let Calls { live, calls, .. } = &mut *calls;
        let Some(call) = calls.get_mut(&key) else {
            return;
        };
        let attempt = call
            .record
            .attempts
            .iter_mut()
            .rev()
            .find(|a| a.target_id == Some(target));
        // A carrier may count more talk time than the attempt has been up here (its clock, its
        // rounding): the answer is never before the attempt began. The talk time the carrier
        // counted (`clock - at`) is kept by ending the call exactly that long after the answer,
        // whatever the clock says when the end is recorded.
        if let Some(a) = &attempt {
            if now < a.started_at {
                now = a.started_at;
            }
        }
        if at < clock {
            call.ends_after = Some(now + (clock - at));
        }
        live.answered(&call.plan, target, call.facts.caller.as_deref(), now);
        self.tell(live);
        if let Some(a) = attempt {
            a.outcome = Some(AttemptOutcome::Answered);
            a.sip_status = Some(sip_status);
            a.answered_at = Some(now);
        }
        call.record.outcome = CallOutcome::Answered;
        call.record.answered_at = Some(now);
        self.publish(call.record.clone());
    }

    /// The call is over: hung up after an answer, canceled by the caller while ringing, or
    /// given up.
    pub fn ended(&self, key: u64, by: HungUpBy, answered: bool) {
        let mut now = self.now();
        let mut calls = self.lock();
        let Some(mut call) = calls.calls.remove(&key) else {
            return;
        };
        if answered {
            now = call.ends_after.unwrap_or(now);
        }
        let current = call.record.attempts.last().and_then(|a| a.target_id);
        let open = call
            .record
            .attempts
            .last()
            .is_some_and(|a| a.ended_at.is_none());
        if let (Some(target), true, true) = (current, open, call.unconfirmed) {
            // Never sent: its target is freed and the attempt goes unrecorded.
            calls.live.attempt_failed(target, now);
            call.record.attempts.pop();
        } else if let (Some(target), true) = (current, open) {
            if answered {
                calls.live.call_ended(target, now);
            } else {
                calls.live.attempt_failed(target, now);
                let outcome = if by == HungUpBy::Caller {
                    AttemptOutcome::Canceled
                } else {
                    AttemptOutcome::Failed
                };
                close_attempt(&mut call.record, target, outcome, Some(487), now);
            }
            if let Some(a) = call.record.attempts.last_mut() {
                a.ended_at.get_or_insert(now);
            }
        }
        drop(calls);
        call.record.hung_up_by = answered.then_some(by);
        let outcome = match (answered, by) {
            (true, _) => CallOutcome::Answered,
            (false, HungUpBy::Caller) => CallOutcome::Abandoned,
            (false, _) => CallOutcome::Failed,
        };
        self.finish(call.record, outcome, None, now);
    }

    /// Queues a call record for the store and tells live watchers.
    fn publish(&self, record: CallRecord) {
        // Only ended calls, once each (an answered call is published again when it ends).
        if record.ended_at.is_some() {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            if recent.len() == RECENT {
                recent.pop_front();
            }
            recent.push_back(record.clone());
        }
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(record.clone());
        }
        self.writer.write(record);
    }

    /// Every later change of a call record, as it happens. A watcher that falls more than 1024
    /// changes behind misses some (and is told so by the channel).
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<CallRecord> {
        self.changes.subscribe()
    }

    /// The account's calls in progress, oldest first.
    pub fn in_progress(&self, account: callopt_domain::AccountId) -> Vec<CallRecord> {
        let mut calls: Vec<CallRecord> = self
            .lock()
            .calls
            .values()
            .filter(|c| c.record.account == account)
            .map(|c| c.record.clone())
            .collect();
        calls.sort_by_key(|c| c.id);
        calls
    }

    /// The account's latest finished calls since the service started, newest first.
    pub fn recent(&self, account: callopt_domain::AccountId, limit: usize) -> Vec<CallRecord> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .rev()
            .filter(|c| c.account == account)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The target of a call in progress's current or last attempt, by its key: what
    /// [`Switchboard::call_state`] tells, without copying the rest.
    pub fn current_target(&self, key: u64) -> Option<i64> {
        let calls = self.lock();
        calls.calls.get(&key)?.record.attempts.last()?.target_id
    }

    /// Where a call in progress stands, by its key.
    pub fn call_state(&self, key: u64) -> Option<CallState> {
        self.lock().calls.get(&key).map(|c| CallState::of(key, c))
    }

    /// Where a call in progress stands, by the channel's id of it (a carrier's call id).
    pub fn find_call(&self, channel: &str, external_id: &str) -> Option<CallState> {
        self.lock()
            .calls
            .iter()
            .find(|(_, c)| *c.record.channel == *channel && *c.record.external_id == *external_id)
            .map(|(key, c)| CallState::of(*key, c))
    }

    /// The account that owns tracking number `called`, if it is one.
    pub fn owner(&self, called: &str) -> Option<callopt_domain::AccountId> {
        self.table.load().route(called).map(|r| r.account)
    }

    /// Takes back a call this switchboard does not hold (the service restarted while a carrier
    /// kept the call up): its record from the store, the targets already tried from the
    /// carrier's failover cursor. The attempt in progress counts as ringing again. Returns the
    /// call's state, or None when it cannot be routed any more (its plan is gone).
    pub fn resume(&self, mut record: CallRecord, tried: Vec<i64>) -> Option<CallState> {
        let key = u64::try_from(record.id).ok()?;
        let now = self.now();
        let table = self.table.load();
        let route = table.route(&record.tracking_number)?;
        let plan = route
            .plan
            .clone()
            .filter(|p| Some(p.plan().id) == record.routing_plan_id)?;
        let language = route.languages.first().cloned();
        let facts = match E164::parse("caller", &record.caller, None) {
            Ok(e164) => CallFacts::from_caller(&e164, language),
            Err(_) => CallFacts {
                language,
                ..CallFacts::default()
            },
        };
        record.outcome = CallOutcome::InProgress;
        record.reason = None;
        record.ended_at = None;
        record.hung_up_by = None;
        let mut calls = self.lock();
        if let Some(c) = calls.calls.get(&key) {
            return Some(CallState::of(key, c));
        }
        if let Some(open) = record.attempts.last_mut().filter(|a| a.outcome.is_none()) {
            open.ended_at = None;
            if let Some(target) = open.target_id {
                calls.live.attempt_resumed(&plan, target, now);
            }
        }
        tracing::info!(call = key, "call taken back from the store");
        let call = LiveCall {
            record,
            plan,
            facts,
            tried,
            dialling: None,
            ends_after: None,
            confirms: false,
            unconfirmed: false,
        };
        let state = CallState::of(key, &call);
        calls.calls.insert(key, call);
        Some(state)
    }

    /// Ends the calls that started before `cutoff` (ms) and are still up: their hang-up never
    /// reached Callopt (a lost BYE, a carrier that never called back). Without this a lost
    /// hang-up would hold a slot of the target's concurrency cap for ever. Returns how many.
    pub fn expire_started_before(&self, cutoff: i64) -> usize {
        let stale: Vec<(u64, bool)> = self
            .lock()
            .calls
            .iter()
            .filter(|(_, c)| c.record.started_at < cutoff)
            .map(|(key, c)| (*key, c.record.answered_at.is_some()))
            .collect();
        for (key, answered) in &stale {
            tracing::warn!(
                call = key,
                "call up for too long: ended as hung up by the system"
            );
            self.ended(*key, HungUpBy::System, *answered);
        }
        stale.len()
    }

    /// The SIP targets of every plan, for OPTIONS probing.
    pub fn sip_targets(&self) -> Vec<(i64, SipUri)> {
        self.table.load().sip_targets.clone()
    }

    /// A probed target went down or came back.
    pub fn set_health(&self, target: i64, up: bool) {
        tracing::info!(target, up, "target health changed");
        metrics::gauge!("callopt_target_up", "target" => target.to_string()).set(if up {
            1.0
        } else {
            0.0
        });
        self.lock().live.set_health(target, up);
    }
}

fn reject(status: u16, reason: &str) -> Next {
    Next::Reject {
        status,
        reason: reason.to_string(),
    }
}

fn close_attempt(
    record: &mut CallRecord,
    target: i64,
    outcome: AttemptOutcome,
    sip_status: Option<u16>,
    now: i64,
) {
    if let Some(a) = record
        .attempts
        .iter_mut()
        .rev()
        .find(|a| a.target_id == Some(target) && a.ended_at.is_none())
    {
        a.outcome = Some(outcome);
        a.sip_status = sip_status;
        a.ended_at = Some(now);
    }
}

/// The first `chars` characters of `s` (all of it when shorter).
fn prefix(s: &str, chars: usize) -> &str {
    s.char_indices().nth(chars).map_or(s, |(end, _)| &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_counts_characters_and_never_splits_one() {
        assert_eq!(prefix("+12125550100", 64), "+12125550100");
        assert_eq!(prefix("abcdef", 3), "abc");
        assert_eq!(prefix("abc", 3), "abc");
        assert_eq!(prefix("", 3), "");
        // Two-byte and four-byte characters: three characters, not three bytes.
        assert_eq!(prefix("éé😀é", 3), "éé😀");
        assert_eq!(prefix("😀😀", 1), "😀");
    }

    #[test]
    fn call_ids_of_two_slots_never_meet_and_stay_in_their_millisecond() {
        let (mut a, mut b) = (0, 0);
        let mut seen = HashSet::new();
        for step in 0..3_000 {
            // Bursts of calls within one millisecond, then the clock moves.
            let now = 1_700_000_000_000 + step / 100;
            a = next_call_id(a, now, 0);
            b = next_call_id(b, now, 5);
            assert_eq!(a.rem_euclid(NODE_SLOTS), 0);
            assert_eq!(b.rem_euclid(NODE_SLOTS), 5);
            assert!(seen.insert(a) && seen.insert(b), "an id handed out twice");
            for id in [a, b] {
                assert!(
                    id >= now * 1000 && id < now * 1000 + 1_000_000,
                    "{id} at {now}"
                );
            }
        }
    }
}

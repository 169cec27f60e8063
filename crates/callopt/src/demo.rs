//! `callopt demo`: a demo account with a campaign and a pool of numbers in several countries and
//! languages, and a landing page on the service's own origin, which the demo verifies as a
//! domain of the campaign through the same well-known-file check every account goes through.
//! On a fresh database it also routes the campaign to demo targets and places a month of demo
//! calls through the switchboard, so the dashboard (`/dashboard`) has something to show.

use crate::{open_store, say, shutdown_signal, Common};
use anyhow::Context;
use callopt_calls::{Next, Switchboard};
use callopt_domain::{
    AccountId, ApiKey, AssignmentMode, AttemptOutcome, Attribution, Campaign, CampaignKey,
    DomainHost, HungUpBy, TrackingNumber, Trigger, VerificationToken, E164,
};
use callopt_http::{AppState, ExtraPages};
use callopt_store::{NewNumber, SessionRecord, SessionWrite, Store};
use std::sync::Arc;

/// The landing page template.
const PAGE: &str = include_str!("../../../web/demo.html");

/// The number printed on the demo page.
const DEFAULT_NUMBER: &str = "+14155550100";

/// The demo pool: (first number, how many, languages).
const BLOCKS: &[(&str, u64, &[&str])] = &[
    ("+14155550101", 20, &["en", "es"]),
    ("+442079460100", 10, &["en"]),
    ("+493090182000", 10, &["de"]),
    ("+33142685300", 10, &["fr"]),
    ("+34910600100", 10, &["es"]),
];

fn demo_numbers(pool: i64) -> anyhow::Result<Vec<NewNumber>> {
    let mut out = Vec::new();
    for (start, count, languages) in BLOCKS {
        let first = E164::parse("start", start, None)?;
        let cc = first.calling_code();
        let nsn: u64 = first.national_significant().parse()?;
        let languages: Vec<String> = languages.iter().map(|l| l.to_string()).collect();
        for i in 0..*count {
            let raw = format!("+{cc}{}", nsn + i);
            let number = TrackingNumber::parse(&raw, None, &languages, None)
                .with_context(|| format!("demo number {raw}"))?;
            out.push(NewNumber {
                number,
                pool_id: Some(pool),
            });
        }
    }
    Ok(out)
}

struct Demo {
    account: AccountId,
    key: ApiKey,
    campaign: String,
    campaign_id: i64,
    /// The demo numbers this account got (E.164): none when an earlier demo holds them.
    numbers: Vec<String>,
    domain_id: i64,
    token: String,
}

async fn create(store: &Arc<dyn Store>, host: &DomainHost) -> anyhow::Result<Demo> {
    let now = callopt_http::now_ms();
    let key = ApiKey::from_random(rand::random());
    let account = store.create_account("Demo", &key.hash(), now).await?;
    let pool = store.create_pool(account, "Demo pool", now).await?;
    let added = store
        .insert_numbers(account, &demo_numbers(pool.id)?, now)
        .await?;
    let numbers: Vec<String> = added
        .iter()
        .flatten()
        .map(|r| r.number.e164.as_str().to_string())
        .collect();
    let taken = added.iter().filter(|r| r.is_err()).count();
    if taken > 0 {
        tracing::warn!(
            taken,
            "some demo numbers already belong to an earlier demo account"
        );
    }
    use rand::distr::{Alphanumeric, SampleString};
    let token = format!(
        "callopt-verification={}",
        Alphanumeric.sample_string(&mut rand::rng(), 32)
    );
    let domain = store
        .create_domain(account, host.as_str(), &token, now)
        .await?;
    let campaign = Campaign {
        id: 0,
        key: CampaignKey(String::new()),
        name: "Northwind Plumbing".into(),
        default_number: E164::parse("default_number", DEFAULT_NUMBER, None)?,
        swap_numbers: Vec::new(),
        trigger: Trigger::Parameter("utm_source".into()),
        assignment: AssignmentMode::PerVisitor,
        idle_timeout_secs: 1800,
        domains: vec![host.clone()],
        source_rules: Vec::new(),
        pool_id: Some(pool.id),
        routing_plan_id: None,
    };
    let key_str = format!(
        "{}{}",
        CampaignKey::PREFIX,
        Alphanumeric.sample_string(&mut rand::rng(), 20)
    );
    let record = store
        .create_campaign(account, &campaign, &key_str, now)
        .await?;
    Ok(Demo {
        account,
        key,
        campaign: record.campaign.key.0,
        campaign_id: record.campaign.id,
        numbers,
        domain_id: domain.id,
        token,
    })
}

fn page(base: &str, campaign: &str) -> anyhow::Result<String> {
    let default = E164::parse("default_number", DEFAULT_NUMBER, None)?;
    Ok(PAGE
        .replace("{{TAG_SRC}}", &format!("{base}/dni.js"))
        .replace("{{CAMPAIGN}}", campaign)
        .replace("{{DEFAULT_NUMBER}}", default.as_str())
        .replace("{{DEFAULT_DISPLAY}}", &default.display_for(Some("US"))))
}

pub async fn run(common: Common) -> anyhow::Result<()> {
    let mut config = common.load()?;
    if common.db.is_none() && std::env::var_os("CALLOPT_DB").is_none() {
        config.db = "callopt-demo.db".into();
    }
    crate::init_logging(&config.log);
    let store = open_store(&config.db).await?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let host = DomainHost::parse("listen", &addr.to_string())?;
    let base = format!("http://{addr}");
    let demo = create(&store, &host).await?;
    let pages = ExtraPages {
        landing: Some(page(&base, &demo.campaign)?),
        verification: Some(demo.token.clone()),
    };
    let state = AppState::new(store.clone(), crate::geo_config(&config)?, pages).await?;
    let dni = state.dni.clone();
    let board = state.switchboard.clone();
    let server = tokio::spawn(callopt_http::serve(listener, state, shutdown_signal()));

    // Prove the demo origin the way every account does: fetch our own well-known file.
    // The demo listens on loopback, so its own verification may reach a private address.
    let verifier = callopt_guard::verify::Verifier::new(&callopt_guard::verify::VerifySettings {
        nameservers: Vec::new(),
        allow_private: true,
    })?;
    verifier
        .verify_file(&host, &VerificationToken(demo.token.clone()))
        .await
        .context("verifying the demo's own origin")?;
    store
        .mark_domain_verified(demo.account, demo.domain_id, callopt_http::now_ms())
        .await?;
    dni.refresh_account(&store, demo.account)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    set_up_routing(&base, demo.key.expose(), demo.campaign_id).await?;
    let seeded = seed_calls(&store, &board, &demo, &base).await?;

    say(&format!("listening on {base}"));
    say(&format!(
        "dashboard: {base}/dashboard (sign in with the API key below)"
    ));
    if seeded == 0 {
        say("no demo calls: an earlier demo in this database holds the demo numbers");
    } else {
        say(&format!(
            "demo calls: {seeded} over the last {SEED_DAYS} days"
        ));
    }
    say(&format!(
        "demo page: {base}/demo?utm_source=google&utm_medium=cpc&utm_campaign=demo&gclid=demo"
    ));
    say(&format!("api_key: {}", demo.key.expose()));
    say(&format!("campaign: {}", demo.campaign));
    server.await??;
    Ok(())
}

/// How many days of demo calls are seeded, ending now.
const SEED_DAYS: i64 = 30;

/// The demo's targets: (name, destination, priority, weight, concurrency cap).
const TARGETS: &[(&str, &str, u32, u32, u32)] = &[
    ("Northwind Dispatch", "+14155559000", 1, 3, 8),
    ("Bay Area Plumbers", "+14155559001", 1, 1, 4),
    ("After-hours Answering", "+14155559002", 2, 1, 20),
];

/// Where demo visitors come from: (utm_source, utm_medium, utm_campaign, utm_term, landing
/// path, click id parameter, share in 100).
const SOURCES: &[(&str, &str, &str, &str, &str, &str, u64)] = &[
    (
        "google",
        "cpc",
        "emergency",
        "emergency plumber",
        "/emergency",
        "gclid",
        38,
    ),
    (
        "google",
        "cpc",
        "drains",
        "blocked drain",
        "/drains",
        "gclid",
        14,
    ),
    (
        "bing",
        "cpc",
        "emergency",
        "24 hour plumber",
        "/emergency",
        "msclkid",
        10,
    ),
    (
        "facebook",
        "paid_social",
        "spring-promo",
        "",
        "/offers/spring",
        "fbclid",
        12,
    ),
    (
        "newsletter",
        "email",
        "march-tips",
        "",
        "/blog/water-heaters",
        "",
        8,
    ),
    ("", "", "", "", "/", "", 18),
];

/// A small deterministic generator (xorshift64*), so every demo looks alike.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Picks from `(item, share)` pairs by share.
    fn pick<'a, T>(&mut self, items: &'a [T], share: impl Fn(&T) -> u64) -> &'a T {
        let total: u64 = items.iter().map(&share).sum();
        let mut roll = self.below(total);
        for item in items {
            if roll < share(item) {
                return item;
            }
            roll -= share(item);
        }
        &items[items.len() - 1]
    }
}

/// Targets and a routing plan for the demo campaign, through the management API the way an
/// account sets them up.
async fn set_up_routing(base: &str, key: &str, campaign_id: i64) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        let request = http
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .json(&body);
        async move {
            let response = request.send().await?.error_for_status()?;
            anyhow::Ok(response.json::<serde_json::Value>().await?)
        }
    };
    let mut ids = Vec::new();
    for (name, destination, priority, weight, concurrent) in TARGETS {
        let target = post(
            "/v1/targets",
            serde_json::json!({"name": name, "destination": destination, "priority": priority,
                "weight": weight, "caps": {"concurrent": concurrent}}),
        )
        .await
        .with_context(|| format!("creating the demo target {name}"))?;
        ids.push(target["id"].as_i64().context("target id")?);
    }
    let plan = post(
        "/v1/routing-plans",
        serde_json::json!({"name": "Northwind routing", "targets": ids, "strategy": "weighted",
            "filters": {"open_now": false}}),
    )
    .await
    .context("creating the demo routing plan")?;
    http.patch(format!("{base}/v1/campaigns/{campaign_id}"))
        .bearer_auth(key)
        .json(&serde_json::json!({"routing_plan_id": plan["id"]}))
        .send()
        .await?
        .error_for_status()
        .context("setting the demo campaign's routing plan")?;
    Ok(())
}

/// One demo call's visitor session (None: the caller dialled without visiting a page).
fn demo_session(
    dice: &mut Dice,
    demo: &Demo,
    base: &str,
    n: usize,
    number: &str,
    at: i64,
) -> Option<SessionRecord> {
    let (source, medium, campaign, term, path, click, _) = *dice.pick(SOURCES, |s| s.6);
    if source.is_empty() && dice.below(3) == 0 {
        return None;
    }
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let mut query = Vec::new();
    for (k, v) in [
        ("utm_source", source),
        ("utm_medium", medium),
        ("utm_campaign", campaign),
        ("utm_term", term),
    ] {
        if !v.is_empty() {
            query.push((k.to_string(), v.to_string()));
        }
    }
    let click_id = some(click).map(|_| format!("demo{n:05}"));
    if let Some(id) = &click_id {
        query.push((click.to_string(), id.clone()));
    }
    let qs: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", v.replace(' ', "+")))
        .collect();
    let landing_url = if qs.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{}", qs.join("&"))
    };
    let first_seen = at - (60 + dice.below(25 * 60) as i64) * 1000;
    Some(SessionRecord {
        id: format!("ses_demo{n:06}"),
        account: demo.account,
        campaign_id: demo.campaign_id,
        visitor: format!("demo-visitor-{n:06}"),
        number_id: None,
        number_e164: number.to_string(),
        attributed: true,
        attribution: Attribution {
            landing_url,
            referrer: match source {
                "" => Some("https://www.google.com/".into()),
                "facebook" => Some("https://m.facebook.com/".into()),
                _ => None,
            },
            utm_source: some(source),
            utm_medium: some(medium),
            utm_campaign: some(campaign),
            utm_term: some(term),
            utm_content: None,
            gclid: click_id.clone().filter(|_| click == "gclid"),
            fbclid: click_id.clone().filter(|_| click == "fbclid"),
            msclkid: click_id.filter(|_| click == "msclkid"),
            query,
        },
        country: Some("US".into()),
        language: Some(if dice.below(6) == 0 { "es" } else { "en" }.into()),
        user_agent: Some("Mozilla/5.0 (demo)".into()),
        first_seen,
        last_seen: first_seen,
        lease_expires_at: first_seen + 30 * 60 * 1000,
    })
}

/// Plays one call through the switchboard at `at` and ends it as dice say: mostly answered,
/// some busy then answered elsewhere, some unanswered, some abandoned while ringing.
fn play_call(board: &Switchboard, dice: &mut Dice, n: usize, number: &str, caller: &str, at: i64) {
    board.pin_clock(at);
    let channel = if n.is_multiple_of(3) { "twilio" } else { "sip" };
    let (key, next) = board.start_call(channel, &format!("demo-{n}"), number, caller);
    let (Some(key), Next::Target { mut target, .. }) = (key, next) else {
        return;
    };
    let ring = (4 + dice.below(14) as i64) * 1000;
    let roll = dice.below(100);
    if (72..80).contains(&roll) {
        // Busy first, answered by the next target.
        board.pin_clock(at + 2000);
        match board.attempt_failed(key, target, AttemptOutcome::Busy, Some(486)) {
            Next::Target { target: t, .. } => target = t,
            Next::Reject { .. } => return,
        }
    }
    if roll < 80 {
        board.pin_clock(at + ring);
        board.answered(key, target, 200);
        let long = if dice.below(4) == 0 {
            dice.below(900)
        } else {
            0
        };
        let talk = (25 + dice.below(300) + long) as i64 * 1000;
        board.pin_clock(at + ring + talk);
        let by = if dice.below(3) == 0 {
            HungUpBy::Target
        } else {
            HungUpBy::Caller
        };
        board.ended(key, by, true);
    } else if roll < 93 {
        board.pin_clock(at + 20_000);
        while let Next::Target { target: t, .. } =
            board.attempt_failed(key, target, AttemptOutcome::NoAnswer, Some(408))
        {
            target = t;
        }
    } else {
        board.pin_clock(at + ring);
        board.ended(key, HungUpBy::Caller, false);
    }
}

/// Demo calls over the last [`SEED_DAYS`] days, placed through the switchboard (the path SIP and
/// carrier calls take) at their times, most attributed to a demo visitor session that held the
/// number. Returns how many calls were placed.
async fn seed_calls(
    store: &Arc<dyn Store>,
    board: &Switchboard,
    demo: &Demo,
    base: &str,
) -> anyhow::Result<usize> {
    const DAY: i64 = 86_400_000;
    // The US numbers: the demo's visitors and callers are on the US West Coast.
    let numbers: Vec<&str> = demo
        .numbers
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("+1"))
        .collect();
    if numbers.is_empty() {
        return Ok(0);
    }
    let now = callopt_http::now_ms();
    let today = now - now.rem_euclid(DAY);
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let callers: Vec<String> = (0..160)
        .map(|i| {
            // Not 415: the demo's tracking numbers are 415-555-01xx.
            let area = ["510", "650", "408", "707", "925", "628"][i % 6];
            format!("+1{area}555{:04}", 100 + i)
        })
        .collect();
    let mut plan = Vec::new();
    for day in (0..SEED_DAYS).rev() {
        let start = today - day * DAY;
        let weekday = (start / DAY + 4).rem_euclid(7); // 0 = Sunday
        let calls = if weekday == 0 || weekday == 6 { 4 } else { 9 } + dice.below(8);
        let mut times: Vec<i64> = (0..calls)
            // 15:00 to 03:00 UTC: business hours on the US West Coast.
            .map(|_| start + 15 * 3_600_000 + dice.below(12 * 3_600_000) as i64)
            .filter(|t| *t < now - 10 * 60_000)
            .collect();
        times.sort_unstable();
        plan.extend(times);
    }
    let mut sessions = Vec::new();
    let mut calls = Vec::new();
    for (n, at) in plan.into_iter().enumerate() {
        let number = numbers[dice.below(numbers.len() as u64) as usize];
        // Low indexes more often: some callers call again.
        let spread = dice.below(callers.len() as u64) + 1;
        let caller = &callers[dice.below(spread) as usize];
        let session = demo_session(&mut dice, demo, base, n, number, at);
        calls.push((
            n,
            number,
            caller.clone(),
            at,
            session.as_ref().map(|s| s.id.clone()),
        ));
        sessions.extend(session.map(|s| SessionWrite::Insert(Box::new(s))));
    }
    store.write_sessions(&sessions).await?;
    let mut sales = Vec::new();
    for (n, number, caller, at, session) in &calls {
        if let Some(id) = session {
            board.hold(number, id, None, *at + 60_000);
        }
        play_call(board, &mut dice, *n, number, caller, *at);
        // About one call in eight turns into a sale the business reports afterwards.
        if dice.below(8) == 0 {
            sales.push((caller.clone(), *at, 50 + dice.below(400) as i64));
        }
    }
    board.pin_clock(0);
    report_sales(store.clone(), demo.account, calls.len() as i64, sales);
    Ok(calls.len())
}

/// Marks the demo's sales as conversions (the conversion API's caller-and-time form) once the
/// switchboard has written the calls, for at most ten seconds.
fn report_sales(
    store: Arc<dyn Store>,
    account: AccountId,
    placed: i64,
    sales: Vec<(String, i64, i64)>,
) {
    tokio::spawn(async move {
        let everything = callopt_store::ReportQuery {
            from: 0,
            to: i64::MAX / 2,
            group: callopt_store::ReportGroup::Total,
            offsets: vec![(i64::MAX, 0)],
            filter: Default::default(),
        };
        for _ in 0..100 {
            let written = match store.report(account, &everything).await {
                Ok(rows) => rows.iter().map(|r| r.calls).sum::<i64>(),
                Err(_) => 0,
            };
            if written >= placed {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        for (caller, at, value) in sales {
            let sale = callopt_store::Conversion {
                value: value as f64,
                currency: "USD".into(),
                at: at + 3_600_000,
            };
            if let Err(e) = store
                .convert_latest_call(account, &caller, at, at + 60_000, &sale)
                .await
            {
                tracing::debug!(error = %e, "demo sale not recorded");
            }
        }
    });
}

//! `callopt demo`: a demo account with a campaign and a pool of numbers in several countries and
//! languages, and a landing page on the service's own origin, which the demo verifies as a
//! domain of the campaign through the same well-known-file check every account goes through.

use crate::{open_store, say, shutdown_signal, Common};
use anyhow::Context;
use callopt_domain::{
    AccountId, ApiKey, AssignmentMode, Campaign, CampaignKey, DomainHost, TrackingNumber, Trigger,
    VerificationToken, E164,
};
use callopt_http::{AppState, ExtraPages};
use callopt_store::{NewNumber, Store};
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
    let server = tokio::spawn(callopt_http::serve(listener, state, shutdown_signal()));

    // Prove the demo origin the way every account does: fetch our own well-known file.
    callopt_guard::verify::verify_domain(&host, &VerificationToken(demo.token.clone()))
        .await
        .context("verifying the demo's own origin")?;
    store
        .mark_domain_verified(demo.account, demo.domain_id, callopt_http::now_ms())
        .await?;
    dni.refresh_account(&store, demo.account)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    say(&format!("listening on {base}"));
    say(&format!(
        "demo page: {base}/demo?utm_source=google&utm_medium=cpc&utm_campaign=demo&gclid=demo"
    ));
    say(&format!("api_key: {}", demo.key.expose()));
    say(&format!("campaign: {}", demo.campaign));
    server.await??;
    Ok(())
}

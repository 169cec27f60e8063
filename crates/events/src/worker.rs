//! The delivery worker: one task that claims due deliveries from the outbox, posts each in a
//! task of its own (at most [`Settings::concurrency`] at once), and records what happened. A
//! delivery is claimed with a lease longer than the request timeout, so a crash in the middle
//! of an attempt only delays it: after a restart the worker finds it due again and sends it
//! with the same `Callopt-Delivery` id. Delivery is at least once; receivers dedupe by that id.

use crate::destination::{check_url, PublicResolver};
use crate::signature::sign;
use callopt_store::{DeliveryResult, DueDelivery, Store};
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How the worker behaves; the binary fills it from its configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Post to loopback and private addresses too (tests, private deployments).
    pub allow_private: bool,
    /// The delay before the first retry; each later one doubles it.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// How often the outbox is looked at for due deliveries.
    pub poll: Duration,
    /// Most deliveries in flight at once.
    pub concurrency: usize,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl Default for Settings {
    /// Fifteen attempts over about a day: 30 s, 1 min, 2 min, … doubling up to 3 h apart.
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3 * 3600),
            max_attempts: 15,
            poll: Duration::from_secs(1),
            concurrency: 16,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Settings {
    /// The delay after the `attempt`-th failed attempt (from 1): `retry_base · 2^(attempt-1)`,
    /// at most `retry_max`, times a random factor in [0.75, 1.25) so that deliveries failing
    /// together do not come back together.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let doubling = 2f64.powi(attempt.saturating_sub(1).min(40) as i32);
        let plain = (self.retry_base.as_secs_f64() * doubling).min(self.retry_max.as_secs_f64());
        Duration::from_secs_f64(plain * (0.75 + 0.5 * jitter.clamp(0.0, 1.0)))
    }
}

/// The delivery worker.
pub struct Worker {
    /// Where the outbox is.
    store: Arc<dyn Store>,
    /// The HTTP client: no redirects, the timeout, the resolver that refuses private addresses.
    client: reqwest::Client,
    /// Its settings.
    settings: Settings,
    /// Free delivery slots.
    slots: Arc<Semaphore>,
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Worker {
    /// Starts the worker on the current runtime; it runs until the runtime stops. Fails only
    /// when the HTTP client cannot be built.
    pub fn spawn(
        store: Arc<dyn Store>,
        settings: Settings,
    ) -> Result<tokio::task::JoinHandle<()>, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("Callopt-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(PublicResolver {
                allow_private: settings.allow_private,
            }))
            .build()?;
        let worker = Arc::new(Self {
            store,
            client,
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            settings,
        });
        Ok(tokio::spawn(worker.run()))
    }

    async fn run(self: Arc<Self>) {
        // Longer than an attempt can take: a claimed delivery is not claimed again meanwhile.
        let lease = self.settings.timeout.as_millis() as i64 * 3 + 5_000;
        loop {
            let free = self.slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                let now = now_ms();
                match self
                    .store
                    .claim_deliveries(now, now + lease, free as u32)
                    .await
                {
                    Ok(due) => {
                        claimed = due.len();
                        for d in due {
                            self.start(d).await;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read the webhook outbox"),
                }
            }
            // A full batch means more may be due: look again as soon as a slot frees.
            if claimed > 0 && claimed == free {
                if let Ok(permit) = self.slots.clone().acquire_owned().await {
                    drop(permit);
                }
            } else {
                tokio::time::sleep(self.settings.poll).await;
            }
        }
    }

    async fn start(self: &Arc<Self>, d: DueDelivery) {
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let me = self.clone();
        tokio::spawn(async move {
            let result = me.attempt(&d).await;
            match &result {
                DeliveryResult::Delivered { .. } => {
                    metrics::counter!("callopt_webhook_deliveries", "result" => "delivered")
                        .increment(1)
                }
                DeliveryResult::Retry { error, .. } | DeliveryResult::Failed { error, .. } => {
                    metrics::counter!("callopt_webhook_deliveries", "result" => "failed")
                        .increment(1);
                    tracing::info!(delivery = d.id, webhook = d.webhook_id,
                        attempt = d.attempts + 1, %error, "webhook delivery failed");
                }
            }
            if let Err(e) = me
                .store
                .finish_delivery(d.account, d.id, &result, now_ms())
                .await
            {
                // The lease runs out and the delivery is sent again, with the same id.
                tracing::warn!(error = %e, delivery = d.id, "could not record a webhook delivery");
            }
            drop(permit);
        });
    }

    /// One attempt of one delivery, and what to record of it.
    async fn attempt(&self, d: &DueDelivery) -> DeliveryResult {
        let (status, error) = match self.post(d).await {
            Ok(status) if (200..300).contains(&status) => {
                return DeliveryResult::Delivered { status }
            }
            Ok(status) => (Some(status), format!("the receiver answered {status}")),
            Err(error) => (None, error),
        };
        let attempts = d.attempts + 1;
        if attempts >= self.settings.max_attempts {
            return DeliveryResult::Failed { status, error };
        }
        let delay = self.settings.backoff(attempts, rand::rng().random::<f64>());
        DeliveryResult::Retry {
            status,
            error,
            next_attempt_at: now_ms() + delay.as_millis() as i64,
        }
    }

    /// Posts the signed envelope; the receiver's status, or why none came (never the URL, which
    /// may carry the receiver's token).
    async fn post(&self, d: &DueDelivery) -> Result<u16, String> {
        let url = check_url(&d.url, self.settings.allow_private).map_err(|e| e.to_string())?;
        let data: serde_json::Value = serde_json::from_str(&d.data)
            .map_err(|_| "the stored event is not JSON".to_string())?;
        let created_at = chrono::DateTime::from_timestamp_millis(d.created_at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = serde_json::json!({
            "id": d.event_id,
            "type": d.event_type,
            "created_at": created_at,
            "account": d.account.0,
            "data": data,
        })
        .to_string();
        let t = now_ms().div_euclid(1000);
        let response = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("callopt-signature", sign(&d.secret.0, t, body.as_bytes()))
            .header("callopt-delivery", format!("dlv_{}", d.id))
            .header("callopt-event", &d.event_type)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

/// A request error in words, without the URL.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let e = e.without_url();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_bound_with_jitter_around_it() {
        let s = Settings::default();
        let secs = |attempt, jitter| s.backoff(attempt, jitter).as_secs_f64();
        assert_eq!(secs(1, 0.5), 30.0);
        assert_eq!(secs(2, 0.5), 60.0);
        assert_eq!(secs(5, 0.5), 480.0);
        assert_eq!(secs(14, 0.5), 3.0 * 3600.0);
        assert_eq!(secs(1, 0.0), 22.5);
        assert!(secs(1, 0.999) < 37.5);
        assert_eq!(secs(u32::MAX, 0.5), 3.0 * 3600.0);
        // Fifteen attempts span about a day.
        let total: f64 = (1..15).map(|a| secs(a, 0.5)).sum();
        assert!((15.0 * 3600.0..30.0 * 3600.0).contains(&total), "{total}");
    }
}

//! Announcing new image versions to their triggers: each delivery (one per trigger and version,
//! queued with the version) is POSTed as JSON signed with HMAC-SHA256 over the body
//! (`X-Berth-Signature: sha256=<hex>`; the body carries `sent_at`, so a receiver can refuse a
//! replay), retried with doubling waits until the receiver answers 2xx, and given up after
//! [`MAX_ATTEMPTS`]. A receiver that answered but whose answer was lost may see a delivery twice:
//! `X-Berth-Delivery` names it so it can drop the repeat.

use std::sync::Arc;
use std::time::Duration;

use berth_store::{Attempt, DueDelivery};
use hmac::{KeyInit, Mac};
use secrecy::ExposeSecret;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AppState;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;
const LEASE_SECONDS: i64 = 60;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The body's signature, as `X-Berth-Signature` carries it.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", berth_files::hex(&mac.finalize().into_bytes()))
}

/// Sends due deliveries.
pub struct Deliverer {
    state: AppState,
    http: reqwest::Client,
    /// The wait after a first failure; it doubles with each further one.
    retry_base: Duration,
}

impl Deliverer {
    pub fn new(state: AppState, retry_base: Duration) -> Arc<Deliverer> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with the process's TLS provider");
        Arc::new(Deliverer {
            state,
            http,
            retry_base,
        })
    }

    /// Delivers until the task is aborted, checking every second.
    pub async fn run(self: Arc<Self>) {
        loop {
            match self
                .state
                .store
                .claim_deliveries(OffsetDateTime::now_utc(), LEASE_SECONDS)
                .await
            {
                Ok(due) => {
                    for d in due {
                        self.deliver(&d).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming trigger deliveries failed"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn deliver(&self, d: &DueDelivery) {
        let id = format!("{}-{}", d.delivery.trigger_id, d.version.version_number);
        let body = payload(d, &id);
        let sent = self
            .http
            .post(&d.url)
            .header("content-type", "application/json")
            .header("x-berth-event", "image.version")
            .header("x-berth-delivery", &id)
            .header(
                "x-berth-signature",
                signature(d.secret.expose_secret(), &body),
            )
            .body(body)
            .send()
            .await;
        let attempt = match sent {
            Ok(r) if r.status().is_success() => Attempt::Delivered {
                status: i64::from(r.status().as_u16()),
            },
            Ok(r) => self.failed(
                d,
                Some(r.status().as_u16()),
                format!("the receiver answered {}", r.status()),
            ),
            // The transport's words without the URL, which may carry a token in its query.
            Err(e) => self.failed(d, None, transport_error(&e)),
        };
        tracing::info!(project = %d.resource.project, resource = %d.resource.name,
            version = d.version.version_number, delivery = %id, outcome = ?attempt, "trigger delivery attempted");
        if let Err(e) = self
            .state
            .store
            .finish_delivery(&d.delivery.trigger_id, d.version.version_number, &attempt)
            .await
        {
            tracing::warn!(error = %e, delivery = %id, "recording a trigger delivery failed");
        }
    }

    fn failed(&self, d: &DueDelivery, status: Option<u16>, error: String) -> Attempt {
        let tried = d.delivery.attempts + 1;
        let retry_at = (tried < MAX_ATTEMPTS).then(|| {
            let wait = self
                .retry_base
                .saturating_mul(1 << (tried - 1).clamp(0, 20) as u32);
            OffsetDateTime::now_utc() + wait
        });
        Attempt::Failed {
            status: status.map(i64::from),
            error,
            retry_at,
        }
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    format!("the request {kind}")
}

/// What the receiver gets: the resource, the version and the image reference by digest.
fn payload(d: &DueDelivery, id: &str) -> Vec<u8> {
    let v = &d.version;
    json!({
        "event": "image.version",
        "delivery": id,
        "sent_at": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
        "project": d.resource.project.as_str(),
        "resource": d.resource.name,
        "image": format!("{}@{}", d.resource.source_name, v.digest),
        "version": {
            "version_number": v.version_number,
            "version_name": v.version_name,
            "digest": v.digest,
            "source": v.source.as_str(),
            "pushed_at": v.pushed_at.format(&Rfc3339).unwrap_or_default(),
            "properties": v.properties,
        },
    })
    .to_string()
    .into_bytes()
}

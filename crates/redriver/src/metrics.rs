//! The re-driver's Prometheus metrics, served at `/metrics`: dead letters drained, re-drives,
//! and, read on each scrape, the depth of every queue and the age of the oldest waiting item.

use actix_web::{HttpResponse, web};
use domain::job::ErrorClass;
use prometheus::{Gauge, IntCounterVec, IntGaugeVec, Opts, Registry};

use crate::{Redriver, http::AdminState};

/// What started a re-drive (`trigger` label).
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    Operator,
    Automatic,
}

pub struct RedriverMetrics {
    pub registry: Registry,
    pub http: telemetry::metrics::HttpMetrics,
    dead_letters: IntCounterVec,
    redrives: IntCounterVec,
    queue_messages: IntGaugeVec,
    oldest_pending: Gauge,
}

impl RedriverMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = telemetry::metrics::registry("redriver", env!("CARGO_PKG_VERSION"))?;
        let http = telemetry::metrics::HttpMetrics::new(&registry)?;
        let dead_letters = IntCounterVec::new(
            Opts::new(
                "redriver_dead_letters_total",
                "Dead letters drained from the dead-letter queue into the table, by error class.",
            ),
            &["class"],
        )?;
        let redrives = IntCounterVec::new(
            Opts::new(
                "redriver_redrives_total",
                "Dead letters re-driven (their items re-opened and their stage messages published again), by trigger (operator or automatic).",
            ),
            &["trigger"],
        )?;
        let queue_messages = IntGaugeVec::new(
            Opts::new(
                "queue_messages",
                "Messages ready in each queue (stage, dead-letter, delay queues), read from the broker at scrape time.",
            ),
            &["queue"],
        )?;
        let oldest_pending = Gauge::new(
            "queue_oldest_pending_seconds",
            "Age of the oldest item released into the stage queue and waiting for a worker (pending, of an unfinished job), read from PostgreSQL at scrape time; 0 when none waits.",
        )?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(redrives.clone()))?;
        registry.register(Box::new(queue_messages.clone()))?;
        registry.register(Box::new(oldest_pending.clone()))?;
        // Both triggers show from the start, so a rate over them is defined before the first.
        for trigger in [Trigger::Operator, Trigger::Automatic] {
            redrives.with_label_values(&[trigger.label()]);
        }
        Ok(Self {
            registry,
            http,
            dead_letters,
            redrives,
            queue_messages,
            oldest_pending,
        })
    }

    pub fn dead_letter_stored(&self, class: ErrorClass) {
        self.dead_letters.with_label_values(&[class.as_str()]).inc();
    }

    pub fn redriven(&self, trigger: Trigger, letters: u64) {
        self.redrives
            .with_label_values(&[trigger.label()])
            .inc_by(letters);
    }

    /// Reads the queue depths and the oldest waiting item's age. A source that cannot be
    /// read keeps its last values (and says so in the log); the scrape still answers.
    async fn refresh(&self, ctx: &Redriver) {
        let (depths, age) = tokio::join!(
            ctx.publisher.queue_depths(),
            store::jobs::oldest_pending_age_seconds(&ctx.db)
        );
        match depths {
            Ok(depths) => {
                for (queue, messages) in depths {
                    self.queue_messages
                        .with_label_values(&[queue.as_str()])
                        .set(messages.into());
                }
            }
            Err(error) => tracing::warn!(%error, "could not read the queue depths"),
        }
        match age {
            Ok(age) => self.oldest_pending.set(age),
            Err(error) => tracing::warn!(%error, "could not read the oldest pending item"),
        }
    }
}

impl Trigger {
    fn label(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Automatic => "automatic",
        }
    }
}

/// `GET /metrics`: Prometheus text (not part of the admin API's OpenAPI document).
pub async fn serve(state: web::Data<AdminState>) -> HttpResponse {
    let metrics = &state.ctx.metrics;
    metrics.refresh(&state.ctx).await;
    telemetry::metrics::respond(&metrics.registry)
}

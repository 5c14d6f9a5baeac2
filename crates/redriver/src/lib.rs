//! The dead-letter re-driver.
//!
//! - [`drain`]: consumes `{prefix}.dead` and stores each dead letter as a row of
//!   `dead_letters` (acknowledged only once stored).
//! - [`redrive`]: re-drives dead letters (re-opens their failed items and publishes their
//!   stage messages again), purges them, and the automatic re-drive policy; every request is
//!   audited in `redrive_audit`.
//! - [`http`] and [`openapi`]: the admin API (`/admin/...`, bearer token) and its document.
//! - [`startup`]: `redriver serve` — the drainer, the policy timer and the admin API together.
//! - [`cli`]: what the command-line subcommands print.
//! - [`metrics`]: `/metrics` (dead letters, re-drives, queue depths, queue age).

pub mod cli;
pub mod drain;
pub mod filter;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod redrive;
pub mod startup;

use std::{sync::Arc, time::Duration};

use broker::{Publisher, Topology};
use http_support::Shutdown;
use sea_orm::DatabaseConnection;
use settings::{RedriverSettings, Settings};

pub use filter::{DeadLetterFilter, LetterStatus};
pub use redrive::{
    PolicyPass, PurgeReport, PurgeRequest, RedriveError, RedriveReport, RedriveRequest,
    auto_redrive_pass, purge, redrive,
};
pub use startup::{Application, RunningRedriver};

/// What re-driving needs: the database, a publisher with confirms, and the settings.
pub struct Redriver {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub settings: RedriverSettings,
    pub metrics: Arc<metrics::RedriverMetrics>,
    /// Begun on SIGTERM: re-drives stop after the step they are in, readiness fails.
    pub shutdown: Shutdown,
    limiter: redrive::RateLimiter,
}

impl Redriver {
    pub fn new(
        db: DatabaseConnection,
        publisher: Publisher,
        settings: RedriverSettings,
    ) -> Result<Self, prometheus::Error> {
        let limiter = redrive::RateLimiter::new(settings.redrive_per_second);
        Ok(Self {
            db,
            publisher,
            settings,
            metrics: Arc::new(metrics::RedriverMetrics::new()?),
            shutdown: Shutdown::new(),
            limiter,
        })
    }

    /// Opens the database pool and prepares the publisher (which connects on first use).
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        let db = store::connect(&settings.database).await?;
        let publisher = Publisher::new(
            settings.amqp.url.clone(),
            Topology::from_settings(settings),
            Duration::from_secs(settings.amqp.timeout_seconds),
        );
        Ok(Self::new(db, publisher, settings.redriver.clone())?)
    }
}

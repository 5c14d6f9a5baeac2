//! The dead-letter re-driver.
//!
//! - [`drain`]: consumes `{prefix}.dead` and stores each dead letter as a row of
//!   `dead_letters` (acknowledged only once stored).
//! - [`redrive`]: re-drives dead letters (re-opens their failed items and publishes their
//!   stage messages again) and purges them; every request is audited in `redrive_audit`.
//! - [`policy`]: the automatic re-drive policy.
//! - [`http`] and [`openapi`]: the admin API (`/admin/...`, bearer token) and its document.
//! - [`startup`]: `redriver serve` — the drainer, the policy timer and the admin API together.
//! - [`cli`]: the command line: its subcommands and what they print.
//! - [`metrics`]: `/metrics` (dead letters, re-drives, queue depths, queue age).
//!
//! Which dead letters a request is about is one type, [`DeadLetterFilter`]: the CLI's
//! arguments, the admin API's parameters and the store's input.

pub mod cli;
pub mod drain;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod policy;
pub mod redrive;
pub mod startup;

use std::sync::Arc;

use broker::Publisher;
use http_support::{
    Shutdown,
    health::{Check, Dependencies},
};
use sea_orm::DatabaseConnection;
use settings::{RedriverSettings, Settings};

pub use policy::{PolicyPass, auto_redrive_pass};
pub use redrive::{
    PurgeReport, PurgeRequest, RedriveError, RedriveReport, RedriveRequest, purge, redrive,
};
pub use startup::{Application, RunningRedriver};
pub use store::dead_letters::{DeadLetterFilter, LetterStatus};

/// What re-driving needs: the database, a publisher with confirms, and the settings.
pub struct Redriver {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub settings: RedriverSettings,
    pub metrics: Arc<metrics::RedriverMetrics>,
    /// Begun on SIGTERM: re-drives stop after the step they are in, readiness fails.
    pub shutdown: Shutdown,
    limiter: redrive::RedriveRateLimiter,
}

impl Redriver {
    pub fn new(
        db: DatabaseConnection,
        publisher: Publisher,
        settings: RedriverSettings,
    ) -> Result<Self, prometheus::Error> {
        let limiter = redrive::RedriveRateLimiter::new(settings.redrive_per_second);
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
        let publisher = Publisher::from_settings(settings);
        Ok(Self::new(db, publisher, settings.redriver.clone())?)
    }
}

/// What the admin API's `/readyz` checks.
impl Dependencies for Redriver {
    fn database(&self) -> Check<'_> {
        Box::pin(store::ping(&self.db))
    }

    fn broker(&self) -> Check<'_> {
        Box::pin(self.publisher.ready())
    }

    fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

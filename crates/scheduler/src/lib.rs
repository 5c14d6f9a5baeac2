//! The scheduler: admits work from PostgreSQL into the stage queue (docs/design.md,
//! "Admission").
//!
//! Submissions store jobs without publishing anything. The scheduler keeps at most
//! `scheduler.window` items of the cluster released (queued or in flight) and shares that
//! window among the tenants with work by weight ([`fair`]), within each tenant by job priority
//! then age, with an optional calls-per-minute cap per tenant ([`caps`]). As items finish,
//! their slots are released again.
//!
//! Any number of replicas may run: one leads (it holds a PostgreSQL advisory lock) and the
//! others wait to take over. Claims skip rows another claim holds, so even two leaders at once
//! never release one item twice.

pub mod caps;
pub mod fair;
pub mod health;
mod metrics;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use broker::Publisher;
use domain::job::Priority;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use secrecy::ExposeSecret;
use settings::{SchedulerSettings, Settings};
use store::admission::{self, Backlog, BacklogJob, Released};
use tokio::{sync::watch, time::Instant};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use http_support::probes::ProbeServer;

use crate::{caps::Caps, fair::Demand, metrics::Metrics};

/// The advisory lock the leading replica holds (one per database).
const LEADER_LOCK: i64 = 0x5c4e_d01e;

/// How often released items are checked for a lost message.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Items released into the stage queue.
    pub released: u32,
    /// Items released again by the sweep.
    pub swept: u32,
}

/// A scheduler replica.
pub struct Scheduler {
    db: DatabaseConnection,
    /// One connection of its own: the session that holds the leader lock.
    leader_session: DatabaseConnection,
    publisher: Arc<Publisher>,
    settings: SchedulerSettings,
    caps: Caps,
    last_sweep: Option<Instant>,
    metrics: Metrics,
    registry: prometheus::Registry,
}

impl Scheduler {
    /// Connects lazily to the database and the broker.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = store::connect(&settings.database).await?;
        let mut options = ConnectOptions::new(settings.database.url.expose_secret().to_string());
        options
            .max_connections(1)
            .min_connections(0)
            .connect_timeout(Duration::from_secs(
                settings.database.connect_timeout_seconds,
            ))
            .acquire_timeout(Duration::from_secs(
                settings.database.acquire_timeout_seconds,
            ))
            .connect_lazy(true)
            .sqlx_logging(false);
        let leader_session = Database::connect(options).await?;
        let registry = telemetry::metrics::registry("scheduler", env!("CARGO_PKG_VERSION"))?;
        Ok(Self {
            db,
            leader_session,
            publisher: Arc::new(Publisher::from_settings(settings)),
            settings: settings.scheduler.clone(),
            caps: Caps::default(),
            last_sweep: None,
            metrics: Metrics::new(&registry)?,
            registry,
        })
    }

    /// Starts `/healthz`, `/readyz` and `/metrics` on `scheduler.health_host:health_port`.
    pub fn serve_health(&self) -> std::io::Result<ProbeServer> {
        health::start(
            self.db.clone(),
            self.publisher.clone(),
            self.registry.clone(),
            &self.settings.health_host,
            self.settings.health_port,
        )
    }

    /// Leads (or waits to lead) and releases work until `stop` turns true.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let tick = Duration::from_millis(self.settings.tick_millis);
        let mut leading = false;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let mut pause = tick;
            match self.lead().await {
                Ok(true) => {
                    if !leading {
                        tracing::info!("leading: releasing work");
                        leading = true;
                    }
                    match self.pass().await {
                        // Released something: more may be waiting behind it.
                        Ok(report) if report.released > 0 => pause = Duration::ZERO,
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "release pass failed; will retry"),
                    }
                }
                Ok(false) => {
                    if leading {
                        tracing::info!("another replica leads now");
                        leading = false;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot reach the database to lead; will retry");
                    leading = false;
                }
            }
            self.metrics.leader.set(i64::from(leading));
            if pause.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// Whether this replica leads: it holds the leader lock, or takes it now if free. The lock
    /// belongs to the session of `leader_session`: if that connection drops, the lock is free
    /// for another replica.
    pub async fn lead(&self) -> Result<bool, store::StoreError> {
        let row = self
            .leader_session
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                r#"SELECT CASE WHEN EXISTS (
                       SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
                         AND pid = pg_backend_pid()
                         AND ((classid::bigint << 32) | objid::bigint) = $1)
                   THEN true ELSE pg_try_advisory_lock($1) END AS leading"#,
                [LEADER_LOCK.into()],
            ))
            .await?;
        Ok(match row {
            Some(row) => row.try_get("", "leading")?,
            None => false,
        })
    }

    /// One pass: stops jobs over their budget, shares the window's free slots, claims and
    /// publishes their items, and now and then sweeps for lost messages. Public so tests can
    /// drive passes one at a time (and race two schedulers).
    pub async fn pass(&mut self) -> anyhow::Result<PassReport> {
        let started = Instant::now();
        let mut report = PassReport::default();
        if self.last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            self.last_sweep = Some(Instant::now());
            let swept = admission::sweep(
                &self.db,
                self.settings.sweep_after_seconds,
                self.settings.window,
            )
            .await?;
            if !swept.is_empty() {
                tracing::warn!(
                    items = swept.len(),
                    "released items never started; publishing them again"
                );
                self.publish(&swept).await?;
                report.swept = swept.len() as u32;
                self.metrics.swept.inc_by(swept.len() as u64);
            }
        }

        let backlog = admission::backlog(&self.db).await?;
        self.stop_over_budget(&backlog).await;
        let in_window = backlog.in_window();
        self.metrics.window.set(i64::from(in_window));
        let free = self.settings.window.saturating_sub(in_window);
        let mut released: HashMap<uuid::Uuid, u32> = HashMap::new();
        if free > 0 {
            let shares = self.share(&backlog, free);
            for (tenant, slots) in shares {
                report.released += self
                    .release_for(&backlog, tenant, slots, &mut released)
                    .await?;
            }
        }
        report.released += self.overtake(&backlog, &mut released).await?;
        self.metrics
            .pass_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(report)
    }

    /// Stops the jobs whose spend reached their cap: what they have not started is skipped
    /// (a job with nothing in flight then finishes). Workers stop such a job too when they
    /// find it over its cap; a job whose last calls crossed it has no worker left to do so.
    async fn stop_over_budget(&self, backlog: &Backlog) {
        for job in backlog.jobs.iter().filter(|job| job.over_budget) {
            match store::budget::stop_if_exhausted(&self.db, job.id).await {
                Ok(Some(event)) => {
                    tracing::info!(job_id = %job.id, "the job's spend reached its cap; stopped");
                    if let Err(error) = self.publisher.publish_events(&[event]).await {
                        tracing::warn!(%error, job_id = %job.id, "could not publish a budget stop's event");
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(%error, job_id = %job.id, "could not stop a job over its budget")
                }
            }
        }
    }

    /// The free slots each tenant with something to release gets.
    fn share(&mut self, backlog: &Backlog, free: u32) -> BTreeMap<uuid::Uuid, u32> {
        let now = std::time::Instant::now();
        let demands: Vec<Demand> = backlog
            .tenants
            .values()
            .filter(|tenant| backlog.has_releasable(tenant.tenant_id))
            .map(|tenant| Demand {
                tenant: tenant.tenant_id,
                weight: tenant.weight,
                in_window: tenant.in_window,
                limit: match tenant.calls_per_minute {
                    // Tokens are calls; an item may make one per stage of its first job.
                    Some(cap) => {
                        let stages = backlog
                            .jobs
                            .iter()
                            .find(|job| job.tenant_id == tenant.tenant_id && job.releasable())
                            .map_or(1, |job| job.stages);
                        self.caps.available(tenant.tenant_id, cap, stages, now) / stages
                    }
                    None => u32::MAX,
                },
            })
            .collect();
        self.metrics.tenants_with_work.set(demands.len() as i64);
        self.caps.retain(|tenant| {
            backlog
                .tenants
                .get(tenant)
                .is_some_and(|t| t.calls_per_minute.is_some())
        });
        fair::allocate(free, &demands)
    }

    /// Releases up to `slots` items of `tenant`'s jobs, highest priority and oldest first,
    /// writing more of a job's items when it has run out.
    async fn release_for(
        &mut self,
        backlog: &Backlog,
        tenant: uuid::Uuid,
        slots: u32,
        released_by_job: &mut HashMap<uuid::Uuid, u32>,
    ) -> anyhow::Result<u32> {
        let mut released = 0;
        for job in backlog
            .jobs
            .iter()
            .filter(|job| job.tenant_id == tenant && job.releasable())
        {
            let wanted = slots - released;
            if wanted == 0 {
                break;
            }
            let count = self.release_job(backlog, job, wanted).await?;
            *released_by_job.entry(job.id).or_insert(0) += count;
            released += count;
        }
        Ok(released)
    }

    /// Releases up to `wanted` items of `job`, writing more of its items when it has run out;
    /// how many it released.
    async fn release_job(
        &mut self,
        backlog: &Backlog,
        job: &BacklogJob,
        wanted: u32,
    ) -> anyhow::Result<u32> {
        let mut batch = admission::claim(&self.db, job.id, job.priority, wanted).await?;
        if (batch.len() as u32) < wanted {
            let written =
                admission::materialize(&self.db, job.id, self.settings.materialize_chunk).await?;
            if written > 0 {
                self.metrics.materialized.inc_by(u64::from(written));
                let more = wanted - batch.len() as u32;
                batch.extend(admission::claim(&self.db, job.id, job.priority, more).await?);
            }
        }
        if batch.is_empty() {
            return Ok(0);
        }
        // The release continues the submission's trace.
        let span = tracing::info_span!("release", job_id = %job.id, items = batch.len());
        if let Some(traceparent) = &job.traceparent {
            // Fails only when traces are off, when there is nothing to continue.
            let _ = span.set_parent(broker::trace::context_of(traceparent));
        }
        self.publish(&batch).instrument(span).await?;
        let count = batch.len() as u32;
        self.metrics.released.inc_by(u64::from(count));
        if backlog
            .tenants
            .get(&job.tenant_id)
            .is_some_and(|t| t.calls_per_minute.is_some())
        {
            self.caps.spend(job.tenant_id, count * job.stages);
        }
        Ok(count)
    }

    /// Lets a tenant's higher-priority work past its own lower-priority work in the window: a
    /// releasable job may be released beyond the window up to the tenant's items of lower
    /// priority in the window, less its items of its own priority or higher there. The stage
    /// queue's priorities then put it first. The queue so holds at most twice the window, and
    /// only while a tenant mixes priorities.
    async fn overtake(
        &mut self,
        backlog: &Backlog,
        released_by_job: &mut HashMap<uuid::Uuid, u32>,
    ) -> anyhow::Result<u32> {
        let rank = |priority: Priority| priority.amqp_priority();
        let mut released = 0;
        for job in backlog.jobs.iter().filter(|job| job.releasable()) {
            let tenant_jobs = || {
                backlog
                    .jobs
                    .iter()
                    .filter(|other| other.tenant_id == job.tenant_id)
            };
            let in_window = |other: &BacklogJob| {
                other.in_window + released_by_job.get(&other.id).copied().unwrap_or(0)
            };
            let lower: u32 = tenant_jobs()
                .filter(|other| rank(other.priority) < rank(job.priority))
                .map(in_window)
                .sum();
            if lower == 0 {
                continue;
            }
            let level: u32 = tenant_jobs()
                .filter(|other| rank(other.priority) >= rank(job.priority))
                .map(in_window)
                .sum();
            let mut extra = lower.saturating_sub(level);
            if let Some(cap) = backlog
                .tenants
                .get(&job.tenant_id)
                .and_then(|t| t.calls_per_minute)
            {
                extra = extra.min(
                    self.caps
                        .available(job.tenant_id, cap, job.stages, std::time::Instant::now())
                        / job.stages,
                );
            }
            if extra == 0 {
                continue;
            }
            let count = self.release_job(backlog, job, extra).await?;
            *released_by_job.entry(job.id).or_insert(0) += count;
            released += count;
        }
        Ok(released)
    }

    /// Publishes released items' messages; if the broker does not confirm them, they are
    /// handed back so a later pass releases them.
    async fn publish(&self, released: &[Released]) -> anyhow::Result<()> {
        let batch: Vec<(domain::message::StageMessage, Priority)> = released
            .iter()
            .map(|item| (item.message, item.priority))
            .collect();
        if let Err(error) = self.publisher.publish_prioritised(&batch).await {
            let ids: Vec<uuid::Uuid> = released.iter().map(|item| item.message.item_id).collect();
            admission::unclaim(&self.db, &ids).await?;
            return Err(error.into());
        }
        Ok(())
    }
}

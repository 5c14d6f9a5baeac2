//! A worker running in this process.

use api::routes::jobs::Job;
use serde_json::Value;
use settings::Settings;
use uuid::Uuid;

use crate::TestApp;

/// A worker running in this process, stopped (gracefully) when dropped or by [`RunningWorker::stop`].
pub struct RunningWorker {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    health: Option<http_support::probes::ProbeServer>,
}

impl RunningWorker {
    /// Builds a worker from `settings`, starts its health server and starts consuming.
    pub async fn start(settings: &Settings) -> RunningWorker {
        let worker = worker::Worker::build(settings)
            .await
            .expect("build the worker");
        let health = worker.serve_health().expect("health server");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move { worker.run(stopped).await });
        RunningWorker {
            stop,
            task: Some(task),
            health: Some(health),
        }
    }

    /// The worker's `/readyz` status and body.
    pub async fn readiness(&self) -> (u16, Value) {
        let address = self.health.as_ref().expect("health server").address;
        let response = reqwest::get(format!("http://{address}/readyz"))
            .await
            .expect("readyz");
        let status = response.status().as_u16();
        (status, response.json().await.expect("readyz json"))
    }

    /// The worker's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let address = self.health.as_ref().expect("health server").address;
        crate::metrics::scrape(&format!("http://{address}/metrics")).await
    }

    /// Asks the worker to stop and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.expect("worker task").expect("worker run");
        }
        if let Some(health) = self.health.take() {
            health.stop().await;
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl TestApp {
    /// Runs a worker (with the app's settings) until the job is finished, then stops it; the
    /// job as it ended.
    pub async fn run_to_end(&self, job: Uuid) -> Job {
        let worker = RunningWorker::start(&self.settings).await;
        let finished = self.wait_for_job(job).await;
        worker.stop().await;
        finished
    }
}

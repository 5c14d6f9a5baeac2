//! The scheduler run in the test's process, as [`crate::TestApp`] starts one.

use settings::Settings;

/// A scheduler releasing work until stopped (or dropped).
pub struct RunningScheduler {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningScheduler {
    pub async fn start(settings: &Settings) -> RunningScheduler {
        let scheduler = scheduler::Scheduler::build(settings)
            .await
            .expect("build the scheduler");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(scheduler.run(stopped));
        RunningScheduler {
            stop,
            task: Some(task),
        }
    }

    /// Asks the scheduler to stop and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.expect("scheduler task").expect("scheduler run");
        }
    }
}

impl Drop for RunningScheduler {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

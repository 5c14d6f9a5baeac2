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
    /// Stops the scheduler at its next await, not at the end of its pass: the test's clean-up
    /// follows at once and deletes the queues, and a pass still publishing would declare them
    /// again.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

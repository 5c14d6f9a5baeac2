//! What the restart tests share: a job under way, and what it must show once the service
//! that was cut is back.

use std::time::Duration;

use system_tests::{
    TestApp,
    process::{ServiceProcess, Tuning},
    runs::{
        SubmittedJob, assert_job_consistent, dead_letters_of, job_finished, result_count,
        submit_two_stage_job, wait_until_finished,
    },
    set_latency,
};

use crate::services::{ServicesGuard, ensure_services_up};

/// What the restart tests share: a two-stage job of `images` images, a fifth of it done by one
/// worker process (the stand-in answering in 20–50 ms), ready for a service to be cut.
///
/// Fields drop in their order here: the worker process goes first, the app (whose clean-up
/// deletes the test's queues) last, so no process re-declares them after the clean-up.
pub struct JobUnderway {
    pub worker: ServiceProcess,
    pub job: SubmittedJob,
    /// Results stored when the job was found a fifth done.
    pub stored: i64,
    pub services: ServicesGuard,
    /// Answers the job's calls for as long as this lives.
    _standin: cohere_standin::Running,
    pub app: TestApp,
}

impl JobUnderway {
    pub async fn start(images: usize, timeout: Duration) -> Self {
        ensure_services_up();
        let mut app = TestApp::spawn().await;
        let standin = system_tests::start_standin(&mut app.settings);
        set_latency(&standin, 20, 50);
        let services = ServicesGuard::new();
        let job = submit_two_stage_job(&app, images).await;
        let worker = ServiceProcess::start("w", &app.settings, Tuning::with_concurrency(2));
        let expected = job.expected_results();
        system_tests::eventually(timeout, "a fifth of the results", || async {
            (result_count(&app, job.job).await >= expected / 5).then_some(())
        })
        .await;
        let stored = result_count(&app, job.job).await;
        assert!(
            stored < expected && !job_finished(&app, job.job).await,
            "the job is still running ({stored} of {expected} results)"
        );
        Self {
            app,
            _standin: standin,
            services,
            job,
            worker,
            stored,
        }
    }

    /// After the outage of `service`: the job completes with every result once and nothing
    /// dead-lettered, a job submitted afterwards completes too, and the same worker process
    /// (never restarted) ran both.
    pub async fn assert_recovered(&mut self, service: &str, timeout: Duration) {
        let app = &self.app;
        wait_until_finished(app, self.job.job, &mut self.worker, timeout).await;
        assert_job_consistent(app, &self.job).await;
        assert!(
            dead_letters_of(app, self.job.job).await.is_empty(),
            "a restart of {service} dead-letters nothing"
        );
        let second = submit_two_stage_job(app, 20).await;
        wait_until_finished(app, second.job, &mut self.worker, timeout).await;
        assert_job_consistent(app, &second).await;
        self.worker.assert_alive(&format!(
            "after {service} restarted (it should reconnect, not exit)"
        ));
        assert_eq!(self.worker.starts, 1, "the worker was never restarted");
    }
}

//! The Cohere stand-in, started in this process for one test.

use cohere_standin::{Latency, RuntimeConfig};
use secrecy::SecretString;
use settings::Settings;

use crate::{TestApp, distinct_images};

/// The bearer key the in-process Cohere stand-in accepts in tests.
pub const STANDIN_KEY: &str = "standin-test-key";

/// Starts a Cohere stand-in on a free port and points `settings` at it.
pub fn start_standin(settings: &mut Settings) -> cohere_standin::Running {
    let standin = cohere_standin::spawn(cohere_standin::StandInConfig::new(STANDIN_KEY))
        .expect("start the stand-in");
    settings.cohere.base_url = standin.base_url();
    settings.cohere.api_key = Some(SecretString::from(STANDIN_KEY));
    settings.cohere.timeout_seconds = 10;
    standin
}

/// Makes every call to `standin` answer 503 while the breaker never opens, so the retry
/// settings alone decide: `in_process_tries` calls per delivery, `max_attempts` deliveries,
/// then the item fails and is dead-lettered.
pub fn fail_every_call_transiently(
    settings: &mut Settings,
    standin: &cohere_standin::Running,
    in_process_tries: u32,
    max_attempts: u32,
) {
    settings.breaker.min_calls = settings.breaker.window_calls;
    settings.breaker.failure_rate = 1.0;
    settings.retry.in_process_tries = in_process_tries;
    settings.retry.max_attempts = max_attempts;
    standin
        .standin
        .set_config(cohere_standin::RuntimeConfig {
            error_rates: std::collections::BTreeMap::from([(503, 1.0)]),
            ..Default::default()
        })
        .expect("configure the stand-in");
}

/// The stand-in answers after `min..=max` milliseconds.
pub fn set_latency(standin: &cohere_standin::Running, min: u64, max: u64) {
    standin
        .standin
        .set_config(RuntimeConfig {
            latency_ms: Latency { min, max },
            ..Default::default()
        })
        .expect("a valid stand-in configuration");
}

/// Makes the stand-in refuse these images with a 400, as Cohere refuses an image it cannot read.
pub fn reject_images(standin: &cohere_standin::Running, images: &[&[u8]]) {
    standin
        .standin
        .set_config(RuntimeConfig {
            reject_images: images
                .iter()
                .map(|image| cohere_standin::sha256_hex(image))
                .collect(),
            ..Default::default()
        })
        .expect("configure the stand-in");
}

/// Makes the stand-in accept only `key` (as after a key was rotated at Cohere's end).
pub fn accept_only_key(standin: &cohere_standin::Running, key: &str) {
    standin
        .standin
        .set_config(RuntimeConfig {
            api_key: Some(key.into()),
            ..Default::default()
        })
        .expect("configure the stand-in");
}

/// An api whose Cohere stand-in rejects one of `count` distinct images, the one at `rejected`:
/// the app, the stand-in (running until dropped) and the images.
pub async fn app_rejecting_one(
    count: usize,
    rejected: usize,
) -> (TestApp, cohere_standin::Running, Vec<(String, Vec<u8>)>) {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(count);
    reject_images(&standin, &[&images[rejected].1]);
    (app, standin, images)
}

/// A job over `count` distinct images whose every Cohere call fails with a 503 (one attempt of
/// one try), so each item fails and is dead-lettered, run to its end by a worker with a
/// re-driver draining the dead letters. Dropped whole, the worker and the re-driver stop
/// before the app's clean-up deletes the queues they consume.
pub struct DeadLetteredRun {
    pub worker: crate::RunningWorker,
    pub redriver: crate::RedriverAdmin,
    /// Answers 503 until its configuration is reset.
    pub standin: cohere_standin::Running,
    pub job: api::routes::jobs::Job,
    pub app: TestApp,
}

pub async fn dead_lettered_run(count: usize) -> DeadLetteredRun {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    fail_every_call_transiently(&mut app.settings, &standin, 1, 1);
    let redriver = crate::RedriverAdmin::start(&app.settings).await;
    let job = app
        .submit_job_over(&distinct_images(count), crate::one_stage())
        .await;
    let worker = crate::RunningWorker::start(&app.settings).await;
    let job = app.wait_for_job(job).await;
    DeadLetteredRun {
        app,
        standin,
        redriver,
        worker,
        job,
    }
}

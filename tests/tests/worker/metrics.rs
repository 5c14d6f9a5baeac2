//! A worker's `/metrics`: tokens, stage durations, Cohere calls and their latency.

use domain::job::JobStatus;
use system_tests::{
    RunningWorker, TestApp, distinct_images,
    metrics::{assert_sample, sample},
    one_stage, start_standin,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_reports_tokens_stage_durations_and_cohere_latency() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let job = app.submit_job_over(&distinct_images(3), one_stage()).await;
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");

    let text = worker.metrics().await;
    let input = sample(&text, r#"worker_tokens_total{kind="input"}"#).expect("input tokens");
    assert_eq!(input, finished.usage.input_tokens as f64, "{text}");
    let output = sample(&text, r#"worker_tokens_total{kind="output"}"#).expect("output tokens");
    assert!(output > 0.0, "{text}");
    assert_sample(&text, "worker_stage_duration_seconds_count", 3.0);
    assert!(sample(&text, "worker_stage_duration_seconds_sum").unwrap() > 0.0);
    assert_eq!(
        sample(
            &text,
            r#"worker_cohere_request_duration_seconds_count{outcome="ok"}"#
        ),
        Some(standin.standin.calls().total as f64),
        "{text}"
    );
    assert_sample(&text, "worker_rate_limiter_wait_seconds_count", 3.0);
    assert_sample(&text, r#"worker_cohere_calls_total{outcome="ok"}"#, 3.0);
    // Every result is priced from its billed tokens (the default price table here).
    let cost = sample(&text, "worker_cost_usd_total").expect("cost");
    assert!(cost > 0.0, "{text}");
    assert!(
        (cost - finished.usage.cost_usd).abs() < 1e-9,
        "{cost} recorded, {} on the job",
        finished.usage.cost_usd
    );
    assert!(text.contains(r#"build_info{service="worker","#), "{text}");
    worker.stop().await;
}

//! One trace from the api request through RabbitMQ to the worker and its Cohere call,
//! recorded by an in-memory span exporter (no collector). Each test installs the process's
//! global subscriber, so each runs in a process of its own (as nextest runs every test).

use std::collections::HashMap;

use cohere_standin::RuntimeConfig;
use domain::job::JobStatus;
use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use system_tests::{
    DeadLetteredRun, RUN_TIMEOUT, TestApp, dead_lettered_run, distinct_images, eventually,
    fail_every_call_transiently, one_stage, start_standin,
};

/// Installs a subscriber that records every span in memory.
fn record_spans() -> (InMemorySpanExporter, SdkTracerProvider, telemetry::Guard) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let guard = telemetry::init_with_provider(
        "system-tests",
        telemetry::Format::Text,
        "info,sqlx=warn,lapin=warn",
        provider.clone(),
    );
    (exporter, provider, guard)
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

/// Whether `ancestor` is `span` or one of its parents (within the recorded spans).
fn descends_from(spans: &HashMap<SpanId, &SpanData>, span: &SpanData, ancestor: SpanId) -> bool {
    let mut current = Some(span);
    while let Some(s) = current {
        if s.span_context.span_id() == ancestor {
            return true;
        }
        current = spans.get(&s.parent_span_id).copied();
    }
    false
}

fn one<'a>(spans: &'a [SpanData], what: &str, pick: impl Fn(&SpanData) -> bool) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(
        found.len(),
        1,
        "one {what} span: {:#?}",
        spans
            .iter()
            .map(|s| (&s.name, s.span_kind.clone()))
            .collect::<Vec<_>>()
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_submit_request_through_the_broker_to_the_cohere_call() {
    let (exporter, provider, _guard) = record_spans();
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let job = app.submit_job_over(&distinct_images(1), one_stage()).await;
    let finished = app.run_to_end(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let by_id: HashMap<SpanId, &SpanData> = spans
        .iter()
        .map(|s| (s.span_context.span_id(), s))
        .collect();

    let server = one(&spans, "api server", |s| {
        s.span_kind == SpanKind::Server && s.name == "POST /api/jobs/submit"
    });
    let trace: TraceId = server.span_context.trace_id();
    // The submission publishes its stage messages (and, after the commit, a job event).
    let work_publish = format!("{}.work publish", app.settings.amqp.prefix);
    let producer = one(&spans, "stage publish", |s| {
        s.span_kind == SpanKind::Producer
            && s.span_context.trace_id() == trace
            && s.name == work_publish
    });
    assert!(descends_from(
        &by_id,
        producer,
        server.span_context.span_id()
    ));
    assert_eq!(
        producer.name,
        format!("{}.work publish", app.settings.amqp.prefix)
    );
    assert_eq!(
        attribute(producer, "messaging.system").as_deref(),
        Some("rabbitmq")
    );
    assert_eq!(
        attribute(producer, "messaging.operation.type").as_deref(),
        Some("publish")
    );
    assert_eq!(
        attribute(producer, "messaging.rabbitmq.destination.routing_key").as_deref(),
        Some("stage")
    );

    let consumer = one(&spans, "worker consumer", |s| {
        s.span_kind == SpanKind::Consumer
    });
    assert_eq!(
        consumer.span_context.trace_id(),
        trace,
        "one trace across the broker"
    );
    assert_eq!(
        consumer.parent_span_id,
        producer.span_context.span_id(),
        "the consumer's parent is the producer, from the message's traceparent"
    );
    assert!(consumer.parent_span_is_remote);
    assert_eq!(
        attribute(consumer, "messaging.operation.type").as_deref(),
        Some("process")
    );
    assert_eq!(
        attribute(consumer, "messaging.destination.name"),
        Some(format!("{}.stage", app.settings.amqp.prefix))
    );
    assert_eq!(attribute(consumer, "job.id"), Some(job.to_string()));
    assert_eq!(attribute(consumer, "stage.index").as_deref(), Some("0"));
    assert!(attribute(consumer, "item.id").is_some());

    let fetch = one(&spans, "image fetch", |s| s.name == "image fetch");
    assert!(descends_from(
        &by_id,
        fetch,
        consumer.span_context.span_id()
    ));
    let client = one(&spans, "Cohere client", |s| s.span_kind == SpanKind::Client);
    assert_eq!(client.span_context.trace_id(), trace);
    assert!(descends_from(
        &by_id,
        client,
        consumer.span_context.span_id()
    ));
    assert_eq!(
        attribute(client, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attribute(client, "http.response.status_code").as_deref(),
        Some("200")
    );

    let write = one(&spans, "batch write", |s| s.name == "write batch");
    assert!(
        write
            .links
            .iter()
            .any(|l| l.span_context.span_id() == consumer.span_context.span_id()),
        "the batch write links the delivery it wrote"
    );

    // No secret and no image bytes in any attribute.
    for span in &spans {
        for kv in &span.attributes {
            let value = kv.value.to_string();
            assert!(!value.contains(system_tests::STANDIN_KEY), "{span:?}");
            assert!(!value.contains("base64"), "{span:?}");
            assert!(value.len() < 1_000, "{span:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_delivery_links_to_the_trace_of_its_first_delivery() {
    let (exporter, provider, _guard) = record_spans();
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    // Every call fails with a 503: the first delivery goes to a delay queue, the second
    // spends the last attempt and dead-letters the message.
    fail_every_call_transiently(&mut app.settings, &standin, 1, 2);
    let job = app.submit_job_over(&distinct_images(1), one_stage()).await;
    let finished = app.run_to_end(job).await;
    assert_eq!(finished.status, JobStatus::Failed, "{finished:?}");
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    let server = one(&spans, "api server", |s| {
        s.span_kind == SpanKind::Server && s.name == "POST /api/jobs/submit"
    });
    let trace = server.span_context.trace_id();
    let work_publish = format!("{}.work publish", app.settings.amqp.prefix);
    let stage_publish = one(&spans, "stage publish", |s| {
        s.span_kind == SpanKind::Producer
            && s.span_context.trace_id() == trace
            && s.name == work_publish
    });
    let mut deliveries: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_kind == SpanKind::Consumer)
        .collect();
    deliveries.sort_by_key(|s| s.start_time);
    assert_eq!(deliveries.len(), 2, "a first delivery and one retry");
    let (first, retry) = (deliveries[0], deliveries[1]);
    assert_eq!(first.parent_span_id, stage_publish.span_context.span_id());
    assert!(first.links.is_empty());

    // The retry came through the delay queue: its parent is that publish, in the first
    // delivery's trace, and it links to the original publish.
    let delay_publish = spans
        .iter()
        .find(|s| s.span_context.span_id() == retry.parent_span_id)
        .expect("the delay-queue publish span");
    assert_eq!(delay_publish.span_kind, SpanKind::Producer);
    assert!(
        delay_publish.name.contains(".delay."),
        "{}",
        delay_publish.name
    );
    assert_eq!(retry.span_context.trace_id(), trace);
    assert!(
        retry.links.iter().any(|l| {
            l.span_context.trace_id() == trace
                && l.span_context.span_id() == stage_publish.span_context.span_id()
        }),
        "the retry links to its first delivery's trace: {:?}",
        retry.links
    );

    // The dead letter carries the first delivery's traceparent on.
    let letters = app.drain_dead_letters(10).await;
    assert_eq!(letters.len(), 1);
    let origin = letters[0].1.origin_traceparent.clone().expect("an origin");
    assert!(
        origin.contains(&format!("{trace}-{}", stage_publish.span_context.span_id())),
        "{origin}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_dead_letter_links_its_new_work_to_the_original_trace() {
    let (exporter, provider, _guard) = record_spans();
    let DeadLetteredRun {
        app,
        standin,
        redriver,
        worker,
        job: failed,
    } = dead_lettered_run(1).await;
    let job = failed.id;
    assert_eq!(failed.status, JobStatus::Failed, "{failed:?}");
    eventually(RUN_TIMEOUT, "the dead letter to be drained", || async {
        (app.query_i64("SELECT count(*) FROM dead_letters").await == 1).then_some(())
    })
    .await;

    standin
        .standin
        .set_config(RuntimeConfig::default())
        .unwrap();
    let request = redriver::RedriveRequest {
        filter: redriver::DeadLetterFilter::default(),
        dry_run: false,
        limit: None,
    };
    let report = redriver::redrive(
        &redriver.running.context(),
        &request,
        "operator",
        &mut |_| {},
    )
    .await
    .unwrap();
    assert_eq!(report.redriven, 1);
    eventually(RUN_TIMEOUT, "the re-driven job to complete", || async {
        (app.job(job).await.status == JobStatus::Completed).then_some(())
    })
    .await;
    worker.stop().await;
    redriver.stop().await;
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();

    let work_publish = format!("{}.work publish", app.settings.amqp.prefix);
    let server = one(&spans, "api server", |s| {
        s.span_kind == SpanKind::Server && s.name == "POST /api/jobs/submit"
    });
    let original = one(&spans, "submission publish", |s| {
        s.name == work_publish && s.span_context.trace_id() == server.span_context.trace_id()
    });
    let mut deliveries: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            s.span_kind == SpanKind::Consumer
                && s.name == format!("{}.stage process", app.settings.amqp.prefix)
        })
        .collect();
    deliveries.sort_by_key(|s| s.start_time);
    assert_eq!(
        deliveries.len(),
        2,
        "the failed delivery and the re-driven one"
    );
    let redriven = deliveries[1];
    assert!(
        redriven.links.iter().any(|l| {
            l.span_context.span_id() == original.span_context.span_id()
                && l.span_context.trace_id() == original.span_context.trace_id()
        }),
        "the re-driven work links to the submission's trace: {:?}",
        redriven.links
    );
    // The re-drive's own publish is its parent.
    let parent = spans
        .iter()
        .find(|s| s.span_context.span_id() == redriven.parent_span_id)
        .expect("the re-drive's publish span");
    assert_eq!(parent.span_kind, SpanKind::Producer);
    assert_ne!(
        parent.span_context.span_id(),
        original.span_context.span_id()
    );
    // The drainer's span continues the worker's dead-letter publish and links to the origin.
    let drained = one(&spans, "dead-letter drain", |s| {
        s.name == format!("{}.dead process", app.settings.amqp.prefix)
    });
    let dead_letter_publish = spans
        .iter()
        .find(|s| s.span_context.span_id() == drained.parent_span_id)
        .expect("the dead-letter publish span");
    assert_eq!(
        dead_letter_publish.name,
        format!("{}.dlx publish", app.settings.amqp.prefix)
    );
    assert!(
        drained
            .links
            .iter()
            .any(|l| l.span_context.span_id() == original.span_context.span_id())
    );
}

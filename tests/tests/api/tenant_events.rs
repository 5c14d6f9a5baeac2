//! `GET /api/events`: the tenant-wide event stream.

use std::time::Duration;

use domain::event::{JOB_EVENT_VERSION, JobCounts, JobEvent, JobEventKind};
use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use system_tests::{
    EventReader, RUN_TIMEOUT, RunningWorker, ServerEvent, TestApp, distinct_images, one_stage,
    start_standin,
};
use uuid::Uuid;

async fn open(app: &TestApp, key: &str, last_event_id: Option<&str>) -> EventReader {
    let mut request = app.request_with_key(key, Method::GET, "/api/events");
    if let Some(id) = last_event_id {
        request = request.header("Last-Event-ID", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    EventReader::new(response)
}

/// The job an event is about: a `JobEvent`'s `job_id` or a snapshot's `job.id`.
fn job_of(event: &ServerEvent) -> Option<String> {
    event.data["job_id"]
        .as_str()
        .or(event.data["job"]["id"].as_str())
        .map(str::to_string)
}

fn seq_of(event: &ServerEvent) -> i64 {
    event.data["seq"].as_i64().expect("a seq")
}

/// Publishes an event of a job that does not exist for `tenant` until `reader` receives it:
/// the api's events listener (bound in the background at start-up) is then listening.
async fn wait_until_listening(app: &TestApp, tenant: Uuid, reader: &mut EventReader) {
    let probe = JobEvent {
        v: JOB_EVENT_VERSION,
        job_id: Uuid::now_v7(),
        tenant_id: tenant,
        seq: 1,
        kind: JobEventKind::Progress { items: Vec::new() },
        status: domain::job::JobStatus::Running,
        counts: JobCounts::default(),
        stop_reason: None,
    };
    let probe_id = probe.job_id.to_string();
    reader
        .publish_until(&app.publisher(), &probe, |event| {
            job_of(event).as_deref() == Some(probe_id.as_str())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_stream_follows_its_jobs_from_creation_to_end_and_never_shows_another_tenants() {
    let mut app = TestApp::spawn().await;
    let _standin = start_standin(&mut app.settings);
    let key_a = app.key.clone();
    let key_b = app.other_tenant_key("tenant-b").await;
    let tenant_a = app.tenant_id("tenant-a").await;

    let library = app.create_library("photos").await;
    app.upload_bytes(library, &distinct_images(3)).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    app.key = key_b.clone();
    let library_b = app.create_library("photos").await;
    app.upload_bytes(library_b, &distinct_images(2)).await;
    let pipeline_b = app.create_pipeline("describe", one_stage()).await;
    app.key = key_a.clone();

    let mut stream_a = open(&app, &key_a, None).await;
    let mut stream_b = open(&app, &key_b, None).await;
    wait_until_listening(&app, tenant_a, &mut stream_a).await;

    let job_a = app.submit_job(pipeline, library).await.to_string();
    app.key = key_b.clone();
    let job_b = app.submit_job(pipeline_b, library_b).await.to_string();
    app.key = key_a.clone();

    let created_a = stream_a
        .until(RUN_TIMEOUT, |e| {
            job_of(e).as_deref() == Some(job_a.as_str())
        })
        .await
        .pop()
        .unwrap();
    assert_eq!(created_a.event, "job_created", "{created_a:?}");
    assert_eq!(created_a.data["seq"], 0);
    assert_eq!(created_a.data["status"], "queued");
    assert_eq!(created_a.data["counts"]["total"], 3);
    assert_eq!(created_a.data["tenant_id"], tenant_a.to_string());
    let resume_from = created_a.id.clone();

    let worker = RunningWorker::start(&app.settings).await;
    let finished = |job: &str| {
        let job = job.to_string();
        move |e: &ServerEvent| {
            job_of(e).as_deref() == Some(job.as_str())
                && (e.event == "job_finished"
                    || (e.event == "snapshot" && e.data["job"]["status"] == "completed"))
        }
    };
    let events_a = stream_a.until(RUN_TIMEOUT, finished(&job_a)).await;
    let events_b = stream_b.until(RUN_TIMEOUT, finished(&job_b)).await;
    worker.stop().await;

    for event in &events_a {
        assert_ne!(job_of(event), Some(job_b.clone()), "{event:?}");
    }
    for event in &events_b {
        assert_ne!(job_of(event), Some(job_a.clone()), "{event:?}");
    }
    assert!(
        events_b
            .iter()
            .any(|e| e.event == "job_created" && job_of(e) == Some(job_b.clone())),
        "tenant b sees its own job created: {events_b:?}"
    );
    // The job's events come in `seq` order, with the items that finished.
    let of_a: Vec<&ServerEvent> = events_a
        .iter()
        .filter(|e| job_of(e) == Some(job_a.clone()))
        .collect();
    let seqs: Vec<i64> = of_a.iter().map(|e| seq_of(e)).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert!(seqs[0] > 0, "created (seq 0) was sent once");
    let finished_items: usize = of_a
        .iter()
        .filter(|e| e.event == "progress" || e.event == "job_finished")
        .map(|e| {
            e.data["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["item_status"] == "passed")
                .count()
        })
        .sum();
    if of_a.iter().all(|e| e.event != "snapshot") {
        assert_eq!(finished_items, 3, "every item's end was streamed");
    }
    let last = of_a.last().unwrap();
    let counts = if last.event == "snapshot" {
        &last.data["job"]["counts"]
    } else {
        &last.data["counts"]
    };
    assert_eq!(counts["passed"], 3, "{last:?}");

    // Resuming from the creation event brings the job as it is now, and nothing of tenant b.
    let mut resumed = open(&app, &key_a, Some(&resume_from)).await;
    let snapshot = resumed
        .until(Duration::from_secs(10), |e| {
            job_of(e).as_deref() == Some(job_a.as_str())
        })
        .await
        .pop()
        .unwrap();
    assert_eq!(snapshot.event, "snapshot", "{snapshot:?}");
    assert_eq!(snapshot.data["job"]["status"], "completed");
    assert_eq!(snapshot.data["job"]["counts"]["passed"], 3);
    assert_eq!(snapshot.data["seq"], Value::from(*seqs.last().unwrap()));
    let position: i64 = resumed.last_id.as_deref().unwrap().parse().unwrap();
    assert!(position >= resume_from.parse::<i64>().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_sends_the_jobs_changed_since_or_a_resync_when_too_many_changed_and_a_bad_id_is_400()
 {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["horse.png"]).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    let old = app.submit_job(pipeline, library).await;
    app.db
        .execute_unprepared(&format!(
            "UPDATE jobs SET updated_at = now() - interval '1 hour' WHERE id = '{old}'"
        ))
        .await
        .unwrap();
    let fresh = app.submit_job(pipeline, library).await;
    let ten_minutes_ago = (chrono::Utc::now() - chrono::TimeDelta::minutes(10))
        .timestamp_millis()
        .to_string();

    let mut stream = open(&app, &app.key, Some(&ten_minutes_ago)).await;
    let first = stream.next().await.unwrap();
    assert_eq!(first.event, "snapshot");
    assert_eq!(job_of(&first), Some(fresh.to_string()));
    assert_eq!(first.data["job"]["status"], "queued");
    assert_eq!(first.data["seq"], 0);
    // After the snapshots, an `id:` line moves the position on to about now.
    let position: i64 = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(id) = &stream.last_id
                && *id != ten_minutes_ago
            {
                return id.parse().unwrap();
            }
            stream.next_frame().await.expect("the stream goes on");
        }
    })
    .await
    .expect("a new position");
    let ten_minutes_ago: i64 = ten_minutes_ago.parse().unwrap();
    assert!(position > ten_minutes_ago + 9 * 60 * 1000, "{position}");

    // When more jobs changed than a stream sends one by one, it asks the client to reload.
    app.db
        .execute_unprepared(&format!(
            "INSERT INTO jobs SELECT (jsonb_populate_record(NULL::jobs,
                 to_jsonb(j) || jsonb_build_object('id', gen_random_uuid()))).*
             FROM jobs j, generate_series(1, 200) WHERE j.id = '{fresh}'"
        ))
        .await
        .unwrap();
    let mut stream = open(&app, &app.key, Some(&ten_minutes_ago.to_string())).await;
    let first = stream.next().await.unwrap();
    assert_eq!(first.event, "resync", "{first:?}");
    assert!(first.data["reason"].is_string());

    let response = app
        .get("/api/events")
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

/// The positions (`id:` of frames without data) the next `count` re-reads sent on `stream`.
async fn next_positions(stream: &mut EventReader, count: usize) -> Vec<String> {
    let mut positions = Vec::with_capacity(count);
    tokio::time::timeout(Duration::from_secs(30), async {
        while positions.len() < count {
            if stream
                .next_frame()
                .await
                .expect("the stream goes on")
                .is_none()
            {
                positions.push(stream.last_id.clone().expect("an id"));
            }
        }
    })
    .await
    .expect("re-reads every few seconds");
    positions
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_streams_share_one_re_read_of_its_changed_jobs() {
    let app = TestApp::spawn().await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut stream = open(&app, &app.key, None).await;
        // Each stream's own first read, at the moment it opened.
        next_positions(&mut stream, 1).await;
        streams.push(stream);
    }
    let positions =
        futures::future::join_all(streams.iter_mut().map(|s| next_positions(s, 2))).await;
    // A re-read's position is the database's clock when it ran: streams that each read for
    // themselves would never send the same one. At most one re-read can fall between the
    // streams' openings, so of two in a row, one is common to all.
    let shared: Vec<&String> = positions[0]
        .iter()
        .filter(|p| positions.iter().all(|other| other.contains(p)))
        .collect();
    assert!(!shared.is_empty(), "{positions:?}");
}

/// This process's resident memory, in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_open_tenant_streams_cost_less_than_fifty_megabytes() {
    const STREAMS: usize = 1000;
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    app.upload(library, &["horse.png"]).await;
    let pipeline = app.create_pipeline("describe", one_stage()).await;
    app.submit_job(pipeline, library).await;
    // One stream first, so what every stream shares is already allocated.
    let mut first = open(&app, &app.key, None).await;
    assert!(first.next().await.is_some(), "the new job's snapshot");
    let before = resident_bytes();

    let mut streams = Vec::with_capacity(STREAMS);
    for chunk in 0..STREAMS / 50 {
        let opened = futures::future::join_all((0..50).map(|_| async {
            let mut stream = open(&app, &app.key, None).await;
            // The stream is live once its first position (or snapshot) arrived.
            stream.next_frame().await.expect("a first frame");
            stream
        }))
        .await;
        assert_eq!(opened.len(), 50, "chunk {chunk}");
        streams.extend(opened);
    }
    let after = resident_bytes();
    // Client and server share this process: the server's part is less than the whole.
    let extra = after.saturating_sub(before);
    eprintln!(
        "{STREAMS} streams: {:.1} MB extra (server and client)",
        extra as f64 / 1e6
    );
    assert!(extra < 50_000_000, "{extra} bytes for {STREAMS} streams");
    assert_eq!(streams.len(), STREAMS);
}

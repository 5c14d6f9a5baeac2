//! Jobs for tests that run real worker processes: many cheap distinct images, a two-stage
//! job over them, and the consistency checks every such test makes of a finished job.

use std::{collections::BTreeMap, time::Duration};

use api::routes::jobs::Job;
use domain::job::JobStatus;
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult, Statement};
use uuid::Uuid;

use crate::{TestApp, passes_first_stage, process::ServiceProcess, sample_image, two_stages};

/// `count` distinct small valid images: the smallest sample photo (16 KB), each made unique by
/// trailing bytes (which decoders ignore and which change the content hash the stand-in's
/// per-image counters are keyed by).
pub fn small_distinct_images(count: usize) -> Vec<(String, Vec<u8>)> {
    let horse = sample_image("horse.png");
    (0..count)
        .map(|i| {
            let mut bytes = horse.clone();
            bytes.extend_from_slice(format!("#chaos-{}-{i}", Uuid::new_v4().simple()).as_bytes());
            (format!("{i}-horse.png"), bytes)
        })
        .collect()
}

/// Uploads `images` in requests of 100 files (the API's limit); their ids in order.
pub async fn upload_in_chunks(
    app: &TestApp,
    library: Uuid,
    images: &[(String, Vec<u8>)],
) -> Vec<Uuid> {
    let mut ids = Vec::with_capacity(images.len());
    for chunk in images.chunks(100) {
        ids.extend(app.upload_bytes(library, chunk).await);
    }
    ids
}

/// A library of `count` new distinct images with a job of [`two_stages`] over it.
pub struct SubmittedJob {
    pub job: Uuid,
    pub library: Uuid,
    /// A pipeline of [`two_stages`].
    pub pipeline: Uuid,
    /// Image id → its bytes.
    pub images: BTreeMap<Uuid, Vec<u8>>,
}

impl SubmittedJob {
    /// Images that pass the first stage.
    pub fn expected_passed(&self) -> usize {
        self.images
            .values()
            .filter(|bytes| passes_first_stage(bytes))
            .count()
    }

    /// Result rows the job ends with: one per item and stage reached.
    pub fn expected_results(&self) -> i64 {
        (self.images.len() + self.expected_passed()) as i64
    }
}

/// Uploads `count` new images to a new library and submits a job of [`two_stages`] over it.
pub async fn submit_two_stage_job(app: &TestApp, count: usize) -> SubmittedJob {
    let images = small_distinct_images(count);
    let library = app
        .create_library(&format!("chaos-{}", Uuid::new_v4()))
        .await;
    let ids = upload_in_chunks(app, library, &images).await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let job = app.submit_job(pipeline, library).await;
    SubmittedJob {
        job,
        library,
        pipeline,
        images: ids
            .into_iter()
            .zip(images.into_iter().map(|(_, b)| b))
            .collect(),
    }
}

pub async fn rows(app: &TestApp, sql: &str) -> Vec<QueryResult> {
    app.db
        .query_all_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Result rows of a job so far.
pub async fn result_count(app: &TestApp, job: Uuid) -> i64 {
    app.query_i64(&format!(
        "SELECT count(*) FROM job_results WHERE job_id = '{job}'"
    ))
    .await
}

/// Whether the job is in a terminal state (read from the database, so it also works while the
/// api is busy).
pub async fn job_finished(app: &TestApp, job: Uuid) -> bool {
    let status: String = rows(app, &format!("SELECT status FROM jobs WHERE id = '{job}'"))
        .await
        .first()
        .expect("the job's row")
        .try_get("", "status")
        .expect("a status");
    status
        .parse::<JobStatus>()
        .expect("a job status")
        .is_terminal()
}

/// Everything a finished job of [`two_stages`] must show when nothing was
/// lost and nothing counted twice (DESIGN.md invariants 2 to 4): it completed; every item ended
/// as the stand-in's answers predict, with exactly one result row per stage it reached; the
/// job's and the stages' counters and token totals agree with the rows. Returns the job as the
/// api shows it.
pub async fn assert_job_consistent(app: &TestApp, submitted: &SubmittedJob) -> Job {
    let job = submitted.job;
    let total = i32::try_from(submitted.images.len()).expect("a few images");
    let passed = i32::try_from(submitted.expected_passed()).expect("a few images");
    let finished = app.wait_for_job(job).await;
    assert_eq!(finished.status, JobStatus::Completed, "{finished:?}");
    let counts = &finished.counts;
    assert_eq!(counts.total, total, "{finished:?}");
    assert_eq!(counts.passed, passed, "{finished:?}");
    assert_eq!(counts.filtered_out, total - passed, "{finished:?}");
    for (zero, count) in [
        ("pending", counts.pending),
        ("running", counts.running),
        ("failed", counts.failed),
        ("cancelled", counts.cancelled),
    ] {
        assert_eq!(count, 0, "{zero}: {finished:?}");
    }
    let stages = &finished.stages;
    assert_eq!(stages[0].processed, total, "{finished:?}");
    assert_eq!(stages[0].passed, passed, "{finished:?}");
    assert_eq!(stages[0].filtered_out, total - passed, "{finished:?}");
    assert_eq!(stages[0].failed, 0, "{finished:?}");
    assert_eq!(stages[1].processed, passed, "{finished:?}");
    assert_eq!(stages[1].passed, passed, "{finished:?}");
    let (total, passed) = (i64::from(total), i64::from(passed));

    // Every item ended as predicted from its image.
    let items = rows(
        app,
        &format!("SELECT image_id, status FROM job_items WHERE job_id = '{job}'"),
    )
    .await;
    assert_eq!(items.len() as i64, total, "one item per image");
    let mut wrong = Vec::new();
    for row in &items {
        let image: Uuid = row.try_get("", "image_id").expect("image_id");
        let status: String = row.try_get("", "status").expect("status");
        let expected = if passes_first_stage(&submitted.images[&image]) {
            "passed"
        } else {
            "filtered_out"
        };
        if status != expected {
            wrong.push(format!("{image}: {status}, expected {expected}"));
        }
    }
    assert!(wrong.is_empty(), "items ended wrongly: {wrong:?}");

    // Exactly one result per item and stage reached: 1 for filtered_out, 2 for passed.
    let results = result_count(app, job).await;
    assert_eq!(results, total + passed, "result rows");
    let mismatched = rows(
        app,
        &format!(
            "SELECT i.id::text AS item, i.status, count(r.id) AS results,
                    coalesce(string_agg(r.stage_index::text, ',' ORDER BY r.stage_index), '') AS stages
             FROM job_items i LEFT JOIN job_results r ON r.item_id = i.id
             WHERE i.job_id = '{job}'
             GROUP BY i.id, i.status
             HAVING NOT ((i.status = 'passed' AND count(r.id) = 2
                          AND min(r.stage_index) = 0 AND max(r.stage_index) = 1)
                      OR (i.status = 'filtered_out' AND count(r.id) = 1 AND max(r.stage_index) = 0))"
        ),
    )
    .await;
    let mismatched: Vec<String> = mismatched
        .iter()
        .map(|row| {
            format!(
                "{} {} results={} stages=[{}]",
                row.try_get::<String>("", "item").unwrap_or_default(),
                row.try_get::<String>("", "status").unwrap_or_default(),
                row.try_get::<i64>("", "results").unwrap_or_default(),
                row.try_get::<String>("", "stages").unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        mismatched.is_empty(),
        "items without exactly one result per stage reached: {mismatched:?}"
    );

    // Token totals: each stage's counter is the sum of its rows, the job's the sum of all.
    for (index, stage) in stages.iter().enumerate() {
        let from_rows = app
            .query_i64(&format!(
                "SELECT coalesce(sum(input_tokens), 0)::bigint FROM job_results WHERE job_id = '{job}' AND stage_index = {index}"
            ))
            .await;
        assert_eq!(
            stage.input_tokens, from_rows,
            "stage {index}'s input tokens counted once per result"
        );
    }
    let all_rows = app
        .query_i64(&format!(
            "SELECT coalesce(sum(input_tokens), 0)::bigint FROM job_results WHERE job_id = '{job}'"
        ))
        .await;
    assert!(all_rows > 0);
    assert_eq!(finished.usage.input_tokens, all_rows, "{finished:?}");
    finished
}

/// Dead letters of `job` on the test's dead-letter queue (taking every letter off it).
pub async fn dead_letters_of(app: &TestApp, job: Uuid) -> Vec<broker::DeadLetter> {
    app.drain_dead_letters(10_000)
        .await
        .into_iter()
        .map(|(_, letter)| letter)
        .filter(|letter| letter.job_id == Some(job))
        .collect()
}

/// Waits until the job is in a terminal state, failing the test (with the worker's log) if the
/// worker process exits by itself meanwhile.
pub async fn wait_until_finished(
    app: &TestApp,
    job: Uuid,
    worker: &mut ServiceProcess,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !job_finished(app, job).await {
        worker.assert_alive("while the job ran");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job did not finish within {timeout:?}: {:?}\nworker log:\n{}",
            app.job(job).await,
            worker.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

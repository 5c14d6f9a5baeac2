//! `POST /api/jobs/estimate`, image sizes, the live ETA of a job, and deletes of images a job
//! has not written items for yet.

use std::time::Duration;

use api::routes::{
    images::Image,
    jobs::{Job, JobEstimate},
};
use domain::{
    ImageDetail,
    estimate::{image_tokens, text_tokens},
    pipeline::{DEFAULT_MODEL, StageSpec},
};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, TransactionTrait};
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::PriceTable;
use system_tests::{
    SAMPLE_IMAGES, STANDIN_KEY, TestApp, body_as, eventually, one_stage, sample_image,
    start_standin,
};
use uuid::Uuid;

/// `POST /api/jobs/estimate` with `body`: the response as it is.
async fn estimate(app: &TestApp, body: &Value) -> reqwest::Response {
    app.post("/api/jobs/estimate")
        .json(body)
        .send()
        .await
        .expect("estimate")
}

/// `POST /api/jobs/estimate` with `body`, asserting 200.
async fn estimate_ok(app: &TestApp, body: &Value) -> JobEstimate {
    body_as(estimate(app, body).await, StatusCode::OK).await
}

/// Status and field-error paths of a refused request.
async fn refusal(response: reqwest::Response) -> (u16, Vec<String>) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let paths = body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["path"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (status, paths)
}

#[tokio::test]
async fn an_estimate_refuses_what_a_submission_refuses_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let ids = app.upload(library, &["chelsea.png", "coffee.png"]).await;
    let empty = app.create_library("empty").await;
    let other = app.create_library("other").await;
    let foreign = app.upload(other, &["coins.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let cases = [
        json!({"pipeline_id": Uuid::now_v7(), "library_id": library}),
        json!({"pipeline_id": pipeline, "library_id": Uuid::now_v7()}),
        json!({"pipeline_id": pipeline, "library_id": empty}),
        json!({"pipeline_id": pipeline, "library_id": library, "priority": "urgent"}),
        json!({"library_id": library}),
        json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [ids[0], foreign[0]]}),
        json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [ids[0], ids[0]]}),
        json!({"pipeline_id": pipeline, "library_id": library, "image_ids": []}),
        json!({"pipeline_id": pipeline, "library_id": library, "colour": "blue"}),
        json!({"pipeline_id": "not-a-uuid", "library_id": library}),
        json!({"pipeline_id": pipeline, "library_id": library, "max_cost_usd": 0}),
    ];
    let mut estimated = Vec::new();
    for body in &cases {
        let (status, paths) = refusal(estimate(&app, body).await).await;
        assert!((400..500).contains(&status), "{body}: {status}");
        estimated.push((status, paths));
    }
    // The one valid body is estimated, and nothing of it is stored either.
    let valid = json!({"pipeline_id": pipeline, "library_id": library});
    assert_eq!(estimate_ok(&app, &valid).await.images, 2);
    assert_eq!(app.query_i64("SELECT count(*) FROM jobs").await, 0);
    assert_eq!(app.query_i64("SELECT count(*) FROM job_items").await, 0);

    for (body, estimated) in cases.iter().zip(estimated) {
        let submitted = refusal(app.submit(body).await).await;
        assert_eq!(estimated, submitted, "{body}");
    }
    let (status, paths) = refusal(estimate(&app, &cases[5]).await).await;
    assert_eq!((status, paths), (422, vec!["/image_ids".to_owned()]));
    // Another tenant's library is unknown to this one.
    let other_key = app.other_tenant_key("tenant-b").await;
    let theirs = app
        .request_with_key(&other_key, reqwest::Method::POST, "/api/jobs/estimate")
        .json(&valid)
        .send()
        .await
        .expect("estimate");
    assert_eq!(
        refusal(theirs).await,
        (422, vec!["/pipeline_id".to_owned()])
    );
}

/// A two-stage pipeline: an `auto` stage that filters, then a `high` one.
fn filtering_then_high() -> Value {
    json!([
        {
            "name": "detect",
            "system_prompt": "Answer in JSON.",
            "prompt": "Is there an animal in this image?",
            "json_schema": {
                "type": "object",
                "properties": {"animal": {"type": "boolean"}},
                "required": ["animal"]
            },
            "max_tokens": 20,
            "filter": {"type": "field", "pointer": "/animal", "op": "eq", "value": true}
        },
        {"name": "describe", "prompt": "Describe the animal.", "image_detail": "high"}
    ])
}

#[tokio::test]
async fn an_estimate_counts_image_tokens_by_cohere_s_rule_from_the_images_sizes() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let uploaded = app
        .upload(
            library,
            &["chelsea.png", "retina.jpg", "hubble_deep_field.jpg"],
        )
        .await;
    let image: Image = app
        .get_as(
            &format!("/api/libraries/{library}/images/{}", uploaded[1]),
            StatusCode::OK,
        )
        .await;
    assert_eq!((image.width, image.height), (Some(1411), Some(1411)));
    let sized: Image = app
        .post_as(
            &format!("/api/libraries/{library}/image-urls"),
            &json!({"url": "https://images.example.org/panorama.jpg", "width": 3000, "height": 500}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!((sized.width, sized.height), (Some(3000), Some(500)));
    let no_size: Image = app
        .post_as(
            &format!("/api/libraries/{library}/image-urls"),
            &json!({"url": "https://images.example.org/unknown.jpg"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(no_size.width, None);
    let pipeline = app.create_pipeline("survey", filtering_then_high()).await;

    let estimate = estimate_ok(
        &app,
        &json!({"pipeline_id": pipeline, "library_id": library}),
    )
    .await;

    let sizes = [(451, 300), (1411, 1411), (1000, 872), (3000, 500)];
    let known = |detail| -> u64 {
        sizes
            .iter()
            .map(|&(w, h)| u64::from(image_tokens(DEFAULT_MODEL, detail, w, h)))
            .sum()
    };
    // By hand: auto → 256 + (3×3+1)×256 + (2×2+1)×256 + (4×1+1)×256; high adds chelsea's tiles.
    assert_eq!(known(ImageDetail::Auto), 256 + 2560 + 1280 + 1280);
    assert_eq!(known(ImageDetail::High), 512 + 2560 + 1280 + 1280);
    let prompt0 = text_tokens("Answer in JSON.") + text_tokens("Is there an animal in this image?");
    let prompt1 = text_tokens("Describe the animal.");
    assert_eq!(estimate.images, 5);
    assert_eq!(estimate.images_of_unknown_size, 1);
    assert_eq!(estimate.max_calls, 10);
    assert_eq!(estimate.min_calls, 5, "the first stage filters");
    let stage0 = &estimate.stages[0];
    assert_eq!(
        stage0.input_tokens.low,
        known(ImageDetail::Auto) + 256 + 5 * prompt0
    );
    assert_eq!(
        stage0.input_tokens.high,
        known(ImageDetail::Auto) + 3328 + 5 * prompt0
    );
    assert_eq!(stage0.output_tokens, 5 * 20);
    assert!(stage0.always_runs);
    let stage1 = &estimate.stages[1];
    assert_eq!(
        stage1.input_tokens.low,
        known(ImageDetail::High) + 512 + 5 * prompt1
    );
    assert_eq!(
        stage1.input_tokens.high,
        known(ImageDetail::High) + 3328 + 5 * prompt1
    );
    assert_eq!(stage1.output_tokens, 5 * 300, "no max_tokens: 300 assumed");
    assert!(!stage1.always_runs);
    assert_eq!(
        estimate.input_tokens.high,
        stage0.input_tokens.high + stage1.input_tokens.high
    );

    let prices = PriceTable::default();
    let price = prices.for_model(DEFAULT_MODEL);
    let cost = |input: u64, output: u64| price.cost_usd(input as i64, output as i64);
    let low = cost(stage0.input_tokens.low, stage0.output_tokens);
    let high = cost(stage0.input_tokens.high, stage0.output_tokens)
        + cost(stage1.input_tokens.high, stage1.output_tokens);
    assert!(
        (estimate.cost_usd.low - low).abs() < 1e-9,
        "{:?}",
        estimate.cost_usd
    );
    assert!(
        (estimate.cost_usd.high - high).abs() < 1e-9,
        "{:?}",
        estimate.cost_usd
    );
    assert_eq!(estimate.prices.as_of, prices.as_of);
    assert_eq!(estimate.prices.source, prices.source);

    // Named images: only theirs, all of known size, so the tokens are exact.
    let subset = estimate_ok(
        &app,
        &json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [uploaded[0], sized.id]}),
    )
    .await;
    assert_eq!(subset.images, 2);
    assert_eq!(subset.images_of_unknown_size, 0);
    assert_eq!(subset.input_tokens.low, subset.input_tokens.high);
    assert_eq!(subset.stages[0].input_tokens.low, 256 + 1280 + 2 * prompt0);
}

#[tokio::test]
async fn a_url_image_s_size_must_come_whole_and_in_bounds() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    let path = format!("/api/libraries/{library}/image-urls");
    let url = "https://images.example.org/a.jpg";
    for (body, field) in [
        (json!({"url": url, "width": 100}), "/height"),
        (json!({"url": url, "height": 100}), "/width"),
        (json!({"url": url, "width": 0, "height": 100}), "/width"),
        (
            json!({"url": url, "width": 100, "height": 100_001}),
            "/height",
        ),
    ] {
        let problem = app
            .post_problem(&path, &body, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
        assert_eq!(problem.errors[0].path, field, "{body}");
    }
    assert_eq!(app.query_i64("SELECT count(*) FROM images").await, 0);
}

#[tokio::test]
async fn the_eta_is_the_work_ahead_and_the_job_s_own_in_the_tenant_s_share_of_the_budget() {
    // No worker runs here, so submitted jobs stay queued with every item ahead.
    let app = TestApp::spawn_with(|s| s.cohere.requests_per_minute = Some(600)).await;
    let library = app.create_library("photos").await;
    app.upload(library, &["chelsea.png", "coffee.png", "horse.png"])
        .await;
    let pipeline = app.create_pipeline("two", system_tests::two_stages()).await;
    let body = json!({"pipeline_id": pipeline, "library_id": library});

    // Alone with nothing ahead: 3 images × 2 stages at the whole 600 a minute.
    let alone = estimate_ok(&app, &body).await;
    assert_eq!((alone.calls_ahead, alone.calls_per_minute), (0, 600.0));
    assert_eq!(alone.eta_seconds, 1, "6 calls at 10 a second");

    let first: Job = app
        .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
        .await;
    assert_eq!(first.eta_seconds, Some(1), "the 202 has the ETA too");
    let behind = estimate_ok(&app, &body).await;
    assert_eq!(behind.calls_ahead, 6);
    assert_eq!(behind.eta_seconds, 2);
    // A high-priority job goes first; a low one waits behind the normal one.
    let high = estimate_ok(
        &app,
        &json!({"pipeline_id": pipeline, "library_id": library, "priority": "high"}),
    )
    .await;
    assert_eq!(high.calls_ahead, 0);
    let low = estimate_ok(
        &app,
        &json!({"pipeline_id": pipeline, "library_id": library, "priority": "low"}),
    )
    .await;
    assert_eq!(low.calls_ahead, 6);

    // Another tenant with work halves the share; weights 3:1 give this one three quarters.
    app.other_tenant_key("tenant-b").await;
    let other = app.tenant_id("tenant-b").await;
    app.sql_execute(
        "INSERT INTO jobs (id, tenant_id, pipeline_id, library_id, pipeline_snapshot, status, priority,
                           total_items, pending_items, created_at, updated_at)
         SELECT gen_random_uuid(), $1, j.pipeline_id, j.library_id, j.pipeline_snapshot, 'queued',
                'normal', 100, 100, now(), now()
         FROM jobs j WHERE j.id = $2",
        [other.into(), first.id.into()],
    )
    .await;
    let shared = estimate_ok(&app, &body).await;
    assert_eq!(shared.calls_per_minute, 300.0);
    assert_eq!(
        shared.calls_ahead, 6,
        "the other tenant's work is not ahead in this share"
    );
    let mine = app.tenant_id("tenant-a").await;
    app.sql_execute(
        "UPDATE tenants SET share_weight = 3 WHERE id = $1",
        [mine.into()],
    )
    .await;
    assert_eq!(estimate_ok(&app, &body).await.calls_per_minute, 450.0);
    app.sql_execute(
        "UPDATE tenants SET calls_per_minute = 60 WHERE id = $1",
        [mine.into()],
    )
    .await;
    let capped = estimate_ok(&app, &body).await;
    assert_eq!(capped.calls_per_minute, 60.0);
    assert_eq!(capped.eta_seconds, 12, "6 ahead + 6 at one a second");

    // The live view: the first job has nothing ahead, a second one has the first.
    let second: Job = app
        .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
        .await;
    assert_eq!(eta_becomes(&app, first.id, 6).await.eta_seconds, Some(6));
    assert_eq!(eta_becomes(&app, second.id, 12).await.eta_seconds, Some(12));
    assert_eq!(first.usage.cost_usd, 0.0);
    let cancelled = app.cancel_job(first.id).await;
    assert_eq!(cancelled.eta_seconds, None);
    assert_eq!(
        app.job(first.id).await.eta_seconds,
        None,
        "finished: no ETA"
    );
}

/// The job once its view shows `eta_seconds` (past the view's 250 ms cache).
async fn eta_becomes(app: &TestApp, job: Uuid, eta_seconds: u64) -> Job {
    eventually(Duration::from_secs(5), "the job's ETA", || async {
        let job = app.job(job).await;
        (job.eta_seconds == Some(eta_seconds)).then_some(job)
    })
    .await
}

#[tokio::test]
async fn an_image_a_queued_job_has_not_written_its_item_for_cannot_be_deleted() {
    let mut app = TestApp::spawn().await;
    // Without a scheduler no item is written: the jobs' selections alone name the images.
    app.stop_scheduler().await;
    let library = app.create_library("photos").await;
    let ids = app.upload(library, &["chelsea.png", "coffee.png"]).await;
    let pipeline = app.create_pipeline("p", one_stage()).await;
    let delete = |image: Uuid| {
        app.delete(&format!("/api/libraries/{library}/images/{image}"))
            .send()
    };

    // A whole-library job: its items are written later, but the images are its.
    let whole = app.submit_job(pipeline, library).await;
    assert_eq!(
        app.query_i64(&format!(
            "SELECT count(*) FROM job_items WHERE job_id = '{whole}'"
        ))
        .await,
        0
    );
    assert_eq!(delete(ids[0]).await.unwrap().status(), 409);
    // An image added after the submission is not the job's.
    let later = app.upload(library, &["horse.png"]).await;
    assert_eq!(delete(later[0]).await.unwrap().status(), 204);
    app.cancel_job(whole).await;

    // A job naming images: those are its, the others are not.
    let named: Job = app
        .post_as(
            "/api/jobs/submit",
            &json!({"pipeline_id": pipeline, "library_id": library, "image_ids": [ids[1]]}),
            StatusCode::ACCEPTED,
        )
        .await;
    assert_eq!(delete(ids[1]).await.unwrap().status(), 409);
    assert_eq!(delete(ids[0]).await.unwrap().status(), 204);
    app.cancel_job(named.id).await;
    assert_eq!(delete(ids[1]).await.unwrap().status(), 204);
}

#[tokio::test]
async fn an_image_written_while_a_submission_holds_the_library_is_stamped_after_it() {
    let app = TestApp::spawn().await;
    let library = app.create_library("photos").await;
    // What a submission does: lock the library for the rest of its transaction.
    let txn = app.db.begin().await.unwrap();
    txn.execute_unprepared(&format!(
        "SELECT 1 FROM libraries WHERE id = '{library}' FOR UPDATE"
    ))
    .await
    .unwrap();
    let upload = tokio::spawn({
        let (client, url, key) = (
            app.client.clone(),
            app.url(&format!("/api/libraries/{library}/images")),
            app.key.clone(),
        );
        async move {
            let form = reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(sample_image("coins.png")).file_name("coins.png"),
            );
            let response = client
                .post(url)
                .bearer_auth(key)
                .multipart(form)
                .send()
                .await;
            body_as::<api::routes::images::ImageList>(response.unwrap(), StatusCode::CREATED).await
        }
    });
    eventually(
        Duration::from_secs(10),
        "the upload to wait for the lock",
        || async {
            let waiting = app
                .query_i64(
                    "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query ILIKE '%FROM \"libraries\"%FOR KEY SHARE%'",
                )
                .await;
            (waiting > 0).then_some(())
        },
    )
    .await;
    let released_at: chrono::DateTime<chrono::FixedOffset> = txn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT clock_timestamp() AS t",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "t")
        .unwrap();
    txn.commit().await.unwrap();
    let uploaded = upload.await.unwrap();
    let created_at = uploaded.items[0].created_at;
    assert!(
        created_at > released_at,
        "stamped {created_at}, the lock was held until after {released_at}"
    );
    assert_eq!(
        (uploaded.items[0].width, uploaded.items[0].height),
        (Some(384), Some(303))
    );
}

#[tokio::test]
async fn estimated_input_tokens_are_within_a_fifth_of_what_the_stand_in_bills_for_the_samples() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let library = app.create_library("samples").await;
    app.upload(library, &SAMPLE_IMAGES).await;
    let stages = json!([
        {"name": "auto", "system_prompt": "You are terse.", "prompt": "What is in this image?", "max_tokens": 30},
        {"name": "low", "prompt": "Name the main colour.", "image_detail": "low", "max_tokens": 30},
        {"name": "high", "prompt": "Read any text in the image.", "image_detail": "high", "max_tokens": 30}
    ]);
    let pipeline = app.create_pipeline("detail", stages.clone()).await;
    let estimate = estimate_ok(
        &app,
        &json!({"pipeline_id": pipeline, "library_id": library}),
    )
    .await;
    assert_eq!(estimate.images, SAMPLE_IMAGES.len() as u64);
    assert_eq!(estimate.images_of_unknown_size, 0);

    // What the stand-in bills for the requests the workers send (same builder).
    let client = cohere::CohereClient::new(
        &standin.base_url(),
        SecretString::from(STANDIN_KEY),
        Duration::from_secs(30),
    )
    .unwrap();
    let stages: Vec<StageSpec> = serde_json::from_value(stages).unwrap();
    for (index, stage) in stages.iter().enumerate() {
        let mut billed = 0.0;
        for name in SAMPLE_IMAGES {
            let media_type = if name.ends_with(".jpg") {
                "image/jpeg"
            } else {
                "image/png"
            };
            let request = worker::request::build(stage, media_type, &sample_image(name));
            let response = client.chat(&request).await.unwrap();
            billed += response
                .usage
                .unwrap()
                .billed_units
                .unwrap()
                .input_tokens
                .unwrap();
        }
        let estimated = &estimate.stages[index].input_tokens;
        assert_eq!(estimated.low, estimated.high, "every size is known");
        let ratio = estimated.low as f64 / billed;
        assert!(
            (0.8..=1.2).contains(&ratio),
            "stage {}: estimated {} input tokens, billed {billed}",
            stage.name,
            estimated.low
        );
        println!(
            "stage {} ({}): estimated {} input tokens, the stand-in billed {billed} ({:+.2}%)",
            stage.name,
            stage.image_detail,
            estimated.low,
            (ratio - 1.0) * 100.0
        );
    }
}

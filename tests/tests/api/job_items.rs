//! A job's items (`GET /api/jobs/{id}/items`, `/items/{item_id}`) and its errors by class
//! (`GET /api/jobs/{id}/errors`), after a real run through a worker and the stand-in.

use std::collections::BTreeSet;

use api::routes::{
    Paged,
    items::{JobErrorGroup, JobItem, JobItemDetail, StageState},
};
use domain::job::{ErrorClass, ItemStatus, JobStatus, Verdict};
use reqwest::{Method, StatusCode};
use system_tests::{
    TestApp, distinct_images, passes_first_stage, reject_images, start_standin, two_stages,
};
use uuid::Uuid;

fn ids(page: &Paged<JobItem>) -> BTreeSet<Uuid> {
    page.items.iter().map(|item| item.item_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_follow_the_funnel_show_every_stage_and_failures_are_grouped_by_class() {
    let mut app = TestApp::spawn().await;
    let standin = start_standin(&mut app.settings);
    let images = distinct_images(16);
    // The first image the filter passes is refused by the model: it fails at stage 0.
    let refused = images
        .iter()
        .position(|(_, bytes)| passes_first_stage(bytes))
        .unwrap();
    reject_images(&standin, &[&images[refused].1]);
    let passing = images
        .iter()
        .enumerate()
        .filter(|(i, (_, bytes))| *i != refused && passes_first_stage(bytes))
        .count() as u64;
    let filtered = images
        .iter()
        .filter(|(_, bytes)| !passes_first_stage(bytes))
        .count() as u64;
    assert!(passing > 0 && filtered > 0, "the samples go both ways");

    let (job, image_ids) = app.submit_job_over_images(&images, two_stages()).await;
    let finished = app.run_to_end(job).await;
    assert_eq!(
        finished.status,
        JobStatus::CompletedWithErrors,
        "{finished:?}"
    );

    // Every item, in the library's order, with its image's name.
    let items = |query: String| {
        let app = &app;
        let path = format!("/api/jobs/{job}/items?{query}");
        async move { app.get_as::<Paged<JobItem>>(&path, StatusCode::OK).await }
    };
    let all = items("limit=200".into()).await;
    assert_eq!(all.total, 16);
    for (item, (id, (name, _))) in all.items.iter().zip(image_ids.iter().zip(&images)) {
        assert_eq!(item.image_id, *id);
        assert_eq!(item.image_name.as_deref(), Some(name.as_str()));
    }

    // Funnel segments: the counts match the job's per-stage counters.
    let segment =
        |stage: i64, outcome: &str| items(format!("stage={stage}&outcome={outcome}&limit=200"));
    let stage0_passed = segment(0, "passed").await;
    assert_eq!(stage0_passed.total, passing);
    assert_eq!(stage0_passed.total, finished.stages[0].passed as u64);
    let stage0_filtered = segment(0, "filtered_out").await;
    assert_eq!(stage0_filtered.total, filtered);
    assert_eq!(
        stage0_filtered.total,
        finished.stages[0].filtered_out as u64
    );
    let stage0_failed = segment(0, "failed").await;
    assert_eq!(stage0_failed.total, 1);
    assert_eq!(segment(1, "failed").await.total, 0);
    let stage1_passed = segment(1, "passed").await;
    assert_eq!(stage1_passed.total, passing);
    assert_eq!(ids(&stage1_passed), ids(&stage0_passed));
    let failed = &stage0_failed.items[0];
    assert_eq!(failed.image_id, image_ids[refused]);
    assert_eq!(failed.status, ItemStatus::Failed);
    assert_eq!(failed.error_class, Some(ErrorClass::Permanent));
    let failed_error = failed.error.as_deref().unwrap();
    assert!(failed_error.len() > 3, "{failed:?}");
    let by_state = items("outcome=filtered_out".into()).await;
    assert_eq!(ids(&by_state), ids(&stage0_filtered));
    // Pages.
    let page = items("limit=3&offset=14".into()).await;
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.total, 16);

    let item = |id: Uuid| {
        let app = &app;
        let path = format!("/api/jobs/{job}/items/{id}");
        async move { app.get_as::<JobItemDetail>(&path, StatusCode::OK).await }
    };
    // One item that went through both stages: each stage's prompt, answer and verdict.
    let passed_id = stage1_passed.items[0].item_id;
    let detail = item(passed_id).await;
    let stages_spec = two_stages();
    assert_eq!(detail.item.status, ItemStatus::Passed);
    let stages = &detail.stages;
    assert_eq!(stages.len(), 2);
    for (i, stage) in stages.iter().enumerate() {
        assert_eq!(stage.index, i as i32);
        assert_eq!(stages_spec[i]["name"], stage.name.as_str());
        assert_eq!(stages_spec[i]["prompt"], stage.prompt.as_str());
        assert_eq!(stage.state, StageState::Passed);
        let answer = stage.answer.as_ref().unwrap();
        assert_eq!(answer.verdict, Verdict::Passed);
        assert!(answer.usage.input_tokens > 0);
        assert!(answer.latency_ms >= 0);
        assert!(!answer.output_text.is_empty());
    }
    let answer = |stage: usize| detail.stages[stage].answer.as_ref().unwrap();
    assert_eq!(answer(0).output_json.as_ref().unwrap()["animal"], true);
    assert_eq!(
        stages[0].json_schema.as_ref(),
        Some(&stages_spec[0]["json_schema"])
    );
    assert!(answer(1).output_json.is_none());
    assert_eq!(
        stages[1].attempts,
        Some(1),
        "one delivery finished the last stage"
    );
    assert!(stages[0].attempts.is_none());

    // One the filter stopped: its verdict and reason, and a second stage never reached.
    let detail = item(stage0_filtered.items[0].item_id).await;
    assert_eq!(detail.stages[0].state, StageState::FilteredOut);
    let answer = detail.stages[0].answer.as_ref().unwrap();
    assert_eq!(answer.verdict, Verdict::FilteredOut);
    assert!(answer.filter_reason.is_some());
    assert_eq!(detail.stages[1].state, StageState::NotReached);
    assert!(detail.stages[1].answer.is_none());

    // The failed one: its error on the stage where it failed.
    let detail = item(failed.item_id).await;
    assert_eq!(detail.stages[0].state, StageState::Failed);
    assert_eq!(detail.stages[0].error_class, Some(ErrorClass::Permanent));
    assert_eq!(detail.stages[0].error, failed.error);
    assert_eq!(detail.stages[0].attempts, Some(1));
    assert_eq!(failed.attempts, 1);
    assert_eq!(detail.stages[1].state, StageState::NotReached);

    // Errors by class: one permanent failure, with its message and item.
    let groups: Vec<JobErrorGroup> = app
        .get_as(&format!("/api/jobs/{job}/errors"), StatusCode::OK)
        .await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0].class, Some(ErrorClass::Permanent));
    assert_eq!(groups[0].count, 1);
    assert_eq!(groups[0].sample_message, failed.error);
    assert_eq!(groups[0].sample_item_id, failed.item_id);

    // Another tenant sees none of it; bad filters are 400.
    let other = app.other_tenant_key("tenant-b").await;
    for path in [
        format!("/api/jobs/{job}/items"),
        format!("/api/jobs/{job}/items/{passed_id}"),
        format!("/api/jobs/{job}/errors"),
    ] {
        let response = app
            .request_with_key(&other, Method::GET, &path)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let unknown_item = app
        .get(&format!("/api/jobs/{job}/items/{}", uuid::Uuid::now_v7()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_item.status(), 404);
    for query in ["outcome=done", "stage=-1", "stage=x"] {
        let response = app
            .get(&format!("/api/jobs/{job}/items?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }
}

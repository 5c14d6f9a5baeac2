//! A job's items (`GET /api/jobs/{id}/items`, `/items/{item_id}`) and its errors by class
//! (`GET /api/jobs/{id}/errors`), after a real run through a worker and the stand-in.

use std::{collections::BTreeSet, time::Duration};

use cohere_standin::{RuntimeConfig, sha256_hex};
use serde_json::Value;
use system_tests::{
    RunningWorker, TestApp, distinct_images, passes_first_stage, start_standin, two_stages,
};

const RUN_TIMEOUT: Duration = Duration::from_secs(90);

fn ids(page: &Value) -> BTreeSet<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["item_id"].as_str().unwrap().to_string())
        .collect()
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
    standin
        .standin
        .set_config(RuntimeConfig {
            reject_images: [sha256_hex(&images[refused].1)].into(),
            ..RuntimeConfig::default()
        })
        .unwrap();
    let passing = images
        .iter()
        .enumerate()
        .filter(|(i, (_, bytes))| *i != refused && passes_first_stage(bytes))
        .count() as i64;
    let filtered = images
        .iter()
        .filter(|(_, bytes)| !passes_first_stage(bytes))
        .count() as i64;
    assert!(passing > 0 && filtered > 0, "the samples go both ways");

    let library = app.create_library("photos").await;
    let image_ids = app.upload_bytes(library, &images).await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let job = app.submit_job(pipeline, library).await;
    let worker = RunningWorker::start(&app.settings).await;
    let finished = app.wait_for_job(job, RUN_TIMEOUT).await;
    worker.stop().await;
    assert_eq!(finished["status"], "completed_with_errors", "{finished}");

    // Every item, in the library's order, with its image's name.
    let all = app
        .get_json(&format!("/api/jobs/{job}/items?limit=200"))
        .await;
    assert_eq!(all["total"], 16);
    let items = all["items"].as_array().unwrap();
    for (item, (id, (name, _))) in items.iter().zip(image_ids.iter().zip(&images)) {
        assert_eq!(item["image_id"], id.to_string());
        assert_eq!(item["image_name"], name.as_str());
    }

    // Funnel segments: the counts match the job's per-stage counters.
    let segment = |stage: i64, outcome: &str| {
        let app = &app;
        let path = format!("/api/jobs/{job}/items?stage={stage}&outcome={outcome}&limit=200");
        async move { app.get_json(&path).await }
    };
    let stage0_passed = segment(0, "passed").await;
    assert_eq!(stage0_passed["total"], passing);
    assert_eq!(stage0_passed["total"], finished["stages"][0]["passed"]);
    let stage0_filtered = segment(0, "filtered_out").await;
    assert_eq!(stage0_filtered["total"], filtered);
    assert_eq!(
        stage0_filtered["total"],
        finished["stages"][0]["filtered_out"]
    );
    let stage0_failed = segment(0, "failed").await;
    assert_eq!(stage0_failed["total"], 1);
    assert_eq!(segment(1, "failed").await["total"], 0);
    let stage1_passed = segment(1, "passed").await;
    assert_eq!(stage1_passed["total"], passing);
    assert_eq!(ids(&stage1_passed), ids(&stage0_passed));
    let failed = &stage0_failed["items"][0];
    assert_eq!(failed["image_id"], image_ids[refused].to_string());
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error_class"], "permanent");
    assert!(failed["error"].as_str().unwrap().len() > 3, "{failed}");
    let by_state = app
        .get_json(&format!("/api/jobs/{job}/items?outcome=filtered_out"))
        .await;
    assert_eq!(ids(&by_state), ids(&stage0_filtered));
    // Pages.
    let page = app
        .get_json(&format!("/api/jobs/{job}/items?limit=3&offset=14"))
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["total"], 16);

    // One item that went through both stages: each stage's prompt, answer and verdict.
    let passed_id = stage1_passed["items"][0]["item_id"].as_str().unwrap();
    let detail = app
        .get_json(&format!("/api/jobs/{job}/items/{passed_id}"))
        .await;
    let stages_spec = two_stages();
    assert_eq!(detail["item"]["status"], "passed");
    let stages = detail["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2);
    for (i, stage) in stages.iter().enumerate() {
        assert_eq!(stage["index"], i);
        assert_eq!(stage["name"], stages_spec[i]["name"]);
        assert_eq!(stage["prompt"], stages_spec[i]["prompt"]);
        assert_eq!(stage["state"], "passed");
        assert_eq!(stage["answer"]["verdict"], "passed");
        assert!(stage["answer"]["usage"]["input_tokens"].as_i64().unwrap() > 0);
        assert!(stage["answer"]["latency_ms"].as_i64().unwrap() >= 0);
        assert!(!stage["answer"]["output_text"].as_str().unwrap().is_empty());
    }
    assert_eq!(stages[0]["answer"]["output_json"]["animal"], true);
    assert_eq!(stages[0]["json_schema"], stages_spec[0]["json_schema"]);
    assert!(stages[1]["answer"]["output_json"].is_null());
    assert_eq!(
        stages[1]["attempts"], 1,
        "one delivery finished the last stage"
    );
    assert!(stages[0]["attempts"].is_null());

    // One the filter stopped: its verdict and reason, and a second stage never reached.
    let filtered_id = stage0_filtered["items"][0]["item_id"].as_str().unwrap();
    let detail = app
        .get_json(&format!("/api/jobs/{job}/items/{filtered_id}"))
        .await;
    assert_eq!(detail["stages"][0]["state"], "filtered_out");
    assert_eq!(detail["stages"][0]["answer"]["verdict"], "filtered_out");
    assert!(detail["stages"][0]["answer"]["filter_reason"].is_string());
    assert_eq!(detail["stages"][1]["state"], "not_reached");
    assert!(detail["stages"][1]["answer"].is_null());

    // The failed one: its error on the stage where it failed.
    let failed_id = failed["item_id"].as_str().unwrap();
    let detail = app
        .get_json(&format!("/api/jobs/{job}/items/{failed_id}"))
        .await;
    assert_eq!(detail["stages"][0]["state"], "failed");
    assert_eq!(detail["stages"][0]["error_class"], "permanent");
    assert_eq!(detail["stages"][0]["error"], failed["error"]);
    assert_eq!(detail["stages"][0]["attempts"], 1);
    assert_eq!(failed["attempts"], 1);
    assert_eq!(detail["stages"][1]["state"], "not_reached");

    // Errors by class: one permanent failure, with its message and item.
    let errors = app.get_json(&format!("/api/jobs/{job}/errors")).await;
    let groups = errors.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{errors}");
    assert_eq!(groups[0]["class"], "permanent");
    assert_eq!(groups[0]["count"], 1);
    assert_eq!(groups[0]["sample_message"], failed["error"]);
    assert_eq!(groups[0]["sample_item_id"], failed["item_id"]);

    // Another tenant sees none of it; bad filters are 400.
    let other = app.other_tenant_key("tenant-b").await;
    for path in [
        format!("/api/jobs/{job}/items"),
        format!("/api/jobs/{job}/items/{passed_id}"),
        format!("/api/jobs/{job}/errors"),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .bearer_auth(&other)
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

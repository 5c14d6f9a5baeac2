//! `/api/jobs/{job_id}/results` and its export. No worker writes results yet, so the tests
//! insert `job_results` rows with SQL for the items of a job submitted through the API.

use std::collections::HashSet;

use api::routes::{Paged, results::JobResult};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::job::Verdict;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use system_tests::{TestApp, problem, two_stages};
use uuid::Uuid;

/// A job over three images with the two-stage pipeline (`detect`, then `describe`).
struct Job {
    id: Uuid,
    /// `(item_id, image_id)` in library order.
    items: Vec<(Uuid, Uuid)>,
}

async fn job_with_images(app: &TestApp, images: &[&str]) -> Job {
    let library = app.create_library("photos").await;
    app.upload(library, images).await;
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let id = app.submit_job(pipeline, library).await;
    Job {
        id,
        items: app.written_items(id).await,
    }
}

fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap()
}

/// One result row to insert.
struct NewResult<'a> {
    item: (Uuid, Uuid),
    stage: i32,
    passed: bool,
    text: &'a str,
    json: Option<Value>,
    filter_reason: Option<&'a str>,
    /// Seconds after [`base_time`].
    at: i64,
}

async fn insert_result(app: &TestApp, job_id: Uuid, r: NewResult<'_>) {
    app.sql_execute(r#"INSERT INTO job_results (id, job_id, item_id, image_id, stage_index, model, output_text,
                   output_json, passed, filter_reason, finish_reason, input_tokens, output_tokens,
                   billed_input_tokens, billed_output_tokens, latency_ms, cost_usd, created_at)
               VALUES (gen_random_uuid(), $1, $2, $3, $4, 'command-a-vision-07-2025', $5, $6, $7, $8,
                   'COMPLETE', 1200, 35, 1100, 30, 850, 0.00305, $9)"#, [
                job_id.into(),
                r.item.0.into(),
                r.item.1.into(),
                r.stage.into(),
                r.text.into(),
                r.json.into(),
                r.passed.into(),
                r.filter_reason.map(str::to_string).into(),
                (base_time() + Duration::seconds(r.at)).into(),
            ]).await;
}

/// Results for three items `a`, `b`, `c`: `detect` passes `a` and `c` and filters out `b`,
/// then `describe` runs on `a` and `c`. Times are chosen so that neither insertion order nor
/// time alone gives the listing order.
async fn job_with_results(app: &TestApp) -> Job {
    let job = job_with_images(app, &["chelsea.png", "coffee.png", "astronaut.png"]).await;
    let [a, b, c] = [job.items[0], job.items[1], job.items[2]];
    let rows = [
        (a, 0, true, r#"{"animal":true,"species":"cat"}"#, 30, None),
        (
            b,
            0,
            false,
            r#"{"animal":false}"#,
            10,
            Some("/animal false is not eq true"),
        ),
        (c, 0, true, r#"{"animal":true,"species":"human"}"#, 20, None),
        (a, 1, true, "A cat lying on a couch.", 5, None),
        (c, 1, true, "An astronaut in a white suit.", 1, None),
    ];
    for (item, stage, passed, text, at, filter_reason) in rows {
        let json = (stage == 0).then(|| serde_json::from_str(text).unwrap());
        insert_result(
            app,
            job.id,
            NewResult {
                item,
                stage,
                passed,
                text,
                json,
                filter_reason,
                at,
            },
        )
        .await;
    }
    job
}

/// A page of the job's results; `query` is the URL's query string.
async fn results(app: &TestApp, job: Uuid, query: &str) -> Paged<JobResult> {
    app.get_as(&format!("/api/jobs/{job}/results?{query}"), StatusCode::OK)
        .await
}

/// `(stage_index, image_id)` of each listed result.
fn keys(page: &Paged<JobResult>) -> Vec<(i32, Uuid)> {
    page.items
        .iter()
        .map(|r| (r.stage_index, r.image_id))
        .collect()
}

#[tokio::test]
async fn results_are_listed_by_stage_then_time_a_page_at_a_time_with_the_total() {
    let app = TestApp::spawn().await;
    let job = job_with_results(&app).await;
    let image = |i: usize| job.items[i].1;
    let expected = [
        (0, image(1)),
        (0, image(2)),
        (0, image(0)),
        (1, image(2)),
        (1, image(0)),
    ];

    let mut listed = Vec::new();
    for offset in [0, 2, 4] {
        let page = results(&app, job.id, &format!("limit=2&offset={offset}")).await;
        assert_eq!(page.total, 5);
        assert_eq!(page.limit, 2);
        assert_eq!(page.offset, offset);
        listed.extend(keys(&page));
    }
    assert_eq!(listed, expected);

    let all = app.get_json(&format!("/api/jobs/{}/results", job.id)).await;
    assert_eq!(all["limit"], 50, "default page size");
    let filtered = &all["items"][0];
    assert_eq!(
        *filtered,
        json!({
            "item_id": job.items[1].0,
            "image_id": job.items[1].1,
            "stage_index": 0,
            "stage_name": "detect",
            "model": "command-a-vision-07-2025",
            "output_text": r#"{"animal":false}"#,
            "output_json": {"animal": false},
            "verdict": "filtered_out",
            "filter_reason": "/animal false is not eq true",
            "finish_reason": "COMPLETE",
            "usage": {
                "input_tokens": 1200,
                "output_tokens": 35,
                "billed_input_tokens": 1100,
                "billed_output_tokens": 30,
                "cost_usd": 0.00305
            },
            "latency_ms": 850,
            "created_at": "2026-12-01T10:00:10Z"
        })
    );
    let described = &all["items"][3];
    assert_eq!(described["stage_name"], "describe");
    assert_eq!(described["verdict"], "passed");
    assert_eq!(described["output_json"], Value::Null);
    assert_eq!(described["filter_reason"], Value::Null);
    assert_eq!(described["output_text"], "An astronaut in a white suit.");

    let past_the_end = app
        .get_json(&format!("/api/jobs/{}/results?offset=10", job.id))
        .await;
    assert_eq!(past_the_end["total"], 5);
    assert_eq!(past_the_end["items"], json!([]));
}

#[tokio::test]
async fn results_can_be_filtered_by_stage_verdict_and_image() {
    let app = TestApp::spawn().await;
    let job = job_with_results(&app).await;
    let image = |i: usize| job.items[i].1;
    let list = |query: String| {
        let app = &app;
        async move { results(app, job.id, &query).await }
    };

    let second_stage = list("stage=1".into()).await;
    assert_eq!(second_stage.total, 2);
    assert_eq!(keys(&second_stage), [(1, image(2)), (1, image(0))]);
    assert!(
        second_stage
            .items
            .iter()
            .all(|r| r.stage_name == "describe")
    );

    let filtered_out = list("verdict=filtered_out".into()).await;
    assert_eq!(filtered_out.total, 1);
    assert_eq!(keys(&filtered_out), [(0, image(1))]);
    assert_eq!(
        filtered_out.items[0].filter_reason.as_deref(),
        Some("/animal false is not eq true")
    );

    let passed = list("verdict=passed".into()).await;
    assert_eq!(passed.total, 4);
    assert!(passed.items.iter().all(|r| r.verdict == Verdict::Passed));

    let of_image = list(format!("image_id={}", image(0))).await;
    assert_eq!(keys(&of_image), [(0, image(0)), (1, image(0))]);

    let combined = list(format!("stage=0&verdict=passed&image_id={}", image(2))).await;
    assert_eq!(keys(&combined), [(0, image(2))]);

    let no_such_stage = list("stage=7".into()).await;
    assert_eq!(no_such_stage.total, 0);

    for bad in [
        "stage=-1",
        "stage=first",
        "verdict=maybe",
        "image_id=nope",
        "limit=0",
    ] {
        let response = app
            .get(&format!("/api/jobs/{}/results?{bad}", job.id))
            .send()
            .await
            .unwrap();
        problem(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn another_tenant_gets_404_for_a_jobs_results_and_their_export() {
    let app = TestApp::spawn().await;
    let job = job_with_results(&app).await;
    let other = app.other_tenant_key("tenant-b").await;
    for path in [
        format!("/api/jobs/{}/results", job.id),
        format!("/api/jobs/{}/results/export", job.id),
        format!("/api/jobs/{}/results/export?format=csv", job.id),
    ] {
        let response = app
            .request_with_key(&other, Method::GET, &path)
            .send()
            .await
            .unwrap();
        let body = problem(response, StatusCode::NOT_FOUND).await;
        assert_eq!(body.code, "not_found");
        assert_eq!(body.detail, "job not found");
    }

    let unknown = Uuid::now_v7();
    for path in [
        format!("/api/jobs/{unknown}/results"),
        format!("/api/jobs/{unknown}/results/export"),
    ] {
        let response = app.get(&path).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_jsonl_export_has_one_json_line_per_result_as_the_list_shows_it() {
    let app = TestApp::spawn().await;
    let job = job_with_results(&app).await;

    let response = app
        .get(&format!("/api/jobs/{}/results/export", job.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"job-{}-results.jsonl\"", job.id).as_str()
    );
    let body = response.text().await.unwrap();
    assert!(body.ends_with('\n'), "every line ends with a newline");
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();

    let listed = app.get_json(&format!("/api/jobs/{}/results", job.id)).await;
    assert_eq!(lines, *listed["items"].as_array().unwrap());

    let explicit = app
        .get(&format!("/api/jobs/{}/results/export?format=jsonl", job.id))
        .send()
        .await
        .unwrap();
    assert_eq!(explicit.text().await.unwrap(), body);

    let unknown_format = app
        .get(&format!("/api/jobs/{}/results/export?format=xml", job.id))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_format.status(), 400);
}

/// A strict RFC 4180 reader: quoted fields may hold commas, doubled quotes and line
/// breaks; records end with CRLF or LF.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted = false;
                    assert!(
                        matches!(chars.peek(), None | Some(',' | '\r' | '\n')),
                        "text after a closing quote"
                    );
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty(), "quote inside an unquoted field: {field}");
                quoted = true;
            }
            ',' => record.push(std::mem::take(&mut field)),
            '\r' | '\n' => {
                if c == '\r' {
                    assert_eq!(chars.next(), Some('\n'), "bare CR outside quotes");
                }
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            _ => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record has no line end"
    );
    records
}

const CSV_COLUMNS: [&str; 15] = [
    "item_id",
    "image_id",
    "stage_index",
    "stage_name",
    "verdict",
    "model",
    "output_text",
    "output_json",
    "filter_reason",
    "finish_reason",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "latency_ms",
    "created_at",
];

#[tokio::test]
async fn the_csv_export_round_trips_text_with_commas_quotes_and_line_breaks() {
    let app = TestApp::spawn().await;
    let job = job_with_images(&app, &["chelsea.png", "coffee.png"]).await;
    let tricky = "A cat, \"Chelsea\", on a couch.\nSecond line, with \"\"two\"\" quotes\r\nthird line ends with a comma,";
    let tricky_json = json!({"animal": true, "species": "cat, \"tabby\"\nstriped"});
    insert_result(
        &app,
        job.id,
        NewResult {
            item: job.items[0],
            stage: 0,
            passed: true,
            text: tricky,
            json: Some(tricky_json.clone()),
            filter_reason: None,
            at: 1,
        },
    )
    .await;
    insert_result(
        &app,
        job.id,
        NewResult {
            item: job.items[1],
            stage: 0,
            passed: false,
            text: "plain",
            json: None,
            filter_reason: Some("label \"mug\" is not one of: cat, dog"),
            at: 2,
        },
    )
    .await;

    let response = app
        .get(&format!("/api/jobs/{}/results/export?format=csv", job.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"job-{}-results.csv\"", job.id).as_str()
    );
    let records = parse_csv(&response.text().await.unwrap());
    assert_eq!(records.len(), 3, "a header and two rows: {records:?}");
    assert_eq!(records[0], CSV_COLUMNS);
    assert!(records.iter().all(|r| r.len() == CSV_COLUMNS.len()));

    let first = &records[1];
    assert_eq!(first[0], job.items[0].0.to_string());
    assert_eq!(first[1], job.items[0].1.to_string());
    assert_eq!(first[2], "0");
    assert_eq!(first[3], "detect");
    assert_eq!(first[4], "passed");
    assert_eq!(first[5], "command-a-vision-07-2025");
    assert_eq!(first[6], tricky, "output_text round-trips exactly");
    assert_eq!(
        serde_json::from_str::<Value>(&first[7]).unwrap(),
        tricky_json
    );
    assert_eq!(first[8], "", "no filter reason");
    assert_eq!(first[9], "COMPLETE");
    assert_eq!(first[10..14], ["1200", "35", "0.00305", "850"]);
    assert_eq!(first[14], "2026-12-01T10:00:01Z");

    let second = &records[2];
    assert_eq!(second[4], "filtered_out");
    assert_eq!(second[6], "plain");
    assert_eq!(second[7], "", "no JSON output");
    assert_eq!(second[8], "label \"mug\" is not one of: cat, dog");
}

#[tokio::test]
async fn an_export_of_2500_results_returns_every_one_exactly_once_in_order() {
    let app = TestApp::spawn().await;
    let library = app.create_library("many").await;
    app.add_url_images(library, 1250).await.unwrap();
    let pipeline = app.create_pipeline("survey", two_stages()).await;
    let job_id = app.submit_job(pipeline, library).await;
    app.written_items(job_id).await;
    // Two stages for each of 1,250 items, all at one instant (`now()` is fixed in a
    // statement), so chunk boundaries fall among equal times and the id breaks the tie.
    app.sql_execute(
        r#"INSERT INTO job_results (id, job_id, item_id, image_id, stage_index, model, output_text,
                   passed, latency_ms, created_at)
               SELECT gen_random_uuid(), i.job_id, i.id, i.image_id, s, 'command-a-vision-07-2025',
                      'result of stage ' || s, true, 100, now()
               FROM job_items i, generate_series(0, 1) AS s
               WHERE i.job_id = $1"#,
        [job_id.into()],
    )
    .await;

    let response = app
        .get(&format!("/api/jobs/{job_id}/results/export"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2500);
    let distinct: HashSet<(String, i64)> = lines
        .iter()
        .map(|l| {
            (
                l["item_id"].as_str().unwrap().to_string(),
                l["stage_index"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(distinct.len(), 2500, "no result repeated or skipped");
    let stages: Vec<i64> = lines
        .iter()
        .map(|l| l["stage_index"].as_i64().unwrap())
        .collect();
    assert!(stages.is_sorted(), "ordered by stage");
    assert_eq!(lines[1249]["stage_name"], "detect");
    assert_eq!(lines[1250]["stage_name"], "describe");

    let csv = app
        .get(&format!("/api/jobs/{job_id}/results/export?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(parse_csv(&csv).len(), 1 + 2500);

    assert_eq!(results(&app, job_id, "limit=1").await.total, 2500);
}

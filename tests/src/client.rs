//! A typed client of the api: each call asserts the status it expects and reads the body as
//! the api's own response type, so a test reads fields, not `serde_json::Value` indexes.

use api::{
    error::Problem,
    routes::{
        Paged,
        images::ImageList,
        jobs::{Job, JobSummary},
        libraries::Library,
        pipelines::Pipeline,
    },
};
use reqwest::StatusCode;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{RUN_TIMEOUT, TestApp, eventually, sample_image};

/// Reads `response`'s body as `T`, after asserting its status (the body is shown when the
/// status or the body is not what was expected).
pub async fn body_as<T: DeserializeOwned>(response: reqwest::Response, status: StatusCode) -> T {
    let (actual, url) = (response.status(), response.url().clone());
    let text = response.text().await.expect("the response's body");
    assert_eq!(actual, status, "{url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e} in {text}"))
}

/// Reads an `application/problem+json` response, asserting its status in the header and the
/// body.
pub async fn problem(response: reqwest::Response, status: StatusCode) -> Problem {
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/problem+json",
        "{}",
        response.url()
    );
    let problem: Problem = body_as(response, status).await;
    assert_eq!(problem.status, status.as_u16(), "{problem:?}");
    problem
}

impl TestApp {
    /// GETs `path`, asserts `status` and reads the body as `T`.
    pub async fn get_as<T: DeserializeOwned>(&self, path: &str, status: StatusCode) -> T {
        body_as(self.get(path).send().await.expect("GET"), status).await
    }

    /// POSTs `body` as JSON to `path`, asserts `status` and reads the answer as `T`.
    pub async fn post_as<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
        status: StatusCode,
    ) -> T {
        body_as(
            self.post(path).json(body).send().await.expect("POST"),
            status,
        )
        .await
    }

    /// POSTs `body` as JSON to `path` and reads the problem the api answers with `status`.
    pub async fn post_problem(
        &self,
        path: &str,
        body: &impl Serialize,
        status: StatusCode,
    ) -> Problem {
        problem(
            self.post(path).json(body).send().await.expect("POST"),
            status,
        )
        .await
    }

    /// GETs `path` and returns its JSON body (asserting 200): for checks of the wire format.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get_as(path, StatusCode::OK).await
    }

    /// Creates a library and returns its id.
    pub async fn create_library(&self, name: &str) -> Uuid {
        let library: Library = self
            .post_as(
                "/api/libraries",
                &json!({ "name": name }),
                StatusCode::CREATED,
            )
            .await;
        library.id
    }

    /// Uploads sample images (by file name) to a library; returns their ids in order.
    pub async fn upload(&self, library: Uuid, names: &[&str]) -> Vec<Uuid> {
        let files: Vec<(String, Vec<u8>)> = names
            .iter()
            .map(|name| (name.to_string(), sample_image(name)))
            .collect();
        self.upload_bytes(library, &files).await
    }

    /// Uploads images given as (file name, bytes); returns their ids in order.
    pub async fn upload_bytes(&self, library: Uuid, files: &[(String, Vec<u8>)]) -> Vec<Uuid> {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()),
            );
        }
        let uploaded: ImageList =
            body_as(self.upload_form(library, form).await, StatusCode::CREATED).await;
        uploaded.items.iter().map(|image| image.id).collect()
    }

    /// POSTs a multipart upload to a library as it is (for tests of what the api refuses).
    pub async fn upload_form(
        &self,
        library: Uuid,
        form: reqwest::multipart::Form,
    ) -> reqwest::Response {
        self.post(&format!("/api/libraries/{library}/images"))
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// Creates a pipeline from a stage list and returns its id.
    pub async fn create_pipeline(&self, name: &str, stages: Value) -> Uuid {
        let pipeline: Pipeline = self
            .post_as(
                "/api/pipelines",
                &json!({ "name": name, "stages": stages }),
                StatusCode::CREATED,
            )
            .await;
        pipeline.id
    }

    /// Uploads `images` to a new library, creates a pipeline of `stages` and submits a job over
    /// the whole library; the job's id.
    pub async fn submit_job_over(&self, images: &[(String, Vec<u8>)], stages: Value) -> Uuid {
        self.submit_job_over_images(images, stages).await.0
    }

    /// [`Self::submit_job_over`], also returning the images' ids (in `images`' order).
    pub async fn submit_job_over_images(
        &self,
        images: &[(String, Vec<u8>)],
        stages: Value,
    ) -> (Uuid, Vec<Uuid>) {
        let library = self.create_library("photos").await;
        let image_ids = self.upload_bytes(library, images).await;
        let pipeline = self.create_pipeline("survey", stages).await;
        (self.submit_job(pipeline, library).await, image_ids)
    }

    /// POSTs a submission as it is (for tests of what the api refuses).
    pub async fn submit(&self, body: &Value) -> reqwest::Response {
        self.post("/api/jobs/submit")
            .json(body)
            .send()
            .await
            .expect("submit")
    }

    /// Submits a job over a whole library and returns its id (asserting 202).
    pub async fn submit_job(&self, pipeline: Uuid, library: Uuid) -> Uuid {
        let body = json!({ "pipeline_id": pipeline, "library_id": library });
        let job: Job = self
            .post_as("/api/jobs/submit", &body, StatusCode::ACCEPTED)
            .await;
        job.id
    }

    /// The job as `GET /api/jobs/{id}` shows it.
    pub async fn job(&self, job: Uuid) -> Job {
        self.get_as(&format!("/api/jobs/{job}"), StatusCode::OK)
            .await
    }

    /// Cancels the job (asserting 200); the job as the answer shows it.
    pub async fn cancel_job(&self, job: Uuid) -> Job {
        let response = self.post(&format!("/api/jobs/{job}/cancel")).send().await;
        body_as(response.expect("cancel"), StatusCode::OK).await
    }

    /// A page of the job history; `query` is the URL's query string (`""` or `"?..."`).
    pub async fn history(&self, query: &str) -> Paged<JobSummary> {
        self.get_as(&format!("/api/jobs/history{query}"), StatusCode::OK)
            .await
    }

    /// Waits (up to [`RUN_TIMEOUT`]) until the job is in a terminal state and returns it.
    pub async fn wait_for_job(&self, job: Uuid) -> Job {
        eventually(RUN_TIMEOUT, "the job to finish", || async {
            let job = self.job(job).await;
            job.status.is_terminal().then_some(job)
        })
        .await
    }
}

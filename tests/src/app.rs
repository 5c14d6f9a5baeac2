//! The api started in this process (its real `Application::build`) on port 0, with a tenant
//! and its key, and a client for it.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use settings::Settings;
use uuid::Uuid;

use crate::{TestResources, eventually, id_of, sample_image};

/// A running API with a tenant and its key.
pub struct TestApp {
    pub address: String,
    /// The settings the api runs with (same database, broker prefix and storage for workers).
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub key: String,
    pub client: reqwest::Client,
    pub resources: TestResources,
}

impl TestApp {
    /// Starts the API with default test settings.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the API after `customise` has adjusted the settings.
    pub async fn spawn_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let resources = TestResources::new();
        let db = resources
            .create_database()
            .await
            .expect("create the test database");
        let mut settings = resources.settings();
        customise(&mut settings);
        let app = api::Application::build(&settings)
            .await
            .expect("build the api");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let key = store::tenants::create_key(&db, "tenant-a", None)
            .await
            .expect("create a key")
            .key;
        TestApp {
            address,
            settings,
            db,
            key,
            client: reqwest::Client::new(),
            resources,
        }
    }

    /// A key for another tenant.
    pub async fn other_tenant_key(&self, name: &str) -> String {
        store::tenants::create_key(&self.db, name, None)
            .await
            .expect("create a key")
            .key
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&self.key)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(&self.key)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path)).bearer_auth(&self.key)
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.patch(self.url(path)).bearer_auth(&self.key)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(&self.key)
    }

    /// Creates a library and returns its id.
    pub async fn create_library(&self, name: &str) -> Uuid {
        id_of(
            &self
                .post_expecting("/api/libraries", json!({ "name": name }), 201)
                .await,
        )
    }

    /// Uploads sample images (by file name) to a library; returns their ids in order.
    pub async fn upload(&self, library: Uuid, names: &[&str]) -> Vec<Uuid> {
        let files: Vec<(String, Vec<u8>)> = names
            .iter()
            .map(|name| (name.to_string(), sample_image(name)))
            .collect();
        self.upload_bytes(library, &files).await
    }

    /// Registers `count` URL images in a library (cheap way to make large libraries).
    pub async fn add_url_images(&self, library: Uuid, count: usize) -> anyhow::Result<()> {
        self.db
            .execute_unprepared(&format!(
                "INSERT INTO images (id, tenant_id, library_id, filename, source, url, created_at)
                 SELECT gen_random_uuid(), l.tenant_id, l.id, 'img-' || g || '.jpg', 'url',
                        'https://images.example.org/' || g || '.jpg', now() + g * interval '1 microsecond'
                 FROM libraries l, generate_series(1, {count}) g WHERE l.id = '{library}'"
            ))
            .await
            .context("insert url images")?;
        Ok(())
    }

    /// Creates a pipeline from a stage list and returns its id.
    pub async fn create_pipeline(&self, name: &str, stages: Value) -> Uuid {
        id_of(
            &self
                .post_expecting(
                    "/api/pipelines",
                    json!({ "name": name, "stages": stages }),
                    201,
                )
                .await,
        )
    }

    /// Submits a job over a whole library and returns its id (asserting 202).
    pub async fn submit_job(&self, pipeline: Uuid, library: Uuid) -> Uuid {
        let body = json!({ "pipeline_id": pipeline, "library_id": library });
        id_of(&self.post_expecting("/api/jobs/submit", body, 202).await)
    }

    /// POSTs `body` as JSON to `path`, asserts the status and returns the JSON answer.
    pub async fn post_expecting(&self, path: &str, body: Value, status: u16) -> Value {
        let response = self.post(path).json(&body).send().await.expect("request");
        assert_eq!(
            response.status(),
            status,
            "POST {path}: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("json")
    }

    /// The single `bigint` a SQL query returns (e.g. a `count(*)`), read from the test database.
    pub async fn query_i64(&self, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        self.db
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DatabaseBackend::Postgres,
                sql,
            ))
            .await
            .expect("query")
            .expect("a row")
            .try_get_by_index::<i64>(0)
            .expect("a bigint")
    }

    /// GETs `path` and returns its JSON body (asserting 200).
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).send().await.expect("request");
        assert_eq!(
            response.status(),
            200,
            "GET {path}: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("json")
    }
}

impl TestApp {
    /// Uploads images given as (file name, bytes); returns their ids in order.
    pub async fn upload_bytes(&self, library: Uuid, files: &[(String, Vec<u8>)]) -> Vec<Uuid> {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.clone()),
            );
        }
        let response = self
            .post(&format!("/api/libraries/{library}/images"))
            .multipart(form)
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            201,
            "upload: {}",
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await.expect("json");
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(id_of)
            .collect()
    }

    /// Adds `count` copies of an uploaded image to a library (same bytes, new image rows): a
    /// cheap way to make a large library of images the worker can fetch.
    pub async fn copy_image(&self, library: Uuid, image: Uuid, count: usize) {
        self.db
            .execute_unprepared(&format!(
                "INSERT INTO images (id, tenant_id, library_id, filename, source, object_key, media_type, size_bytes, content_hash, created_at)
                 SELECT gen_random_uuid(), i.tenant_id, '{library}', 'copy-' || g || '-' || i.filename, i.source, i.object_key,
                        i.media_type, i.size_bytes, i.content_hash, now() + g * interval '1 microsecond'
                 FROM images i, generate_series(1, {count}) g WHERE i.id = '{image}'"
            ))
            .await
            .expect("copy the image");
    }

    /// Waits until the job is in a terminal state and returns it.
    pub async fn wait_for_job(&self, job: Uuid, timeout: Duration) -> Value {
        eventually(timeout, "the job to finish", || async {
            let job: Value = self.get_json(&format!("/api/jobs/{job}")).await;
            let status = job["status"].as_str().unwrap_or_default().to_string();
            ["completed", "completed_with_errors", "failed", "cancelled"]
                .contains(&status.as_str())
                .then_some(job)
        })
        .await
    }
}

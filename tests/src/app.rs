//! The api started in this process (its real `Application::build`) on port 0, with a tenant
//! and its key; requests to it, and rows written straight to its database.

use anyhow::Context;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, QueryResult, Statement};
use settings::Settings;
use uuid::Uuid;

use crate::TestResources;

/// A running API with a tenant and its key.
pub struct TestApp {
    pub address: String,
    /// The settings the api runs with (same database, broker prefix and storage for workers).
    pub settings: Settings,
    pub db: DatabaseConnection,
    pub key: String,
    pub client: reqwest::Client,
    /// The scheduler that releases the app's jobs (stopped before the clean-up below).
    pub scheduler: Option<crate::RunningScheduler>,
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
        let scheduler = Some(crate::RunningScheduler::start(&settings).await);
        TestApp {
            address,
            settings,
            db,
            key,
            client: reqwest::Client::new(),
            scheduler,
            resources,
        }
    }

    /// Stops the app's scheduler, for a test that releases work itself.
    pub async fn stop_scheduler(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.stop().await;
        }
    }

    /// The job's items as `(item, image)`, in the job's order, once the scheduler has written
    /// all of them (submission writes none).
    pub async fn written_items(&self, job: Uuid) -> Vec<(Uuid, Uuid)> {
        crate::eventually(
            crate::RUN_TIMEOUT,
            "the job's items to be written",
            || async {
                let left = self
                .query_i64(&format!(
                    "SELECT (total_items - materialized_items)::bigint FROM jobs WHERE id = '{job}'"
                ))
                .await;
                (left == 0).then_some(())
            },
        )
        .await;
        self.sql_rows(
            "SELECT id, image_id FROM job_items WHERE job_id = $1 ORDER BY position, id",
            [job.into()],
        )
        .await
        .iter()
        .map(|row| {
            (
                row.try_get::<Uuid>("", "id").expect("an item id"),
                row.try_get::<Uuid>("", "image_id").expect("an image id"),
            )
        })
        .collect()
    }

    /// A key for another tenant.
    pub async fn other_tenant_key(&self, name: &str) -> String {
        store::tenants::create_key(&self.db, name, None)
            .await
            .expect("create a key")
            .key
    }

    /// The id of the tenant called `name`.
    pub async fn tenant_id(&self, name: &str) -> Uuid {
        self.db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT id FROM tenants WHERE name = $1",
                [name.into()],
            ))
            .await
            .expect("query")
            .expect("the tenant")
            .try_get("", "id")
            .expect("an id")
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

    /// A request to `path` without credentials (a browser's, say).
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// A request to `path` with `key` (another tenant's, say) in place of the app's own.
    pub fn request_with_key(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
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

    /// The rows a SQL query with `$n` parameters returns from the test database.
    pub async fn sql_rows(
        &self,
        sql: &str,
        values: impl IntoIterator<Item = sea_orm::Value>,
    ) -> Vec<QueryResult> {
        self.db
            .query_all_raw(sql_statement(sql, values))
            .await
            .expect("query")
    }

    /// Runs one SQL statement with `$n` parameters on the test database.
    pub async fn sql_execute(&self, sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) {
        self.db
            .execute_raw(sql_statement(sql, values))
            .await
            .expect("statement");
    }

    /// The single `bigint` a SQL query returns (e.g. a `count(*)`), read from the test database.
    pub async fn query_i64(&self, sql: &str) -> i64 {
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
}

fn sql_statement(sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)
}

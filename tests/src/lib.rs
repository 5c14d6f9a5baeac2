//! Test harness: starts the real API (`Application::build`) on port 0 against the machine's
//! PostgreSQL and RabbitMQ, with a fresh database and a unique exchange/queue prefix per test.
//! Everything a test created is dropped when its [`TestApp`] goes out of scope, even on panic.

pub mod process;
pub mod runs;

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use lapin::{BasicProperties, options::BasicGetOptions};
use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::{Value, json};
use settings::Settings;
use uuid::Uuid;

/// Server holding the per-test databases; override with `TEST_DATABASE_SERVER`.
pub fn database_server() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Broker for tests; override with `TEST_AMQP_URL`.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Bytes of a sample image under `samples/images/`.
pub fn sample_image(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/images")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Per-test resources: a database, a broker prefix and a storage directory.
pub struct TestResources {
    pub database_name: String,
    pub prefix: String,
    pub storage_dir: PathBuf,
}

impl TestResources {
    pub fn new() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            database_name: format!("test_{id}"),
            prefix: format!("test-{id}"),
            storage_dir: std::env::temp_dir().join(format!("pipelines-test-{id}")),
        }
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", database_server(), self.database_name)
    }

    /// Settings pointing at this test's resources, on a free port.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::default();
        settings.http.port = 0;
        settings.http.workers = 2;
        settings.database.url = SecretString::from(self.database_url());
        settings.database.max_connections = 8;
        settings.database.min_connections = 0;
        settings.amqp.url = SecretString::from(amqp_url());
        settings.amqp.prefix = self.prefix.clone();
        settings.storage.local_path = self.storage_dir.clone();
        // Short delay queues, so retries through them finish within a test.
        settings.retry.delays_seconds = vec![1, 2];
        settings.worker.health_port = 0;
        settings
    }

    /// Creates the database and applies every migration.
    pub async fn create_database(&self) -> anyhow::Result<DatabaseConnection> {
        let server = Database::connect(format!("{}/postgres", database_server())).await?;
        server
            .execute_unprepared(&format!("CREATE DATABASE \"{}\"", self.database_name))
            .await?;
        server.close().await?;
        let db = Database::connect(self.database_url()).await?;
        migration::Migrator::up(&db, None).await?;
        Ok(db)
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let server = Database::connect(format!("{}/postgres", database_server())).await?;
        server
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database_name
            ))
            .await?;
        let connection =
            broker::connect(&amqp_url(), "test-cleanup", Duration::from_secs(5)).await?;
        let channel = connection.create_channel().await?;
        broker::Topology::from_settings(&self.settings())
            .delete(&channel)
            .await?;
        let _ = std::fs::remove_dir_all(&self.storage_dir);
        Ok(())
    }
}

impl Default for TestResources {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestResources {
    fn drop(&mut self) {
        // Async clean-up from a synchronous Drop: a short-lived runtime on its own thread.
        let resources = TestResources {
            database_name: self.database_name.clone(),
            prefix: self.prefix.clone(),
            storage_dir: self.storage_dir.clone(),
        };
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime
                && let Err(e) = runtime.block_on(resources.cleanup())
            {
                eprintln!("test clean-up failed: {e:#}");
            }
            // Prevent the inner value's Drop from recursing.
            std::mem::forget(resources);
        });
        let _ = handle.join();
    }
}

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

    /// Takes up to `max` messages off this test's stage queue (acknowledging them).
    pub async fn drain_stage_queue(&self, max: usize) -> Vec<(Value, BasicProperties)> {
        let topology = broker::Topology::from_settings(&self.resources.settings());
        self.take_messages(&topology.stage_queue(), max)
            .await
            .into_iter()
            .map(|delivery| {
                let body = serde_json::from_slice(&delivery.data).expect("message is JSON");
                (body, delivery.properties)
            })
            .collect()
    }

    /// Takes up to `max` messages off one of this test's queues (acknowledging them).
    async fn take_messages(&self, queue: &str, max: usize) -> Vec<lapin::message::Delivery> {
        let connection = broker::connect(&amqp_url(), "test-drain", Duration::from_secs(5))
            .await
            .expect("connect");
        let channel = connection.create_channel().await.expect("channel");
        let mut messages = Vec::new();
        while messages.len() < max {
            let Some(message) = channel
                .basic_get(queue.into(), BasicGetOptions { no_ack: true })
                .await
                .expect("basic.get")
            else {
                break;
            };
            messages.push(message.delivery);
        }
        let _ = connection.close(200, "done".into()).await;
        messages
    }
}

/// The `id` field of a JSON object, as a UUID.
pub fn id_of(value: &Value) -> Uuid {
    value["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// A one-stage pipeline definition.
pub fn one_stage() -> Value {
    json!([{ "name": "describe", "prompt": "Describe this image in one sentence." }])
}

/// A two-stage pipeline whose second stage only sees images with an animal.
pub fn two_stages() -> Value {
    json!([
        {
            "name": "detect",
            "prompt": "Is there an animal in this image? Answer as JSON.",
            "json_schema": {
                "type": "object",
                "properties": { "animal": { "type": "boolean" }, "species": { "type": "string" } },
                "required": ["animal"]
            },
            "filter": { "type": "field", "pointer": "/animal", "op": "eq", "value": true }
        },
        { "name": "describe", "prompt": "Describe the animal.", "image_detail": "high", "max_tokens": 300 }
    ])
}

/// Whether the stand-in's answer to the first stage of [`two_stages`] lets `image` pass its
/// filter (`animal == true`): what a test predicts of a two-stage job.
pub fn passes_first_stage(image: &[u8]) -> bool {
    let stages = two_stages();
    let schema = &stages[0]["json_schema"];
    let prompt = stages[0]["prompt"].as_str().expect("a prompt");
    cohere_standin::answer(image, prompt, Some(schema))
        .json
        .expect("a JSON answer")["animal"]
        == json!(true)
}

/// A worker running in this process, stopped (gracefully) when dropped or by [`RunningWorker::stop`].
pub struct RunningWorker {
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    health: Option<worker::health::HealthServer>,
}

impl RunningWorker {
    /// Builds a worker from `settings`, starts its health server and starts consuming.
    pub async fn start(settings: &Settings) -> RunningWorker {
        let worker = worker::Worker::build(settings)
            .await
            .expect("build the worker");
        let health = worker.serve_health().expect("health server");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move { worker.run(stopped).await });
        RunningWorker {
            stop,
            task: Some(task),
            health: Some(health),
        }
    }

    /// The worker's `/readyz` status and body.
    pub async fn readiness(&self) -> (u16, Value) {
        let address = self.health.as_ref().expect("health server").address;
        let response = reqwest::get(format!("http://{address}/readyz"))
            .await
            .expect("readyz");
        let status = response.status().as_u16();
        (status, response.json().await.expect("readyz json"))
    }

    /// The worker's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let address = self.health.as_ref().expect("health server").address;
        reqwest::get(format!("http://{address}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Asks the worker to stop and waits until it has.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.await.expect("worker task").expect("worker run");
        }
        if let Some(health) = self.health.take() {
            health.stop().await;
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bearer key the in-process Cohere stand-in accepts in tests.
pub const STANDIN_KEY: &str = "standin-test-key";

/// Starts a Cohere stand-in on a free port and points `settings` at it.
pub fn start_standin(settings: &mut Settings) -> cohere_standin::Running {
    let standin = cohere_standin::spawn(cohere_standin::StandInConfig::new(STANDIN_KEY))
        .expect("start the stand-in");
    settings.cohere.base_url = standin.base_url();
    settings.cohere.api_key = Some(SecretString::from(STANDIN_KEY));
    settings.cohere.timeout_seconds = 10;
    standin
}

/// Makes every call to `standin` answer 503 while the breaker never opens, so the retry
/// settings alone decide: `in_process_tries` calls per delivery, `max_attempts` deliveries,
/// then the item fails and is dead-lettered.
pub fn fail_every_call_transiently(
    settings: &mut Settings,
    standin: &cohere_standin::Running,
    in_process_tries: u32,
    max_attempts: u32,
) {
    settings.breaker.min_calls = settings.breaker.window_calls;
    settings.breaker.failure_rate = 1.0;
    settings.retry.in_process_tries = in_process_tries;
    settings.retry.max_attempts = max_attempts;
    standin
        .standin
        .set_config(cohere_standin::RuntimeConfig {
            error_rates: std::collections::BTreeMap::from([(503, 1.0)]),
            ..Default::default()
        })
        .expect("configure the stand-in");
}

/// `count` distinct valid images: the sample photos, each made unique by trailing bytes
/// (which image decoders ignore and which change the content hash).
pub fn distinct_images(count: usize) -> Vec<(String, Vec<u8>)> {
    const SAMPLES: [&str; 8] = [
        "chelsea.png",
        "coffee.png",
        "astronaut.png",
        "horse.png",
        "camera.png",
        "coins.png",
        "text.png",
        "rocket.jpg",
    ];
    (0..count)
        .map(|i| {
            let name = SAMPLES[i % SAMPLES.len()];
            let mut bytes = sample_image(name);
            bytes.extend_from_slice(format!("#variant-{i}").as_bytes());
            (format!("{i}-{name}"), bytes)
        })
        .collect()
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

    /// Takes up to `max` messages off this test's dead-letter queue (acknowledging them):
    /// each body with its headers.
    pub async fn drain_dead_letters(&self, max: usize) -> Vec<(Vec<u8>, broker::DeadLetter)> {
        let topology = broker::Topology::from_settings(&self.resources.settings());
        self.take_messages(&topology.dead_letter_queue(), max)
            .await
            .into_iter()
            .map(|delivery| {
                let letter =
                    broker::DeadLetter::from_headers(delivery.properties.headers().as_ref());
                (delivery.data, letter)
            })
            .collect()
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

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    pub event: String,
    pub id: String,
    pub data: Value,
}

/// A `text/event-stream` response read one event at a time, as a browser's `EventSource`
/// would: comments are skipped and frames with only an `id:` move [`EventReader::last_id`].
pub struct EventReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
    pub last_id: Option<String>,
}

impl EventReader {
    pub fn new(response: reqwest::Response) -> Self {
        use futures::StreamExt;
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
            last_id: None,
        }
    }

    /// The next event, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<ServerEvent> {
        loop {
            if let Some(event) = self.next_frame().await? {
                return Some(event);
            }
        }
    }

    /// The next frame: `Some(None)` for one without data (only an `id:`, or a comment).
    pub async fn next_frame(&mut self) -> Option<Option<ServerEvent>> {
        use futures::StreamExt;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::to_string)
                };
                if let Some(id) = field("id: ") {
                    self.last_id = Some(id);
                }
                return Some(field("data: ").map(|data| ServerEvent {
                    event: field("event: ").unwrap_or_else(|| "message".into()),
                    id: self.last_id.clone().unwrap_or_default(),
                    data: serde_json::from_str(&data).expect("event data is JSON"),
                }));
            }
            let chunk = self.body.next().await?.expect("the stream reads");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Reads events until `stop` returns true for one, failing after `timeout`; returns every
    /// event read, the last one included.
    pub async fn until(
        &mut self,
        timeout: Duration,
        mut stop: impl FnMut(&ServerEvent) -> bool,
    ) -> Vec<ServerEvent> {
        let mut events = Vec::new();
        let read = async {
            while let Some(event) = self.next().await {
                let done = stop(&event);
                events.push(event);
                if done {
                    return;
                }
            }
            panic!("the stream ended early: {events:?}");
        };
        tokio::time::timeout(timeout, read)
            .await
            .expect("the awaited event in time");
        events
    }
}

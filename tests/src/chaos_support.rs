//! What the chaos tests share: child processes of the real binaries (the `worker` killed with
//! SIGKILL; the shutdown tests also stop them with SIGTERM), control of the machine's PostgreSQL and RabbitMQ (with a guard that brings both
//! back up whatever happens), cheap distinct images, and the consistency checks every test
//! makes of a finished job.

use std::{
    collections::BTreeMap,
    fs::{self, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use cohere_standin::{Latency, RuntimeConfig};
use sea_orm::{ConnectionTrait, DatabaseBackend, QueryResult, Statement};
use secrecy::ExposeSecret;
use serde_json::Value;
use settings::Settings;
use crate::{TestApp, passes_first_stage, sample_image};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Worker child processes
// ---------------------------------------------------------------------------------------------

/// The binary `cargo build -p {name}` made (honouring `CARGO_TARGET_DIR`).
pub fn binary(name: &str) -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    let binary = target.join("debug").join(name);
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p {name}` before these tests",
        binary.display()
    );
    binary
}

/// How a worker process is tuned.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// Cohere calls in flight at once.
    pub concurrency: usize,
    /// Unacknowledged deliveries held (equal to `concurrency`: then at most `concurrency`
    /// deliveries are in the process's hands when it dies).
    pub prefetch: u16,
}

impl Tuning {
    pub fn with_concurrency(concurrency: usize) -> Self {
        Self {
            concurrency,
            prefetch: u16::try_from(concurrency).expect("a small concurrency"),
        }
    }
}

/// A TOML string (JSON's string escapes are valid in TOML basic strings).
fn toml_string(value: &str) -> String {
    serde_json::to_string(value).expect("a string serialises")
}

/// The sections of a configuration file every binary needs: the test's database, broker
/// prefix and storage.
pub fn base_config(settings: &Settings) -> String {
    format!(
        "[database]
url = {database}
max_connections = 4
min_connections = 0

[amqp]
url = {amqp}
prefix = {prefix}

[storage]
local_path = {storage}

[telemetry]
log_filter = \"info,sqlx=warn,lapin=warn\"
",
        database = toml_string(settings.database.url.expose_secret()),
        amqp = toml_string(settings.amqp.url.expose_secret()),
        prefix = toml_string(&settings.amqp.prefix),
        storage = toml_string(&settings.storage.local_path.to_string_lossy()),
    )
}

/// The configuration file of a worker using the test's database, broker prefix, storage and
/// stand-in (written as a file: environment variables cannot express lists).
fn worker_config(settings: &Settings, tuning: Tuning) -> String {
    let delays: Vec<String> = settings
        .retry
        .delays_seconds
        .iter()
        .map(u64::to_string)
        .collect();
    let api_key = settings
        .cohere
        .api_key
        .as_ref()
        .expect("the stand-in's key is set")
        .expose_secret()
        .to_string();
    format!(
        "{base}
[cohere]
base_url = {base_url}
api_key = {api_key}
timeout_seconds = {timeout}

[retry]
delays_seconds = [{delays}]

[worker]
health_port = 0
concurrency = {concurrency}
prefetch = {prefetch}
shutdown_grace_seconds = {grace}
",
        base = base_config(settings),
        grace = WORKER_GRACE.as_secs(),
        base_url = toml_string(&settings.cohere.base_url),
        api_key = toml_string(&api_key),
        timeout = settings.cohere.timeout_seconds,
        delays = delays.join(", "),
        concurrency = tuning.concurrency,
        prefetch = tuning.prefetch,
    )
}

/// `worker.shutdown_grace_seconds` of worker processes.
pub const WORKER_GRACE: Duration = Duration::from_secs(2);

/// A child process of one of the binaries (`worker` unless started with
/// [`ServiceProcess::start_binary`]), restarted as often as a test likes; killed (SIGKILL) when
/// dropped. Every incarnation appends its output to one log file, shown when a test fails.
pub struct ServiceProcess {
    name: String,
    binary: String,
    args: Vec<String>,
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Processes started so far.
    pub starts: u32,
}

impl ServiceProcess {
    /// Writes a worker's configuration and starts the first worker process.
    pub fn start(name: &str, settings: &Settings, tuning: Tuning) -> Self {
        Self::start_binary(name, "worker", &[], &worker_config(settings, tuning))
    }

    /// Writes `config` and starts the first process of `binary` with `args`.
    pub fn start_binary(name: &str, binary: &str, args: &[&str], config: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "pipelines-chaos-{name}-{}",
            Uuid::new_v4().simple()
        ));
        fs::create_dir_all(&dir).expect("create the worker's directory");
        let config_file = dir.join(format!("{binary}.toml"));
        fs::write(&config_file, config).expect("write the process's config");
        let mut worker = Self {
            name: name.to_string(),
            binary: binary.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            log: dir.join(format!("{binary}.log")),
            dir,
            config: config_file,
            child: None,
            starts: 0,
        };
        worker.spawn();
        worker
    }

    /// Starts a new process (after [`ServiceProcess::kill`]).
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the process's log");
        let _ = writeln!(log, "==== {} start #{} ====", self.name, self.starts + 1);
        let stderr = log.try_clone().expect("clone the log handle");
        let mut command = Command::new(binary(&self.binary));
        command.args(&self.args);
        // The Makefile exports APP__* variables; they would override the file.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("APP_") {
                command.env_remove(&key);
            }
        }
        let child = command
            .env("APP_CONFIG_FILE", &self.config)
            .env("RUST_LOG", "info,sqlx=warn,lapin=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("start the binary");
        self.child = Some(child);
        self.starts += 1;
    }

    /// SIGKILL (`Child::kill` on Unix), then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM to the current process (which is left to exit by itself).
    pub fn terminate(&mut self) {
        let child = self.child.as_ref().expect("a running process");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {}", child.id());
    }

    /// Waits up to `timeout` for the current process to exit; how it ended, or `None` if it
    /// still runs.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                self.child = None;
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How the current process ended, if it has (a service is never meant to exit by itself).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Panics, showing the log, when the process has exited by itself.
    pub fn assert_alive(&mut self, when: &str) {
        if let Some(status) = self.exited() {
            panic!(
                "{} {} exited by itself {when} ({status}); its log:\n{}",
                self.binary,
                self.name,
                self.log_tail(80)
            );
        }
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// For each process started, in order: whether it had started consuming (per its log).
    pub fn consumed_per_start(&self) -> Vec<bool> {
        self.log_text()
            .split(&format!("==== {} start #", self.name))
            .skip(1)
            .map(|section| section.contains("consuming"))
            .collect()
    }

    /// The whole log.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} {} (last lines of {}) ----\n{}",
                self.binary,
                self.name,
                self.log.display(),
                self.log_tail(60)
            );
        } else if std::env::var_os("CHAOS_KEEP_LOGS").is_some() {
            eprintln!(
                "chaos: {} {} log kept in {}",
                self.binary,
                self.name,
                self.log.display()
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The machine's services
// ---------------------------------------------------------------------------------------------

fn postgres_version() -> String {
    fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql lists the clusters")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()
        .expect("a PostgreSQL cluster")
}

fn pg_ctlcluster(action: &str) -> Command {
    let mut command = Command::new("pg_ctlcluster");
    command.args(["--skip-systemctl-redirect", "-m", "fast"]);
    command.args([postgres_version().as_str(), "main", action]);
    command
}

fn quiet(mut command: Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command` to its end (off the async runtime's threads), failing the test if it fails.
async fn run(command: Command) {
    let what = format!("{command:?}");
    let output = tokio::task::spawn_blocking(move || {
        let mut command = command;
        command.output()
    })
    .await
    .expect("the command's thread")
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn postgres_accepts() -> bool {
    let mut command = Command::new("pg_isready");
    command.args(["-h", "127.0.0.1", "-p", "5432", "-q"]);
    quiet(command)
}

fn rabbitmq_running() -> bool {
    let mut command = Command::new("rabbitmq-diagnostics");
    command.args(["-q", "check_running"]);
    quiet(command)
}

/// Whether RabbitMQ's Erlang node is up (its application may be stopped; `rabbitmqctl status`
/// fails then, `ping` does not).
fn rabbitmq_node_up() -> bool {
    let mut command = Command::new("rabbitmqctl");
    command.args(["-q", "ping"]);
    quiet(command)
}

/// Waits (blocking) for `up`, up to a minute.
fn wait_until(up: fn() -> bool) -> bool {
    for _ in 0..120 {
        if up() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// Starts PostgreSQL and RabbitMQ where they are down, and waits until both serve (blocking).
pub fn ensure_services_up() {
    if !postgres_accepts() {
        eprintln!("chaos: PostgreSQL is down; starting it");
        // Exit status 2 means "already running": the readiness wait below decides.
        let _ = quiet(pg_ctlcluster("start"));
        if !wait_until(postgres_accepts) {
            eprintln!("chaos: PostgreSQL did not come back within a minute");
        }
    }
    if rabbitmq_running() {
        return;
    }
    let mut started_node = false;
    for _ in 0..60 {
        if rabbitmq_node_up() {
            eprintln!("chaos: RabbitMQ's application is stopped; starting it");
            let mut command = Command::new("rabbitmqctl");
            command.args(["-q", "start_app"]);
            let _ = quiet(command);
        } else if !started_node {
            eprintln!("chaos: RabbitMQ's node is down; starting it");
            let mut command = Command::new("rabbitmq-server");
            command.arg("-detached");
            let _ = quiet(command);
            started_node = true;
        }
        if rabbitmq_running() {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("chaos: RabbitMQ did not come back within a minute");
}

/// Brings PostgreSQL and RabbitMQ back up when dropped, even when a test panics mid-outage.
/// Declare it after the [`TestApp`], so it is dropped first and the app's clean-up finds
/// both services up.
#[must_use]
pub struct ServicesGuard;

impl ServicesGuard {
    /// Makes sure both services are up now (a previous run may have died mid-outage).
    pub fn new() -> Self {
        ensure_services_up();
        assert!(
            postgres_accepts(),
            "PostgreSQL is not accepting connections"
        );
        assert!(rabbitmq_running(), "RabbitMQ is not running");
        Self
    }

    /// Stops RabbitMQ's application: every client connection is closed; durable queues and
    /// persistent messages stay on disk.
    pub async fn stop_rabbitmq(&self) {
        let mut command = Command::new("rabbitmqctl");
        command.args(["-q", "stop_app"]);
        run(command).await;
    }

    /// Starts RabbitMQ's application again and waits until it has fully booted.
    pub async fn start_rabbitmq(&self) {
        let mut start = Command::new("rabbitmqctl");
        start.args(["-q", "start_app"]);
        run(start).await;
        let mut wait = Command::new("rabbitmqctl");
        wait.args(["-q", "await_startup", "--timeout", "60"]);
        run(wait).await;
    }

    /// Stops PostgreSQL (fast mode: open transactions roll back, clients are disconnected).
    pub async fn stop_postgres(&self) {
        run(pg_ctlcluster("stop")).await;
    }

    /// Starts PostgreSQL again and waits until it accepts connections.
    pub async fn start_postgres(&self) {
        run(pg_ctlcluster("start")).await;
        let up = tokio::task::spawn_blocking(|| wait_until(postgres_accepts))
            .await
            .expect("the readiness thread");
        assert!(up, "PostgreSQL accepts connections again");
    }
}

impl Drop for ServicesGuard {
    fn drop(&mut self) {
        ensure_services_up();
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------------

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

/// The stand-in answers after `min..=max` milliseconds.
pub fn set_latency(standin: &cohere_standin::Running, min: u64, max: u64) {
    standin
        .standin
        .set_config(RuntimeConfig {
            latency_ms: Latency { min, max },
            ..Default::default()
        })
        .expect("a valid stand-in configuration");
}

/// A library of `count` new distinct images with a job of [`two_stages`] over it.
pub struct SubmittedJob {
    pub job: Uuid,
    pub library: Uuid,
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
pub async fn submit_two_stage_job(app: &TestApp, pipeline: Uuid, count: usize) -> SubmittedJob {
    let images = small_distinct_images(count);
    let library = app
        .create_library(&format!("chaos-{}", Uuid::new_v4()))
        .await;
    let ids = upload_in_chunks(app, library, &images).await;
    let job = app.submit_job(pipeline, library).await;
    SubmittedJob {
        job,
        library,
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
    app.query_i64(&format!(
        "SELECT count(*) FROM jobs WHERE id = '{job}' AND status IN ('completed', 'completed_with_errors', 'failed', 'cancelled')"
    ))
    .await
        == 1
}

/// Everything a finished job of [`two_stages`] must show when nothing was lost and nothing
/// counted twice (DESIGN.md invariants 2 to 4): it completed; every item ended as the stand-in's
/// answers predict, with exactly one result row per stage it reached; the job's and the
/// stages' counters and token totals agree with the rows. Returns the job as the api shows it.
pub async fn assert_job_consistent(app: &TestApp, submitted: &SubmittedJob) -> Value {
    let job = submitted.job;
    let total = submitted.images.len() as i64;
    let passed = submitted.expected_passed() as i64;
    let finished = app.wait_for_job(job, Duration::from_secs(30)).await;
    assert_eq!(finished["status"], "completed", "{finished}");
    let counts = &finished["counts"];
    assert_eq!(counts["total"], total, "{finished}");
    assert_eq!(counts["passed"], passed, "{finished}");
    assert_eq!(counts["filtered_out"], total - passed, "{finished}");
    for zero in ["pending", "running", "failed", "cancelled"] {
        assert_eq!(counts[zero], 0, "{zero}: {finished}");
    }
    let stages = finished["stages"].as_array().expect("stages");
    assert_eq!(stages[0]["processed"], total, "{finished}");
    assert_eq!(stages[0]["passed"], passed, "{finished}");
    assert_eq!(stages[0]["filtered_out"], total - passed, "{finished}");
    assert_eq!(stages[0]["failed"], 0, "{finished}");
    assert_eq!(stages[1]["processed"], passed, "{finished}");
    assert_eq!(stages[1]["passed"], passed, "{finished}");

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
            stage["input_tokens"], from_rows,
            "stage {index}'s input tokens counted once per result"
        );
    }
    let all_rows = app
        .query_i64(&format!(
            "SELECT coalesce(sum(input_tokens), 0)::bigint FROM job_results WHERE job_id = '{job}'"
        ))
        .await;
    assert!(all_rows > 0);
    assert_eq!(finished["usage"]["input_tokens"], all_rows, "{finished}");
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
            "the job did not finish within {timeout:?}: {}\nworker log:\n{}",
            app.get_json(&format!("/api/jobs/{job}")).await,
            worker.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes a line to the test's output (shown by nextest for failing tests, or with
/// `--no-capture`).
pub fn note(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "chaos: {}", line.as_ref());
}

/// What the restart tests share: a two-stage job of `images` images, a fifth of it done by one
/// worker process (the stand-in answering in 20–50 ms), ready for a service to be cut.
pub struct JobUnderway {
    pub app: TestApp,
    /// Answers the job's calls for as long as this lives.
    _standin: cohere_standin::Running,
    pub services: ServicesGuard,
    pub pipeline: Uuid,
    pub job: SubmittedJob,
    pub worker: ServiceProcess,
    /// Results stored when the job was found a fifth done.
    pub stored: i64,
}

impl JobUnderway {
    pub async fn start(images: usize, timeout: Duration) -> Self {
        ensure_services_up();
        let mut app = TestApp::spawn().await;
        let standin = crate::start_standin(&mut app.settings);
        set_latency(&standin, 20, 50);
        let services = ServicesGuard::new();
        let pipeline = app
            .create_pipeline("survey", crate::two_stages())
            .await;
        let job = submit_two_stage_job(&app, pipeline, images).await;
        let worker = ServiceProcess::start("w", &app.settings, Tuning::with_concurrency(2));
        let expected = job.expected_results();
        crate::eventually(timeout, "a fifth of the results", || async {
            (result_count(&app, job.job).await >= expected / 5).then_some(())
        })
        .await;
        let stored = result_count(&app, job.job).await;
        assert!(
            stored < expected && !job_finished(&app, job.job).await,
            "the job is still running ({stored} of {expected} results)"
        );
        Self {
            app,
            _standin: standin,
            services,
            pipeline,
            job,
            worker,
            stored,
        }
    }

    /// After the outage of `service`: the job completes with every result once and nothing
    /// dead-lettered, a job submitted afterwards completes too, and the same worker process
    /// (never restarted) ran both.
    pub async fn assert_recovered(&mut self, service: &str, timeout: Duration) {
        let app = &self.app;
        wait_until_finished(app, self.job.job, &mut self.worker, timeout).await;
        assert_job_consistent(app, &self.job).await;
        assert!(
            dead_letters_of(app, self.job.job).await.is_empty(),
            "a restart of {service} dead-letters nothing"
        );
        let second = submit_two_stage_job(app, self.pipeline, 20).await;
        wait_until_finished(app, second.job, &mut self.worker, timeout).await;
        assert_job_consistent(app, &second).await;
        self.worker.assert_alive(&format!(
            "after {service} restarted (it should reconnect, not exit)"
        ));
        assert_eq!(self.worker.starts, 1, "the worker was never restarted");
    }
}

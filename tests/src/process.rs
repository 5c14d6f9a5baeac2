//! Child processes of the real binaries (`cargo build -p ...` makes them): started with a
//! configuration file for the test's database, broker prefix and storage, stopped with SIGTERM
//! or killed with SIGKILL, each with a log shown when its test fails.

use std::{
    fs::{self, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use secrecy::ExposeSecret;
use settings::Settings;
use uuid::Uuid;

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
/// prefix, storage and retry delays (every binary declares the delay queues, and the test's
/// clean-up deletes the ones its settings name).
pub fn base_config(settings: &Settings) -> String {
    let delays: Vec<String> = settings
        .retry
        .delays_seconds
        .iter()
        .map(u64::to_string)
        .collect();
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

[retry]
delays_seconds = [{delays}]

[telemetry]
log_filter = \"info,sqlx=warn,lapin=warn\"
",
        database = toml_string(settings.database.url.expose_secret()),
        amqp = toml_string(settings.amqp.url.expose_secret()),
        prefix = toml_string(&settings.amqp.prefix),
        storage = toml_string(&settings.storage.local_path.to_string_lossy()),
        delays = delays.join(", "),
    )
}

/// The configuration file of a worker using the test's database, broker prefix, storage and
/// stand-in (written as a file: environment variables cannot express lists).
fn worker_config(settings: &Settings, tuning: Tuning) -> String {
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

/// Writes a line to the test's output (shown by nextest for failing tests, or with
/// `--no-capture`).
pub fn note(line: impl AsRef<str>) {
    let _ = writeln!(std::io::stderr(), "chaos: {}", line.as_ref());
}

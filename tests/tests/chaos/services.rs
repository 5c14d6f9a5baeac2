//! Control of the machine's PostgreSQL and RabbitMQ, with a guard that brings both back up
//! whatever happens.

use std::{
    fs,
    process::{Command, Stdio},
    time::Duration,
};

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

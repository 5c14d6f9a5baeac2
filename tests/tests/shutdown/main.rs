#![allow(clippy::unwrap_used)]
//! Graceful shutdown: the real `api`, `worker`, `scheduler` and `redriver` binaries, started as processes
//! against the test's database and broker prefix, get SIGTERM while they work. Each exits 0
//! within its grace period, and nothing is lost: the api finishes the requests it accepted
//! (no 5xx) and ends its event streams at once, the worker finishes or hands back what it
//! holds, the re-driver finishes the step of the re-drive it is in.
//!
//! They stop no shared service, so they run with the other tests, after
//! `cargo build -p api -p worker -p scheduler -p redriver` (the tests start `target/debug/...`).

mod api;
mod redriver;
mod scheduler;
mod worker;

use std::{
    net::TcpListener,
    process::ExitStatus,
    time::{Duration, Instant},
};

use system_tests::process::{ServiceProcess, note};

/// A port free now (the process started next binds it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends SIGTERM and waits up to `within` for the process to exit 0; how long it took.
pub async fn terminate_and_expect_clean_exit(
    process: &mut ServiceProcess,
    what: &str,
    within: Duration,
) -> Duration {
    let sent = Instant::now();
    process.terminate();
    let status: Option<ExitStatus> = process.wait_exit(within).await;
    let took = sent.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "{what} still runs {within:?} after SIGTERM; its log:\n{}",
            process.log_tail(60)
        )
    });
    assert!(
        status.success(),
        "{what} exited with {status} after SIGTERM; its log:\n{}",
        process.log_tail(60)
    );
    note(format!("{what}: SIGTERM to exit 0 in {took:.2?}"));
    took
}

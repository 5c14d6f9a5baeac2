#![allow(clippy::unwrap_used)]
//! Chaos tests (DESIGN.md invariants 2 to 4): real `worker` processes killed with SIGKILL, and
//! the machine's RabbitMQ and PostgreSQL restarted in the middle of a job.
//!
//! They stop shared services, so they must never run beside other tests: `make nextest`
//! excludes this binary and `make chaos` runs it alone, one test at a time, after
//! `cargo build -p worker` (the tests start `target/debug/worker`). Whatever happens, a test
//! leaves PostgreSQL and RabbitMQ running (`services::ServicesGuard`). A worker process's log is
//! printed when its test fails; `CHAOS_KEEP_LOGS=1` keeps the logs of passing tests too.

mod kill_worker;
mod postgres_restart;
mod rabbitmq_restart;
mod services;
mod underway;

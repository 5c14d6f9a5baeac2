#![allow(clippy::unwrap_used)]
//! The dead-letter re-driver: draining the dead-letter queue into `dead_letters`, the admin
//! API (auth, listing, re-drive, purge, audit), the automatic re-drive policy and its metrics.

mod admin;
mod drain;
mod letters;
mod metrics;
mod policy;
mod redrive;

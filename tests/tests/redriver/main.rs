#![allow(clippy::unwrap_used)]
//! The dead-letter re-driver: draining the dead-letter queue into `dead_letters`, the admin
//! API (auth, listing, re-drive, purge, audit) and the automatic re-drive policy.

mod admin;

//! What every binary (api, worker, re-driver) does first in `main`. The other start-up steps
//! each have their one helper too: `settings::Settings::load`, `telemetry::init_from_settings`,
//! `broker::Publisher::from_settings`, and [`crate::shutdown::signal`] for the stop.

/// Installs the process's TLS crypto provider, before any connection: sqlx brings ring, lapin
/// and reqwest aws-lc-rs, and rustls will not choose between two. Again is harmless.
pub fn install_crypto_provider() {
    // An error only says a provider is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

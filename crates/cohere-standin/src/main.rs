//! `cohere-standin`: serves the Cohere stand-in (`POST /v2/chat`, `/admin/*`, `/health`).
//!
//! ```text
//! STANDIN_API_KEY=dev-key cohere-standin --port 8090 --latency-min-ms 800 --latency-max-ms 2500 \
//!     --error-rate 503=0.02 --requests-per-minute 500
//! ```

use std::collections::BTreeMap;
use std::net::TcpListener;

use clap::Parser;
use cohere_standin::{Latency, Routes, RuntimeConfig, StandIn, StandInConfig};

/// A stand-in for Cohere's chat API for tests, benchmarks and demos (never production).
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to bind (the admin API has no authentication: keep it private).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port of the chat API (and of the admin API unless --admin-port is given).
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// Serve the admin API on this port of --host instead of on --port.
    #[arg(long)]
    admin_port: Option<u16>,
    /// The bearer token callers must send.
    #[arg(long, env = "STANDIN_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Shortest time from a request's arrival to its answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_min_ms: u64,
    /// Longest time from a request's arrival to its answer, in milliseconds (at least
    /// --latency-min-ms).
    #[arg(long)]
    latency_max_ms: Option<u64>,
    /// Inject an error status with a probability, e.g. `503=0.05` (repeatable).
    #[arg(long = "error-rate", value_name = "STATUS=RATE", value_parser = parse_rate)]
    error_rates: Vec<(u16, f64)>,
    /// Seconds sent in `Retry-After` with 429 answers.
    #[arg(long)]
    retry_after_seconds: Option<u64>,
    /// Calls admitted per sliding minute; more get 429.
    #[arg(long)]
    requests_per_minute: Option<u32>,
    /// Start in an outage: every chat call gets 503.
    #[arg(long)]
    outage: bool,
    /// HTTP worker threads per listener.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

fn parse_rate(text: &str) -> Result<(u16, f64), String> {
    let (status, rate) = text
        .split_once('=')
        .ok_or_else(|| format!("expected STATUS=RATE, got {text:?}"))?;
    let status = status
        .trim()
        .parse()
        .map_err(|error| format!("bad status {status:?}: {error}"))?;
    let rate = rate
        .trim()
        .parse()
        .map_err(|error| format!("bad rate {rate:?}: {error}"))?;
    Ok((status, rate))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let _telemetry = telemetry::init(
        "cohere-standin",
        telemetry::Format::Text,
        "info",
        &telemetry::Traces::default(),
    )
    .map_err(std::io::Error::other)?;

    let runtime = RuntimeConfig {
        latency_ms: Latency {
            min: args.latency_min_ms,
            max: args.latency_max_ms.unwrap_or(args.latency_min_ms),
        },
        error_rates: args.error_rates.into_iter().collect::<BTreeMap<_, _>>(),
        retry_after_seconds: args.retry_after_seconds,
        requests_per_minute: args.requests_per_minute,
        outage: args.outage,
        ..RuntimeConfig::default()
    };
    let standin = StandIn::new(StandInConfig {
        api_key: args.api_key,
        runtime,
        workers: args.workers,
    })
    .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;

    let chat_listener = TcpListener::bind((args.host.as_str(), args.port))?;
    tracing::info!(addr = %chat_listener.local_addr()?, "Cohere stand-in listening");
    let (chat, admin) = match args.admin_port {
        Some(port) => {
            let admin_listener = TcpListener::bind((args.host.as_str(), port))?;
            tracing::info!(addr = %admin_listener.local_addr()?, "admin API listening");
            (
                standin.server(chat_listener, Routes::Chat)?,
                Some(standin.server(admin_listener, Routes::Admin)?),
            )
        }
        None => (standin.server(chat_listener, Routes::All)?, None),
    };
    let handles: Vec<_> = std::iter::once(chat.handle())
        .chain(admin.as_ref().map(|server| server.handle()))
        .collect();
    let servers = async {
        match admin {
            Some(admin) => tokio::try_join!(chat, admin).map(|_| ()),
            None => chat.await,
        }
    };
    tokio::select! {
        result = servers => result,
        _ = shutdown_signal() => {
            tracing::info!("shutting down");
            for handle in handles {
                handle.stop(true).await;
            }
            Ok(())
        }
    }
}

/// Ctrl-C, or SIGTERM (what Kubernetes and Docker send) on Unix.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rates_parse_as_status_equals_rate() {
        assert_eq!(parse_rate("503=0.05"), Ok((503, 0.05)));
        assert!(parse_rate("503").is_err());
        assert!(parse_rate("x=0.1").is_err());
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}

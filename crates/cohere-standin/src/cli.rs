//! The command line of the `cohere-standin` binary, and the configuration it starts with.

use std::collections::BTreeMap;

use clap::Parser;

use crate::{Latency, RuntimeConfig, StandInConfig};

/// A stand-in for Cohere's chat API for tests, benchmarks and demos (never production).
#[derive(Parser)]
#[command(version, about)]
pub struct Args {
    /// Address to bind (the admin API has no authentication: keep it private).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port of the chat API (and of the admin API unless --admin-port is given).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Serve the admin API on this port of --host instead of on --port.
    #[arg(long)]
    pub admin_port: Option<u16>,
    /// The bearer token callers must send.
    #[arg(long, env = "STANDIN_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Shortest time from a request's arrival to its answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_min_ms: u64,
    /// Longest time from a request's arrival to its answer, in milliseconds (at least
    /// --latency-min-ms).
    #[arg(long)]
    pub latency_max_ms: Option<u64>,
    /// Inject an error status with a probability, e.g. `503=0.05` (repeatable).
    #[arg(long = "error-rate", value_name = "STATUS=RATE", value_parser = parse_rate)]
    pub error_rates: Vec<(u16, f64)>,
    /// Seconds sent in `Retry-After` with 429 answers.
    #[arg(long)]
    pub retry_after_seconds: Option<u64>,
    /// Calls admitted per sliding minute; more get 429.
    #[arg(long)]
    pub requests_per_minute: Option<u32>,
    /// Start in an outage: every chat call gets 503.
    #[arg(long)]
    pub outage: bool,
    /// HTTP worker threads per listener.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

impl Args {
    /// The stand-in's start-up configuration: the key, the faults and limits given, the workers.
    pub fn standin_config(&self) -> StandInConfig {
        let runtime = RuntimeConfig {
            latency_ms: Latency {
                min: self.latency_min_ms,
                max: self.latency_max_ms.unwrap_or(self.latency_min_ms),
            },
            error_rates: self.error_rates.iter().copied().collect::<BTreeMap<_, _>>(),
            retry_after_seconds: self.retry_after_seconds,
            requests_per_minute: self.requests_per_minute,
            outage: self.outage,
            ..RuntimeConfig::default()
        };
        StandInConfig {
            api_key: self.api_key.clone(),
            runtime,
            workers: self.workers,
        }
    }
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

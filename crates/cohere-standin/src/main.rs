//! `cohere-standin`: serves the Cohere stand-in (`POST /v2/chat`, `/admin/*`, `/health`).
//!
//! ```text
//! STANDIN_API_KEY=dev-key cohere-standin --port 8090 --latency-min-ms 800 --latency-max-ms 2500 \
//!     --error-rate 503=0.02 --requests-per-minute 500
//! ```

use std::net::TcpListener;

use clap::Parser;
use cohere_standin::{Routes, StandIn, cli::Args};

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

    let standin = StandIn::new(args.standin_config())
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
        _ = http_support::shutdown::signal() => {
            tracing::info!("shutting down");
            for handle in handles {
                handle.stop(true).await;
            }
            Ok(())
        }
    }
}

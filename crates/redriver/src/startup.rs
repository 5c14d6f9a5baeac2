//! `redriver serve`: the drainer, the automatic re-drive policy (when on) and the admin API in
//! one process. Tests call [`Application::build`] with port 0 and [`Application::start`].

use std::{net::TcpListener, sync::Arc};

use actix_web::{
    App, HttpResponse, HttpServer,
    dev::{Server, ServerHandle},
    middleware::ErrorHandlers,
    web,
};
use http_support::{
    RouteTable,
    health::Dependencies,
    request::{json_error, path_error, query_error},
    routes::not_routed,
};
use settings::Settings;
use tokio::{sync::watch, task::JoinHandle};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

use crate::{
    Redriver,
    drain::Drainer,
    http::{
        self, AdminState,
        auth::{Admin, AdminToken},
        error::{AdminError, problem_for_bare_errors},
    },
    metrics, openapi, policy,
};

/// Largest JSON request body of the admin API.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// HTTP worker threads of the admin API (it serves a few operators).
const HTTP_WORKERS: usize = 2;

/// A bound, not yet running, re-driver.
pub struct Application {
    port: u16,
    server: Server,
    ctx: Arc<Redriver>,
    drainer: Drainer,
    auto_redrive: bool,
}

impl Application {
    /// Connects the database pool and the publisher (lazily) and binds the admin API.
    ///
    /// An unreachable broker is not fatal: the drainer keeps reconnecting and `/readyz`
    /// reports it.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let ctx = Arc::new(Redriver::connect(settings).await?);
        let token = AdminToken::new(settings.redriver.admin_token.as_ref());
        if !token.is_configured() {
            tracing::warn!(
                "no admin token is configured (APP__REDRIVER__ADMIN_TOKEN): the admin API refuses every request"
            );
        }
        let state = web::Data::new(AdminState {
            ctx: ctx.clone(),
            token,
        });
        let listener =
            TcpListener::bind((settings.redriver.host.as_str(), settings.redriver.port))?;
        let port = listener.local_addr()?.port();
        let spec = Arc::new(openapi::spec());
        // Only the admin routes answer 405 to another method; any other path is unknown (404).
        let route_table = web::Data::new(RouteTable::from_spec_under(&spec, "/admin/"));
        let http_metrics = ctx.metrics.http.clone();
        let dependencies: Arc<dyn Dependencies> = ctx.clone();
        let dependencies = web::Data::from(dependencies);
        let server = HttpServer::new(move || {
            let served_spec = spec.clone();
            let (app, _) = App::new()
                .app_data(state.clone())
                .app_data(dependencies.clone())
                .app_data(route_table.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(MAX_JSON_BYTES)
                        .error_handler(json_error::<AdminError>),
                )
                .app_data(web::PathConfig::default().error_handler(path_error::<AdminError>))
                .app_data(web::QueryConfig::default().error_handler(query_error::<AdminError>))
                .wrap(ErrorHandlers::new().default_handler(problem_for_bare_errors))
                .wrap(TracingLogger::default())
                .wrap(http_metrics.clone())
                .into_utoipa_app()
                // Registered before the `/admin` scope, which would otherwise claim the path.
                .map(|app| {
                    app.route(
                        "/admin/openapi.json",
                        web::get().to(move |_admin: Admin| {
                            let spec = served_spec.clone();
                            async move { HttpResponse::Ok().json(&*spec) }
                        }),
                    )
                })
                .configure(http_support::health::configure)
                .service(utoipa_actix_web::scope("/admin").configure(http::configure))
                .split_for_parts();
            app.route("/metrics", web::get().to(metrics::serve))
                .default_service(web::to(not_routed::<AdminError>))
        })
        .workers(HTTP_WORKERS)
        .listen(listener)?
        // `run_until_stopped` starts the shutdown, after telling the re-drives to stop.
        .disable_signals()
        .shutdown_timeout(30)
        .run();
        let drainer = Drainer::new(settings, ctx.db.clone(), ctx.metrics.clone());
        Ok(Self {
            port,
            server,
            ctx,
            drainer,
            auto_redrive: settings.redriver.auto_redrive,
        })
    }

    /// The admin API's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn spawn_background(
        drainer: Drainer,
        ctx: Arc<Redriver>,
        auto_redrive: bool,
        stop: &watch::Sender<bool>,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let stopped = stop.subscribe();
        tasks.push(tokio::spawn(async move { drainer.run(stopped).await }));
        if auto_redrive {
            let stopped = stop.subscribe();
            tasks.push(tokio::spawn(async move {
                policy::run_policy(&ctx, stopped).await;
            }));
        }
        tasks
    }

    /// Starts the drainer, the policy and the admin API in the background; they stop when
    /// the handle is dropped or [`RunningRedriver::stop`]ped.
    pub fn start(self) -> RunningRedriver {
        let (stop, _) = watch::channel(false);
        let mut tasks =
            Self::spawn_background(self.drainer, self.ctx.clone(), self.auto_redrive, &stop);
        let handle = self.server.handle();
        tasks.push(tokio::spawn(async move {
            if let Err(error) = self.server.await {
                tracing::error!(%error, "the admin API stopped");
            }
        }));
        RunningRedriver {
            port: self.port,
            ctx: self.ctx,
            server: handle,
            stop,
            tasks,
        }
    }

    /// Runs until SIGTERM/SIGINT, then shuts down gracefully: readiness fails; every
    /// re-drive (an operator's request or the policy's pass) finishes the step it is in and
    /// stops, its audit record completed; the drainer finishes the dead letter it is storing
    /// (acknowledged after its commit; what it holds beyond that goes back to the queue); the
    /// admin API answers the requests in flight (up to 30 s).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stop = Arc::new(watch::channel(false).0);
        let tasks =
            Self::spawn_background(self.drainer, self.ctx.clone(), self.auto_redrive, &stop);
        let handle = self.server.handle();
        let shutdown = self.ctx.shutdown.clone();
        let stop_background = stop.clone();
        tokio::spawn(async move {
            http_support::shutdown::signal().await;
            tracing::info!("shutting down: finishing the current re-drive steps and dead letter");
            shutdown.begin();
            let _ = stop_background.send(true);
            handle.stop(true).await;
        });
        let served = self.server.await;
        // Also when the server ended by itself.
        self.ctx.shutdown.begin();
        let _ = stop.send(true);
        for task in tasks {
            let _ = task.await;
        }
        tracing::info!("redriver stopped");
        Ok(served?)
    }
}

/// A re-driver running in the background (tests); stops when dropped.
pub struct RunningRedriver {
    port: u16,
    ctx: Arc<Redriver>,
    server: ServerHandle,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningRedriver {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn context(&self) -> Arc<Redriver> {
        self.ctx.clone()
    }

    /// Stops everything and waits until it has.
    pub async fn stop(mut self) {
        self.ctx.shutdown.begin();
        let _ = self.stop.send(true);
        self.server.stop(true).await;
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for RunningRedriver {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        // Sends the stop command now; completion is not awaited.
        drop(self.server.stop(false));
    }
}

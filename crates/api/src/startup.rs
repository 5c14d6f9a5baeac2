//! Building and running the HTTP server. Tests call [`Application::build`] with port 0 and
//! read the bound port back.

use std::{future::Future, net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    App, HttpResponse, HttpServer,
    dev::{Server, Service as _},
    http::ConnectionType,
    middleware::from_fn,
    web,
};
use broker::{Publisher, Topology};
use http_support::{
    RouteTable, Shutdown,
    health::Dependencies,
    request::{path_error, query_error},
};
use settings::Settings;
use store::{TenantId, objects::Objects};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    auth::{KeyCache, MAX_CACHED_KEYS},
    cache::TtlCache,
    error::ApiError,
    events::EventHub,
    extract::JsonLimit,
    metrics::{self, ApiMetrics},
    openapi,
    origin::OriginPolicy,
    routes::{
        self,
        events::RESYNC_EVERY,
        images::UploadLimit,
        session::SessionLifetime,
        system_health::BreakerOpenLimit,
        tenant_events::{self, rereads::Rereads},
    },
    state::AppState,
    ui,
};

/// Job views cached at most per replica.
const MAX_CACHED_JOB_VIEWS: usize = 10_000;

/// A bound, not yet running, API server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    /// How long readiness fails before the listener closes.
    shutdown_delay: Duration,
}

impl Application {
    /// Connects to the database, broker and object store and binds the listener.
    ///
    /// An unreachable broker is not fatal: the API starts, `/readyz` reports it, and
    /// submissions answer 503 until it is back.
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let db = store::connect(&settings.database).await?;
        let publisher = Publisher::from_settings(settings);
        if !publisher.ready().await {
            tracing::warn!(
                "the broker is unreachable at start-up; submissions will fail until it is back"
            );
        }
        let objects = Objects::from_settings(&settings.storage)?;
        let job_views = Arc::new(TtlCache::new(
            Duration::from_millis(settings.http.job_cache_millis),
            MAX_CACHED_JOB_VIEWS,
        ));
        let events = {
            let job_views = job_views.clone();
            EventHub::start(
                settings.amqp.url.clone(),
                Topology::from_settings(settings),
                Duration::from_secs(settings.amqp.timeout_seconds),
                move |event| job_views.remove(&(TenantId(event.tenant_id), event.job_id)),
            )
        };
        let rereads = Rereads::new(
            db.clone(),
            RESYNC_EVERY,
            tenant_events::MARGIN,
            tenant_events::MAX_SNAPSHOTS as u64,
        );
        let state = web::Data::new(AppState {
            db,
            rereads,
            publisher,
            objects,
            events,
            keys: KeyCache::new(
                Duration::from_secs(settings.http.auth_cache_seconds),
                MAX_CACHED_KEYS,
            ),
            job_views,
            metrics: ApiMetrics::new()?,
            budget: crate::budget::Budget::from_settings(settings),
            shutdown: Shutdown::new(),
        });

        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))?;
        let port = listener.local_addr()?.port();
        let spec = Arc::new(openapi::spec());
        let route_table = web::Data::new(RouteTable::from_spec(&spec));
        let json_limit = JsonLimit(settings.http.max_json_bytes);
        let upload_limit = UploadLimit(settings.http.max_upload_bytes);
        let breaker_open_limit =
            web::Data::new(BreakerOpenLimit(settings.breaker.max_open_seconds));
        let origin_policy = web::Data::new(OriginPolicy::from_settings(&settings.http));
        let session_lifetime = web::Data::new(SessionLifetime(Duration::from_secs(
            settings.http.session_seconds,
        )));
        let app_state = state.clone();
        let dependencies: Arc<dyn Dependencies> = state.clone().into_inner();
        let dependencies = web::Data::from(dependencies);
        let http_metrics = state.metrics.http.clone();
        let shutdown = state.shutdown.clone();
        let mut server = HttpServer::new(move || {
            let shutdown = shutdown.clone();
            let spec = (*spec).clone();
            let served_spec = spec.clone();
            let (app, _) = App::new()
                .app_data(app_state.clone())
                .app_data(dependencies.clone())
                .app_data(route_table.clone())
                .app_data(json_limit)
                .app_data(upload_limit)
                .app_data(origin_policy.clone())
                .app_data(session_lifetime.clone())
                .app_data(breaker_open_limit.clone())
                .app_data(web::PathConfig::default().error_handler(path_error::<ApiError>))
                .app_data(web::QueryConfig::default().error_handler(query_error::<ApiError>))
                .wrap(from_fn(ui::security_headers))
                .wrap(TracingLogger::default())
                .wrap(http_metrics.clone())
                // While shutting down, each connection closes after its response: a client
                // keeping its connection alive would otherwise hold the shutdown open.
                .wrap_fn(move |req, srv| {
                    let response = srv.call(req);
                    let shutdown = shutdown.clone();
                    async move {
                        let mut response = response.await?;
                        if shutdown.is_begun() {
                            response
                                .response_mut()
                                .head_mut()
                                .set_connection_type(ConnectionType::Close);
                        }
                        Ok(response)
                    }
                })
                .into_utoipa_app()
                // Registered before the `/api` scope, which would otherwise claim the path.
                .map(|app| {
                    app.route(
                        "/api/openapi.json",
                        web::get().to(move || {
                            let spec = served_spec.clone();
                            async move { HttpResponse::Ok().json(spec) }
                        }),
                    )
                })
                .configure(http_support::health::configure)
                .service(utoipa_actix_web::scope("/api").configure(routes::configure))
                .split_for_parts();
            app.service(SwaggerUi::new("/docs/{_:.*}").url("/docs/openapi.json", spec))
                .service(web::redirect("/docs", "/docs/"))
                .route("/metrics", web::get().to(metrics::serve))
                // The web UI's files and pages, else 405/404 problems.
                .default_service(web::to(ui::serve))
        })
        .listen(listener)?
        // The shutdown is started by `run_until`, which first fails readiness and ends the
        // event streams.
        .disable_signals()
        .shutdown_timeout(settings.http.shutdown_grace_seconds);
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            state,
            shutdown_delay: Duration::from_secs(settings.http.shutdown_delay_seconds),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, then shuts down gracefully (see [`Application::run_until`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(http_support::shutdown::signal()).await
    }

    /// Serves until `stop` resolves, then shuts down gracefully: `/readyz` answers 503 and
    /// every event stream ends at once (clients reconnect to another replica); after
    /// `http.shutdown_delay_seconds` no new connections are accepted, and the requests in
    /// flight get up to `http.shutdown_grace_seconds` to finish.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = self.server.handle();
        let shutdown = self.state.shutdown.clone();
        let delay = self.shutdown_delay;
        tokio::spawn(async move {
            stop.await;
            tracing::info!(
                delay_seconds = delay.as_secs(),
                "shutting down: readiness fails and event streams end"
            );
            shutdown.begin();
            tokio::time::sleep(delay).await;
            tracing::info!("no new connections; finishing the requests in flight");
            handle.stop(true).await;
        });
        let served = self.server.await;
        tracing::info!("api stopped");
        served
    }
}

//! Prometheus metrics: one registry per process with `build_info`, the text encoder behind
//! every `/metrics` endpoint, and the HTTP server's request-duration histogram.

use std::{
    future::{Ready, ready},
    rc::Rc,
    time::Instant,
};

use actix_web::{
    Error, HttpResponse,
    body::MessageBody,
    dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
    http::Method,
};
use futures::future::LocalBoxFuture;
use prometheus::{HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry, TextEncoder};

/// A registry holding `build_info{service,version} 1`; `version` is the binary's
/// `CARGO_PKG_VERSION`.
pub fn registry(service: &str, version: &str) -> Result<Registry, prometheus::Error> {
    let registry = Registry::new();
    let info = IntGaugeVec::new(
        Opts::new(
            "build_info",
            "Always 1; the labels say which service and version this process runs.",
        ),
        &["service", "version"],
    )?;
    info.with_label_values(&[service, version]).set(1);
    registry.register(Box::new(info))?;
    Ok(registry)
}

/// The registry's metrics in Prometheus text format.
pub fn encode(registry: &Registry) -> Result<String, prometheus::Error> {
    TextEncoder::new().encode_to_string(&registry.gather())
}

/// A `/metrics` response: the registry in Prometheus text format.
pub fn respond(registry: &Registry) -> HttpResponse {
    match encode(registry) {
        Ok(text) => HttpResponse::Ok()
            .content_type(prometheus::TEXT_FORMAT)
            .body(text),
        Err(error) => HttpResponse::InternalServerError().body(error.to_string()),
    }
}

/// Buckets (seconds) for calls that may take up to minutes: Cohere calls, whole stages.
pub const SLOW_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// `http_server_request_duration_seconds{method,route,status}`: wrap an actix `App` in it.
///
/// `route` is the matched route's pattern (`/api/jobs/{job_id}`), never the concrete path,
/// and `unmatched` when no route matched, so the label set stays bounded. The duration runs
/// until the response head is ready (a streamed body, such as an event stream, is not
/// waited for).
#[derive(Clone)]
pub struct HttpMetrics {
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_server_request_duration_seconds",
                "HTTP requests served, by method, route pattern and status, with their duration until the response head.",
            ),
            &["method", "route", "status"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { duration })
    }

    fn observe(&self, method: &Method, route: Option<String>, status: u16, started: Instant) {
        let route = route.unwrap_or_else(|| "unmatched".to_string());
        self.duration
            .with_label_values(&[method_label(method), &route, &status.to_string()])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The method as a label: the standard ones by name, anything else as `_OTHER` (as
/// OpenTelemetry's HTTP conventions do), so a client cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

impl<S, B> Transform<S, ServiceRequest> for HttpMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = HttpMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(HttpMetricsService {
            service: Rc::new(service),
            metrics: self.clone(),
        }))
    }
}

pub struct HttpMetricsService<S> {
    service: Rc<S>,
    metrics: HttpMetrics,
}

impl<S, B> Service<ServiceRequest> for HttpMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let started = Instant::now();
        let method = req.method().clone();
        // An error (from a middleware inside) carries no request: match the path now for it.
        let pattern = req.match_pattern();
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let result = service.call(req).await;
            let (route, status) = match &result {
                // After routing: the pattern of the route that served the request.
                Ok(response) => (
                    response.request().match_pattern(),
                    response.status().as_u16(),
                ),
                Err(error) => (pattern, error.as_response_error().status_code().as_u16()),
            };
            metrics.observe(&method, route, status, started);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use actix_web::{App, test as actix_test, web};

    #[test]
    fn build_info_is_one_with_the_service_and_version() {
        let registry = registry("api", "1.2.3").unwrap();
        let text = encode(&registry).unwrap();
        assert!(
            text.contains(r#"build_info{service="api",version="1.2.3"} 1"#),
            "{text}"
        );
    }

    #[actix_web::test]
    async fn requests_are_labelled_by_route_pattern_and_unmatched_paths_are_not_kept() {
        let registry = registry("test", "0").unwrap();
        let metrics = HttpMetrics::new(&registry).unwrap();
        let app = actix_test::init_service(
            App::new()
                .wrap(metrics)
                .service(web::scope("/api").route(
                    "/things/{thing_id}",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                ))
                .default_service(web::to(|| async { HttpResponse::NotFound().finish() })),
        )
        .await;
        for path in ["/api/things/1", "/api/things/2", "/nowhere/42"] {
            actix_test::call_service(&app, actix_test::TestRequest::get().uri(path).to_request())
                .await;
        }
        let text = encode(&registry).unwrap();
        assert!(
            text.contains(r#"http_server_request_duration_seconds_count{method="GET",route="/api/things/{thing_id}",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"http_server_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1"#),
            "{text}"
        );
        assert!(!text.contains("/nowhere"), "{text}");
        assert!(!text.contains("things/1"), "{text}");
    }
}

//! The route table ([`ROUTES`], the one list the router is built from and the OpenAPI test
//! checks), the router, and the per-request metrics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::error::ApiError;
use crate::handlers;
use crate::state::AppState;

/// What a route does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The anomaly queue of a payroll month.
    Anomalies,
    /// One employee's work date.
    Day,
    /// Submit a correction.
    Correct,
    /// Close a payroll month.
    Close,
    /// Reopen a payroll month.
    Reopen,
    /// Closing history.
    Closings,
    /// Liveness.
    Healthz,
    /// Prometheus metrics.
    Metrics,
    /// This API's OpenAPI document.
    OpenApi,
}

/// One served route: method, path template (axum's and OpenAPI's `{param}` syntax), endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path template.
    pub path: &'static str,
    /// What answers.
    pub endpoint: Endpoint,
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

/// Every route the API serves, and nothing else is served.
pub const ROUTES: &[Route] = &[
    route("GET", "/v1/tenants/{tenant}/anomalies", Endpoint::Anomalies),
    route(
        "GET",
        "/v1/tenants/{tenant}/employees/{employee}/days/{date}",
        Endpoint::Day,
    ),
    route(
        "POST",
        "/v1/tenants/{tenant}/corrections",
        Endpoint::Correct,
    ),
    route(
        "POST",
        "/v1/tenants/{tenant}/months/{month}/close",
        Endpoint::Close,
    ),
    route(
        "POST",
        "/v1/tenants/{tenant}/months/{month}/reopen",
        Endpoint::Reopen,
    ),
    route(
        "GET",
        "/v1/tenants/{tenant}/months/{month}/closings",
        Endpoint::Closings,
    ),
    route("GET", "/healthz", Endpoint::Healthz),
    route("GET", "/metrics", Endpoint::Metrics),
    route("GET", "/openapi.yaml", Endpoint::OpenApi),
];

fn method_router(route: &Route) -> MethodRouter<Arc<AppState>> {
    let method: Method = route.method.parse().expect("ROUTES names valid methods");
    let filter = MethodFilter::try_from(method).expect("ROUTES names GET or POST");
    match route.endpoint {
        Endpoint::Anomalies => on(filter, handlers::anomalies),
        Endpoint::Day => on(filter, handlers::day),
        Endpoint::Correct => on(filter, handlers::correct),
        Endpoint::Close => on(filter, handlers::close),
        Endpoint::Reopen => on(filter, handlers::reopen),
        Endpoint::Closings => on(filter, handlers::closings),
        Endpoint::Healthz => on(filter, handlers::healthz),
        Endpoint::Metrics => on(filter, handlers::metrics),
        Endpoint::OpenApi => on(filter, handlers::openapi),
    }
}

/// The router, separate from serving so tests drive it with `oneshot`.
pub fn app(state: Arc<AppState>) -> Router {
    let mut paths: BTreeMap<&str, MethodRouter<Arc<AppState>>> = BTreeMap::new();
    for route in ROUTES {
        let methods = method_router(route);
        let merged = match paths.remove(route.path) {
            Some(existing) => existing.merge(methods),
            None => methods,
        };
        paths.insert(route.path, merged);
    }
    let mut router = Router::new();
    for (path, methods) in paths {
        router = router.route(path, methods);
    }
    router
        .fallback(|| async { ApiError::no_route().into_response() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed().into_response() })
        .layer(middleware::from_fn(track))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .with_state(state)
}

/// Counts requests by route template and status, and times them.
async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("admin_api_requests_total", "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("admin_api_request_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

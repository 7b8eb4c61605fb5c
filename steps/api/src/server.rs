//! The router over the route table, and serving it. The CLI (`sluice serve`) and the Lambda
//! binary build an [`ApiState`], optionally add a [`crate::RunStarter`] and extra routes (the
//! OAuth callback), and call [`router`] or [`serve`].

use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::error::ApiError;
use crate::routes::{Operation, ROUTES, Route};
use crate::state::ApiState;
use crate::{openapi, records, reidentify, runs};

/// The handler of a route of the table: the match is exhaustive, so no operation lacks one.
fn handler(route: &Route) -> MethodRouter<ApiState> {
    // Every method of the table converts (a routes.rs test checks it).
    let method = MethodFilter::try_from(route.method.clone()).unwrap_or(MethodFilter::GET);
    match route.operation {
        Operation::GetRecord => on(method, records::get_record),
        Operation::GetReidentifiedRecord => on(method, reidentify::get_reidentified_record),
        Operation::BatchGetRecords => on(method, records::batch_get),
        Operation::ListRecords => on(method, records::list_records),
        Operation::StartRun => on(method, runs::start_run),
        Operation::OpenApiDocument => on(method, || async { axum::Json(openapi::document()) }),
    }
}

const MAX_BODY_BYTES: usize = 512 * 1024;

/// The API: records, runs, `/openapi.json` and its Swagger UI at `/docs`, and any extra routes.
pub fn router(state: ApiState) -> Router {
    let extra = state.extra_routes();
    let mut api = Router::new();
    for route in ROUTES {
        api = api.route(route.path, handler(route));
    }
    let api = api
        .merge(openapi::swagger_ui_assets())
        .fallback(|| async { ApiError::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    let api = match extra {
        Some(extra) => api.merge(extra),
        None => api,
    };
    api.layer(axum::middleware::from_fn(crate::access::access))
}

/// The HTTP/1 parser's own caps, far above the API's limits (`access::MAX_*`), so that a
/// request head over a limit reaches the API and gets its JSON answer. Past these (and past
/// hyper's fixed 65,534-byte request target) hyper answers 431 or 414 itself, without a body.
const PARSER_MAX_HEAD_BYTES: usize = 1024 * 1024;
const PARSER_MAX_HEADER_FIELDS: usize = 1000;

/// Serves [`router`] on `addr` until Ctrl-C; logs the bound address (port 0 picks one). On
/// Ctrl-C it stops accepting and lets the requests in flight finish.
pub async fn serve(addr: SocketAddr, state: ApiState) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(address = %listener.local_addr()?, "Sluice API listening");
    serve_on(listener, state).await
}

/// [`serve`] on a listener already bound.
pub async fn serve_on(listener: tokio::net::TcpListener, state: ApiState) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto;

    let service = hyper_util::service::TowerToHyperService::new(router(state));
    let mut connections = auto::Builder::new(TokioExecutor::new());
    connections
        .http1()
        .max_buf_size(PARSER_MAX_HEAD_BYTES)
        .max_headers(PARSER_MAX_HEADER_FIELDS);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors, say: wait instead of spinning, as axum::serve does.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut ctrl_c => break,
        };
        let connection = connections
            .serve_connection_with_upgrades(TokioIo::new(stream), service.clone())
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

//! What wraps every request: the access log (one line per request: method, route template,
//! status, principal, latency; never keys, tokens or query values) and the error envelope for
//! answers the handlers did not make themselves (a path that is not UTF-8, a body over the
//! limit, a method the route does not take), so every error is the documented JSON.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The target of the access log's events: `RUST_LOG=sluice::access=off` turns it off.
pub const ACCESS_LOG_TARGET: &str = "sluice::access";

/// Who the request authenticated as, filled in by the `Principal` extractor.
#[derive(Clone, Default)]
pub(crate) struct PrincipalSlot(Arc<Mutex<Option<String>>>);

impl PrincipalSlot {
    pub(crate) fn set(&self, subject: &str) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(subject.to_string());
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

/// The longest request target (path and query) answered; a longer one gets 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most header bytes (names and values) and header fields answered; more get 431.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADER_FIELDS: usize = 100;

/// A request head over the limits above, refused in the JSON envelope before any route runs.
/// The server's HTTP parser is set well above them (see `server::serve`), so that a request
/// over a limit reaches this check rather than the parser's own bodiless 414 or 431.
fn head_over_limits(request: &Request) -> Option<Response> {
    let target = request.uri().path_and_query().map_or(0, |target| target.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(
            ApiError::with_status(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!("the request target is {target} bytes; at most {MAX_URI_BYTES} are answered"),
            )
            .into_response(),
        );
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADER_FIELDS || header_bytes > MAX_HEADER_BYTES {
        return Some(
            ApiError::with_status(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                format!(
                    "{} header fields of {header_bytes} bytes; at most {MAX_HEADER_FIELDS} fields and {MAX_HEADER_BYTES} bytes are answered",
                    headers.len()
                ),
            )
            .into_response(),
        );
    }
    None
}

pub(crate) async fn access(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    // The template (`/datasets/{dataset}/records/{id}`), never the concrete path or query.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let slot = PrincipalSlot::default();
    request.extensions_mut().insert(slot.clone());
    let response = match head_over_limits(&request) {
        Some(refused) => refused,
        None => enveloped(next.run(request).await),
    };
    let status = response.status().as_u16();
    tracing::info!(
        target: ACCESS_LOG_TARGET,
        method = %method,
        route = route.as_ref().map_or("(no route)", MatchedPath::as_str),
        status,
        principal = slot.get().as_deref().unwrap_or("-"),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

/// An error answer that is not already the JSON envelope becomes one, with a stable code.
fn enveloped(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::BAD_REQUEST => ("invalid_request", "the request is malformed (path, query or body)"),
        StatusCode::NOT_FOUND => ("not_found", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this route does not take that method"),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the body is over the limit"),
        StatusCode::URI_TOO_LONG => ("uri_too_long", "the request line is too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send the body as application/json"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ("headers_too_large", "the request headers are too large"),
        s if s.is_server_error() => ("internal", "the server failed; the error was logged"),
        _ => ("invalid_request", "the request was refused"),
    };
    let mut answer = ApiError::with_status(status, code, message).into_response();
    // Keep what the framework said about the answer (Allow on a 405, say).
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut all) = self.0.lock() {
                all.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_line_per_request_with_the_route_template_and_principal_never_values() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let router = Router::new()
            .route(
                "/items/{id}",
                get(|request: Request| async move {
                    if let Some(slot) = request.extensions().get::<PrincipalSlot>() {
                        slot.set("consumer-analytics");
                    }
                    "ok"
                }),
            )
            .layer(axum::middleware::from_fn(access));
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let request = Request::get("/items/C-0042?api_key=slk_secret")
                    .body(Body::empty())
                    .unwrap();
                let response = router.clone().oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK);
                let missing = Request::get("/nope?token=t0k").body(Body::empty()).unwrap();
                let response = router.oneshot(missing).await.unwrap();
                assert_eq!(response.status(), StatusCode::NOT_FOUND);
            });
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = &lines[0]["fields"];
        assert_eq!(first["route"], "/items/{id}");
        assert_eq!(first["method"], "GET");
        assert_eq!(first["status"], 200);
        assert_eq!(first["principal"], "consumer-analytics");
        assert!(first["latency_ms"].as_f64().is_some());
        assert_eq!(lines[1]["fields"]["status"], 404);
        for secret in ["C-0042", "slk_secret", "t0k", "api_key"] {
            assert!(!text.contains(secret), "{secret} reached the access log: {text}");
        }
    }
}

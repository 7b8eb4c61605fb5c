//! The API's one route table: each operation's method, path template and the scope it needs.
//! The router is built from it (`server::router`), the Lambda authorizer answers from it
//! before API Gateway forwards a request ([`required_access`]), the handlers check the scope it
//! names, and the OpenAPI document's `x-required-scope` is read from it (a test holds the
//! document's paths to this table).

use axum::http::Method;

use crate::auth::{RECORDS_READ, RECORDS_REIDENTIFY, RUNS_START};

/// Every operation the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    GetRecord,
    GetReidentifiedRecord,
    BatchGetRecords,
    ListRecords,
    StartRun,
    OpenApiDocument,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub operation: Operation,
    pub method: Method,
    /// axum's template syntax: `{name}` is one whole path segment.
    pub path: &'static str,
    /// None for public routes.
    pub scope: Option<&'static str>,
}

pub const ROUTES: &[Route] = &[
    Route {
        operation: Operation::GetRecord,
        method: Method::GET,
        path: "/datasets/{dataset}/records/{id}",
        scope: Some(RECORDS_READ),
    },
    Route {
        operation: Operation::GetReidentifiedRecord,
        method: Method::GET,
        path: "/datasets/{dataset}/records/{id}/reidentified",
        scope: Some(RECORDS_REIDENTIFY),
    },
    Route {
        operation: Operation::BatchGetRecords,
        method: Method::POST,
        path: "/datasets/{dataset}/records:batchGet",
        scope: Some(RECORDS_READ),
    },
    Route {
        operation: Operation::ListRecords,
        method: Method::GET,
        path: "/datasets/{dataset}/records",
        scope: Some(RECORDS_READ),
    },
    Route {
        operation: Operation::StartRun,
        method: Method::POST,
        path: "/runs",
        scope: Some(RUNS_START),
    },
    Route {
        operation: Operation::OpenApiDocument,
        method: Method::GET,
        path: "/openapi.json",
        scope: None,
    },
];

impl Operation {
    /// Its row: the table lists the operations in their declaration order (a test checks it).
    pub fn route(self) -> &'static Route {
        &ROUTES[self as usize]
    }

    /// The scope this operation needs (public operations need none).
    pub fn scope(self) -> Option<&'static str> {
        self.route().scope
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAccess {
    pub scope: &'static str,
    pub dataset: Option<String>,
}

/// The route `method path` is, and the dataset its `{dataset}` segment names.
pub fn route_of(method: &str, path: &str) -> Option<(&'static Route, Option<String>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    ROUTES.iter().find_map(|route| {
        if !route.method.as_str().eq_ignore_ascii_case(method) {
            return None;
        }
        let template: Vec<&str> = route.path.trim_matches('/').split('/').collect();
        if template.len() != segments.len() {
            return None;
        }
        let mut dataset = None;
        for (pattern, segment) in template.iter().zip(&segments) {
            match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(_) if segment.is_empty() => return None,
                Some("dataset") => dataset = Some(segment.to_string()),
                Some(_) => {}
                None if pattern != segment => return None,
                None => {}
            }
        }
        Some((route, dataset))
    })
}

/// The access `method path` needs; None for public routes (`/openapi.json`, `/docs`) and
/// unknown ones (which the router answers 404).
pub fn required_access(method: &str, path: &str) -> Option<RouteAccess> {
    let (route, dataset) = route_of(method, path)?;
    Some(RouteAccess {
        scope: route.scope?,
        dataset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_routes_need_their_scope_on_their_dataset_and_runs_need_start() {
        assert_eq!(
            required_access("GET", "/datasets/orders/records/42"),
            Some(RouteAccess {
                scope: RECORDS_READ,
                dataset: Some("orders".into())
            })
        );
        assert_eq!(
            required_access("post", "/datasets/orders/records:batchGet")
                .unwrap()
                .scope,
            RECORDS_READ
        );
        assert_eq!(required_access("POST", "/runs").unwrap().scope, RUNS_START);
        assert_eq!(
            required_access("GET", "/datasets/orders/records/42/reidentified"),
            Some(RouteAccess {
                scope: RECORDS_REIDENTIFY,
                dataset: Some("orders".into())
            })
        );
        assert_eq!(required_access("GET", "/openapi.json"), None);
        assert_eq!(required_access("DELETE", "/datasets/orders/records/42"), None);
        assert_eq!(required_access("GET", "/datasets//records/42"), None);
        assert_eq!(required_access("GET", "/datasets/orders/records/42/other"), None);
        assert_eq!(required_access("POST", "/datasets/orders/records:batchPut"), None);
    }

    #[test]
    fn every_operation_has_its_row_and_every_route_is_unique() {
        for (index, route) in ROUTES.iter().enumerate() {
            assert_eq!(route.operation as usize, index, "ROUTES is in declaration order");
            assert!(
                axum::routing::MethodFilter::try_from(route.method.clone()).is_ok(),
                "the router can route {}",
                route.method
            );
        }
        assert_eq!(
            Operation::OpenApiDocument as usize + 1,
            ROUTES.len(),
            "the last operation has the last row"
        );
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!((&a.method, a.path) != (&b.method, b.path), "{a:?} twice");
            }
        }
    }
}

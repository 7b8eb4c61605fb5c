//! Which scope each route needs, by method and path: what the Lambda authorizer checks before
//! API Gateway forwards a request (the router's handlers check the same scopes themselves).

use super::{RECORDS_READ, RECORDS_REIDENTIFY, RUNS_START};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAccess {
    pub scope: &'static str,
    pub dataset: Option<String>,
}

/// The access `method path` needs; None for public routes (`/openapi.json`) and unknown ones.
pub fn required_access(method: &str, path: &str) -> Option<RouteAccess> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = method.to_ascii_uppercase();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["datasets", dataset, "records"])
        | ("GET", ["datasets", dataset, "records", _])
        | ("POST", ["datasets", dataset, "records:batchGet"]) => Some(RouteAccess {
            scope: RECORDS_READ,
            dataset: Some(dataset.to_string()),
        }),
        ("GET", ["datasets", dataset, "records", _, "reidentified"]) => Some(RouteAccess {
            scope: RECORDS_REIDENTIFY,
            dataset: Some(dataset.to_string()),
        }),
        ("POST", ["runs"]) => Some(RouteAccess {
            scope: RUNS_START,
            dataset: None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_routes_need_read_on_their_dataset_and_runs_need_start() {
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
    }
}

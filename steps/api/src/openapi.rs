//! The OpenAPI 3.1 document served at `/openapi.json`, generated (utoipa) from the handlers'
//! own `#[utoipa::path]` attributes and the types they read and answer, and the Swagger UI
//! over it at `/docs` (assets compiled in from the crate, never fetched). Each operation's
//! `x-required-scope` comes from the authorizer's route table, so the document cannot say
//! another scope than the one checked.

use serde_json::Value;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes::required_access;
use crate::schema::Record;
use crate::{records, reidentify, runs};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice records API",
        description = "Read de-identified records by id, in batches, or page by page, re-identify a record \
            (audited), and start pipeline runs. A dataset the caller may not read answers 404, exactly like a missing one."
    ),
    paths(
        records::get_record,
        reidentify::get_reidentified_record,
        records::batch_get,
        records::list_records,
        runs::start_run,
        openapi_json,
    ),
    components(schemas(Record, ErrorBody, ErrorDetail)),
    modifiers(&SecuritySchemes, &RequiredScopes),
    security(("apiKeyHeader" = []), ("apiKeyQuery" = []), ("apiKeyCookie" = []), ("bearer" = []))
)]
struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", operation_id = "openapi", security(()),
    responses((status = 200, description = "OpenAPI 3.1")))]
#[allow(dead_code)]
fn openapi_json() {}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let key = |value| SecurityScheme::ApiKey(value);
        components.add_security_scheme("apiKeyHeader", key(ApiKey::Header(ApiKeyValue::new("x-api-key"))));
        components.add_security_scheme("apiKeyQuery", key(ApiKey::Query(ApiKeyValue::new("api_key"))));
        components.add_security_scheme("apiKeyCookie", key(ApiKey::Cookie(ApiKeyValue::new("api_key"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT (RS256 or ES256, client credentials)")
                    .build(),
            ),
        );
    }
}

/// `x-required-scope` on each operation, from the one route table the authorizer uses.
struct RequiredScopes;

impl Modify for RequiredScopes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let concrete = path.replace("{dataset}", "d").replace("{id}", "i");
            let operations = [
                ("GET", item.get.as_mut()),
                ("POST", item.post.as_mut()),
                ("PUT", item.put.as_mut()),
                ("DELETE", item.delete.as_mut()),
            ];
            for (method, operation) in operations {
                let (Some(operation), Some(access)) = (operation, required_access(method, &concrete)) else {
                    continue;
                };
                let extensions = operation.extensions.get_or_insert_with(Default::default);
                extensions.merge(
                    utoipa::openapi::extensions::ExtensionsBuilder::new()
                        .add("x-required-scope", access.scope)
                        .build(),
                );
            }
        }
    }
}

pub fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null)
}

/// `GET /docs`: Swagger UI over `/openapi.json` (served by the route table), with its
/// "Authorize" buttons for the API key (header, query, cookie) and the bearer token, and
/// "Try it out" against this server.
pub fn swagger_ui_assets() -> axum::Router<crate::state::ApiState> {
    let config = utoipa_swagger_ui::Config::from("/openapi.json");
    axum::Router::<crate::state::ApiState>::new().merge(utoipa_swagger_ui::SwaggerUi::new("/docs").config(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ROUTES;

    #[test]
    fn the_document_has_exactly_the_route_tables_operations_and_scopes() {
        let document = document();
        let mut documented = Vec::new();
        for (path, operations) in document["paths"].as_object().unwrap() {
            for (method, operation) in operations.as_object().unwrap() {
                let scope = operation["x-required-scope"].as_str().map(str::to_string);
                documented.push((method.to_uppercase(), path.clone(), scope));
            }
        }
        let mut table: Vec<_> = ROUTES
            .iter()
            .map(|r| {
                (
                    r.method.as_str().to_string(),
                    r.path.to_string(),
                    r.scope.map(str::to_string),
                )
            })
            .collect();
        documented.sort();
        table.sort();
        assert_eq!(documented, table);
    }
}

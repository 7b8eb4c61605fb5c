//! The OpenAPI 3.1 document served at `/openapi.json`, written out by hand so it says exactly
//! what the handlers do (a test checks every route in it is served).

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn common_errors() -> Value {
    json!({
        "401": error_response("No or invalid credentials (`unauthorized`); carries `WWW-Authenticate`."),
        "403": error_response("Authenticated without the scope this route needs (`insufficient_scope`)."),
        "503": error_response("The data store or identity provider is busy (`unavailable`); retry."),
    })
}

fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    base
}

pub fn document() -> Value {
    let security = json!([{"apiKeyHeader": []}, {"apiKeyQuery": []}, {"apiKeyCookie": []}, {"bearer": []}]);
    let dataset = json!({"name": "dataset", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sluice records API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Read de-identified records by id, in batches, or page by page, and start pipeline runs. \
                A dataset the caller may not read answers 404, exactly like a missing one."
        },
        "security": security,
        "paths": {
            "/datasets/{dataset}/records/{id}": {"get": {
                "operationId": "getRecord",
                "summary": "One record by id",
                "x-required-scope": "records:read",
                "parameters": [dataset, {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 1024}}],
                "responses": merged(json!({
                    "200": {"description": "The record", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}},
                    "404": error_response("No such record or dataset (`not_found`)."),
                }), common_errors()),
            }},
            "/datasets/{dataset}/records/{id}/reidentified": {"get": {
                "operationId": "getReidentifiedRecord",
                "summary": "One record with its tokenized values restored from the dataset's vault (audited)",
                "description": "Tokens this dataset's vault does not hold (another dataset's, say) are left as they are. \
                    Every call is written to the audit log: who, which dataset, which record, how many values; never a value.",
                "x-required-scope": "records:reidentify",
                "parameters": [dataset, {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 1024}}],
                "responses": merged(json!({
                    "200": {"description": "The record, re-identified", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Record"}}}},
                    "404": error_response("No such record or dataset (`not_found`)."),
                }), common_errors()),
            }},
            "/datasets/{dataset}/records:batchGet": {"post": {
                "operationId": "batchGetRecords",
                "summary": "Up to 100 records by id",
                "x-required-scope": "records:read",
                "parameters": [dataset],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["ids"], "additionalProperties": false,
                    "properties": {"ids": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"type": "string"}}}
                }}}},
                "responses": merged(json!({
                    "200": {"description": "Found records in request order, and the ids not found", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["records", "missing"],
                        "properties": {"records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}, "missing": {"type": "array", "items": {"type": "string"}}}
                    }}}},
                    "400": error_response("Malformed body or too many ids (`invalid_request`)."),
                    "404": error_response("No such dataset (`not_found`)."),
                }), common_errors()),
            }},
            "/datasets/{dataset}/records": {"get": {
                "operationId": "listRecords",
                "summary": "A page of records in id order",
                "x-required-scope": "records:read",
                "parameters": [
                    dataset,
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                    {"name": "cursor", "in": "query", "description": "next_cursor of the previous page, unchanged", "schema": {"type": "string"}}
                ],
                "responses": merged(json!({
                    "200": {"description": "One page", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["records", "next_cursor"],
                        "properties": {"records": {"type": "array", "items": {"$ref": "#/components/schemas/Record"}}, "next_cursor": {"type": ["string", "null"]}}
                    }}}},
                    "400": error_response("Bad limit (`invalid_request`) or a cursor this API did not issue for this dataset (`invalid_cursor`)."),
                    "404": error_response("No such dataset (`not_found`)."),
                }), common_errors()),
            }},
            "/runs": {"post": {
                "operationId": "startRun",
                "summary": "Start a pipeline execution",
                "x-required-scope": "runs:start",
                "requestBody": {"required": false, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": merged(json!({
                    "202": {"description": "Started", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["run_id", "started_at"],
                        "properties": {"run_id": {"type": "string"}, "started_at": {"type": "string", "format": "date-time"}}
                    }}}},
                    "400": error_response("The input is not a JSON object (`invalid_request`)."),
                    "413": error_response("The input is larger than 256 KiB (`payload_too_large`)."),
                }), common_errors()),
            }},
            "/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "security": [], "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {
            "securitySchemes": {
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
                "apiKeyCookie": {"type": "apiKey", "in": "cookie", "name": "api_key"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256 or ES256, client credentials)"},
            },
            "schemas": {
                "Record": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}, "additionalProperties": true},
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": ["unauthorized", "insufficient_scope", "not_found", "invalid_request", "invalid_cursor", "payload_too_large", "unavailable", "internal"]},
                        "message": {"type": "string"}
                    }
                }}},
            },
        },
    })
}

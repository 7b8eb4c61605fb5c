//! The OpenAPI schemas the handlers' attributes name that are not one of their own types: a
//! record (its columns depend on the dataset) and the errors every authenticated route may give.

use utoipa::openapi::{ObjectBuilder, RefOr, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ErrorBody;

/// A record: `{"id": <key>, ...its columns}`; which columns depends on the dataset.
pub struct Record;

impl PartialSchema for Record {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property("id", ObjectBuilder::new().schema_type(Type::String))
            .required("id")
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(true)))
            .description(Some("The record's key as `id`, and its columns"))
            .into()
    }
}

impl ToSchema for Record {}

/// The answers every authenticated route may give besides its own.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum CommonErrors {
    /// No or invalid credentials (`unauthorized`); carries `WWW-Authenticate`.
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody<'static>),
    /// Authenticated without the scope this route needs (`insufficient_scope`).
    #[response(status = 403)]
    Forbidden(ErrorBody<'static>),
    /// The data store or identity provider is busy (`unavailable`); retry.
    #[response(status = 503)]
    Unavailable(ErrorBody<'static>),
}

/// The path of a dataset's routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct DatasetPath {
    /// The dataset
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    dataset: String,
}

/// The path of one record's routes.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct RecordPath {
    /// The dataset
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    dataset: String,
    /// The record's key
    #[param(max_length = 1024)]
    id: String,
}

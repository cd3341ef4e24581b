//! The error body every admin route answers with, as the OpenAPI document describes it (the
//! same shape `ApiError` writes).

use serde::Serialize;
use utoipa::ToSchema;

/// The error body of every admin route.
#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// What happened and how to fix it.
    message: String,
    /// OpenAI-style error type, e.g. `invalid_request_error`.
    #[serde(rename = "type")]
    kind: String,
    /// The request field at fault, if any.
    param: Option<String>,
    /// Keyward's error code, e.g. `invalid_request`, `not_found`, `forbidden`.
    code: String,
}

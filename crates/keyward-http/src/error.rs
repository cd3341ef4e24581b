//! The one mapping from errors to responses: SPEC `code`, HTTP status and OpenAI's error shape
//! `{"error": {"message", "type", "param", "code"}}`. Internal failures reach clients as a
//! generic message; the detail goes to the log with the request id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::ErrorCode;
use keyward_domain::DomainError;
use serde_json::json;

/// An error on its way to a client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub param: Option<String>,
    /// Seconds for a `retry-after` header (rate limits).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::InvalidRequest,
            message: message.into(),
            param: Some(param.into()),
            retry_after: None,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        let code = err.code();
        let param = match &err {
            DomainError::InvalidInput { field, .. } => Some(field.clone()),
            _ => None,
        };
        let retry_after = match &err {
            DomainError::RateLimited(refused) => Some(refused.retry_after_secs),
            _ => None,
        };
        let message = match code {
            // Operator problems: the client learns the kind; the log gets the detail.
            ErrorCode::Internal | ErrorCode::ServiceUnavailable => {
                tracing::error!(code = code.as_str(), error = %err, "request failed");
                match code {
                    ErrorCode::ServiceUnavailable => {
                        "Keyward's database is unavailable; retry shortly (the operator has the details in the logs with this request id)".to_owned()
                    }
                    _ => "internal error; the operator has the details in the logs with this request id".to_owned(),
                }
            }
            ErrorCode::CredentialUnreadable => {
                tracing::error!(code = code.as_str(), error = %err, "credential unreadable");
                err.to_string()
            }
            _ => err.to_string(),
        };
        Self {
            code,
            message,
            param,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "error": {
                "message": self.message,
                "type": self.code.openai_type(),
                "param": self.param,
                "code": self.code.as_str(),
            }
        });
        with_retry_after((status, Json(body)).into_response(), self.retry_after)
    }
}

/// Adds `retry-after` (whole seconds) when the error has one.
pub(crate) fn with_retry_after(mut response: Response, retry_after: Option<u64>) -> Response {
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
    response
}

pub(crate) async fn not_found_fallback() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such route; the admin API is described at /admin/v1/openapi.json",
    )
}

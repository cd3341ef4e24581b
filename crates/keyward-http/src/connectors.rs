//! `POST /connectors/{id}/messages`: where a chat platform delivers a user's message to a
//! tenant's connector. Authenticated by the platform's signed bearer token, not by Keyward's
//! keys; every refusal is decided (and counted) by the domain before any model call.
//!
//! Invariant: the body is handed to the domain unread; nothing of it is logged, and error
//! answers carry no content.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use keyward_domain::{ChatAnswer, ChatResponse, ConnectorRefusal, TeamsAccepted};
use serde_json::json;

use crate::error::ApiError;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/connectors/{id}/messages", post(message))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

async fn message(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "the message body is too large or could not be read",
        );
    };
    match state
        .keyward
        .connector_message(&id, bearer(&headers), &body)
        .await
    {
        Ok(ChatResponse::GoogleChat(ChatAnswer::Text(text))) => {
            Json(json!({"text": text.expose()})).into_response()
        }
        Ok(ChatResponse::GoogleChat(ChatAnswer::Nothing)) => Json(json!({})).into_response(),
        Ok(ChatResponse::Teams(TeamsAccepted::Replying)) => StatusCode::ACCEPTED.into_response(),
        Ok(ChatResponse::Teams(TeamsAccepted::Acknowledged)) => StatusCode::OK.into_response(),
        Err(ConnectorRefusal::NotFound) => refusal(StatusCode::NOT_FOUND, "no such connector"),
        Err(ConnectorRefusal::Disabled) => {
            refusal(StatusCode::FORBIDDEN, "the connector is disabled")
        }
        Err(ConnectorRefusal::Unverified(_)) => refusal(
            StatusCode::UNAUTHORIZED,
            "the request is not signed by the chat platform for this connector",
        ),
        Err(ConnectorRefusal::KeysUnavailable) => refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            "the chat platform's signing keys cannot be fetched; retry later",
        ),
        Err(ConnectorRefusal::Malformed(what)) => refusal(
            StatusCode::BAD_REQUEST,
            &format!("the body is not a {what}"),
        ),
        Err(ConnectorRefusal::Domain(error)) => ApiError::from(error).into_response(),
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message}}))).into_response()
}

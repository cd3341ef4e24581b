//! Who is calling the admin API: `Authorization: Bearer TOKEN` or `x-api-key: TOKEN`, where
//! TOKEN is the operator's `KEYWARD_ADMIN_TOKEN` (compared in constant time) or a `kw_`
//! platform key; or, from the web console, a session cookie with its CSRF token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use keyward_domain::{Actor, DomainError};

use crate::error::ApiError;
use crate::AppState;

/// The authenticated caller of an admin route.
pub struct AdminActor(pub Actor);

/// The token a client presented, from either header SPEC allows.
pub(crate) fn presented_token(headers: &HeaderMap) -> Option<&str> {
    // A usable Bearer token wins; otherwise `x-api-key` (an SDK may send both, with an
    // unrelated Authorization header).
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if bearer.is_some() {
        return bearer;
    }
    headers
        .get("x-api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

impl FromRequestParts<AppState> for AdminActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = presented_token(&parts.headers) else {
            // The web console's session stands in for a bearer token.
            return match crate::console::session_cookie(&parts.headers) {
                Some(session) => Ok(Self(
                    crate::console::session_actor(state, &parts.headers, session).await?,
                )),
                None => Err(DomainError::Unauthenticated.into()),
            };
        };
        if let Some(admin_token) = &state.admin_token {
            if admin_token.matches(token) {
                return Ok(Self(Actor::Operator));
            }
        }
        if token.starts_with("kw_") {
            return Ok(Self(state.keyward.authenticate_platform_key(token).await?));
        }
        Err(DomainError::Unauthenticated.into())
    }
}

//! The web console: its page and assets under `/console/`, and its session under
//! `/console/api/session` (GET: who is signed in and the CSRF token; POST: sign in with a
//! tenant admin key or the operator token; DELETE: sign out). Everything else the console
//! shows comes from `/admin/v1`, which accepts a console session in place of a bearer token
//! ([`session_actor`]).
//!
//! Invariants: the token typed at sign-in is checked exactly as the admin API checks a bearer
//! token and is never stored, logged or sent back; the browser holds only an `HttpOnly`,
//! `SameSite=Strict` cookie; every request made with the cookie carries the session's CSRF
//! token (the sign-in request, the `kw_console_signin` cookie's value) and, when the browser
//! names an origin, it is Keyward's own; failed sign-ins are throttled per client address;
//! every console response carries [`keyward_console::policy::HEADERS`].

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use keyward_console::{assets, cookie, csrf, policy, throttle::SignInThrottle};
use keyward_core::secret::ConsoleSessionToken;
use keyward_core::ErrorCode;
use keyward_domain::{Actor, DomainError, SessionLimits};
use serde::Deserialize;

use crate::error::ApiError;
use crate::json::ApiJson;
use crate::AppState;

/// The console's settings and this process's sign-in throttle.
pub struct ConsoleState {
    pub limits: SessionLimits,
    /// `server.public_url`, when set: the origin the console is reached at.
    pub public_url: Option<url::Url>,
    throttle: SignInThrottle,
}

impl std::fmt::Debug for ConsoleState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleState")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ConsoleState {
    /// Five failed sign-ins per address and five minutes, 10,000 addresses remembered.
    pub fn new(limits: SessionLimits, public_url: Option<url::Url>) -> Self {
        Self {
            limits,
            public_url,
            throttle: SignInThrottle::new(5, Duration::from_secs(300), 10_000),
        }
    }
}

impl ConsoleState {
    /// Refuses an address that failed to authenticate too often (429 with `retry-after`).
    pub(crate) fn check_throttle(&self, address: Option<IpAddr>) -> Result<(), ApiError> {
        let Some(wait) =
            address.and_then(|address| self.throttle.wait_secs(address, Instant::now()))
        else {
            return Ok(());
        };
        let mut refused = ApiError::new(
            ErrorCode::RateLimited,
            format!("too many failed sign-ins from this address; try again in {wait} s"),
        );
        refused.retry_after = Some(wait);
        Err(refused)
    }

    /// Counts a failed authentication from `address`.
    pub(crate) fn record_failure(&self, address: Option<IpAddr>) {
        if let Some(address) = address {
            self.throttle.failed(address, Instant::now());
        }
    }
}

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { axum::response::Redirect::permanent("/console/") }),
        )
        .route("/console/", get(page))
        .route("/console/assets/{name}", get(asset))
        .route(
            "/console/api/session",
            get(session).post(sign_in).delete(sign_out),
        )
        .route("/console/{*view}", get(page))
        .layer(axum::middleware::map_response(with_policy_headers))
}

async fn with_policy_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in policy::HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn page(headers: HeaderMap) -> Response {
    serve_asset(assets::page(), &headers)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    match assets::asset(&name) {
        Some(asset) => serve_asset(asset, &headers),
        None => ApiError::new(ErrorCode::NotFound, "no such console asset").into_response(),
    }
}

fn serve_asset(asset: &'static assets::Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    let common = [
        (header::ETAG, asset.etag.clone()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.body,
    )
        .into_response()
}

/// Whether cookies get `Secure`: `server.public_url` is `https://`, or the request came over
/// TLS to a proxy in front (`x-forwarded-proto: https`; only ever makes the cookie stricter).
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .console
        .public_url
        .as_ref()
        .is_some_and(|url| url.scheme() == "https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

/// The value of console cookie `name` in a request's `Cookie` headers, if present and safe.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| cookie::read(value, name))
}

/// The session cookie of a request, if it has one.
pub(crate) fn session_cookie(headers: &HeaderMap) -> Option<ConsoleSessionToken> {
    cookie_value(headers, cookie::SESSION).map(ConsoleSessionToken::presented)
}

fn presented_csrf(headers: &HeaderMap) -> &str {
    headers
        .get(csrf::HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// A browser's `Origin`, when it sent one, must be Keyward's: `server.public_url`'s origin, or
/// this request's own `Host` (either scheme).
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if let Some(public) = &state.console.public_url {
        return origin == public.origin().ascii_serialization();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    !host.is_empty()
        && [format!("http://{host}"), format!("https://{host}")].contains(&origin.to_owned())
}

const CSRF_REFUSED: &str = "this console request has no valid CSRF token or comes from another site; reload the console and try again";

/// Refuses a request whose CSRF token is not `expected` or whose browser names another origin.
fn check_request(state: &AppState, headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    if csrf::matches(expected, presented_csrf(headers)) && same_origin(state, headers) {
        Ok(())
    } else {
        Err(DomainError::Forbidden(CSRF_REFUSED).into())
    }
}

/// The actor of a request authenticated by a console session (the admin API's alternative to
/// a bearer token): the cookie, the session's CSRF token in `x-keyward-csrf`, Keyward's origin.
pub(crate) async fn session_actor(
    state: &AppState,
    headers: &HeaderMap,
    token: ConsoleSessionToken,
) -> Result<Actor, ApiError> {
    check_request(state, headers, &csrf::token_for(token.expose_secret()))?;
    Ok(state
        .keyward
        .console_session_actor(&token, state.console.limits)
        .await?)
}

/// `GET /console/api/session`: who is signed in, with the CSRF token for later requests; when
/// no one is, the sign-in CSRF token (and its cookie).
async fn session(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        match state
            .keyward
            .console_session_actor(&token, state.console.limits)
            .await
        {
            Ok(actor) => return Ok(Json(signed_in_view(&actor, &token)).into_response()),
            Err(DomainError::Unauthenticated) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let (value, set) = match cookie_value(&headers, cookie::SIGN_IN) {
        Some(value) => (value.to_owned(), None),
        None => {
            let fresh = ConsoleSessionToken::generate().map_err(|_| {
                ApiError::new(ErrorCode::Internal, "the system's random source failed")
            })?;
            let value = fresh.expose_secret().to_owned();
            let attributes = cookie::Attributes {
                secure: secure(&state, &headers),
                max_age_secs: 3600,
            };
            (
                value.clone(),
                Some(cookie::set_cookie(cookie::SIGN_IN, &value, attributes)),
            )
        }
    };
    let body = Json(serde_json::json!({ "signed_in": false, "csrf_token": value }));
    Ok(match set {
        Some(set) => ([(header::SET_COOKIE, set)], body).into_response(),
        None => body.into_response(),
    })
}

fn signed_in_view(actor: &Actor, token: &ConsoleSessionToken) -> serde_json::Value {
    let (role, tenant, key) = match actor {
        Actor::Operator => ("operator", None, None),
        Actor::TenantAdmin { tenant, key } => (
            "tenant_admin",
            Some(tenant.to_string()),
            Some(key.to_string()),
        ),
        Actor::Member { .. } => ("member", None, None),
    };
    serde_json::json!({
        "signed_in": true,
        "role": role,
        "tenant_id": tenant,
        "key_id": key,
        "csrf_token": csrf::token_for(token.expose_secret()),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    token: keyward_core::secret::PresentedToken,
}

/// `POST /console/api/session`: signs in with `{"token": …}`.
async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<Response, ApiError> {
    let expected = cookie_value(&headers, cookie::SIGN_IN).unwrap_or_default();
    check_request(&state, &headers, expected)?;
    let address: IpAddr = peer.ip();
    state.console.check_throttle(Some(address))?;
    let actor = match authenticate(&state, body.token.expose_secret().trim()).await {
        Ok(actor) => actor,
        Err(err) => {
            state.console.record_failure(Some(address));
            return Err(err);
        }
    };
    state.console.throttle.succeeded(address);
    let token = state
        .keyward
        .start_console_session(&actor, state.console.limits)
        .await?;
    let secure = secure(&state, &headers);
    let attributes = cookie::Attributes {
        secure,
        max_age_secs: state.console.limits.absolute.as_secs(),
    };
    let mut response = Json(signed_in_view(&actor, &token)).into_response();
    let cookies = [
        cookie::set_cookie(cookie::SESSION, token.expose_secret(), attributes),
        cookie::clear_cookie(cookie::SIGN_IN, secure),
    ];
    for set in cookies {
        if let Ok(value) = HeaderValue::from_str(&set) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    Ok(response)
}

/// The operator token (constant time) or a tenant admin `kw_` key; anything else is 401 with
/// a message that says what the console accepts.
async fn authenticate(state: &AppState, token: &str) -> Result<Actor, ApiError> {
    if let Some(admin_token) = &state.admin_token {
        if admin_token.matches(token) {
            return Ok(Actor::Operator);
        }
    }
    let refused = || {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "sign in with a tenant admin key (kw_…) or the operator token; this one is not valid, revoked or expired",
        )
    };
    if !token.starts_with("kw_") {
        return Err(refused());
    }
    match state.keyward.authenticate_platform_key(token).await {
        Ok(Actor::Member { .. }) => Err(DomainError::Forbidden(
            "a member key cannot sign in to the console; use a key with role `admin`",
        )
        .into()),
        Ok(actor) => Ok(actor),
        Err(DomainError::InvalidPlatformKey) => Err(refused()),
        Err(err) => Err(err.into()),
    }
}

/// `DELETE /console/api/session`: signs out, ending the session on every replica.
async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let secure = secure(&state, &headers);
    if let Some(token) = session_cookie(&headers) {
        check_request(&state, &headers, &csrf::token_for(token.expose_secret()))?;
        state.keyward.end_console_session(&token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            cookie::clear_cookie(cookie::SESSION, secure),
        )],
    )
        .into_response())
}

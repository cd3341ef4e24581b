//! The admin API (`/admin/v1/…`). Routes are registered through utoipa-axum, so the OpenAPI
//! document is generated from the same router that serves: a route cannot exist undocumented.

mod audit;
mod budgets;
mod connectors;
mod credentials;
mod departments;
mod error_body;
mod keys;
mod knowledge;
mod masterkey;
mod params;
pub(crate) use params::path_id;
mod prices;
mod reconciliations;
mod routes;
mod tenants;
pub(crate) mod usage;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keyward admin API",
        description = "Tenants, credentials, platform keys and master keys of a Keyward gateway. Authenticate with `Authorization: Bearer` and the operator token (KEYWARD_ADMIN_TOKEN) or a tenant admin `kw_` key. Errors use OpenAI's shape `{\"error\": {\"message\", \"type\", \"param\", \"code\"}}`.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(error_body::ErrorBody))
)]
struct AdminApi;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(AdminApi::openapi())
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(departments::create, departments::list))
        .routes(routes!(credentials::connect, credentials::list))
        .routes(routes!(credentials::get, credentials::delete))
        .routes(routes!(credentials::rotate))
        .routes(routes!(credentials::disable))
        .routes(routes!(credentials::enable))
        .routes(routes!(credentials::verify))
        .routes(routes!(keys::issue, keys::list))
        .routes(routes!(routes::put))
        .routes(routes!(routes::list))
        .routes(routes!(keys::revoke))
        .routes(routes!(keys::set_limits))
        .routes(routes!(masterkey::status))
        .routes(routes!(masterkey::rotate))
        .routes(routes!(budgets::put, budgets::list))
        .routes(routes!(prices::put, prices::list))
        .routes(routes!(prices::book))
        .routes(routes!(usage::usage))
        .routes(routes!(usage::platform_invoice))
        .routes(routes!(reconciliations::create))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(knowledge::create, knowledge::list))
        .routes(routes!(knowledge::get, knowledge::delete))
        .routes(routes!(connectors::create, connectors::list))
        .routes(routes!(connectors::get, connectors::delete))
        .routes(routes!(connectors::disable))
        .routes(routes!(connectors::enable))
        .routes(routes!(connectors::put_members, connectors::get_members))
}

pub(crate) fn openapi_json() -> String {
    let (_, mut openapi) = router().split_for_parts();
    openapi
        .paths
        .paths
        .insert("/admin/v1/openapi.json".to_owned(), openapi_self_path());
    openapi.to_pretty_json().unwrap_or_else(|_| "{}".to_owned())
}

fn openapi_self_path() -> utoipa::openapi::PathItem {
    use utoipa::openapi::path::{HttpMethod, OperationBuilder};
    use utoipa::openapi::ResponseBuilder;
    utoipa::openapi::PathItem::new(
        HttpMethod::Get,
        OperationBuilder::new()
            .summary(Some("This document"))
            .response(
                "200",
                ResponseBuilder::new().description("the OpenAPI document"),
            ),
    )
}

//! The OpenAPI document. Paths come from the route registrations themselves
//! (`utoipa-actix-web`), so a route cannot exist without being documented; this module adds
//! what is shared: the document's info, tags, and the problem+json error responses.

use std::collections::BTreeMap;

use actix_web::App;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, OpenApi};
use utoipa_actix_web::AppExt;

use crate::error::{FieldError, Problem, PROBLEM_JSON};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "LHS Rounds API",
        description = "The system of record for the Learning Health System Rounds: a monthly series \
            where clinicians, analysts and informaticians work through topics that improve care. \
            Every error is an RFC 9457 `application/problem+json` body.",
        license(name = "MIT OR Apache-2.0")
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerScheme),
    tags(
        (name = "rounds", description = "Sessions of the series: topic, time, place, speakers, organisers"),
        (name = "speakers", description = "People who present, with their credentials"),
        (name = "departments", description = "Units that organise rounds and employ speakers"),
        (name = "feedback", description = "Ratings, topic suggestions and comments for the organisers"),
        (name = "health", description = "Liveness and readiness probes")
    )
)]
struct ApiDoc;

/// `Authorization: Bearer <JWT>`. Each operation lists the roles it needs as the scheme's
/// scopes (OpenAPI 3.1 allows role names there); an empty alternative means no token is needed.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT with `exp`, `sub` and `roles` (viewer, organizer, admin), signed \
                         with the configured key; mint one with `lhs-rounds token`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route [`crate::startup::routes`] registers.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::startup::routes)
        .split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    refer_page_items(&mut api);
    api
}

/// utoipa copies a type parameter's schema into `Page_T` instead of referring to `T`, so
/// generated clients get a second model (`PageRoundItemsItem`) for each item type. Point the
/// items back at the component.
fn refer_page_items(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ArrayBuilder, Schema};
    let Some(components) = api.components.as_mut() else {
        return;
    };
    let names: Vec<String> = components.schemas.keys().cloned().collect();
    for name in names {
        let Some(item) = name.strip_prefix("Page_") else {
            continue;
        };
        if !components.schemas.contains_key(item) {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(page))) = components.schemas.get_mut(&name) {
            if let Some(items) = page.properties.get_mut("items") {
                *items = ArrayBuilder::new()
                    .items(Ref::from_schema_name(item))
                    .build()
                    .into();
            }
        }
    }
}

fn problem(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

fn responses(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| ((*status).to_owned(), problem(description)))
        .collect()
}

/// The errors any read can answer.
pub struct ReadErrors;

impl IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            (
                "400",
                "A query parameter is invalid (each one is named in `errors`)",
            ),
            (
                "401",
                "The bearer token was refused, or the operation needs one (see `WWW-Authenticate`)",
            ),
            ("403", "The token does not grant a role this needs"),
            ("404", "No such record"),
            ("405", "Method not allowed here (see the `Allow` header)"),
            ("503", "The database is unavailable; retry"),
        ])
    }
}

/// The errors any write can answer.
pub struct WriteErrors;

impl IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            ("400", "The body is not well-formed JSON"),
            ("401", "No bearer token, or a refused one; see `WWW-Authenticate`"),
            ("403", "The token does not grant a role this needs"),
            ("404", "No such record"),
            ("405", "Method not allowed here (see the `Allow` header)"),
            ("409", "The change conflicts with existing data (a duplicate, or records that still refer to this one)"),
            ("413", "The body is larger than 1 MiB"),
            ("415", "The body is not JSON (`Content-Type: application/json`)"),
            ("422", "A field is invalid (each one is named in `errors`)"),
            ("503", "The database is unavailable; retry"),
        ])
    }
}

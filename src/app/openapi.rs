//! The OpenAPI document, generated from the route table ([`crate::app::routes`]): each
//! handler documents itself (`#[utoipa::path]`), and this module adds what is shared (info,
//! servers, tags, the bearer scheme) and derives what is written nowhere else:
//!
//! - constrained scalars (`Text<300>`, `Id`, `Timestamp`...) are inlined where they are used, so
//!   clients see `{"type": "string", "maxLength": 300}` rather than a model per limit;
//! - the body of a merge patch (`application/merge-patch+json`) is derived from the input schema
//!   the handler names: nothing required, and every member the input does not require nullable
//!   (`null` clears it), so no struct repeats a constraint for the docs;
//! - operations that need no token say `security: []` against the document's default.
//!
//! `lhs-rounds openapi` prints it into `openapi/openapi.json`, and the service starts from that
//! copy ([`SERVED`]): it is served as it is and compiled into the request validators
//! ([`crate::platform::validate`]), so what it says is what the service checks. A test keeps the copy equal
//! to what the code generates.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::openapi::path::Paths;
use utoipa::openapi::RefOr;
use utoipa::openapi::Schema;
use utoipa::OpenApi;
use utoipa_actix_web::OpenApiFactory;

use crate::app::routes::{self, Router, API_PREFIX};
use crate::platform::error::{FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "LHS Rounds API",
        description = "The system of record for the Learning Health System Rounds: a monthly series \
            where clinicians, analysts and informaticians work through topics that improve care. \
            Every error is an RFC 9457 `application/problem+json` body.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")
    ),
    // Whatever environment it runs in (OWASP API9: the description names it).
    servers((url = "/", description = "The server this document is served by: production, \
        staging or a local test server alike")),
    // HeaderText is named only by answer headers (Location, RateLimit), and the rest only by
    // query parameters: registered here so that they are written out where they are used, like
    // every other scalar (see `inline_parameter_refs`; a test fails on a `$ref` that names no
    // component).
    components(schemas(
        Problem,
        FieldError,
        crate::platform::resource::HeaderText,
        crate::platform::fields::Id,
        crate::platform::fields::Timestamp,
        crate::platform::fields::Line<255>,
        crate::schedule::speakers::Search,
        crate::schedule::rounds::When,
        crate::schedule::rounds::RoundSort,
        crate::schedule::rounds::RoundStatus,
        crate::schedule::feedback::FeedbackKind,
        crate::schedule::feedback::FeedbackStatus,
        crate::integration::changes::Seq,
        crate::integration::changes::ResourceName,
    )),
    modifiers(&BearerScheme),
    tags(
        (name = "rounds", description = "Sessions of the series: topic, time, place, speakers, organisers"),
        (name = "speakers", description = "People who present, with their credentials"),
        (name = "departments", description = "Units that organise rounds and employ speakers"),
        (name = "disclosures", description = "Financial relationships of the people who control content (ACCME Standard 3): attested, judged per round, mitigated, and disclosed to learners"),
        (name = "feedback", description = "Ratings, topic suggestions and comments for the organisers"),
        (name = "series", description = "The series as a whole: name, description, time zone, defaults, contacts"),
        (name = "changes", description = "The change feed other systems sync from, and the audit trail"),
        (name = "webhooks", description = "Signed messages (Standard Webhooks) about changes, sent to other systems"),
        (name = "calendar", description = "iCalendar (RFC 5545) feeds of the rounds, for Outlook, Google Calendar and others"),
        (name = "initiatives", description = "The improvement work the rounds take on: aims, stages, teams, round links, PDSA cycles and a SQUIRE 2.0 report"),
        (name = "measures", description = "An initiative's measures, their data points (aggregate numbers only) and run charts (IHI or Anhøj rules)"),
        (name = "outcomes", description = "What each round decided: information, decisions and action items, carried over until done"),
        (name = "me", description = "Who the caller is, as the bearer token says"),
        (name = "health", description = "Liveness and readiness probes")
    )
)]
struct ApiDoc;

/// `Authorization: Bearer <JWT>`. Each operation lists the roles it needs as the scheme's
/// scopes (OpenAPI 3.1 allows role names there); an empty alternative means no token is needed.
struct BearerScheme;

/// What the service checks in a token (RFC 8725, JSON Web Token Best Current Practices; the
/// OWASP ruleset looks for the RFC's name spelled `RFC8725`).
const BEARER_DESCRIPTION: &str = "A JWT (RFC 7519) in `Authorization: Bearer <token>`, checked \
as RFC8725 (JSON Web Token Best Current Practices) recommends, with the one algorithm its key allows: HS256 with a shared secret of at \
least 32 bytes, RS256/ES256 with the identity provider's public key, or, with OpenID Connect, \
RS256, PS256 or ES256 as the key of the provider's JWKS that the token's `kid` names declares; a \
token signed any other way, or unsigned, is refused. `exp` is required and `nbf` honoured, with \
30 seconds of clock leeway; `iss` must be the configured issuer, and `aud` (a string or an array) \
must contain the configured audience. The subject is `sub`; the role comes from the `roles` claim \
(`viewer`, `organizer`, `admin`; unknown roles grant nothing) or, with OpenID Connect, from the \
provider's groups or roles as the service maps them; `GET /api/v1/me` says what the service read. \
Mint a token with `lhs-rounds token` when the service holds a shared secret.";

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
                    .description(Some(BEARER_DESCRIPTION))
                    .build(),
            ),
        );
    }
}

/// Collects the documentation of the handlers the route table lists.
struct Collector {
    prefix: &'static str,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
}

impl Router for Collector {
    fn service<H>(&mut self, handler: H) -> &mut Self
    where
        H: actix_web::dev::HttpServiceFactory + OpenApiFactory + 'static,
    {
        let mut paths = handler.paths();
        let prefixed = std::mem::take(&mut paths.paths)
            .into_iter()
            .map(|(path, item)| (format!("{}{path}", self.prefix), item))
            .collect();
        paths.paths = prefixed;
        self.paths.merge(paths);
        handler.schemas(&mut self.schemas);
        self
    }
}

/// The document as `lhs-rounds openapi` last wrote it to `openapi/openapi.json`, compiled into
/// the binary. The service starts from this copy instead of running [`document`]: utoipa builds
/// the document with a heap that glibc keeps resident afterwards, and runs much code once, for
/// an answer known when the binary is built. The test
/// `the_committed_openapi_document_matches_the_code` fails whenever the copy differs from what
/// the code generates, and says how to write it again.
pub const SERVED: &str = include_str!("../../openapi/openapi.json");

/// The scheme the served document adds when the API docs sign in with the identity provider.
pub const SIGN_IN_SCHEME: &str = "oidc";

/// [`SERVED`] with the identity provider declared, for a service whose API docs sign in with it
/// (`LHS_OIDC_ISSUER` and `LHS_OIDC_CLIENT_ID`): an `openIdConnect` scheme at `discovery_url`,
/// offered wherever the bearer scheme is (its tokens are bearer tokens, checked the same way).
/// Built at start-up from the committed copy, which stays what the code generates: the
/// provider is a setting of one deployment, not part of the API.
pub fn with_sign_in(discovery_url: &str) -> Result<String, String> {
    let mut document: Value = serde_json::from_str(SERVED)
        .map_err(|e| format!("the compiled-in openapi/openapi.json cannot be read: {e}"))?;
    let scheme = json!({
        "type": "openIdConnect",
        "openIdConnectUrl": discovery_url,
        "description": "Sign in with the hospital's identity provider (OpenID Connect, \
            authorization code with PKCE). Its access token is sent as a bearer token and \
            checked as the `bearer` scheme says; the role comes from the groups or roles the \
            provider puts in the token, as the service maps them."
    });
    let Some(schemes) = document
        .pointer_mut("/components/securitySchemes")
        .and_then(Value::as_object_mut)
    else {
        return Err("the committed document declares no security schemes".to_owned());
    };
    schemes.insert(SIGN_IN_SCHEME.to_owned(), scheme);
    offer_sign_in(document.get_mut("security"));
    for operation in operations_mut(&mut document) {
        offer_sign_in(operation.get_mut("security"));
    }
    Ok(to_json(&document).trim_end().to_owned())
}

/// Adds `{"oidc": []}` to a list of security requirements that accepts a bearer token. Its
/// scopes stay empty: roles are not OAuth scopes, and the sign-in asks for the configured ones.
fn offer_sign_in(requirements: Option<&mut Value>) {
    let Some(Value::Array(alternatives)) = requirements else {
        return;
    };
    if alternatives.iter().any(|a| a.get("bearer").is_some()) {
        alternatives.push(json!({ SIGN_IN_SCHEME: [] }));
    }
}

/// What start-up reads of [`SERVED`]: each operation's parameters (the query validators and
/// the table of allowed methods) and the component schemas (the body validators), in the
/// document's own shape. Descriptions, examples and answers are skipped while parsing: the whole
/// document as a `Value` would leave its heap resident after it was dropped.
pub fn served_document() -> Result<Value, String> {
    #[derive(Deserialize)]
    struct Served {
        // Kept in the document's order, as the whole-document parse kept it.
        paths: IndexMap<String, IndexMap<String, Operation>>,
        components: Components,
    }
    #[derive(Deserialize)]
    struct Components {
        schemas: Map<String, Value>,
    }
    #[derive(Deserialize)]
    struct Operation {
        #[serde(default)]
        parameters: Vec<Value>,
    }
    let parse = || -> Result<Value, serde_json::Error> {
        // utoipa writes path items with operations only (no shared `parameters`).
        let Served { paths, components } = serde_json::from_str(SERVED)?;
        let paths: Map<String, Value> = paths
            .into_iter()
            .map(|(path, operations)| {
                let item: Map<String, Value> = operations
                    .into_iter()
                    .map(|(method, op)| (method, json!({ "parameters": op.parameters })))
                    .collect();
                (path, Value::Object(item))
            })
            .collect();
        Ok(json!({ "paths": paths, "components": { "schemas": components.schemas } }))
    };
    parse().map_err(|e| format!("the compiled-in openapi/openapi.json cannot be read: {e}"))
}

/// The OpenAPI document of every route in [`routes`], generated from the code.
pub fn document() -> Value {
    let mut api = ApiDoc::openapi();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for (prefix, register) in [
        ("", routes::probes::<Collector> as fn(&mut Collector)),
        (API_PREFIX, routes::api::<Collector>),
    ] {
        let mut collector = Collector {
            prefix,
            paths: Paths::new(),
            schemas: Vec::new(),
        };
        register(&mut collector);
        api.paths.merge(collector.paths);
        let components = api.components.get_or_insert_with(Default::default);
        for (name, schema) in collector.schemas {
            components.schemas.entry(name).or_insert(schema);
        }
    }
    let mut document = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    inline_scalars(&mut document);
    derive_patch_bodies(&mut document);
    refer_page_items(&mut document);
    open_operations(&mut document);
    http_semantics(&mut document);
    audience_of_servers(&mut document);
    document
}

/// Every server is for the audience the whole document is written for, the hospital's
/// front-ends and the systems that integrate with it: none is internal (`x-internal`, which
/// the OWASP ruleset asks each server to declare).
fn audience_of_servers(document: &mut Value) {
    let Some(Value::Array(servers)) = document.get_mut("servers") else {
        return;
    };
    for server in servers.iter_mut().filter_map(Value::as_object_mut) {
        server.insert("x-internal".to_owned(), Value::Bool(false));
    }
}

/// The HTTP semantics every operation shares, said once for all of them: see
/// [`conditions_and_idempotency`], [`retry_headers`] and [`cors_headers`].
fn http_semantics(document: &mut Value) {
    conditions_and_idempotency(document);
    retry_headers(document);
    cors_headers(document);
}

/// What [`crate::platform::resource`] does for every operation of the API, said once for all of
/// them: reads answer with an `ETag` and honour `If-None-Match` (304); PUT, PATCH and DELETE
/// honour `If-Match` (412, 428); a POST may carry an `Idempotency-Key` and be replayed.
fn conditions_and_idempotency(document: &mut Value) {
    let string = |max: u64| json!({"type": "string", "maxLength": max});
    let tag_list = json!({"type": "string", "maxLength": 1000, "pattern": crate::platform::http::TagList::PATTERN});
    let header =
        |description: &str, schema: Value| json!({"description": description, "schema": schema});
    let parameter = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "header", "required": false, "description": description, "schema": schema});
    let problem = |description: &str| json!({"description": description, "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}});
    let etag = header(
        "The strong validator of this answer: send it in `If-None-Match` to revalidate, in \
         `If-Match` to change the record only if it is still this version",
        string(100),
    );
    let Some(Value::Object(paths)) = document.get_mut("paths") else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if !path.starts_with(crate::platform::resource::API_PREFIX)
            || path.ends_with("/openapi.json")
        {
            continue;
        }
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            let (parameters, responses): (Vec<Value>, Vec<(&str, Value)>) = match method.as_str() {
                "get" => (
                    vec![parameter(
                        "If-None-Match",
                        "ETags of copies the caller holds: 304 when one is current",
                        tag_list.clone(),
                    )],
                    vec![(
                        "304",
                        json!({"description": "Not Modified: the copy named in `If-None-Match` is current",
                               "headers": {"ETag": etag.clone(), "Cache-Control": header("How the answer may be cached", string(100))}}),
                    )],
                ),
                "put" | "patch" | "delete" => (
                    vec![parameter(
                        "If-Match",
                        "The ETag of the version this change is based on: 412 if the record is at \
                         another version (a weak tag never matches)",
                        tag_list.clone(),
                    )],
                    vec![
                        ("412", problem("The record is not at the version named in `If-Match` (its current ETag is in the detail and the `ETag` header); nothing was changed")),
                        ("428", problem("This service requires `If-Match` on PUT, PATCH and DELETE")),
                    ],
                ),
                "post" => (
                    vec![parameter(
                        "Idempotency-Key",
                        "A key (1-255 characters) unique to this request: a retry with the same key \
                         and body gets the first answer again (`Idempotency-Replayed: true`) \
                         instead of a second record; the same key with another request is 422",
                        json!({
                            "type": "string", "minLength": 1,
                            "maxLength": crate::platform::idempotency::MAX_LENGTH,
                            "pattern": crate::platform::idempotency::PATTERN,
                        }),
                    )],
                    Vec::new(),
                ),
                _ => continue,
            };
            let listed = operation.entry("parameters").or_insert_with(|| json!([]));
            if let Value::Array(listed) = listed {
                listed.extend(parameters);
            }
            let Some(Value::Object(answers)) = operation.get_mut("responses") else {
                continue;
            };
            for (status, response) in responses {
                answers.insert(status.to_owned(), response);
            }
            for (status, response) in answers.iter_mut() {
                if !status.starts_with('2') || status == "204" {
                    continue;
                }
                let headers = response
                    .as_object_mut()
                    .map(|r| r.entry("headers").or_insert_with(|| json!({})));
                let Some(Value::Object(headers)) = headers else {
                    continue;
                };
                headers.insert("ETag".to_owned(), etag.clone());
                if method == "get" {
                    headers.insert(
                        "Cache-Control".to_owned(),
                        header(
                            "`no-cache` (stored copies must be revalidated); `private, no-cache` \
                             when the request carried a token",
                            string(100),
                        ),
                    );
                    headers.insert(
                        "Vary".to_owned(),
                        header(
                            "What changes the answer: `Authorization`, and `Accept-Encoding`",
                            string(100),
                        ),
                    );
                    headers.insert(
                        "Content-Encoding".to_owned(),
                        header(
                            "`br` or `gzip` when the request accepted it and the answer is 1 kB \
                             or more (its ETag then ends in `-br` or `-gzip`); absent otherwise",
                            json!({"type": "string", "enum": ["br", "gzip"]}),
                        ),
                    );
                }
                if method == "post" {
                    headers.insert(
                        "Idempotency-Replayed".to_owned(),
                        header(
                            "`true` when this is the stored answer of an earlier request with the \
                             same `Idempotency-Key`",
                            json!({"type": "string", "enum": ["true"]}),
                        ),
                    );
                }
            }
        }
    }
}

/// `Retry-After` on every 429 and 503 answer (of any path: the probes' too), and the
/// `RateLimit` headers on every 429.
fn retry_headers(document: &mut Value) {
    let header =
        |description: &str, schema: Value| json!({"description": description, "schema": schema});
    let string = |max: u64| json!({"type": "string", "maxLength": max});
    let retry_after = header(
        "Seconds to wait before retrying",
        json!({"type": "integer", "format": "int32", "minimum": 1, "maximum": 86400}),
    );
    for (status, response) in answers_mut(document) {
        let extra: Vec<(&str, Value)> = match status.as_str() {
            "429" => vec![
                ("Retry-After", retry_after.clone()),
                ("RateLimit-Policy", header("The limit (IETF RateLimit headers draft): `\"name\";q=<requests>;w=<seconds>`", string(200))),
                ("RateLimit", header("What is left of it: `\"name\";r=<remaining>;t=<seconds until whole>`", string(200))),
            ],
            "503" => vec![("Retry-After", retry_after.clone())],
            _ => continue,
        };
        if let Some(Value::Object(headers)) = response
            .as_object_mut()
            .map(|r| r.entry("headers").or_insert_with(|| json!({})))
        {
            for (name, value) in extra {
                headers.insert(name.to_owned(), value);
            }
        }
    }
}

/// The CORS headers of an actual request (`startup::actual_request_cors`), declared once among
/// the components and named by every answer of every operation, probes and errors included: any
/// answer to a request from an origin listed in `LHS_CORS_ORIGINS` carries them, and none other
/// does.
fn cors_headers(document: &mut Value) {
    const HEADERS: [&str; 2] = [
        "Access-Control-Allow-Origin",
        "Access-Control-Expose-Headers",
    ];
    let declared = json!({
        "Access-Control-Allow-Origin": {
            "description": "The request's `Origin`, echoed when it is one of \
                `LHS_CORS_ORIGINS`: a script on that origin may read this answer. Absent for \
                other origins and for requests without `Origin`.",
            "schema": {"type": "string", "format": "uri",
                       "maxLength": crate::platform::http::ORIGIN_MAX_LENGTH},
        },
        "Access-Control-Expose-Headers": {
            "description": "With `Access-Control-Allow-Origin`: the answer headers that script \
                may read besides the safelisted ones (`ETag`, `Location`, `Retry-After`, the \
                `RateLimit` headers, `Idempotency-Replayed`, `X-Request-Id`).",
            "schema": {"type": "string", "maxLength": 1000,
                       "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+(, *[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$"},
        },
    });
    if let Some(Value::Object(components)) = document.get_mut("components") {
        components.insert("headers".to_owned(), declared);
    }
    let answers = answers_mut(document).filter_map(|(_, answer)| answer.as_object_mut());
    for answer in answers {
        if let Value::Object(headers) = answer.entry("headers").or_insert_with(|| json!({})) {
            for name in HEADERS {
                let reference = json!({ "$ref": format!("#/components/headers/{name}") });
                headers.insert(name.to_owned(), reference);
            }
        }
    }
}

/// Every operation of the document (each method of each path item), to rewrite in place.
fn operations_mut(document: &mut Value) -> impl Iterator<Item = &mut Value> {
    document
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
}

/// Every answer of every operation, with its status.
fn answers_mut(document: &mut Value) -> impl Iterator<Item = (&String, &mut Value)> {
    operations_mut(document)
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(Value::as_object_mut)
        .flat_map(|responses| responses.iter_mut())
}

/// The document as served: pretty JSON.
pub fn to_json(document: &Value) -> String {
    serde_json::to_string_pretty(document).unwrap_or_default()
}

fn schemas_mut(document: &mut Value) -> Option<&mut Map<String, Value>> {
    document
        .get_mut("components")?
        .get_mut("schemas")?
        .as_object_mut()
}

const COMPONENT_PREFIX: &str = "#/components/schemas/";

/// The component a schema's `$ref` names (`map.get("$ref")` of an object), if it names one.
fn component_of(reference: Option<&Value>) -> Option<&str> {
    reference?.as_str()?.strip_prefix(COMPONENT_PREFIX)
}

/// A `$ref`'s value naming the component `name`.
fn reference_to(name: &str) -> Value {
    Value::String(format!("{COMPONENT_PREFIX}{name}"))
}

/// A component that is a constrained scalar (a string, number or boolean that is not an
/// enumeration) or a bounded list: inlined wherever it is used.
fn is_scalar(schema: &Value) -> bool {
    let scalar_type = matches!(
        schema.get("type").and_then(Value::as_str),
        Some("string" | "integer" | "number" | "boolean" | "array")
    );
    scalar_type && schema.get("enum").is_none()
}

/// A query or path parameter's schema is written out where the parameter is, enumerations
/// too: a client reads a parameter's allowed values there, without following a reference.
fn inline_parameter_refs(document: &mut Value) {
    let components = document
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_default();
    for operation in operations_mut(document) {
        let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for schema in parameters.iter_mut().filter_map(|p| p.get_mut("schema")) {
            let target = component_of(schema.get("$ref")).and_then(|name| components.get(name));
            if let Some(inlined) = target.cloned() {
                *schema = inlined;
            }
        }
    }
}

fn inline_scalars(document: &mut Value) {
    inline_parameter_refs(document);
    let Some(schemas) = schemas_mut(document) else {
        return;
    };
    let scalars: Map<String, Value> = schemas
        .iter()
        .filter(|(_, schema)| is_scalar(schema))
        .map(|(name, schema)| (name.clone(), schema.clone()))
        .collect();
    for name in scalars.keys() {
        schemas.remove(name);
    }
    replace_scalar_refs(document, &scalars);
}

fn replace_scalar_refs(value: &mut Value, scalars: &Map<String, Value>) {
    match value {
        Value::Object(map) => {
            let target = component_of(map.get("$ref")).and_then(|name| scalars.get(name));
            if let Some(Value::Object(inlined)) = target.cloned() {
                map.remove("$ref");
                let siblings = std::mem::take(map);
                *map = inlined;
                map.extend(siblings);
            }
            // After inlining: a list's items may be scalars too.
            for child in map.values_mut() {
                replace_scalar_refs(child, scalars);
            }
            collapse_nullable(map);
            collapse_default(map);
        }
        Value::Array(items) => {
            for item in items {
                replace_scalar_refs(item, scalars);
            }
        }
        _ => {}
    }
}

/// `{"oneOf": [{"type": "string", ...}, {"type": "null"}]}` → `{"type": ["string", "null"], ...}`,
/// the form OpenAPI 3.1 tools read best.
fn collapse_nullable(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.get("oneOf") else {
        return;
    };
    let [first, second] = &branches[..] else {
        return;
    };
    let null = json!({"type": "null"});
    let other = if *second == null {
        first
    } else if *first == null {
        second
    } else {
        return;
    };
    let Some(Value::Object(other)) = Some(other.clone()) else {
        return;
    };
    let Some(Value::String(kind)) = other.get("type").cloned() else {
        return;
    };
    map.remove("oneOf");
    let siblings = std::mem::take(map);
    *map = other;
    map.insert("type".to_owned(), json!([kind, "null"]));
    map.extend(siblings);
}

/// utoipa writes a `default` on a field of a custom type as
/// `{"allOf": [<the type>, {"type": "object", "default": d}]}`, which no value can match;
/// this writes it as `<the type>` with `"default": d`.
fn collapse_default(map: &mut Map<String, Value>) {
    let Some(Value::Array(parts)) = map.get("allOf") else {
        return;
    };
    let [Value::Object(schema), Value::Object(wrapper)] = &parts[..] else {
        return;
    };
    let only_default = wrapper.len() == 2
        && wrapper.get("type") == Some(&Value::from("object"))
        && wrapper.contains_key("default");
    if !only_default {
        return;
    }
    let mut merged = schema.clone();
    merged.insert("default".to_owned(), wrapper["default"].clone());
    map.remove("allOf");
    let siblings = std::mem::take(map);
    *map = merged;
    map.extend(siblings);
}

/// The schema of a merge patch of `input`: no member required; every member the input does not
/// require may be `null`, which clears it. A member the input requires may be changed, not
/// cleared, so it stays non-nullable.
pub fn patch_schema(input: &Value) -> Value {
    let mut patch = input.clone();
    let required: Vec<String> = input
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if let Value::Object(map) = &mut patch {
        map.remove("required");
        map.remove("example");
        map.insert(
            "description".to_owned(),
            Value::from(
                "A JSON merge patch (RFC 7386): members left out are unchanged, `null` clears an \
                 optional member, arrays are replaced whole.",
            ),
        );
        if let Some(Value::Object(properties)) = map.get_mut("properties") {
            for (name, property) in properties.iter_mut() {
                if !required.contains(name) {
                    make_nullable(property);
                }
            }
        }
    }
    patch
}

fn make_nullable(schema: &mut Value) {
    let Value::Object(map) = schema else {
        return;
    };
    match map.get_mut("type") {
        Some(Value::String(kind)) => {
            let kind = kind.clone();
            map.insert("type".to_owned(), json!([kind, "null"]));
        }
        Some(Value::Array(kinds)) => {
            if !kinds.contains(&Value::from("null")) {
                kinds.push(Value::from("null"));
            }
        }
        _ => {
            if map.contains_key("$ref") {
                let inner = std::mem::take(map);
                map.insert("oneOf".to_owned(), json!([inner, {"type": "null"}]));
            }
        }
    }
}

/// The name of the derived patch schema of `input`: `RoundInput` → `RoundPatch`.
pub fn patch_name(input: &str) -> String {
    match input.strip_suffix("Input") {
        Some(base) => format!("{base}Patch"),
        None => format!("{input}Patch"),
    }
}

fn derive_patch_bodies(document: &mut Value) {
    let mut derived: Map<String, Value> = Map::new();
    let schemas = schemas_mut(document).map(|s| s.clone()).unwrap_or_default();
    for operation in operations_mut(document) {
        let Some(content) =
            operation.pointer_mut("/requestBody/content/application~1merge-patch+json/schema")
        else {
            continue;
        };
        let Some(input) = component_of(content.get("$ref")).map(str::to_owned) else {
            continue;
        };
        let name = patch_name(&input);
        if let Some(schema) = schemas.get(&input) {
            let mut patch = patch_schema(schema);
            patch_nested_objects(&mut patch, &schemas, &mut derived);
            derived.insert(name.clone(), patch);
        }
        *content = json!({ "$ref": reference_to(&name) });
    }
    if let Some(schemas) = schemas_mut(document) {
        schemas.extend(derived);
    }
}

/// A merge patch merges an object member into the stored object (RFC 7386 §2): a member that
/// is an object with required properties (an action item's `owner`) may be sent in part. Such
/// members of a patch schema refer to the object's own patch schema, derived the same way.
fn patch_nested_objects(
    patch: &mut Value,
    schemas: &Map<String, Value>,
    derived: &mut Map<String, Value>,
) {
    let Some(Value::Object(properties)) = patch.get_mut("properties") else {
        return;
    };
    for property in properties.values_mut() {
        let refs: Vec<&mut Value> = match property.get_mut("oneOf") {
            Some(Value::Array(options)) => options.iter_mut().collect(),
            _ => vec![property],
        };
        for reference in refs {
            let Some(component) = component_of(reference.get("$ref")).map(str::to_owned) else {
                continue;
            };
            let Some(schema) = schemas.get(&component) else {
                continue;
            };
            let object = schema.get("type") == Some(&json!("object"));
            if !object || schema.get("required").is_none() {
                continue;
            }
            let name = patch_name(&component);
            derived.insert(name.clone(), patch_schema(schema));
            reference["$ref"] = reference_to(&name);
        }
    }
}

/// utoipa copies a type parameter's schema into `Page_T` instead of referring to `T`, so
/// generated clients would get a second model for each item type. Point the items back at the
/// component, and bound them by the page's `limit`.
fn refer_page_items(document: &mut Value) {
    let Some(schemas) = schemas_mut(document) else {
        return;
    };
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in names {
        let Some(item) = name.strip_prefix("Page_") else {
            continue;
        };
        if !schemas.contains_key(item) {
            continue;
        }
        let Some(page) = schemas.get_mut(&name) else {
            continue;
        };
        let most = page.pointer("/properties/limit/maximum").cloned();
        if let Some(items) = page.pointer_mut("/properties/items") {
            items["items"] = json!({ "$ref": reference_to(item) });
            if let Some(most) = most {
                items["maxItems"] = most;
            }
        }
    }
}

/// Every operation needs the bearer token unless it says otherwise; those that need none (the
/// probes) say `security: []`.
fn open_operations(document: &mut Value) {
    if let Value::Object(root) = document {
        root.insert("security".to_owned(), json!([{ "bearer": [] }]));
    }
    for operation in operations_mut(document).filter_map(Value::as_object_mut) {
        let open = match operation.get("security") {
            None => true,
            Some(Value::Array(alternatives)) => alternatives
                .iter()
                .all(|a| a.as_object().is_some_and(Map::is_empty)),
            Some(_) => false,
        };
        if open {
            operation.insert("security".to_owned(), json!([]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_drops_required_and_lets_optional_members_be_null() {
        let input = json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "maxLength": 200},
                "tags": {"type": "array", "items": {"type": "string"}},
                "note": {"type": ["string", "null"]}
            },
            "additionalProperties": false
        });
        let patch = patch_schema(&input);
        assert_eq!(patch.get("required"), None);
        assert_eq!(patch["properties"]["name"]["type"], "string");
        assert_eq!(patch["properties"]["name"]["maxLength"], 200);
        assert_eq!(
            patch["properties"]["tags"]["type"],
            json!(["array", "null"])
        );
        assert_eq!(
            patch["properties"]["note"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(patch["additionalProperties"], false);
        assert_eq!(patch_name("RoundInput"), "RoundPatch");
    }

    #[test]
    fn a_nullable_scalar_reference_becomes_a_nullable_type() {
        let mut doc = json!({
            "components": {"schemas": {
                "Text_300": {"type": "string", "maxLength": 300},
                "Thing": {"type": "object", "properties": {
                    "title": {"oneOf": [{"$ref": "#/components/schemas/Text_300", "description": "The topic"}, {"type": "null"}]}
                }}
            }}
        });
        inline_scalars(&mut doc);
        assert_eq!(
            doc["components"]["schemas"]["Thing"]["properties"]["title"],
            json!({"type": ["string", "null"], "maxLength": 300, "description": "The topic"})
        );
        assert!(doc["components"]["schemas"].get("Text_300").is_none());
    }

    #[test]
    fn sign_in_adds_the_identity_provider_wherever_a_bearer_token_is_accepted() {
        let url = "https://login.example.org/realms/hospital/.well-known/openid-configuration";
        let committed: Value = serde_json::from_str(SERVED).expect("JSON");
        let signed: Value = serde_json::from_str(&with_sign_in(url).expect("built")).expect("JSON");
        assert_eq!(
            signed["components"]["securitySchemes"][SIGN_IN_SCHEME]["openIdConnectUrl"],
            url
        );
        assert_eq!(
            signed["components"]["securitySchemes"]["bearer"],
            committed["components"]["securitySchemes"]["bearer"]
        );
        assert_eq!(signed["security"], json!([{"bearer": []}, {"oidc": []}]));
        let mut compared = 0;
        for (path, item) in committed["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let before = operation["security"].as_array().expect("security");
                let after = signed["paths"][path][method]["security"]
                    .as_array()
                    .expect("security");
                let bearer = before.iter().any(|a| a.get("bearer").is_some());
                assert_eq!(&after[..before.len()], &before[..], "{method} {path}");
                assert_eq!(
                    after.len(),
                    before.len() + usize::from(bearer),
                    "{method} {path}"
                );
                compared += 1;
            }
        }
        assert!(compared > 40);
        // Everything else is as committed.
        let mut stripped = signed.clone();
        stripped["components"]["securitySchemes"]
            .as_object_mut()
            .expect("schemes")
            .remove(SIGN_IN_SCHEME);
        assert_ne!(stripped, committed, "the requirements differ");
        assert_eq!(stripped["components"], committed["components"]);
        assert_eq!(stripped["info"], committed["info"]);
    }

    #[test]
    fn start_up_reads_every_operation_parameter_and_schema_of_the_served_document() {
        let whole: Value = serde_json::from_str(SERVED).expect("the committed document is JSON");
        let read = served_document().expect("start-up can read the committed document");
        assert_eq!(
            read["components"]["schemas"],
            whole["components"]["schemas"]
        );
        let (Some(whole_paths), Some(read_paths)) =
            (whole["paths"].as_object(), read["paths"].as_object())
        else {
            panic!("both have paths");
        };
        assert_eq!(
            read_paths.keys().collect::<Vec<_>>(),
            whole_paths.keys().collect::<Vec<_>>(),
            "the paths, in the document's order"
        );
        for (path, item) in whole_paths {
            let methods = |item: &Value| item.as_object().map(|m| m.keys().cloned().collect());
            let read_methods: Option<Vec<String>> = methods(&read_paths[path]);
            assert_eq!(read_methods, methods(item), "the methods of {path}");
            for (method, operation) in item.as_object().into_iter().flatten() {
                let parameters = operation.get("parameters").cloned().unwrap_or(json!([]));
                assert_eq!(
                    read_paths[path][method]["parameters"], parameters,
                    "the parameters of {method} {path}"
                );
            }
        }
    }
}

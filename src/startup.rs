//! Start-up: builds the OpenAPI document and its validators (once per process), the actix
//! application (the route table, extractor error handlers, the 404/405 fallback, the access
//! log), and binds it to a listener.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::Method;
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

use crate::auth::Auth;
use crate::cache::ReadCache;
use crate::config::Settings;
use crate::db::Database;
use crate::error::ApiError;
use crate::routes::{self, API_PREFIX};
use crate::validate::Validators;
use crate::{demo, openapi};

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// How to serve, beyond the database and the listener.
#[derive(Clone)]
pub struct ServeOptions {
    /// HTTP worker threads; one per core when `None`.
    pub workers: Option<u16>,
    /// Whether to serve Swagger UI at `/docs/`.
    pub docs: bool,
    /// How bearer tokens are checked.
    pub auth: web::Data<Auth>,
    /// Bytes of answers the read cache may keep; 0 turns it off.
    pub cache_bytes: usize,
}

pub struct Application {
    port: u16,
    server: Server,
    database: Database,
}

impl Application {
    /// Opens the database (migrating it), loads the demo data if asked, and binds.
    pub fn build(settings: &Settings) -> Result<Application, String> {
        let database = Database::open(&settings.database_url, settings.pool_size)?;
        if settings.demo {
            let mut conn = database.connection().map_err(|e| e.to_string())?;
            let report = demo::seed(&mut conn).map_err(|e| format!("demo data: {e}"))?;
            log::info!("demo data: {report}");
        }
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
        let options = ServeOptions {
            workers: settings.workers,
            docs: settings.docs,
            auth: web::Data::new(Auth::from_settings(settings)?),
            cache_bytes: settings.cache_bytes(),
        };
        Self::with_listener(listener, database, options)
    }

    pub fn with_listener(
        listener: TcpListener,
        database: Database,
        options: ServeOptions,
    ) -> Result<Application, String> {
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?
            .port();
        // Built once per process: the workers share the document, its validators and the
        // table of allowed methods.
        let document = openapi::document();
        let validators = web::Data::new(Validators::from_document(&document)?);
        let mut routes_table = RouteTable::from_document(&document);
        routes_table.add(OPENAPI_PATH, vec![Method::GET]);
        let routes_table = web::Data::new(routes_table);
        let spec = web::Data::new(OpenApiJson(openapi::to_json(&document)));
        drop(document);
        // actix's own default: one worker per core (2 when the count is unknown).
        let workers = options.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let cache = web::Data::new(ReadCache::new(&database, options.cache_bytes, workers)?);
        let data = web::Data::new(database.clone());
        let docs = options.docs;
        let auth = options.auth.clone();
        let server = HttpServer::new(move || {
            App::new()
                // Before the `/api/v1` scope, which would otherwise take every path under it.
                .route(OPENAPI_PATH, web::get().to(serve_openapi))
                .configure(routes::probes)
                .service(web::scope(API_PREFIX).configure(routes::api))
                // After the API: the router tries routes in order, and the docs' catch-all
                // pattern would otherwise be tried on every API request.
                .configure(|cfg| {
                    if docs {
                        docs_routes(cfg);
                    }
                })
                .app_data(data.clone())
                .app_data(cache.clone())
                .app_data(auth.clone())
                .app_data(validators.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(BODY_LIMIT)
                        .content_type_required(true)
                        .content_type(|mime| {
                            mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON)
                        })
                        .error_handler(json_error),
                )
                .app_data(web::PathConfig::default().error_handler(path_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .app_data(routes_table.clone())
                .app_data(spec.clone())
                .default_service(web::to(fallback))
                .wrap(access_log())
        })
        .workers(workers)
        .listen(listener)
        .map_err(|e| format!("cannot serve: {e}"))?;
        Ok(Application {
            port,
            server: server.run(),
            database,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

struct OpenApiJson(String);

async fn serve_openapi(spec: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(spec.0.clone())
}

/// Swagger UI, from files compiled into the binary (no CDN: hospital networks are closed),
/// reading the document at [`OPENAPI_PATH`].
fn docs_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/docs",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((actix_web::http::header::LOCATION, "/docs/"))
                .finish()
        }),
    )
    .service(
        utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
            .config(utoipa_swagger_ui::Config::new([OPENAPI_PATH])),
    );
}

/// One line per request: method, path (no query string, no body), status, duration.
fn access_log() -> Logger {
    Logger::new("%{method}xi %U %s %Dms")
        .custom_request_replace("method", |req| req.method().to_string())
        .log_target("lhs_rounds::access")
}

fn json_error(error: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api_error = match error {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            ApiError::PayloadTooLarge { limit: BODY_LIMIT }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType(
            "the body must be JSON, sent with Content-Type: application/json".to_owned(),
        ),
        JsonPayloadError::Deserialize(e) => {
            ApiError::BadRequest(format!("the body is not well-formed JSON: {e}"))
        }
        other => ApiError::BadRequest(format!("the body could not be read: {other}")),
    };
    api_error.into()
}

fn path_error(error: PathError, req: &HttpRequest) -> actix_web::Error {
    // An id that is not a number names no record.
    log::debug!("path parameter rejected: {error}");
    ApiError::NotFound(format!("no record at {}", req.path())).into()
}

fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("the query string is invalid: {error}")).into()
}

async fn fallback(req: HttpRequest, table: web::Data<RouteTable>) -> HttpResponse {
    use actix_web::ResponseError;
    let error = match table.allowed(req.path()) {
        Some(allow) => ApiError::MethodNotAllowed {
            method: req.method().clone(),
            allow,
        },
        None => ApiError::NotFound(format!("there is nothing at {}", req.path())),
    };
    error.error_response()
}

/// Which methods each path accepts, read from the OpenAPI document so it cannot drift from
/// the routes: actix answers 404 for a known path with a wrong method, and this turns that
/// into 405 with `Allow`.
#[derive(Debug, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<Option<String>>, Vec<Method>)>,
}

impl RouteTable {
    pub fn from_document(document: &Value) -> RouteTable {
        let paths = document.get("paths").and_then(Value::as_object);
        let routes = paths
            .into_iter()
            .flatten()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods = [
                    (Method::GET, "get"),
                    (Method::POST, "post"),
                    (Method::PUT, "put"),
                    (Method::PATCH, "patch"),
                    (Method::DELETE, "delete"),
                ]
                .into_iter()
                .filter(|(_, name)| item.get(*name).is_some())
                .map(|(method, _)| method)
                .collect();
                (segments, methods)
            })
            .collect();
        RouteTable { routes }
    }

    /// A route that is served but not part of the API document.
    pub fn add(&mut self, path: &str, methods: Vec<Method>) {
        let segments = path.split('/').map(|s| Some(s.to_owned())).collect();
        self.routes.push((segments, methods));
    }

    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|(segments, _)| {
                segments.len() == parts.len()
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(segment, part)| match segment {
                            Some(literal) => literal == part,
                            None => !part.is_empty(),
                        })
            })
            .map(|(_, methods)| methods.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_path_with_a_wrong_method_lists_the_allowed_methods() {
        let table = RouteTable::from_document(&openapi::document());
        assert_eq!(
            table.allowed("/api/v1/rounds/12"),
            Some(vec![
                Method::GET,
                Method::PUT,
                Method::PATCH,
                Method::DELETE
            ])
        );
        assert_eq!(
            table.allowed("/api/v1/rounds"),
            Some(vec![Method::GET, Method::POST])
        );
        assert_eq!(table.allowed("/api/v1/nothing"), None);
        assert_eq!(table.allowed("/api/v1/rounds//feedback"), None);
    }
}

//! Start-up: builds the actix application (routes, extractor error handlers, the 404/405
//! fallback, the access log) and binds it to a listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::Method;
use actix_web::middleware::Logger;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{scope, AppExt};

use crate::auth::Auth;
use crate::cache::ReadCache;
use crate::config::Settings;
use crate::db::Database;
use crate::error::ApiError;
use crate::{demo, departments, feedback, health, openapi, rounds, speakers};

/// Request bodies larger than this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Every documented route. Registering a handler here is what puts it in the OpenAPI document.
///
/// Rounds first: actix tries routes in order, matching each `{id}` pattern with a regular
/// expression, and the schedule is what front-ends read most.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.configure(health::routes).service(
        scope::scope("/api/v1")
            .configure(rounds::routes)
            .configure(feedback::routes)
            .configure(speakers::routes)
            .configure(departments::routes),
    );
}

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
        let document = openapi::document();
        let mut routes_table = RouteTable::from_openapi(&document);
        routes_table.add(OPENAPI_PATH, vec![Method::GET]);
        let routes_table = Arc::new(routes_table);
        let spec = web::Data::new(OpenApiJson(
            document
                .to_pretty_json()
                .map_err(|e| format!("cannot write the OpenAPI document: {e}"))?,
        ));
        // actix's own default: one worker per core (2 when the count is unknown).
        let workers = options.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let cache = web::Data::new(ReadCache::new(&database, options.cache_bytes, workers)?);
        let data = web::Data::new(database.clone());
        let docs = options.docs;
        let auth = options.auth.clone();
        let server = HttpServer::new(move || {
            let app = App::new()
                // Before the `/api/v1` scope, which would otherwise take every path under it.
                .route(OPENAPI_PATH, web::get().to(serve_openapi))
                .into_utoipa_app()
                .configure(routes)
                .into_app()
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
                .app_data(web::Data::from(routes_table.clone()))
                .app_data(spec.clone())
                .default_service(web::to(fallback))
                .wrap(access_log());
            release_freed_memory();
            app
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

/// Hands the memory freed so far back to the operating system.
///
/// Each worker builds the OpenAPI description of its routes while registering them and drops
/// it at once; glibc keeps such freed memory in the worker's arena, about 2 MB per worker that
/// would stay resident for the life of the process. `malloc_trim` returns it.
#[allow(unsafe_code)]
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own arenas; it has no
    // preconditions and touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
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
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> RouteTable {
        let routes = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
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

/// The response to a successful POST: 201, `Location`, and the record.
pub fn created<T: serde::Serialize>(collection: &str, id: i32, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/{collection}/{id}"),
        ))
        .json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_path_with_a_wrong_method_lists_the_allowed_methods() {
        let table = RouteTable::from_openapi(&openapi::document());
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

//! Start-up: builds the OpenAPI document and its validators (once per process), the actix
//! application (the route table, extractor error handlers, the 404/405 fallback, the access
//! log), and binds it to a listener.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::error::{PathError, QueryPayloadError};
use actix_web::http::Method;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::ConnectionType;
use actix_web::middleware::{from_fn, Condition, Next};
use actix_web::HttpMessage;
use std::time::Instant;

use crate::app::routes::{self, API_PREFIX};
use crate::integration::changes::{self, Retention};
use crate::integration::webhooks::{self, WebhookSettings, Worker};
use crate::learning::{initiatives, outcomes, pdsa};
use crate::operations::health::{self, MetricsEndpoint, METRICS_PATH};
use crate::operations::shutdown::{self, Draining, ShutdownSettings};
use crate::platform::auth::Auth;
use crate::platform::cache::ReadCache;
use crate::platform::compression::{self, Coding, Effort, Variants};
use crate::platform::config::Settings;
use crate::platform::db::DatabaseUrl;
use crate::platform::db::{Backend, Database};
use crate::platform::error::ApiError;
use crate::platform::fields::RefKind;
use crate::platform::files::{self, Files};
use crate::platform::http::{self, AllowedMethods, CorsOrigins};
use crate::platform::idempotency;
use crate::platform::ratelimit::{self, Limits, Rate};
use crate::platform::resource::WritePolicy;
use crate::platform::telemetry::{self, RequestId, TokenSubject};
use crate::platform::validate::Validators;
use crate::schedule::calendar::CalendarSettings;
use crate::schedule::materials::MaterialSettings;
use crate::schedule::{departments, rounds, speakers};
use crate::site::pages::SiteSettings;
use crate::site::signin;
use crate::{app::demo, app::openapi};

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
    /// Origins allowed to call the API from a browser.
    pub cors: CorsOrigins,
    /// Whether the series' pages are served, and who may frame the embedded fragment.
    pub site: SiteSettings,
    /// How writes are checked (`If-Match`, idempotency keys).
    pub policy: WritePolicy,
    /// Rate limits of this process.
    pub limits: web::Data<Limits>,
    /// Where calendar feeds point.
    pub calendar: CalendarSettings,
    /// Where materials' files go, how large they may be, and where links may be plain http.
    pub materials: MaterialSettings,
    /// How long the change log is kept.
    pub retention: Retention,
    /// Where webhooks may point and how their deliveries are retried.
    pub webhooks: WebhookSettings,
    /// The Prometheus scrape at `/metrics`; `None` when metrics are off.
    pub metrics: Option<web::Data<MetricsEndpoint>>,
    /// How long a request's body may take to arrive (`LHS_BODY_TIMEOUT`).
    pub body_timeout: std::time::Duration,
    /// How the server stops.
    pub shutdown: ShutdownSettings,
    /// Whether SIGTERM and SIGINT stop the server gracefully (the binary); tests embedding the
    /// application stop it by dropping it.
    pub handle_signals: bool,
}

impl ServeOptions {
    /// The options `settings` give, with `auth` checking tokens.
    pub fn from_settings(settings: &Settings, auth: web::Data<Auth>) -> Result<Self, String> {
        let rate = |name: &str, text: &str| -> Result<Option<Rate>, String> {
            match text.trim() {
                "off" | "0" => Ok(None),
                other => other
                    .parse::<Rate>()
                    .map(Some)
                    .map_err(|e| format!("{name}: {e}")),
            }
        };
        let feedback = rate("LHS_FEEDBACK_RATE_LIMIT", &settings.feedback_rate_limit)?;
        let checkins = rate("LHS_CHECKIN_RATE_LIMIT", &settings.checkin_rate_limit)?;
        let signins = rate("LHS_SIGNIN_RATE_LIMIT", &settings.signin_rate_limit)?;
        let failures = rate(
            "LHS_AUTH_FAILURE_RATE_LIMIT",
            &settings.auth_failure_rate_limit,
        )?
        .ok_or("LHS_AUTH_FAILURE_RATE_LIMIT cannot be off: refused tokens are always limited")?;
        let trusted = ratelimit::parse_networks(&settings.trusted_proxies)
            .map_err(|e| format!("LHS_TRUSTED_PROXIES: {e}"))?;
        let database = DatabaseUrl::parse(&settings.database_url);
        let default_dir =
            (database.backend == Backend::Sqlite).then(|| files::default_dir(&database.target));
        let files = Files::open(
            settings.materials_url.as_deref(),
            default_dir.as_deref(),
            settings.material_max_mb,
        )?;
        Ok(ServeOptions {
            workers: settings.workers,
            docs: settings.docs,
            auth,
            cache_bytes: settings.cache_bytes(),
            cors: parse_origins(&settings.cors_origins)?,
            site: SiteSettings::new(
                settings.site,
                &parse_origins(&settings.embed_origins)
                    .map_err(|e| e.replace("LHS_CORS_ORIGINS", "LHS_EMBED_ORIGINS"))?
                    .0,
            )?,
            policy: WritePolicy {
                require_if_match: settings.require_if_match,
                idempotency_ttl: settings.idempotency_ttl.into(),
            },
            limits: web::Data::new(
                Limits::new(feedback, failures, trusted)
                    .with_checkin(checkins)
                    .with_signin(signins),
            ),
            calendar: CalendarSettings::new(
                settings.public_url.as_deref(),
                settings.calendar_domain.as_deref(),
            ),
            materials: MaterialSettings::new(files, &settings.material_http_hosts),
            retention: Retention {
                audit_days: settings.audit_retention_days,
                feed_days: settings.changes_retention_days,
            },
            webhooks: WebhookSettings::parse(
                &settings.webhook_allowed_hosts,
                &settings.webhook_retry_schedule,
                &settings.webhook_retention,
            )?,
            metrics: if settings.metrics {
                let handle = telemetry::install_metrics()?;
                let token = settings.metrics_token.as_deref().filter(|t| !t.is_empty());
                Some(web::Data::new(MetricsEndpoint::new(handle, token)))
            } else {
                None
            },
            body_timeout: settings.body_timeout.into(),
            shutdown: ShutdownSettings {
                grace: settings.shutdown_grace.into(),
                timeout: settings.shutdown_timeout.into(),
            },
            handle_signals: false,
        })
    }
}

/// `LHS_CORS_ORIGINS`: origins exactly as browsers send them, `scheme://host[:port]`.
fn parse_origins(text: &str) -> Result<CorsOrigins, String> {
    let mut origins = Vec::new();
    for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && origin.len() <= http::ORIGIN_MAX_LENGTH
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        if !valid {
            return Err(format!(
                "LHS_CORS_ORIGINS: {origin:?} is not an origin such as https://intranet.example.org \
                 (a scheme and a host, an optional port, no path; at most {} characters)",
                http::ORIGIN_MAX_LENGTH
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(CorsOrigins(origins))
}

pub struct Application {
    port: u16,
    server: Server,
    database: Database,
    worker: Arc<Worker>,
    draining: web::Data<Draining>,
    shutdown: Option<ShutdownSettings>,
}

impl Application {
    /// Opens the database (migrating it), loads the demo data if asked, and binds.
    pub fn build(settings: &Settings) -> Result<Application, String> {
        let database = Database::open_within(
            &settings.database_url,
            settings.pool_size,
            settings.db_connect_timeout.into(),
        )?;
        if settings.demo {
            let mut conn = database.connection().map_err(|e| e.to_string())?;
            let report = demo::seed(&mut conn).map_err(|e| format!("demo data: {e}"))?;
            log::info!("demo data: {report}");
        }
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
        let auth = web::Data::new(Auth::from_settings(settings)?);
        let mut options = ServeOptions::from_settings(settings, auth)?;
        options.handle_signals = true;
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
        // Once per process: the workers share the committed document, its validators and the
        // table of allowed methods.
        let document = openapi::served_document()?;
        let mut routes_table = RouteTable::from_document(&document);
        routes_table.add(OPENAPI_PATH, vec![Method::GET]);
        if options.metrics.is_some() {
            routes_table.add(METRICS_PATH, vec![Method::GET]);
        }
        let routes_table = web::Data::new(routes_table);
        let validators = web::Data::new(Validators::from_document(document).with_references(vec![
            (RefKind::Department, departments::EXISTING),
            (RefKind::Speaker, speakers::EXISTING),
            (RefKind::Round, rounds::EXISTING),
            (RefKind::Initiative, initiatives::EXISTING),
            (RefKind::PdsaCycle, pdsa::EXISTING),
            (RefKind::Outcome, outcomes::EXISTING),
        ]));
        // A rating by a signed-in person is their evaluation (feedback is below credit).
        crate::schedule::feedback::on_evaluation(crate::credit::attendance::evaluation_sent);
        // With sign-in from the API docs, the served document also declares the identity
        // provider's `openIdConnect` scheme, and the docs' page may call the provider.
        let sign_in = options.auth.oidc().filter(|oidc| oidc.client_id.is_some());
        let spec = web::Data::new(OpenApiJson(Arc::new(Variants::new(
            match sign_in {
                Some(oidc) => web::Bytes::from(openapi::with_sign_in(&oidc.discovery_url())?),
                None => web::Bytes::from_static(openapi::SERVED.trim_end().as_bytes()),
            },
            "application/json",
            Effort::Static,
        ))));
        let docs_policy = web::Data::new(http::DocsPolicy::new(
            sign_in.and_then(|oidc| oidc.origin()).as_deref(),
        )?);
        let oauth = sign_in.map(|oidc| {
            utoipa_swagger_ui::oauth::Config::new()
                .client_id(oidc.client_id.as_deref().unwrap_or_default())
                .scopes(oidc.scopes.clone())
                .use_pkce_with_authorization_code_grant(true)
        });
        let docs_files = web::Data::new(DocsFiles::new(oauth));
        if let Some(oidc) = options.auth.oidc() {
            log::info!(
                "bearer tokens: checked with the keys of the identity provider {}{}",
                oidc.issuer,
                if sign_in.is_some() {
                    "; the API docs sign in with it"
                } else {
                    ""
                }
            );
        }
        // actix's own default: one worker per core (2 when the count is unknown).
        let workers = options.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let cache = web::Data::new(ReadCache::new(&database, options.cache_bytes, workers)?);
        log::info!(
            "every statement runs on the blocking pool's {} connection(s) ({:?}, {})",
            database.pool_state().0,
            database.backend(),
            match database.backend() {
                Backend::Postgres => "libpq: TLS, passwords and PGPASSFILE as libpq reads them",
                Backend::Sqlite =>
                    "WAL, one writer at a time; the read cache reads the revision on connections of its own",
            }
        );
        let data = web::Data::new(database.clone());
        let docs = options.docs;
        let auth = options.auth.clone();
        let policy = web::Data::new(options.policy.clone());
        let limits = options.limits.clone();
        let cors = web::Data::new(options.cors.clone());
        let calendar = web::Data::new(options.calendar.clone());
        let site = web::Data::new(options.site.clone());
        let provider = web::Data::new(signin::ProviderEndpoints::default());
        if options.materials.files.is_configured() {
            log::info!(
                "materials: files are kept in {} (at most {} MiB each)",
                options.materials.files.location(),
                options.materials.files.max_bytes >> 20
            );
        } else {
            log::warn!(
                "materials: no file store (set LHS_MATERIALS_URL): links work, uploads are refused"
            );
        }
        let materials = web::Data::new(options.materials.clone());
        let retention = web::Data::new(options.retention);
        let webhook_settings = web::Data::new(options.webhooks.clone());
        let metrics = options.metrics.clone();
        let draining = web::Data::new(Draining::default());
        let app_draining = draining.clone();
        let body_timeout = web::Data::new(http::BodyTimeout(options.body_timeout));
        telemetry::record_build_info(match database.backend() {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        });
        // Background work lives as long as the server: the factory below holds `alive`.
        let alive = Arc::new(());
        let worker = Arc::new(Worker::spawn(
            database.clone(),
            options.webhooks.clone(),
            Arc::downgrade(&alive),
        )?);
        spawn_maintenance(
            database.clone(),
            options.retention,
            options.webhooks.retention,
            Arc::downgrade(&alive),
        );
        let server = HttpServer::new(move || {
            let _alive = &alive;
            App::new()
                // Before the `/api/v1` scope, which would otherwise take every path under it.
                .route(OPENAPI_PATH, web::get().to(serve_openapi))
                .configure(routes::probes)
                .configure(|cfg| {
                    if let Some(metrics) = &metrics {
                        cfg.app_data(metrics.clone())
                            .route(METRICS_PATH, web::get().to(health::metrics));
                    }
                })
                .service(web::scope(API_PREFIX).configure(routes::api))
                // After the API: the router tries routes in order, and the docs' catch-all
                // pattern would otherwise be tried on every API request.
                .configure(|cfg| {
                    if docs {
                        docs_routes(cfg);
                    }
                })
                // Last: the pages' paths are tried after every API and docs path.
                .configure(|cfg| {
                    if site.enabled {
                        routes::site(cfg);
                    }
                })
                .app_data(site.clone())
                .app_data(provider.clone())
                .app_data(data.clone())
                .app_data(cache.clone())
                .app_data(auth.clone())
                .app_data(validators.clone())
                .app_data(web::PathConfig::default().error_handler(path_error))
                .app_data(web::QueryConfig::default().error_handler(query_error))
                .app_data(routes_table.clone())
                .app_data(spec.clone())
                .app_data(docs_policy.clone())
                .app_data(policy.clone())
                .app_data(limits.clone())
                .app_data(cors.clone())
                .app_data(calendar.clone())
                .app_data(materials.clone())
                .app_data(retention.clone())
                .app_data(webhook_settings.clone())
                .app_data(app_draining.clone())
                .app_data(body_timeout.clone())
                .app_data(docs_files.clone())
                .default_service(web::to(fallback))
                // Innermost first: CORS headers on actual requests, HEAD as GET, preflights
                // answered before anything else sees them, compression of what was not
                // compressed where it was made, the deadline of request bodies,
                // then request ids, security headers, the access log and metrics around all.
                .wrap(Condition::new(
                    !cors.0.is_empty(),
                    actual_request_cors(&cors),
                ))
                .wrap(from_fn(http::head_as_get))
                .wrap(from_fn(answer_options))
                .wrap(from_fn(compression::compress))
                .wrap(from_fn(http::body_deadline))
                .wrap(from_fn(observe))
        })
        .workers(workers)
        // Signals are handled by `shutdown`, which drains before stopping.
        .disable_signals()
        .shutdown_timeout(options.shutdown.timeout.as_secs())
        // A client gets this long to send its request head, then 408: connections dripping
        // bytes (slowloris) are closed instead of held.
        .client_request_timeout(std::time::Duration::from_secs(5))
        .listen(listener)
        .map_err(|e| format!("cannot serve: {e}"))?;
        Ok(Application {
            port,
            server: server.run(),
            database,
            worker,
            draining,
            shutdown: options.handle_signals.then_some(options.shutdown),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Serves until the server stops (after SIGTERM or SIGINT when it handles signals), then
    /// lets the webhook worker finish its attempts.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let Some(settings) = self.shutdown {
            actix_web::rt::spawn(shutdown::on_signal(
                self.server.handle(),
                self.draining.clone(),
                settings,
            ));
        }
        let served = self.server.await;
        let worker = self.worker.clone();
        let _ = web::block(move || worker.stop()).await;
        served
    }
}

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The served document (the committed one, or with the identity provider's scheme), with its
/// compressed copies once asked for.
struct OpenApiJson(Arc<Variants>);

async fn serve_openapi(
    req: HttpRequest,
    spec: web::Data<OpenApiJson>,
) -> Result<HttpResponse, ApiError> {
    let coding = spec.0.coding_for(Coding::preferred(req.headers()));
    let body = compressed_once(&spec.0, coding).await?;
    let mut response = HttpResponse::Ok()
        .content_type("application/json")
        .body(body);
    spec.0.describe(coding, response.headers_mut());
    Ok(response)
}

/// A static file's body in `coding`: compressed on the blocking pool the first time (the
/// Swagger UI bundle takes a while), then the same bytes for every request.
async fn compressed_once(variants: &Arc<Variants>, coding: Coding) -> Result<web::Bytes, ApiError> {
    if variants.ready(coding) {
        return Ok(variants.body(coding));
    }
    let variants = variants.clone();
    Ok(web::block(move || variants.body(coding)).await?)
}

/// Swagger UI, from files compiled into the binary (no CDN: hospital networks are closed),
/// reading the document at [`OPENAPI_PATH`] (see [`DocsFiles`]).
fn docs_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/docs",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header((actix_web::http::header::LOCATION, "/docs/"))
                .finish()
        }),
    )
    .route("/docs/{file:.*}", web::get().to(docs_file));
}

/// The files of Swagger UI (vendored by utoipa-swagger-ui), each read once and kept with its
/// compressed copies and ETag: served from memory, compressed once per process.
pub struct DocsFiles {
    config: Arc<utoipa_swagger_ui::Config<'static>>,
    /// Only files that exist are kept: a handful.
    files: std::sync::Mutex<std::collections::HashMap<String, Arc<DocsFile>>>,
}

struct DocsFile {
    body: Arc<Variants>,
    etag: HeaderValue,
}

impl DocsFiles {
    /// With `oauth`, the page's sign-in uses the authorization code flow with PKCE (a public
    /// client: the page holds no secret).
    fn new(oauth: Option<utoipa_swagger_ui::oauth::Config>) -> DocsFiles {
        let config = match oauth {
            Some(oauth) => utoipa_swagger_ui::Config::with_oauth_config([OPENAPI_PATH], oauth),
            None => utoipa_swagger_ui::Config::new([OPENAPI_PATH]),
        };
        DocsFiles {
            config: Arc::new(config),
            files: Default::default(),
        }
    }

    fn file(&self, name: &str) -> Result<Option<Arc<DocsFile>>, ApiError> {
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(file) = files.get(name) {
            return Ok(Some(file.clone()));
        }
        let served = utoipa_swagger_ui::serve(name, self.config.clone())
            .map_err(|e| ApiError::Internal(format!("Swagger UI file {name}: {e}")))?;
        let Some(served) = served else {
            return Ok(None);
        };
        let mut bytes = served.bytes.into_owned();
        if served.gzpipped {
            // utoipa-swagger-ui's `gzip` feature (not used here) keeps files gzipped.
            let mut plain = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut plain)
                .map_err(|e| ApiError::Internal(format!("Swagger UI file {name}: {e}")))?;
            bytes = plain;
        }
        let etag = http::etag_value(http::body_etag(&bytes))?;
        let file = Arc::new(DocsFile {
            body: Arc::new(Variants::new(
                web::Bytes::from(bytes),
                static_media_type(&served.content_type),
                Effort::Static,
            )),
            etag,
        });
        files.insert(name.to_owned(), file.clone());
        Ok(Some(file))
    }
}

/// The media types of Swagger UI's files, as the `&'static str` answers are built with.
fn static_media_type(guessed: &str) -> &'static str {
    match guessed {
        "text/html" => "text/html",
        "text/css" => "text/css",
        "application/javascript" => "application/javascript",
        "text/javascript" => "text/javascript",
        "application/json" => "application/json",
        "image/png" => "image/png",
        "image/svg+xml" => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

async fn docs_file(
    req: HttpRequest,
    name: web::Path<String>,
    docs: web::Data<DocsFiles>,
) -> Result<HttpResponse, ApiError> {
    let name = name.into_inner();
    let file = docs
        .file(&name)?
        .ok_or_else(|| ApiError::NotFound(format!("there is nothing at {}", req.path())))?;
    let preferred = Coding::preferred(req.headers());
    let if_none_match = http::Conditions::from_headers(req.headers())?.if_none_match;
    if if_none_match
        .is_some_and(|tags| file.etag.to_str().is_ok_and(|tag| tags.matches_weakly(tag)))
    {
        return Ok(compression::not_modified(
            file.body.compressible(),
            preferred,
            &file.etag,
            false,
        ));
    }
    compressed_once(&file.body, file.body.coding_for(preferred)).await?;
    Ok(file.body.ok(preferred, &file.etag, false))
}

/// Around every request: its id (the client's `X-Request-Id` or a new one) on the answer, in
/// problem bodies and on every log line about it; the security headers; one access-log line
/// (method, path without the query string, route template, status, duration, bytes, the token's
/// `sub`) and the request metrics; and, once shutting down, `Connection: close`.
///
/// Nothing here clones the `HttpRequest` before the router has run (actix needs it unshared);
/// what the answer needs is read from the request the answer carries.
async fn observe<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let _in_flight = telemetry::InFlight::enter();
    let id = RequestId::of_header(req.headers().get(RequestId::HEADER));
    let key = id.0.clone();
    req.extensions_mut().insert(id);
    // HEAD is served as GET further in; the log says what the client sent.
    let method = req.method().clone();
    let mut response = telemetry::serving(key.clone(), next.call(req))
        .await?
        .map_into_boxed_body();
    let draining = response
        .request()
        .app_data::<web::Data<Draining>>()
        .is_some_and(|d| d.is_draining());
    if draining {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    let path = response.request().path().to_owned();
    let docs_policy = if http::is_docs(&path) {
        response
            .request()
            .app_data::<web::Data<http::DocsPolicy>>()
            .map(|policy| policy.get_ref().clone())
    } else {
        None
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&key) {
        headers.insert(HeaderName::from_static(RequestId::HEADER), value);
    }
    http::add_security_headers(&path, headers, &docs_policy.unwrap_or_default());
    let request = response.request();
    let route = request.match_pattern();
    let sub = request
        .extensions()
        .get::<TokenSubject>()
        .map(|sub| sub.0.clone());
    let bytes = match response.response().body().size() {
        BodySize::Sized(n) => Some(n),
        BodySize::None | BodySize::Stream => None,
    };
    telemetry::serving_sync(key, || {
        telemetry::Access {
            method: &method,
            path: &path,
            route: route.as_deref().unwrap_or("unmatched"),
            status: response.status(),
            elapsed: started.elapsed(),
            bytes,
            sub: sub.as_deref(),
        }
        .record();
    });
    Ok(response)
}

fn path_error(error: PathError, req: &HttpRequest) -> actix_web::Error {
    log::debug!("path parameter rejected: {error}");
    // `PUT /rounds/5.ics` reaches `/rounds/{id}` with an id that is no number, but it names a
    // route that exists, without PUT: 405, as for any other method a route lacks.
    let allowed = req
        .app_data::<web::Data<RouteTable>>()
        .and_then(|table| table.allowed(req.path()))
        .filter(|allow| !allow.contains(req.method()));
    match allowed {
        Some(allow) => ApiError::MethodNotAllowed {
            method: req.method().clone(),
            allow,
        }
        .into(),
        // An id that is not a number names no record.
        None => ApiError::NotFound(format!("no record at {}", req.path())).into(),
    }
}

fn query_error(error: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest(format!("the query string is invalid: {error}")).into()
}

/// CORS on actual requests from allowed origins: the origin echoed, `Vary: Origin`, and the
/// headers a script may read. A disallowed origin's request is served without CORS headers (its
/// browser refuses to show the answer); requests without `Origin` are untouched.
fn actual_request_cors(origins: &CorsOrigins) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .block_on_origin_mismatch(false)
        .allow_any_method()
        .allowed_headers(http::CORS_ALLOWED_HEADERS.iter().copied())
        .expose_headers(http::CORS_EXPOSED_HEADERS.iter().copied())
        .max_age(600);
    for origin in &origins.0 {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// `OPTIONS` (CORS preflights among them) is answered from the route table.
async fn answer_options<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() != Method::OPTIONS {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let origins = req
        .app_data::<web::Data<CorsOrigins>>()
        .map(|o| o.get_ref().clone())
        .unwrap_or_default();
    let response = match req.app_data::<web::Data<RouteTable>>() {
        Some(table) => http::options_answer(req.request(), &origins, table.get_ref()),
        None => HttpResponse::InternalServerError().finish(),
    };
    Ok(req.into_response(response))
}

/// Work no request waits for: expired idempotency keys, changes past the audit retention and
/// settled webhook messages past theirs are purged (rate limits bound their own memory: see
/// `platform::ratelimit`). Every replica does it; deleting what is expired twice is harmless.
fn spawn_maintenance(
    database: Database,
    retention: Retention,
    webhook_retention: Option<std::time::Duration>,
    alive: std::sync::Weak<()>,
) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    const NAP: std::time::Duration = std::time::Duration::from_secs(1);
    let spawned = std::thread::Builder::new()
        .name("lhs-maintenance".to_owned())
        .spawn(move || loop {
            // Naps, so that the thread ends soon after its server.
            for _ in 0..EVERY.as_secs() {
                if alive.strong_count() == 0 {
                    return;
                }
                std::thread::sleep(NAP);
            }
            match database.run(idempotency::purge_expired) {
                Ok(0) => {}
                Ok(n) => log::info!("purged {n} expired idempotency keys"),
                Err(e) => log::warn!("cannot purge expired idempotency keys: {e}"),
            }
            match database.run(|conn| changes::purge(conn, retention)) {
                Ok(0) => {}
                Ok(n) => log::info!("purged {n} changes older than the audit retention"),
                Err(e) => log::warn!("cannot purge the change log: {e}"),
            }
            if let Some(keep) = webhook_retention {
                match database.run(|conn| webhooks::purge(conn, keep)) {
                    Ok(0) => {}
                    Ok(n) => log::info!("purged {n} settled webhook messages past their retention"),
                    Err(e) => log::warn!("cannot purge webhook messages: {e}"),
                }
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot start the maintenance thread: {e}");
    }
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
    routes: Vec<(Vec<Segment>, Vec<Method>)>,
}

/// One segment of a route's path: a literal, or a parameter with what follows it in the
/// segment (`{id}.ics`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter { suffix: String },
}

impl Segment {
    fn of(text: &str) -> Segment {
        match (text.starts_with('{'), text.find('}')) {
            (true, Some(end)) => Segment::Parameter {
                suffix: text[end + 1..].to_owned(),
            },
            _ => Segment::Literal(text.to_owned()),
        }
    }

    fn matches(&self, part: &str) -> bool {
        match self {
            Segment::Literal(literal) => literal == part,
            Segment::Parameter { suffix } => part
                .strip_suffix(suffix.as_str())
                .is_some_and(|value| !value.is_empty()),
        }
    }
}

impl RouteTable {
    pub fn from_document(document: &Value) -> RouteTable {
        let paths = document.get("paths").and_then(Value::as_object);
        let routes = paths
            .into_iter()
            .flatten()
            .map(|(path, item)| {
                let segments = path.split('/').map(Segment::of).collect();
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
        let segments = path
            .split('/')
            .map(|s| Segment::Literal(s.to_owned()))
            .collect();
        self.routes.push((segments, methods));
    }

    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let mut methods = self.declared(path)?;
        // HEAD is served on every GET route.
        if let Some(at) = methods.iter().position(|m| *m == Method::GET) {
            methods.insert(at + 1, Method::HEAD);
        }
        Some(methods)
    }

    fn declared(&self, path: &str) -> Option<Vec<Method>> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .filter(|(segments, _)| {
                segments.len() == parts.len()
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(segment, part)| segment.matches(part))
            })
            // `/rounds/{id}.ics` over `/rounds/{id}`, which matches `5.ics` too: the route whose
            // parameters must be followed by the most text is the most specific; then the one
            // with the most literal segments (`/rounds/attention` over `/rounds/{id}`).
            .max_by_key(|(segments, _)| {
                let suffixes = segments
                    .iter()
                    .map(|segment| match segment {
                        Segment::Parameter { suffix } => suffix.len(),
                        Segment::Literal(_) => 0,
                    })
                    .sum::<usize>();
                let literals = segments
                    .iter()
                    .filter(|segment| matches!(segment, Segment::Literal(_)))
                    .count();
                (suffixes, literals)
            })
            .map(|(_, methods)| methods.clone())
    }
}

impl AllowedMethods for RouteTable {
    fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        RouteTable::allowed(self, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The validators compile on first use, so a schema that cannot compile would surface only
    /// when a request needs it: every one is compiled here.
    #[test]
    fn every_body_and_query_schema_of_the_served_document_compiles() {
        let document = openapi::served_document().expect("the served document");
        let validators = Validators::from_document(document);
        assert_eq!(validators.compile_all(), Ok(()));
    }

    #[test]
    fn a_known_path_with_a_wrong_method_lists_the_allowed_methods() {
        let table = RouteTable::from_document(&openapi::document());
        assert_eq!(
            table.allowed("/api/v1/rounds/12"),
            Some(vec![
                Method::GET,
                Method::HEAD,
                Method::PUT,
                Method::PATCH,
                Method::DELETE
            ])
        );
        assert_eq!(
            table.allowed("/api/v1/rounds"),
            Some(vec![Method::GET, Method::HEAD, Method::POST])
        );
        assert_eq!(
            table.allowed("/api/v1/rounds/12.ics"),
            Some(vec![Method::GET, Method::HEAD])
        );
        assert_eq!(
            table.allowed("/api/v1/rounds/attention"),
            Some(vec![Method::GET, Method::HEAD])
        );
        assert_eq!(table.allowed("/api/v1/nothing"), None);
        assert_eq!(table.allowed("/api/v1/rounds//feedback"), None);
    }

    /// What the document declares of `Access-Control-Allow-Origin` holds for every origin
    /// start-up takes.
    #[test]
    fn a_cors_origin_is_a_scheme_and_a_host_of_bounded_length() {
        let longest = format!("https://{}.org", "a".repeat(http::ORIGIN_MAX_LENGTH - 12));
        assert_eq!(longest.len(), http::ORIGIN_MAX_LENGTH);
        let taken = parse_origins(&format!(
            "https://intranet.example.org, http://[::1]:8080, {longest}"
        ))
        .map(|o| o.0.len());
        assert_eq!(taken, Ok(3));
        for refused in [
            format!("{longest}a"),
            "intranet.example.org".to_owned(),
            "https://example.org/path".to_owned(),
            "https://".to_owned(),
        ] {
            assert!(parse_origins(&refused).is_err(), "{refused}");
        }
    }
}

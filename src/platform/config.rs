//! Configuration: the command line, each setting also an environment variable.
//!
//! | variable | flag | default |
//! |---|---|---|
//! | `DATABASE_URL` | `--database-url` | `lhs-rounds.db` (SQLite file in the working directory); a `postgres://` URL selects PostgreSQL |
//! | `LHS_BIND` | `--bind` | `127.0.0.1:8080` |
//! | `LHS_POOL_SIZE` | `--pool-size` | `8` |
//! | `LHS_WORKERS` | `--workers` | one per CPU core |
//! | `RUST_LOG` | `--log` | `info` |
//! | `LHS_DOCS` | `--docs` | `on` (Swagger UI at `/docs/`; `off` turns it off) |
//! | `LHS_CACHE_MB` | `--cache-mb` | `16` (read cache; `0` turns it off) |
//! | `LHS_CORS_ORIGINS` | `--cors-origins` | empty (same-origin only) |
//! | `LHS_REQUIRE_IF_MATCH` | `--require-if-match` | `false` |
//! | `LHS_IDEMPOTENCY_TTL` | `--idempotency-ttl` | `24h` |
//! | `LHS_FEEDBACK_RATE_LIMIT` | `--feedback-rate-limit` | `120/minute` per client (`off`) |
//! | `LHS_CHECKIN_RATE_LIMIT` | `--checkin-rate-limit` | `600/minute` per client (`off`) |
//! | `LHS_SIGNIN_RATE_LIMIT` | `--signin-rate-limit` | `60/minute` per client (`off`) |
//! | `LHS_AUTH_FAILURE_RATE_LIMIT` | `--auth-failure-rate-limit` | `30/minute` per client |
//! | `LHS_TRUSTED_PROXIES` | `--trusted-proxies` | empty |
//! | `LHS_PUBLIC_URL` | `--public-url` | unset (calendar events link to their round there) |
//! | `LHS_AUDIT_RETENTION_DAYS` | `--audit-retention-days` | `0` (forever) |
//! | `LHS_CHANGES_RETENTION_DAYS` | `--changes-retention-days` | `90` |
//! | `LHS_WEBHOOK_RETRY_SCHEDULE` | `--webhook-retry-schedule` | `5s,5m,30m,2h,5h,10h,10h` |
//! | `LHS_WEBHOOK_ALLOWED_HOSTS` | `--webhook-allowed-hosts` | empty |
//! | `LHS_WEBHOOK_RETENTION` | `--webhook-retention` | `30d` (delivered and failed messages; `off` keeps them) |
//! | `LHS_CALENDAR_DOMAIN` | `--calendar-domain` | the public URL's host, or `lhs-rounds.invalid` |
//! | `LHS_METRICS` | `--metrics` | `on` (Prometheus metrics at `/metrics`; `off` turns them off) |
//! | `LHS_METRICS_TOKEN` | `--metrics-token` | unset (when set, `/metrics` needs `Authorization: Bearer <it>`) |
//! | `LHS_LOG_FORMAT` | `--log-format` | `text` (`json`: one JSON object per line) |
//! | `LHS_BODY_TIMEOUT` | `--body-timeout` | `10s` (for a request's body to arrive in full, then 408) |
//! | `LHS_SHUTDOWN_GRACE` | `--shutdown-grace` | `5s` (serving on after SIGTERM, not ready) |
//! | `LHS_SHUTDOWN_TIMEOUT` | `--shutdown-timeout` | `30s` (for requests in flight to finish) |
//! | `LHS_DB_CONNECT_TIMEOUT` | `--db-connect-timeout` | `30s` (retrying PostgreSQL at start-up) |
//!
//! Token settings (`LHS_JWT_*`, `LHS_OIDC_*`, `LHS_PUBLIC_READ`, `LHS_ANONYMOUS_FEEDBACK`) are
//! listed in the `auth` module; the file store's (`LHS_MATERIALS_URL`, `LHS_MATERIAL_MAX_MB`,
//! `LHS_MATERIAL_HTTP_HOSTS`) in the `files` module.

use clap::{Args, Parser, Subcommand};

use crate::platform::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "lhs-rounds",
    version,
    about = "The Learning Health System Rounds service: a JSON REST API"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand, Clone, PartialEq, Eq)]
pub enum Command {
    /// Serve the API (the default when no subcommand is given).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Load the demo schedule from the LHS Rounds page (idempotent) and exit.
    SeedDemo,
    /// Print the OpenAPI document and exit.
    Openapi,
    /// Copy a SQLite database, consistently, while the service keeps serving (PostgreSQL: use
    /// pg_dump).
    Backup {
        /// The copy to write; it must not exist yet.
        file: std::path::PathBuf,
    },
    /// Check the database's integrity and its foreign keys, and the file store against the
    /// materials that name its files; print what is wrong, exit 1 if anything is.
    Check {
        /// Also remove the files no material names (orphans left by a crash between a
        /// deletion's commit and its file's removal, or by an upload whose write failed).
        #[arg(long)]
        repair: bool,
    },
    /// Mint a bearer token with the configured shared secret (HS256) and print it.
    Token {
        /// The token's subject, such as an e-mail address.
        #[arg(long)]
        sub: String,
        /// A role to grant: viewer, organizer or admin (repeat for several).
        #[arg(long = "role", value_parser = ["viewer", "organizer", "admin"])]
        roles: Vec<String>,
        /// How long the token is valid, such as 8h, 30m or 7d.
        #[arg(long, default_value = "8h")]
        ttl: humantime::Duration,
    },
}

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Database URL: a SQLite file path (or `sqlite://path`), or a `postgres://` URL.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "lhs-rounds.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Address to listen on.
    #[arg(
        long,
        env = "LHS_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Maximum number of database connections.
    #[arg(long, env = "LHS_POOL_SIZE", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256), global = true)]
    pub pool_size: u32,
    /// Number of HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "LHS_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256), global = true)]
    pub workers: Option<u16>,
    /// Log filter in env_logger syntax, such as `info` or `lhs_rounds=debug`.
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,
    /// Serve the interactive API docs (Swagger UI) at /docs/: on or off.
    #[arg(long, env = "LHS_DOCS", default_value = "on", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub docs: bool,
    /// HS256 secret for bearer tokens (at least 32 bytes).
    #[arg(long, env = "LHS_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// PEM file with the identity provider's public key (RSA: RS256, EC P-256: ES256).
    #[arg(long, env = "LHS_JWT_PUBLIC_KEY", global = true)]
    pub jwt_public_key: Option<std::path::PathBuf>,
    /// Required issuer (`iss`) of tokens.
    #[arg(long, env = "LHS_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// Required audience (`aud`) of tokens: a string, or an array that contains it.
    #[arg(long, env = "LHS_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// The OpenID Connect issuer, such as https://login.example.org/realms/hospital: tokens are
    /// checked with the keys its discovery document names, refreshed as they rotate.
    #[arg(long, env = "LHS_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<String>,
    /// The public client the API docs (Swagger UI) sign in with (authorization code + PKCE).
    #[arg(long, env = "LHS_OIDC_CLIENT_ID", global = true)]
    pub oidc_client_id: Option<String>,
    /// Least time between two fetches of the provider's keys, such as 30s (the default); a bare
    /// number is seconds.
    #[arg(long, env = "LHS_OIDC_REFRESH_MIN", value_parser = duration_or_seconds, global = true)]
    pub oidc_refresh_min: Option<humantime::Duration>,
    /// Where the roles or groups are in a token: a dotted path such as realm_access.roles
    /// (default: roles).
    #[arg(long, env = "LHS_OIDC_ROLES_CLAIM", global = true)]
    pub oidc_roles_claim: Option<String>,
    /// The provider's groups or roles and the role each grants, such as
    /// LHS-Rounds-Admins=admin,LHS-Rounds-Organizers=organizer.
    #[arg(long, env = "LHS_OIDC_ROLE_MAP", global = true)]
    pub oidc_role_map: Option<String>,
    /// The role of a signed-in person with no mapped group: viewer (the default) or none.
    #[arg(long, env = "LHS_OIDC_DEFAULT_ROLE", global = true)]
    pub oidc_default_role: Option<String>,
    /// The scopes the API docs ask for when signing in (default: openid profile email).
    #[arg(long, env = "LHS_OIDC_SCOPES", global = true)]
    pub oidc_scopes: Option<String>,
    /// Whether anyone may read rounds, speakers, departments and feedback summaries.
    #[arg(long, env = "LHS_PUBLIC_READ", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub public_read: bool,
    /// Whether anyone may send feedback and topic suggestions without a token.
    #[arg(long, env = "LHS_ANONYMOUS_FEEDBACK", default_value = "true", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub anonymous_feedback: bool,
    /// Memory for the read cache of schedule answers, in MiB; 0 turns the cache off.
    #[arg(long, env = "LHS_CACHE_MB", default_value_t = 16, value_parser = clap::value_parser!(u32).range(0..=4096), global = true)]
    pub cache_mb: u32,
    /// Origins allowed to call the API from a browser, comma-separated, each exactly as the
    /// browser sends it (`https://intranet.example.org`); empty: same-origin only.
    #[arg(long, env = "LHS_CORS_ORIGINS", default_value = "", global = true)]
    pub cors_origins: String,
    /// Serve the series' own pages (`/`, `/rounds/{id}`, `/embed/upcoming`) and their forms:
    /// on or off (off: the API alone).
    #[arg(long, env = "LHS_SITE", default_value = "on", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub site: bool,
    /// Origins allowed to frame `/embed/upcoming` (`frame-ancestors`), comma-separated, each
    /// as a browser sends it (`https://www.example.org`); empty: no one. Every other page
    /// refuses framing.
    #[arg(long, env = "LHS_EMBED_ORIGINS", default_value = "", global = true)]
    pub embed_origins: String,
    /// Whether PUT, PATCH and DELETE must send If-Match (428 without it).
    #[arg(long, env = "LHS_REQUIRE_IF_MATCH", default_value = "false", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub require_if_match: bool,
    /// How long the answer of a POST sent with an Idempotency-Key is kept, such as 24h.
    #[arg(
        long,
        env = "LHS_IDEMPOTENCY_TTL",
        default_value = "24h",
        global = true
    )]
    pub idempotency_ttl: humantime::Duration,
    /// Feedback sent without a token, per client address, such as 120/minute; `off`: no limit.
    #[arg(
        long,
        env = "LHS_FEEDBACK_RATE_LIMIT",
        default_value = "120/minute",
        global = true
    )]
    pub feedback_rate_limit: String,
    /// Check-ins with a round's code per client address, such as 600/minute; `off`: no limit.
    /// Generous by default: a whole room may check in from behind one hospital NAT address.
    #[arg(
        long,
        env = "LHS_CHECKIN_RATE_LIMIT",
        default_value = "600/minute",
        global = true
    )]
    pub checkin_rate_limit: String,
    /// Sign-ins started on the pages per client address, such as 60/minute; `off`: no limit.
    /// Each writes a row before the provider is asked, without credentials.
    #[arg(
        long,
        env = "LHS_SIGNIN_RATE_LIMIT",
        default_value = "60/minute",
        global = true
    )]
    pub signin_rate_limit: String,
    /// Refused bearer tokens per client address before answering 429, such as 30/minute.
    #[arg(
        long,
        env = "LHS_AUTH_FAILURE_RATE_LIMIT",
        default_value = "30/minute",
        global = true
    )]
    pub auth_failure_rate_limit: String,
    /// Proxies whose X-Forwarded-For names the client: CIDRs or addresses, comma-separated.
    #[arg(long, env = "LHS_TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,
    /// The service's public address, such as https://rounds.example.org: calendar events link
    /// to their round there.
    #[arg(long, env = "LHS_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// The domain of calendar event UIDs (`round-<id>@<domain>`); defaults to the host of
    /// LHS_PUBLIC_URL, or lhs-rounds.invalid.
    #[arg(long, env = "LHS_CALENDAR_DOMAIN", global = true)]
    pub calendar_domain: Option<String>,
    /// Days the audit trail keeps a change; 0 keeps every change forever.
    #[arg(
        long,
        env = "LHS_AUDIT_RETENTION_DAYS",
        default_value_t = 0,
        global = true
    )]
    pub audit_retention_days: u32,
    /// Days the change feed serves a change (deletions included); older `after` is 410.
    #[arg(long, env = "LHS_CHANGES_RETENTION_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=36500), global = true)]
    pub changes_retention_days: u32,
    /// The waits before each retry of a webhook message, such as 5s,5m,30m,2h,5h,10h,10h.
    #[arg(
        long,
        env = "LHS_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h",
        global = true
    )]
    pub webhook_retry_schedule: String,
    /// Hosts, addresses or CIDRs webhooks may reach although they are loopback, link-local or
    /// unspecified (comma-separated).
    #[arg(
        long,
        env = "LHS_WEBHOOK_ALLOWED_HOSTS",
        default_value = "",
        global = true
    )]
    pub webhook_allowed_hosts: String,
    /// How long delivered and failed webhook messages (and their attempts) are kept after
    /// their last attempt, such as 30d; `off` keeps them. Pending messages are always kept.
    #[arg(
        long,
        env = "LHS_WEBHOOK_RETENTION",
        default_value = "30d",
        global = true
    )]
    pub webhook_retention: String,
    /// Prometheus metrics at /metrics: on or off.
    #[arg(long, env = "LHS_METRICS", default_value = "on", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set, global = true)]
    pub metrics: bool,
    /// When set, /metrics needs `Authorization: Bearer <this token>`.
    #[arg(long, env = "LHS_METRICS_TOKEN", hide_env_values = true, global = true)]
    pub metrics_token: Option<String>,
    /// Log lines as text, or one JSON object per line (for log shippers).
    #[arg(
        long,
        env = "LHS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// How long a request's body may take to arrive in full, such as 10s; then 408, and the
    /// connection is closed.
    #[arg(long, env = "LHS_BODY_TIMEOUT", default_value = "10s", value_parser = parse_body_timeout, global = true)]
    pub body_timeout: humantime::Duration,
    /// After SIGTERM or SIGINT: how long to keep serving (not ready) before refusing new
    /// connections, so that load balancers notice.
    #[arg(long, env = "LHS_SHUTDOWN_GRACE", default_value = "5s", global = true)]
    pub shutdown_grace: humantime::Duration,
    /// After the grace: how long requests in flight may take to finish.
    #[arg(
        long,
        env = "LHS_SHUTDOWN_TIMEOUT",
        default_value = "30s",
        global = true
    )]
    pub shutdown_timeout: humantime::Duration,
    /// How long to keep trying to reach PostgreSQL at start-up before giving up.
    #[arg(
        long,
        env = "LHS_DB_CONNECT_TIMEOUT",
        default_value = "30s",
        global = true
    )]
    pub db_connect_timeout: humantime::Duration,
    /// With `serve`: also load the demo schedule before serving.
    #[arg(long, global = true)]
    pub demo: bool,
    /// Where round materials' files are kept: a directory (a path or file:///path), or
    /// s3://bucket/prefix with the usual AWS_* variables. Default: beside a SQLite database;
    /// none on PostgreSQL (uploads are refused until it is set).
    #[arg(long, env = "LHS_MATERIALS_URL", global = true)]
    pub materials_url: Option<String>,
    /// The largest file a material may have, in MiB.
    #[arg(long, env = "LHS_MATERIAL_MAX_MB", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=102400), global = true)]
    pub material_max_mb: u32,
    /// Hosts whose material links may be plain `http://` (comma-separated); every other link
    /// must be `https://`.
    #[arg(
        long,
        env = "LHS_MATERIAL_HTTP_HOSTS",
        default_value = "",
        global = true
    )]
    pub material_http_hosts: String,
}

/// A duration such as `30s` or `2m`, or a bare number of seconds (`30`), as a setting named
/// after a minimum interval invites.
fn duration_or_seconds(text: &str) -> Result<humantime::Duration, String> {
    let text = text.trim();
    match text.parse::<u64>() {
        Ok(seconds) => Ok(std::time::Duration::from_secs(seconds).into()),
        Err(_) => text
            .parse::<humantime::Duration>()
            .map_err(|e| format!("`{text}` is not a duration like 30s or 2m: {e}")),
    }
}

/// `LHS_BODY_TIMEOUT`: a duration longer than zero (a body may always take some time).
fn parse_body_timeout(text: &str) -> Result<humantime::Duration, String> {
    let duration: humantime::Duration = text.parse().map_err(|e| format!("{e}"))?;
    if std::time::Duration::from(duration).is_zero() {
        return Err("the body timeout must be longer than zero, such as 10s".to_owned());
    }
    Ok(duration)
}

impl Settings {
    pub fn cache_bytes(&self) -> usize {
        (self.cache_mb as usize) << 20
    }

    /// Settings for tests and embedding: defaults, with the given database.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Settings {
            database_url: database_url.into(),
            bind: "127.0.0.1:0".to_owned(),
            pool_size: 8,
            workers: Some(1),
            log_filter: "warn".to_owned(),
            docs: true,
            jwt_secret: None,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            oidc_issuer: None,
            oidc_client_id: None,
            oidc_refresh_min: None,
            oidc_roles_claim: None,
            oidc_role_map: None,
            oidc_default_role: None,
            oidc_scopes: None,
            public_read: true,
            anonymous_feedback: true,
            cache_mb: 16,
            cors_origins: String::new(),
            site: true,
            embed_origins: String::new(),
            require_if_match: false,
            idempotency_ttl: std::time::Duration::from_secs(24 * 3600).into(),
            feedback_rate_limit: "120/minute".to_owned(),
            checkin_rate_limit: "600/minute".to_owned(),
            signin_rate_limit: "60/minute".to_owned(),
            auth_failure_rate_limit: "30/minute".to_owned(),
            trusted_proxies: String::new(),
            public_url: None,
            calendar_domain: None,
            audit_retention_days: 0,
            changes_retention_days: 90,
            webhook_retry_schedule: "5s,5m,30m,2h,5h,10h,10h".to_owned(),
            webhook_allowed_hosts: String::new(),
            webhook_retention: "30d".to_owned(),
            metrics: true,
            metrics_token: None,
            log_format: LogFormat::Text,
            body_timeout: std::time::Duration::from_secs(10).into(),
            shutdown_grace: std::time::Duration::from_secs(5).into(),
            shutdown_timeout: std::time::Duration::from_secs(30).into(),
            db_connect_timeout: std::time::Duration::from_secs(30).into(),
            demo: false,
            materials_url: None,
            material_max_mb: 100,
            material_http_hosts: String::new(),
        }
    }
}

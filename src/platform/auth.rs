//! Who may do what: `Authorization: Bearer <JWT>` and three roles.
//!
//! Tokens are checked one of three ways, set by exactly one setting (two at once stop start-up):
//!
//! | variable | flag | meaning |
//! |---|---|---|
//! | `LHS_JWT_SECRET` | `--jwt-secret` | HS256 secret, at least 32 bytes |
//! | `LHS_JWT_PUBLIC_KEY` | `--jwt-public-key` | PEM file of the identity provider's public key: RSA means RS256, EC P-256 means ES256 |
//! | `LHS_OIDC_ISSUER` | `--oidc-issuer` | OpenID Connect: the provider's keys from its discovery document, refreshed as they rotate ([`oidc`]) |
//!
//! and, whatever the mode:
//!
//! | variable | flag | meaning |
//! |---|---|---|
//! | `LHS_JWT_ISSUER` | `--jwt-issuer` | when set, `iss` is required and must match (with OpenID Connect: unset or the issuer) |
//! | `LHS_JWT_AUDIENCE` | `--jwt-audience` | when set, `aud` (a string, or an array) is required and must contain it |
//! | `LHS_PUBLIC_READ` | `--public-read` | `true` (default): anyone may read rounds, speakers, departments, summaries |
//! | `LHS_ANONYMOUS_FEEDBACK` | `--anonymous-feedback` | `true` (default): anyone may send feedback |
//!
//! The OpenID Connect settings (`LHS_OIDC_CLIENT_ID`, `LHS_OIDC_REFRESH_MIN`,
//! `LHS_OIDC_ROLES_CLAIM`, `LHS_OIDC_ROLE_MAP`, `LHS_OIDC_DEFAULT_ROLE`, `LHS_OIDC_SCOPES`) are
//! read in [`oidc`]. With no mode on SQLite, a random 256-bit HS256 secret is created in a file
//! beside the database (mode 0600) and reused; on PostgreSQL the service refuses to start without
//! one.

pub mod oidc;
pub mod roles;

use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, AUTHORIZATION};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::Value;

use crate::platform::auth::oidc::{Identity, OidcSettings, Verifier, VerifyError};
use crate::platform::auth::roles::{ClaimPath, RoleMap};
use crate::platform::config::Settings;
use crate::platform::db::{Backend, DatabaseUrl};
use crate::platform::error::ApiError;
use crate::platform::fields::Text;
use crate::platform::ratelimit::Limits;
use crate::platform::telemetry;

pub use crate::platform::auth::roles::Role;

/// Who created or changed a record: a token's subject, at most 255 characters.
pub type Subject = Text<255>;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = oidc::LEEWAY_SECONDS;
pub const MIN_SECRET_BYTES: usize = 32;

/// What `lhs-rounds token` signs; the checks read the claims as JSON, so that `aud` may be a
/// string or an array and `name` and `email` come along (see [`oidc::identity`]).
#[derive(Debug, Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    roles: Vec<&'static str>,
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// How tokens are checked (and, with a shared secret, minted).
pub struct Auth {
    mode: Mode,
    pub public_read: bool,
    pub anonymous_feedback: bool,
}

enum Mode {
    /// A shared secret or one PEM public key, read once at start (boxed: the checks and keys
    /// are large beside the verifier's handle).
    Key(Box<KeyMode>),
    /// The identity provider's rotating keys.
    Oidc(Verifier),
}

struct KeyMode {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    secret_source: Option<SecretSource>,
}

/// Where the shared secret came from: `lhs-rounds token` says it, because a token minted with
/// another database's secret file is refused by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `LHS_JWT_SECRET` (or `--jwt-secret`).
    Setting,
    /// The file beside the SQLite database (an absolute path); `created` when this process
    /// made it, so no server had used it yet.
    File { path: PathBuf, created: bool },
}

/// What checking a bearer token came to without waiting: a caller (or a refusal), or a token
/// whose key is not cached, which [`Auth::authenticate_fetching`] must finish.
enum Checked {
    Done(Result<Caller, ApiError>),
    Pending(String),
}

impl Auth {
    /// The token mode the settings name, started: with OpenID Connect, the verifier's refresh
    /// thread, which never waits for the provider.
    pub fn from_settings(settings: &Settings) -> Result<Auth, String> {
        let mode = match Self::oidc_settings(settings)? {
            Some(oidc) => Mode::Oidc(Verifier::start(oidc)?),
            None => Mode::Key(Box::new(KeyMode::from_settings(settings)?)),
        };
        Ok(Auth {
            mode,
            public_read: settings.public_read,
            anonymous_feedback: settings.anonymous_feedback,
        })
    }

    /// The OpenID Connect settings, when that is the mode; an error when two modes are set,
    /// naming them. An empty value (`LHS_JWT_SECRET=` in a compose file) sets no mode.
    pub fn oidc_settings(settings: &Settings) -> Result<Option<OidcSettings>, String> {
        let given = |value: Option<&str>| value.is_some_and(|v| !v.trim().is_empty());
        let set: Vec<&str> = [
            (oidc::ISSUER, given(settings.oidc_issuer.as_deref())),
            ("LHS_JWT_SECRET", given(settings.jwt_secret.as_deref())),
            (
                "LHS_JWT_PUBLIC_KEY",
                settings
                    .jwt_public_key
                    .as_ref()
                    .is_some_and(|path| !path.as_os_str().is_empty()),
            ),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        if let [first @ .., last] = set.as_slice() {
            if !first.is_empty() {
                return Err(format!(
                    "{} and {last} are both set, but tokens are checked one way: set only one \
                     of them",
                    first.join(", ")
                )
                .replace(
                    "both set",
                    if first.len() > 1 {
                        "all set"
                    } else {
                        "both set"
                    },
                ));
            }
        }
        OidcSettings::from_settings(settings)
    }

    /// Where the shared secret came from; `None` with a public key or OpenID Connect.
    pub fn secret_source(&self) -> Option<&SecretSource> {
        match &self.mode {
            Mode::Key(key) => key.secret_source.as_ref(),
            Mode::Oidc(_) => None,
        }
    }

    /// The OpenID Connect settings, in that mode (the API docs sign in with them).
    pub fn oidc(&self) -> Option<&OidcSettings> {
        match &self.mode {
            Mode::Oidc(verifier) => Some(verifier.settings()),
            Mode::Key(_) => None,
        }
    }

    /// The OpenID Connect verifier, in that mode.
    pub fn verifier(&self) -> Option<&Verifier> {
        match &self.mode {
            Mode::Oidc(verifier) => Some(verifier),
            Mode::Key(_) => None,
        }
    }

    /// Mints a token (`lhs-rounds token`); only with a shared secret.
    pub fn mint(
        &self,
        subject: &str,
        roles: &[Role],
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let minting = match &self.mode {
            Mode::Key(mode) => mode.encoding.as_ref().map(|key| (key, &**mode)),
            Mode::Oidc(_) => None,
        };
        let Some((
            key,
            KeyMode {
                issuer, audience, ..
            },
        )) = minting
        else {
            return Err("tokens are minted with a shared secret (HS256); with \
                 LHS_JWT_PUBLIC_KEY or LHS_OIDC_ISSUER the identity provider issues them"
                .to_owned());
        };
        let now = jsonwebtoken::get_current_timestamp();
        let claims = MintedClaims {
            sub: subject,
            roles: roles.iter().map(|r| r.as_str()).collect(),
            exp: now + ttl.as_secs(),
            iat: now,
            iss: issuer.as_deref(),
            aud: audience.as_deref(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(|e| format!("cannot sign the token: {e}"))
    }

    fn anonymous(&self) -> Caller {
        Caller {
            subject: None,
            name: None,
            email: None,
            role: None,
            signed_in: false,
            public_read: self.public_read,
            anonymous_feedback: self.anonymous_feedback,
        }
    }

    fn signed_in(&self, identity: Identity) -> Caller {
        Caller {
            subject: identity.sub,
            name: identity.name,
            email: identity.email,
            role: identity.role,
            signed_in: true,
            ..self.anonymous()
        }
    }

    /// The caller a page's session holds: who its token said at sign-in (see
    /// `site::session`), with this service's settings for the anonymous.
    pub fn caller_for(&self, identity: Identity) -> Caller {
        self.signed_in(identity)
    }

    /// Checks an access token as a bearer token is checked (signature, issuer, audience,
    /// expiry, roles from groups), waiting for the identity provider's keys when they must be
    /// fetched: how a page's sign-in learns who signed in.
    pub async fn check_token(&self, token: &str) -> Result<Caller, ApiError> {
        let header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| invalid_token("the access token is not a header value"))?;
        match self.authenticate(Some(&header)) {
            Checked::Done(result) => result,
            Checked::Pending(token) => self.authenticate_fetching(&token).await,
        }
    }

    /// Checks the `Authorization` header with what is at hand: the key, or the identity
    /// provider's keys cached now. Never waits.
    fn authenticate(&self, header: Option<&HeaderValue>) -> Checked {
        let Some(header) = header else {
            return Checked::Done(Ok(self.anonymous()));
        };
        let token = match bearer_token(header) {
            Ok(token) => token,
            Err(refused) => return Checked::Done(Err(refused)),
        };
        match &self.mode {
            Mode::Key(key) => Checked::Done(
                key.check(token)
                    .map(|identity| self.signed_in(identity))
                    .map_err(|why| invalid_token(&why)),
            ),
            Mode::Oidc(verifier) => match verifier.verify_cached(token) {
                Some(result) => Checked::Done(self.verified(result)),
                None => Checked::Pending(token.to_owned()),
            },
        }
    }

    /// Finishes a check that needs the identity provider's keys fetched: waits for the refresh
    /// (on the verifier's own thread), never blocking the worker.
    async fn authenticate_fetching(&self, token: &str) -> Result<Caller, ApiError> {
        match &self.mode {
            Mode::Oidc(verifier) => self.verified(verifier.verify(token).await),
            Mode::Key(_) => Err(ApiError::Internal(
                "a token was left to fetch keys for without OpenID Connect".to_owned(),
            )),
        }
    }

    fn verified(&self, result: Result<Identity, VerifyError>) -> Result<Caller, ApiError> {
        match result {
            Ok(identity) => Ok(self.signed_in(identity)),
            Err(VerifyError::Unauthorized(why)) => Err(invalid_token(&why)),
            Err(VerifyError::ProviderUnavailable) => {
                let retry_after = self
                    .oidc()
                    .map_or(oidc::DEFAULT_REFRESH_MIN, |s| s.refresh_min)
                    .as_secs()
                    .max(1);
                Err(ApiError::IdentityProviderUnavailable { retry_after })
            }
        }
    }
}

impl KeyMode {
    fn from_settings(settings: &Settings) -> Result<KeyMode, String> {
        let mut secret_source = None;
        // An empty path sets no mode, as `Auth::oidc_settings` counts it.
        let public_key = settings
            .jwt_public_key
            .as_ref()
            .filter(|path| !path.as_os_str().is_empty());
        let (algorithm, decoding, encoding) = match (public_key, &settings.jwt_secret) {
            (Some(path), _) => {
                let (algorithm, key) = read_public_key(path)?;
                (algorithm, key, None)
            }
            (None, secret) => {
                let (secret, source) = match secret {
                    Some(secret) => (secret.clone().into_bytes(), SecretSource::Setting),
                    None => default_secret(&settings.database_url)?,
                };
                secret_source = Some(source);
                if secret.len() < MIN_SECRET_BYTES {
                    return Err(format!(
                        "LHS_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (it has {}); \
                         generate one with: openssl rand -hex 32",
                        secret.len()
                    ));
                }
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(&secret),
                    Some(EncodingKey::from_secret(&secret)),
                )
            }
        };
        // Exactly one algorithm: a token signed any other way (or not at all) is refused.
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &settings.jwt_issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &settings.jwt_audience {
            // jsonwebtoken takes a string `aud` or an array that contains the audience.
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(KeyMode {
            decoding,
            encoding,
            validation,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            secret_source,
        })
    }

    /// The token's identity, its roles read literally from its `roles` claim.
    fn check(&self, token: &str) -> Result<Identity, String> {
        let data = jsonwebtoken::decode::<Value>(token, &self.decoding, &self.validation)
            .map_err(|e| oidc::describe(&e))?;
        if !data.claims.is_object() {
            return Err("the token's claims are not a JSON object".to_owned());
        }
        oidc::identity(
            &data.claims,
            &ClaimPath::default(),
            &RoleMap::default(),
            None,
        )
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(header: &HeaderValue) -> Result<&str, ApiError> {
    let value = header
        .to_str()
        .map_err(|_| invalid_token("the Authorization header is not text"))?;
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ if value.eq_ignore_ascii_case("bearer") => "",
        _ => return Err(invalid_token("expected Authorization: Bearer <token>")),
    };
    if token.is_empty() {
        return Err(invalid_token("the bearer token is empty"));
    }
    Ok(token)
}

fn invalid_token(description: &str) -> ApiError {
    ApiError::Unauthorized {
        invalid_token: Some(description.to_owned()),
    }
}

fn read_public_key(path: &Path) -> Result<(Algorithm, DecodingKey), String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read LHS_JWT_PUBLIC_KEY {}: {e}", path.display()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((Algorithm::RS256, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
        return Ok((Algorithm::ES256, key));
    }
    Err(format!(
        "LHS_JWT_PUBLIC_KEY {} is neither an RSA (RS256) nor an EC P-256 (ES256) public key in PEM",
        path.display()
    ))
}

/// Where the generated secret of a SQLite database lives.
pub fn secret_file(sqlite_path: &str) -> PathBuf {
    PathBuf::from(format!("{sqlite_path}.jwt-secret"))
}

/// The embedded default still starts with one command: a secret of its own, kept beside the
/// SQLite file. PostgreSQL deployments must configure a key.
fn default_secret(database_url: &str) -> Result<(Vec<u8>, SecretSource), String> {
    let url = DatabaseUrl::parse(database_url);
    if url.backend == Backend::Postgres {
        return Err(
            "no token key is configured: on PostgreSQL set LHS_JWT_SECRET (at least 32 bytes), \
             LHS_JWT_PUBLIC_KEY (the identity provider's PEM public key) or LHS_OIDC_ISSUER (the \
             identity provider's OpenID Connect issuer)"
                .to_owned(),
        );
    }
    // Absolute, so that what is logged and told names the file whatever the current directory.
    let relative = secret_file(&url.target);
    let path = std::path::absolute(&relative).unwrap_or(relative);
    let source = |created| SecretSource::File {
        path: path.clone(),
        created,
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        log::info!("token secret: reusing {}", path.display());
        return Ok((existing.trim().as_bytes().to_vec(), source(false)));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a token secret: {e}"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(secret.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            log::info!("token secret: created {} (mode 0600)", path.display());
            Ok((secret.into_bytes(), source(true)))
        }
        // Another replica or process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path)
            .map(|s| (s.trim().as_bytes().to_vec(), source(false)))
            .map_err(|e| format!("cannot read {}: {e}", path.display())),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Who is calling: anonymous, or who a verified token says (its subject, name, e-mail address
/// and role).
#[derive(Debug, Clone)]
pub struct Caller {
    /// `sub`; `None` for an anonymous caller, or a token without one.
    pub subject: Option<String>,
    /// `name` (or `preferred_username`).
    pub name: Option<String>,
    pub email: Option<String>,
    /// The highest role the token grants.
    role: Option<Role>,
    /// Whether a token was verified (a valid token may grant no role).
    signed_in: bool,
    public_read: bool,
    anonymous_feedback: bool,
}

impl Caller {
    /// No token was sent.
    pub fn is_anonymous(&self) -> bool {
        !self.signed_in
    }

    /// The highest role the caller's token grants.
    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// Whether the caller has `role` or one above it.
    pub fn can(&self, role: Role) -> bool {
        self.role.is_some_and(|r| r >= role)
    }

    /// 401 for an anonymous caller, 403 for one without the role.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.can(role) {
            Ok(())
        } else if self.is_anonymous() {
            Err(ApiError::Unauthorized {
                invalid_token: None,
            })
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {} role (or one above it)",
                role.as_str()
            )))
        }
    }

    /// 401 for an anonymous caller; any verified token will do, whatever its role.
    pub fn require_signed_in(&self) -> Result<(), ApiError> {
        if self.is_anonymous() {
            Err(ApiError::Unauthorized {
                invalid_token: None,
            })
        } else {
            Ok(())
        }
    }

    /// Reading the schedule: open to anyone unless `LHS_PUBLIC_READ=false`.
    pub fn require_reader(&self) -> Result<(), ApiError> {
        if self.public_read {
            Ok(())
        } else {
            self.require(Role::Viewer)
        }
    }

    /// Sending feedback: open to anyone unless `LHS_ANONYMOUS_FEEDBACK=false`.
    pub fn require_submitter(&self) -> Result<(), ApiError> {
        if self.anonymous_feedback {
            Ok(())
        } else {
            self.require(Role::Viewer)
        }
    }

    /// Organisers see e-mail addresses and who changed what.
    pub fn sees_private_fields(&self) -> bool {
        self.can(Role::Organizer)
    }
}

/// The caller of a request: at once with a key at hand, or once the identity provider's keys
/// are fetched (a token naming a key not cached yet).
pub enum CallerFuture {
    Ready(Option<Result<Caller, ApiError>>),
    Fetching(Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>),
}

impl Future for CallerFuture {
    type Output = Result<Caller, ApiError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            CallerFuture::Ready(result) => Poll::Ready(result.take().unwrap_or_else(|| {
                Err(ApiError::Internal(
                    "the caller was asked for twice".to_owned(),
                ))
            })),
            CallerFuture::Fetching(future) => future.as_mut().poll(cx),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = CallerFuture;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let Some(auth) = req.app_data::<web::Data<Auth>>() else {
            return CallerFuture::Ready(Some(Err(ApiError::Internal(
                "the token checker is not configured".to_owned(),
            ))));
        };
        match auth.authenticate(req.headers().get(AUTHORIZATION)) {
            Checked::Done(result) => CallerFuture::Ready(Some(settle(req, result))),
            Checked::Pending(token) => {
                let (auth, req) = (auth.clone(), req.clone());
                CallerFuture::Fetching(Box::pin(async move {
                    let result = auth.authenticate_fetching(&token).await;
                    settle(&req, result)
                }))
            }
        }
    }
}

/// What every checked token leads to: a refusal logged with its reason only (never the token
/// or its claims) and counted against the client's quota, so that guessing is slowed down; an
/// accepted token's subject kept for the access log.
fn settle(req: &HttpRequest, result: Result<Caller, ApiError>) -> Result<Caller, ApiError> {
    match result {
        Err(refused @ ApiError::Unauthorized { .. }) => {
            if let ApiError::Unauthorized {
                invalid_token: Some(why),
            } = &refused
            {
                log::info!("bearer token refused: {why}");
            }
            match req.app_data::<web::Data<Limits>>() {
                Some(limits) => match limits.failed_authentication.take(limits.client(req)) {
                    Ok(_) => Err(refused),
                    Err(too_many) => Err(too_many),
                },
                None => Err(refused),
            }
        }
        Err(unavailable @ ApiError::IdentityProviderUnavailable { .. }) => {
            // The access log has the 503, and the verifier's thread says why each fetch failed.
            log::debug!("bearer token not checked: the identity provider can't be reached");
            Err(unavailable)
        }
        Err(other) => Err(other),
        Ok(caller) => {
            if let Some(sub) = &caller.subject {
                req.extensions_mut()
                    .insert(telemetry::TokenSubject(sub.clone()));
            }
            Ok(caller)
        }
    }
}

/// Answers show private fields (e-mail addresses, who changed what) to organisers only.
pub trait Visible {
    fn visible_to(self, caller: &Caller) -> Self;
}

impl<T: Visible> Visible for crate::platform::pagination::Page<T> {
    fn visible_to(mut self, caller: &Caller) -> Self {
        self.items = self
            .items
            .into_iter()
            .map(|item| item.visible_to(caller))
            .collect();
        self
    }
}

//! Who may do what: `Authorization: Bearer <JWT>` and three roles.
//!
//! | variable | flag | meaning |
//! |---|---|---|
//! | `LHS_JWT_SECRET` | `--jwt-secret` | HS256 secret, at least 32 bytes |
//! | `LHS_JWT_PUBLIC_KEY` | `--jwt-public-key` | PEM file of the identity provider's public key: RSA means RS256, EC P-256 means ES256 |
//! | `LHS_JWT_ISSUER` | `--jwt-issuer` | when set, `iss` is required and must match |
//! | `LHS_JWT_AUDIENCE` | `--jwt-audience` | when set, `aud` is required and must match |
//! | `LHS_PUBLIC_READ` | `--public-read` | `true` (default): anyone may read rounds, speakers, departments, summaries |
//! | `LHS_ANONYMOUS_FEEDBACK` | `--anonymous-feedback` | `true` (default): anyone may send feedback |
//!
//! With neither key on SQLite, a random 256-bit HS256 secret is created in a file beside the
//! database (mode 0600) and reused; on PostgreSQL the service refuses to start without a key.

use std::future::{ready, Ready};
use std::io::Write;
use std::path::{Path, PathBuf};

use actix_web::dev::Payload;
use actix_web::http::header::{HeaderValue, AUTHORIZATION};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::platform::config::Settings;
use crate::platform::db::{Backend, DatabaseUrl};
use crate::platform::error::ApiError;
use crate::platform::fields::Text;
use crate::platform::ratelimit::Limits;
use crate::platform::telemetry;

/// Who created or changed a record: a token's subject, at most 255 characters.
pub type Subject = Text<255>;
const SUBJECT_MAX: usize = 255;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
pub const MIN_SECRET_BYTES: usize = 32;

/// Roles, each granting what the ones before it grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Organizer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Organizer, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Organizer => "organizer",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// The claims the service reads; anything else in a token is ignored.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Unknown roles grant nothing.
    #[serde(default)]
    pub roles: Vec<String>,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// How tokens are checked (and, with a shared secret, minted).
pub struct Auth {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    pub public_read: bool,
    pub anonymous_feedback: bool,
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

impl Auth {
    pub fn from_settings(settings: &Settings) -> Result<Auth, String> {
        let mut secret_source = None;
        let (algorithm, decoding, encoding) = match (&settings.jwt_public_key, &settings.jwt_secret)
        {
            (Some(_), Some(_)) => {
                return Err("set LHS_JWT_SECRET or LHS_JWT_PUBLIC_KEY, not both".to_owned())
            }
            (Some(path), None) => {
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
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Auth {
            decoding,
            encoding,
            validation,
            issuer: settings.jwt_issuer.clone(),
            audience: settings.jwt_audience.clone(),
            public_read: settings.public_read,
            anonymous_feedback: settings.anonymous_feedback,
            secret_source,
        })
    }

    /// Where the shared secret came from; `None` with a public key.
    pub fn secret_source(&self) -> Option<&SecretSource> {
        self.secret_source.as_ref()
    }

    /// Mints a token (`lhs-rounds token`); only with a shared secret.
    pub fn mint(
        &self,
        subject: &str,
        roles: &[Role],
        ttl: std::time::Duration,
    ) -> Result<String, String> {
        let key = self.encoding.as_ref().ok_or(
            "tokens are minted with a shared secret (HS256); with LHS_JWT_PUBLIC_KEY the identity \
             provider issues them",
        )?;
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: Some(subject.to_owned()),
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            exp: now + ttl.as_secs(),
            iat: Some(now),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
            .map_err(|e| format!("cannot sign the token: {e}"))
    }

    fn authenticate(&self, header: Option<&HeaderValue>) -> Result<Caller, ApiError> {
        let anonymous = Caller {
            subject: None,
            roles: Vec::new(),
            public_read: self.public_read,
            anonymous_feedback: self.anonymous_feedback,
        };
        let Some(header) = header else {
            return Ok(anonymous);
        };
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
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| invalid_token(&describe(&e)))?;
        if let Some(sub) = &data.claims.sub {
            // Recorded as `created_by` and shown to organizers: one line of bounded length.
            if sub.chars().count() > SUBJECT_MAX || sub.chars().any(char::is_control) {
                return Err(invalid_token(
                    "the sub claim must be at most 255 characters with no control characters",
                ));
            }
        }
        Ok(Caller {
            subject: data.claims.sub,
            roles: data
                .claims
                .roles
                .iter()
                .filter_map(|r| Role::parse(r))
                .collect(),
            ..anonymous
        })
    }
}

fn invalid_token(description: &str) -> ApiError {
    ApiError::Unauthorized {
        invalid_token: Some(description.to_owned()),
    }
}

/// Why a token was refused, in words safe to send back (never the token or the key).
fn describe(error: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
        ErrorKind::InvalidAlgorithm => {
            "the token is signed with an algorithm this service does not accept".to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the {claim} claim has the wrong type"),
        ErrorKind::InvalidIssuer => "the token is from another issuer".to_owned(),
        ErrorKind::InvalidAudience => "the token is for another audience".to_owned(),
        ErrorKind::Json(_) => "the token's claims are not the expected JSON".to_owned(),
        _ => "the token is not a valid JWT".to_owned(),
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
            "no token key is configured: on PostgreSQL set LHS_JWT_SECRET (at least 32 bytes) or \
             LHS_JWT_PUBLIC_KEY (the identity provider's PEM public key)"
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

/// Who is calling: anonymous, or a token's subject and roles.
#[derive(Debug, Clone)]
pub struct Caller {
    pub subject: Option<String>,
    roles: Vec<Role>,
    public_read: bool,
    anonymous_feedback: bool,
}

impl Caller {
    pub fn is_anonymous(&self) -> bool {
        self.subject.is_none() && self.roles.is_empty()
    }

    /// Whether the caller has `role` or one above it.
    pub fn can(&self, role: Role) -> bool {
        self.roles.iter().any(|r| *r >= role)
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

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<Auth>>() {
            Some(auth) => auth.authenticate(req.headers().get(AUTHORIZATION)),
            None => Err(ApiError::Internal(
                "the token checker is not configured".to_owned(),
            )),
        };
        // Refused tokens count against the client's quota: guessing is slowed down.
        let result = match (result, req.app_data::<web::Data<Limits>>()) {
            (Err(refused @ ApiError::Unauthorized { .. }), Some(limits)) => {
                match limits.failed_authentication.take(limits.client(req)) {
                    Ok(_) => Err(refused),
                    Err(too_many) => Err(too_many),
                }
            }
            (result, _) => result,
        };
        if let Ok(Caller {
            subject: Some(sub), ..
        }) = &result
        {
            req.extensions_mut()
                .insert(telemetry::TokenSubject(sub.clone()));
        }
        ready(result)
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

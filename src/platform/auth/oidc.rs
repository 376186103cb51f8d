//! OpenID Connect: the identity provider's keys from its discovery document and JWKS, cached and
//! refreshed as they rotate, and the checks of its tokens against them.
//!
//! Why this shape:
//! - Every fetch runs on a thread of the verifier's own (`lhs-oidc`, a current-thread tokio
//!   runtime, as the webhook worker has): an HTTP worker never owns a connection to the
//!   provider, a slow provider never holds a worker's thread, and reqwest's pool stays on the one
//!   runtime that drives it (actix runs a runtime per worker).
//! - The keys sit behind a `RwLock<Arc<KeySet>>` replaced whole after each fetch: a token whose
//!   `kid` is cached is checked synchronously ([`Verifier::verify_cached`]), with no network
//!   call and no wait, whatever the provider's state.
//! - A token whose `kid` is unknown asks for a fetch through the gate ([`Verifier::verify`]):
//!   at most one fetch starts per `refresh_min` (whoever asks, the max-age timer included), and
//!   while one is under way every asker waits for that one (single-flight through a `watch` of
//!   completed attempts, which works across runtimes). A flood of made-up `kid`s costs at most
//!   one fetch per interval, and askers that arrive while the gate is shut are answered at once.
//! - A signature check with RS256, PS256 or ES256 costs far more than an HS256 one with
//!   jsonwebtoken's pure-Rust backend, so an accepted token is remembered by its SHA-256 until its
//!   `exp` or the next key set ([`Verified`]): a client sending the same token again costs a
//!   digest and a lookup. (jsonwebtoken's `aws_lc_rs` backend checks faster, but brings AWS-LC,
//!   a second C crypto library beside libpq's OpenSSL, whose `OpenSSL` licence `deny.toml` does
//!   not allow; with the cache, a repeat costs the same either way.)
//! - Start-up never waits for the provider: the first fetch starts in the background, and a
//!   failed one is retried every `refresh_min` until it succeeds (recovery without restart).
//!   During an outage the keys already cached stay in use, even past their max-age: the provider
//!   cannot have withdrawn them without being reached.
//!
//! Reasons for refusing a token are fixed sentences: nothing from the token is repeated, so a
//! reason may be logged and sent back as it is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header::{ACCEPT, CACHE_CONTROL};
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::{watch, Notify};

use crate::platform::auth::roles::{self, ClaimPath, Role, RoleMap};
use crate::platform::config::Settings;

// ---- settings ---------------------------------------------------------------------------------

pub const ISSUER: &str = "LHS_OIDC_ISSUER";
pub const CLIENT_ID: &str = "LHS_OIDC_CLIENT_ID";
pub const REFRESH_MIN: &str = "LHS_OIDC_REFRESH_MIN";
pub const ROLES_CLAIM: &str = "LHS_OIDC_ROLES_CLAIM";
pub const ROLE_MAP: &str = "LHS_OIDC_ROLE_MAP";
pub const DEFAULT_ROLE: &str = "LHS_OIDC_DEFAULT_ROLE";
pub const SCOPES: &str = "LHS_OIDC_SCOPES";
/// The issuer check of the PEM mode: with OpenID Connect it must agree, or be left unset.
pub const JWT_ISSUER: &str = "LHS_JWT_ISSUER";

pub const DEFAULT_REFRESH_MIN: Duration = Duration::from_secs(30);
/// What the API docs ask the provider for when signing in, unless `LHS_OIDC_SCOPES` says.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];
/// Total time for one refresh (discovery and JWKS): a token that waits for one waits no longer.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Without a `Cache-Control: max-age`, keys are fetched again after an hour.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// A longer max-age is cut to this: a key the provider withdrew (it leaked, say) stays trusted
/// until the next fetch, and a day bounds that.
pub const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;
/// Longer tokens are refused before any decoding (a provider's are a few kB).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// As `created_by`: one line of bounded length.
pub const SUBJECT_MAX: usize = 255;
/// A person's name as a token gives it; longer ones are left out.
pub const NAME_MAX: usize = 300;
/// An e-mail address: 64 characters, `@`, 255 (RFC 5321's limits).
pub const EMAIL_MAX: usize = 320;
/// RFC 7518 section 3.3: RSA keys of 2048 bits or more.
const MIN_RSA_BITS: usize = 2048;
/// The discovery document and the JWKS are a few kB; more is not an answer to trust.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Tokens remembered as verified: about 200 bytes each, so at most a few hundred kB.
const VERIFIED_CAPACITY: usize = 4096;

/// The OpenID Connect settings (`LHS_OIDC_*`, and `LHS_JWT_AUDIENCE` shared with the other modes).
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Compared byte for byte with the discovery document's `issuer` and each token's `iss`.
    pub issuer: String,
    pub refresh_min: Duration,
    pub audience: Option<String>,
    pub roles_claim: ClaimPath,
    pub role_map: RoleMap,
    /// `None`: `LHS_OIDC_DEFAULT_ROLE=none`.
    pub default_role: Option<Role>,
    /// The public client the API docs (Swagger UI) sign in with.
    pub client_id: Option<String>,
    /// The scopes the API docs ask for.
    pub scopes: Vec<String>,
    /// Not from the environment: a test may shorten them.
    pub http_timeout: Duration,
    pub connect_timeout: Duration,
}

impl OidcSettings {
    /// Settings for `issuer` with every other value at its default.
    pub fn new(issuer: impl Into<String>) -> OidcSettings {
        OidcSettings {
            issuer: issuer.into(),
            refresh_min: DEFAULT_REFRESH_MIN,
            audience: None,
            roles_claim: ClaimPath::default(),
            role_map: RoleMap::default(),
            default_role: Some(Role::Viewer),
            client_id: None,
            scopes: DEFAULT_SCOPES.map(str::to_owned).to_vec(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The settings the command line and environment give; `Ok(None)`: OpenID Connect is off
    /// (no `LHS_OIDC_ISSUER`). A value that is only spaces counts as unset, as a `VAR=` line in a
    /// compose file means. Each error names its variable.
    pub fn from_settings(settings: &Settings) -> Result<Option<OidcSettings>, String> {
        let text = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let Some(issuer) = text(&settings.oidc_issuer) else {
            // The OpenID Connect settings without an issuer are a mistake, not a quiet no-op.
            for (name, set) in [
                (CLIENT_ID, text(&settings.oidc_client_id).is_some()),
                (REFRESH_MIN, settings.oidc_refresh_min.is_some()),
                (ROLES_CLAIM, text(&settings.oidc_roles_claim).is_some()),
                (ROLE_MAP, text(&settings.oidc_role_map).is_some()),
                (DEFAULT_ROLE, text(&settings.oidc_default_role).is_some()),
                (SCOPES, text(&settings.oidc_scopes).is_some()),
            ] {
                if set {
                    return Err(format!("{name} is set, but {ISSUER} is not"));
                }
            }
            return Ok(None);
        };
        check_issuer(&issuer)?;
        if let Some(jwt_issuer) = text(&settings.jwt_issuer) {
            if jwt_issuer != issuer {
                return Err(format!(
                    "{JWT_ISSUER} differs from {ISSUER}; leave it unset with OpenID Connect"
                ));
            }
        }
        let mut oidc = OidcSettings::new(issuer);
        if let Some(refresh) = settings.oidc_refresh_min {
            let refresh: Duration = refresh.into();
            if refresh < Duration::from_secs(1) {
                return Err(format!(
                    "{REFRESH_MIN} must be at least 1s: it is what keeps a flood of unknown key \
                     ids from turning into a flood of fetches"
                ));
            }
            oidc.refresh_min = refresh;
        }
        oidc.audience = text(&settings.jwt_audience);
        if let Some(path) = text(&settings.oidc_roles_claim) {
            oidc.roles_claim =
                ClaimPath::parse(&path).map_err(|e| format!("{ROLES_CLAIM}: {e}"))?;
        }
        if let Some(map) = text(&settings.oidc_role_map) {
            oidc.role_map = RoleMap::parse(&map).map_err(|e| format!("{ROLE_MAP}: {e}"))?;
        }
        if let Some(default) = text(&settings.oidc_default_role) {
            oidc.default_role = match default.to_ascii_lowercase().as_str() {
                "viewer" => Some(Role::Viewer),
                "none" => None,
                // A default above viewer would let everyone the provider knows write.
                other => {
                    return Err(format!(
                        "{DEFAULT_ROLE}: `{other}` must be viewer or none; grant more with \
                         {ROLE_MAP}"
                    ))
                }
            };
        }
        oidc.client_id = text(&settings.oidc_client_id);
        if let Some(scopes) = text(&settings.oidc_scopes) {
            oidc.scopes = scopes
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(Some(oidc))
    }

    /// Where discovery is read: `{issuer}/.well-known/openid-configuration`, one slash between
    /// (OpenID Connect Discovery 1.0, section 4).
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// The issuer's origin (`https://login.example.org`), which the API docs' page must be
    /// allowed to call: discovery and the token endpoint are there.
    pub fn origin(&self) -> Option<String> {
        Url::parse(&self.issuer)
            .ok()
            .map(|url| url.origin().ascii_serialization())
            .filter(|origin| origin != "null")
    }
}

/// An `https` URL, or `http` on this machine only (a provider in a test or a developer's
/// container): keys fetched in clear text from elsewhere could be swapped on the way.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let url = Url::parse(issuer).map_err(|e| format!("{ISSUER}: `{issuer}` is not a URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{ISSUER}: must have no query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        _ => Err(format!(
            "{ISSUER}: `{issuer}` must be https (http only for localhost)"
        )),
    }
}

/// Whether the URL names this machine; used for the issuer and for the JWKS address.
fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some(host) if host.eq_ignore_ascii_case("localhost") => true,
        // IPv6 hosts come in brackets.
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

// ---- the JWKS -----------------------------------------------------------------------------------

/// One key of the JWKS with the algorithm it verifies and the checks that go with it.
struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
    /// The settings' checks with `algorithms = [alg]`: a token whose header names another
    /// algorithm is refused by jsonwebtoken as well as by us.
    validation: Validation,
}

/// The keys of one JWKS answer, by `kid`. A `kid` may name several keys (RFC 7517 4.5 allows it
/// for keys of different types): the token's `alg` chooses among them.
struct KeySet {
    by_kid: HashMap<String, Vec<VerifyingKey>>,
    /// Which fetch this is (set when it replaces the previous set): verified tokens are
    /// remembered for one generation only.
    generation: u64,
    fetched: Instant,
    max_age: Duration,
}

impl KeySet {
    fn empty() -> KeySet {
        KeySet {
            by_kid: HashMap::new(),
            generation: 0,
            fetched: Instant::now(),
            max_age: Duration::ZERO,
        }
    }

    fn len(&self) -> usize {
        self.by_kid.values().map(Vec::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }
}

/// Parses a JWKS answer. Keys this service cannot or must not use are left out (each with a
/// reason, for the log); an answer with no usable key at all is an error, so that a broken
/// answer never replaces keys that work.
fn parse_jwks(
    body: &[u8],
    template: &Validation,
    max_age: Option<Duration>,
) -> Result<(KeySet, Vec<String>), String> {
    let document: Value =
        serde_json::from_slice(body).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
    let Some(keys) = document.get("keys").and_then(Value::as_array) else {
        return Err("the JWKS has no `keys` array".to_owned());
    };
    let mut by_kid: HashMap<String, Vec<VerifyingKey>> = HashMap::new();
    let mut skipped = Vec::new();
    for (index, value) in keys.iter().enumerate() {
        // One key at a time: a key of a kind jsonwebtoken does not know spoils only itself.
        let usable = serde_json::from_value::<Jwk>(value.clone())
            .map_err(|e| format!("not a JWK jsonwebtoken reads: {e}"))
            .and_then(|jwk| usable_key(&jwk).map(|(alg, key)| (jwk, alg, key)));
        match usable {
            Ok((jwk, alg, key)) => {
                let Some(kid) = jwk.common.key_id else {
                    skipped.push(format!("key {index}: has no kid, so no token can name it"));
                    continue;
                };
                let mut validation = template.clone();
                validation.algorithms = vec![alg];
                by_kid.entry(kid).or_default().push(VerifyingKey {
                    alg,
                    key,
                    validation,
                });
            }
            Err(reason) => skipped.push(format!("key {index}: {reason}")),
        }
    }
    if by_kid.is_empty() {
        return Err(format!(
            "the JWKS has no RS256, PS256 or ES256 signing key ({} key(s): {})",
            keys.len(),
            skipped.join("; ")
        ));
    }
    Ok((
        KeySet {
            by_kid,
            generation: 0,
            fetched: Instant::now(),
            max_age: max_age.unwrap_or(DEFAULT_MAX_AGE).min(MAX_MAX_AGE),
        },
        skipped,
    ))
}

/// The algorithm a JWK verifies, and its decoding key, or why it is left out.
///
/// The JWK's `alg` decides. Without one, it is derived: an RSA key is RS256 (the default of
/// OpenID Connect; Entra ID publishes no `alg`), an EC key on P-256 is ES256; PS256 cannot be
/// told from the key and needs the `alg`. Symmetric keys (`oct`), HS*, `none` and any other
/// algorithm are never used.
fn usable_key(jwk: &Jwk) -> Result<(Algorithm, DecodingKey), String> {
    if let Some(key_use) = &jwk.common.public_key_use {
        if *key_use != PublicKeyUse::Signature {
            return Err("its use is not sig".to_owned());
        }
    }
    if let Some(operations) = &jwk.common.key_operations {
        if !operations.contains(&KeyOperations::Verify) {
            return Err("its key_ops do not include verify".to_owned());
        }
    }
    let alg = match (jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
        (Some(KeyAlgorithm::PS256), _) => Algorithm::PS256,
        (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
        (Some(other), _) => return Err(format!("its alg {other} is not accepted")),
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        (None, _) => return Err("no alg, and none can be derived from its kty/crv".to_owned()),
    };
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(rsa), Algorithm::RS256 | Algorithm::PS256) => {
            let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(rsa.n.trim_end_matches('='))
                .map_err(|_| "its modulus is not base64url".to_owned())?;
            let significant = modulus.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return Err(format!("its RSA modulus is under {MIN_RSA_BITS} bits"));
            }
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256)
            if ec.curve == EllipticCurve::P256 => {}
        _ => return Err(format!("its kty/crv do not fit its alg {alg:?}")),
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unreadable: {e}"))?;
    Ok((alg, key))
}

/// `max-age` of a `Cache-Control` value; `no-cache` or `no-store` without one say nothing about
/// how long keys last, so they leave the one-hour default.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            value
                .trim()
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
        } else {
            None
        }
    })
}

// ---- one token ----------------------------------------------------------------------------------

/// Who the token says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `sub`; a token without one (a machine's, in some providers) is accepted unnamed.
    pub sub: Option<String>,
    /// `name`, or `preferred_username` without one.
    pub name: Option<String>,
    pub email: Option<String>,
    /// `None`: no mapped group and `LHS_OIDC_DEFAULT_ROLE=none`.
    pub role: Option<Role>,
}

/// The header fields this service reads; `jku`, `x5u` and `jwk` are ignored: keys come from the
/// configured issuer's JWKS only, never from an address or key the token brings.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

struct TokenHeader {
    alg: Algorithm,
    kid: String,
}

/// Checks what the header alone can tell, so that a forged or foreign token is refused without
/// a key lookup (and an unknown `kid` on such a token never starts a fetch).
fn read_header(token: &str) -> Result<TokenHeader, String> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(format!(
            "the token is longer than {} kB",
            MAX_TOKEN_BYTES / 1024
        ));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the token is not a signed JWT (three parts separated by dots)".to_owned());
    };
    let raw: RawHeader = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or("the token's header is not base64url JSON with an alg")?;
    let alg = match raw.alg.as_str() {
        "RS256" => Algorithm::RS256,
        "PS256" => Algorithm::PS256,
        "ES256" => Algorithm::ES256,
        none if none.eq_ignore_ascii_case("none") => {
            return Err("unsigned tokens (alg none) are refused".to_owned())
        }
        hmac if hmac.starts_with("HS") => {
            return Err(
                "tokens signed with a shared secret (HS256, HS384, HS512) are refused: the \
                 identity provider's keys are public"
                    .to_owned(),
            )
        }
        _ => return Err("the token's alg is not one of RS256, PS256 and ES256".to_owned()),
    };
    if raw.crit.is_some() {
        // RFC 7515 4.1.11: an extension this service does not implement must not be ignored.
        return Err("the token's header has crit: no header extension is supported".to_owned());
    }
    if let Some(typ) = &raw.typ {
        // RFC 9068 access tokens say at+jwt; media types may carry the application/ prefix
        // (RFC 7515 4.1.9) and are compared without case.
        let lower = typ.to_ascii_lowercase();
        let bare = lower.strip_prefix("application/").unwrap_or(&lower);
        if bare != "jwt" && bare != "at+jwt" {
            return Err("the token's typ is neither JWT nor at+jwt".to_owned());
        }
    }
    match raw.kid {
        Some(kid) if !kid.is_empty() => Ok(TokenHeader { alg, kid }),
        _ => Err("the token's header names no key (kid)".to_owned()),
    }
}

/// The checks every key shares, built once; each key's copy names its own algorithm.
fn validation(settings: &OidcSettings) -> Validation {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_issuer(&[&settings.issuer]);
    let mut required = vec!["exp", "iss"];
    match &settings.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // jsonwebtoken would refuse every token with an `aud` when none is expected.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// Verifies the signature and the claims with `key`, and reads who the caller is, with the
/// token's `exp` (for the cache of verified tokens; `None` leaves it out of that cache).
fn check(
    token: &str,
    key: &VerifyingKey,
    settings: &OidcSettings,
) -> Result<(Identity, Option<u64>), String> {
    let data = jsonwebtoken::decode::<Value>(token, &key.key, &key.validation)
        .map_err(|e| describe(&e))?;
    let claims = data.claims;
    // jsonwebtoken also takes an `iss` array that contains the issuer; OpenID Connect says one
    // string, equal to the issuer.
    if claims.get("iss").and_then(Value::as_str) != Some(settings.issuer.as_str()) {
        return Err("the token is from another issuer".to_owned());
    }
    // jsonwebtoken reads an exp of 1.7e9 (a float) as a number too, rounded.
    let exp = claims.get("exp").and_then(|exp| {
        exp.as_u64().or_else(|| {
            exp.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        })
    });
    let identity = identity(
        &claims,
        &settings.roles_claim,
        &settings.role_map,
        settings.default_role,
    )?;
    Ok((identity, exp))
}

/// Who verified `claims` say the caller is: `sub` (when present, one line of at most 255
/// characters), `name` (or `preferred_username`), `email`, and the role the claim at
/// `roles_claim` grants through `role_map`. Also used by the shared-secret and PEM modes, with
/// the `roles` claim read literally.
pub fn identity(
    claims: &Value,
    roles_claim: &ClaimPath,
    role_map: &RoleMap,
    default_role: Option<Role>,
) -> Result<Identity, String> {
    let sub = match claims.get("sub") {
        None | Some(Value::Null) => None,
        // Recorded as `created_by` and shown to organizers: one line of bounded length.
        Some(Value::String(sub))
            if !sub.is_empty()
                && sub.chars().count() <= SUBJECT_MAX
                && !sub.chars().any(char::is_control) =>
        {
            Some(sub.clone())
        }
        Some(_) => {
            return Err(
                "the sub claim must be 1 to 255 characters with no control characters".to_owned(),
            )
        }
    };
    // Empty strings count as absent; other types, and values no display or address is (too
    // long, or with control characters), are left out rather than refusing the token.
    let text = |name: &str, max: usize| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| {
                !v.is_empty() && v.chars().count() <= max && !v.chars().any(char::is_control)
            })
            .map(str::to_owned)
    };
    Ok(Identity {
        sub,
        name: text("name", NAME_MAX).or_else(|| text("preferred_username", NAME_MAX)),
        email: text("email", EMAIL_MAX),
        role: roles::resolve(claims, roles_claim, role_map, default_role),
    })
}

/// Why jsonwebtoken refused a token, in words safe to send back (never the token or the key).
pub fn describe(error: &jsonwebtoken::errors::Error) -> String {
    match error.kind() {
        ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
        ErrorKind::InvalidAlgorithm => {
            "the token is signed with another algorithm than the key it is checked with".to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the {claim} claim has the wrong type"),
        ErrorKind::InvalidIssuer => "the token is from another issuer".to_owned(),
        ErrorKind::InvalidAudience => "the token is for another audience".to_owned(),
        ErrorKind::Json(_) => "the token's claims are not a JSON object".to_owned(),
        _ => "the token is not a valid JWT".to_owned(),
    }
}

// ---- tokens already verified --------------------------------------------------------------------

/// Tokens already verified, so that a client sending the same token again costs a SHA-256 and a
/// lookup instead of a signature check. Safe because:
/// - the key is the SHA-256 of the whole token: no other token, however close, finds an entry;
/// - an entry holds for the key set it was verified with only: every refresh makes every entry
///   a miss, and they are cleared;
/// - an entry ends when the token does: `exp` plus the same leeway as the first check (`nbf`
///   needs no second look: a token valid once stays past its `nbf`);
/// - only accepted tokens are kept, and at most `VERIFIED_CAPACITY` of them (then all are
///   dropped: no eviction order to get wrong, and a full map is rare).
#[derive(Default)]
struct Verified {
    entries: RwLock<HashMap<[u8; 32], VerifiedEntry>>,
}

struct VerifiedEntry {
    generation: u64,
    /// `exp` + leeway, in seconds since the epoch.
    valid_until: u64,
    identity: Identity,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Verified {
    fn get(&self, digest: &[u8; 32], generation: u64, now: u64) -> Option<Identity> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(digest)
            .filter(|e| e.generation == generation && now <= e.valid_until)
            .map(|e| e.identity.clone())
    }

    fn insert(&self, digest: [u8; 32], generation: u64, exp: u64, identity: Identity) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= VERIFIED_CAPACITY {
            entries.clear();
        }
        entries.insert(
            digest,
            VerifiedEntry {
                generation,
                valid_until: exp.saturating_add(LEEWAY_SECONDS),
                identity,
            },
        );
    }

    /// After a refresh: every entry belongs to the previous keys.
    fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

// ---- the verifier -------------------------------------------------------------------------------

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// 401: the reason is safe to log and to send back; it never quotes the token.
    #[error("{0}")]
    Unauthorized(String),
    /// 503: no key for this token is cached and the identity provider cannot be reached.
    #[error("the identity provider can't be reached to check the token")]
    ProviderUnavailable,
}

/// What the verifier knows of the provider, for logs and metrics.
#[derive(Debug, Clone)]
pub struct Status {
    /// Keys cached now.
    pub keys: usize,
    /// Refresh attempts completed, successful or not.
    pub attempts: u64,
    pub failures: u64,
    pub last_success: Option<SystemTime>,
    /// Why the last attempt failed, when it did.
    pub last_error: Option<String>,
    pub refreshing: bool,
}

/// When fetches may start, and which one is under way.
#[derive(Default)]
struct Gate {
    last_start: Option<Instant>,
    in_flight: Option<u64>,
    started: u64,
    /// The outcome of the last completed attempt.
    last_failed: bool,
    last_error: Option<String>,
    last_success: Option<SystemTime>,
    failures: u64,
    /// The refresh thread has ended (the verifier was dropped, or it could not run).
    dead: bool,
}

struct Shared {
    settings: OidcSettings,
    validation: Validation,
    keys: RwLock<Arc<KeySet>>,
    gate: Mutex<Gate>,
    /// The number of the last completed attempt.
    completed: watch::Sender<u64>,
    wake: Notify,
    stop: AtomicBool,
    attempts: AtomicU64,
    verified: Verified,
}

impl Shared {
    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The attempt to wait for: the one under way, or a new one if the gate is open; `None`
    /// when a fetch started less than `refresh_min` ago.
    fn start_or_join(&self) -> Option<u64> {
        let mut gate = self.gate();
        if gate.dead {
            return None;
        }
        if let Some(number) = gate.in_flight {
            return Some(number);
        }
        let now = Instant::now();
        if gate
            .last_start
            .is_some_and(|last| now.duration_since(last) < self.settings.refresh_min)
        {
            return None;
        }
        gate.started += 1;
        gate.in_flight = Some(gate.started);
        gate.last_start = Some(now);
        Some(gate.started)
    }

    /// When the refresh thread should start the next fetch by itself: when the keys pass their
    /// max-age, or after `refresh_min` while there are none or the last attempt failed; never
    /// sooner than `refresh_min` after the last start.
    fn next_due(&self) -> Instant {
        let keys = self.keys();
        let gate = self.gate();
        let now = Instant::now();
        let earliest = gate
            .last_start
            .map_or(now, |last| last + self.settings.refresh_min);
        let wanted = if keys.is_empty() || gate.last_failed {
            earliest
        } else {
            keys.fetched + keys.max_age
        };
        wanted.max(earliest)
    }

    fn finish(&self, number: u64, outcome: Result<KeySet, String>) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        {
            let mut gate = self.gate();
            gate.in_flight = None;
            match outcome {
                Ok(mut keys) => {
                    // Said once at start and once on recovery, not on every refresh.
                    if gate.last_failed || gate.last_success.is_none() {
                        log::info!("identity provider: {} signing key(s) cached", keys.len());
                    }
                    let mut current = self.keys.write().unwrap_or_else(PoisonError::into_inner);
                    keys.generation = current.generation + 1;
                    *current = Arc::new(keys);
                    drop(current);
                    self.verified.clear();
                    gate.last_failed = false;
                    gate.last_error = None;
                    gate.last_success = Some(SystemTime::now());
                }
                Err(reason) => {
                    // The keys already cached stay in use: an outage of the provider must not
                    // sign everyone out, and it cannot have withdrawn them without being reached.
                    log::warn!("identity provider: {reason}");
                    gate.last_failed = true;
                    gate.last_error = Some(reason);
                    gate.failures += 1;
                }
            }
        }
        self.completed.send_replace(number);
    }
}

/// Marks the refresh thread as gone however it ends (a panic included), and releases anyone
/// waiting for an attempt it will never finish.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut gate = self.0.gate();
        gate.dead = true;
        gate.in_flight = None;
        drop(gate);
        self.0.completed.send_replace(u64::MAX);
    }
}

/// Verifies tokens issued by one OpenID Connect provider. Dropping it stops its refresh thread.
pub struct Verifier {
    shared: Arc<Shared>,
}

impl Verifier {
    /// Starts the verifier without waiting for the provider: the first fetch runs in the
    /// background. Fails only if the HTTP client or the thread cannot be made.
    pub fn start(settings: OidcSettings) -> Result<Verifier, String> {
        let client = reqwest::Client::builder()
            // A redirect would be a misconfiguration to see in the log, not to follow.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.http_timeout)
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("lhs-rounds/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the HTTP client for the identity provider: {e}"))?;
        let shared = Arc::new(Shared {
            validation: validation(&settings),
            settings,
            keys: RwLock::new(Arc::new(KeySet::empty())),
            gate: Mutex::new(Gate::default()),
            completed: watch::Sender::new(0),
            wake: Notify::new(),
            stop: AtomicBool::new(false),
            attempts: AtomicU64::new(0),
            verified: Verified::default(),
        });
        // The first attempt is open before the thread runs, so that a token arriving at once
        // waits for it rather than finding the gate shut.
        shared.start_or_join();
        let background = shared.clone();
        std::thread::Builder::new()
            .name("lhs-oidc".to_owned())
            .spawn(move || {
                let guard = ExitGuard(background);
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        log::error!("the identity provider's key refresh cannot start: {e}");
                        return;
                    }
                };
                runtime.block_on(refresh_loop(&guard.0, client));
            })
            .map_err(|e| format!("cannot start the identity provider's key refresh: {e}"))?;
        Ok(Verifier { shared })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.shared.settings
    }

    /// Verifies `token` (without `Bearer `) with the keys cached now. `None`: its `kid` is not
    /// cached, and only [`Verifier::verify`] can tell (it may fetch). No network call and no
    /// wait: an extractor answers from here on the usual path and makes a future only when this
    /// says `None`.
    pub fn verify_cached(&self, token: &str) -> Option<Result<Identity, VerifyError>> {
        // A token verified before, under the keys cached now, needs nothing else: not even its
        // header read (an entry exists only for these exact bytes).
        if token.len() <= MAX_TOKEN_BYTES {
            let keys = self.shared.keys();
            let now = jsonwebtoken::get_current_timestamp();
            if let Some(identity) = self
                .shared
                .verified
                .get(&digest(token), keys.generation, now)
            {
                return Some(Ok(identity));
            }
        }
        match read_header(token) {
            Ok(header) => self.check(token, &header),
            Err(reason) => Some(Err(VerifyError::Unauthorized(reason))),
        }
    }

    /// Verifies `token`. A `kid` that is not cached starts (or joins) a refresh when the gate
    /// allows one, and waits for it, at most the HTTP timeout.
    pub async fn verify(&self, token: &str) -> Result<Identity, VerifyError> {
        let header = read_header(token).map_err(VerifyError::Unauthorized)?;
        if let Some(result) = self.check(token, &header) {
            return result;
        }
        if let Some(number) = self.shared.start_or_join() {
            self.shared.wake.notify_one();
            let mut completed = self.shared.completed.subscribe();
            // The sender lives as long as `shared`, and the exit guard releases waiters.
            let _ = completed.wait_for(|done| *done >= number).await;
            if let Some(result) = self.check(token, &header) {
                return result;
            }
        }
        let gate = self.shared.gate();
        if gate.last_failed || gate.dead || self.shared.keys().is_empty() {
            // The provider could not be asked about this key: it may be a new one.
            Err(VerifyError::ProviderUnavailable)
        } else {
            Err(VerifyError::Unauthorized(
                "the key the token names (kid) is not among the identity provider's keys"
                    .to_owned(),
            ))
        }
    }

    /// `None` when the token's `kid` is not cached.
    fn check(&self, token: &str, header: &TokenHeader) -> Option<Result<Identity, VerifyError>> {
        let keys = self.shared.keys();
        let candidates = keys.by_kid.get(&header.kid)?;
        let digest = digest(token);
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(identity) = self.shared.verified.get(&digest, keys.generation, now) {
            return Some(Ok(identity));
        }
        let Some(key) = candidates.iter().find(|k| k.alg == header.alg) else {
            return Some(Err(VerifyError::Unauthorized(
                "the token's alg is not the algorithm of the key it names".to_owned(),
            )));
        };
        Some(match check(token, key, &self.shared.settings) {
            Ok((identity, exp)) => {
                if let Some(exp) = exp {
                    let verified = &self.shared.verified;
                    verified.insert(digest, keys.generation, exp, identity.clone());
                }
                Ok(identity)
            }
            Err(reason) => Err(VerifyError::Unauthorized(reason)),
        })
    }

    pub fn status(&self) -> Status {
        let keys = self.shared.keys().len();
        let gate = self.shared.gate();
        Status {
            keys,
            attempts: self.shared.attempts.load(Ordering::Relaxed),
            failures: gate.failures,
            last_success: gate.last_success,
            last_error: gate.last_error.clone(),
            refreshing: gate.in_flight.is_some(),
        }
    }
}

impl Drop for Verifier {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }
}

async fn refresh_loop(shared: &Shared, client: reqwest::Client) {
    // Kept between fetches; discovered again after any failure, in case it moved.
    let mut jwks_uri: Option<Url> = None;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let pending = shared.gate().in_flight;
        let Some(number) = pending else {
            let due = tokio::time::Instant::from_std(shared.next_due());
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep_until(due) => {
                    shared.start_or_join();
                }
            }
            continue;
        };
        // One deadline for discovery and JWKS together: a token waiting for this attempt waits
        // no longer than the HTTP timeout.
        let outcome = tokio::time::timeout(
            shared.settings.http_timeout,
            refresh(shared, &client, &mut jwks_uri),
        )
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer within {}",
                humantime::format_duration(shared.settings.http_timeout)
            ))
        });
        if outcome.is_err() {
            jwks_uri = None;
        }
        shared.finish(number, outcome);
    }
}

async fn refresh(
    shared: &Shared,
    client: &reqwest::Client,
    jwks_uri: &mut Option<Url>,
) -> Result<KeySet, String> {
    let uri = match jwks_uri {
        Some(uri) => uri.clone(),
        None => {
            let uri = discover(&shared.settings, client).await?;
            *jwks_uri = Some(uri.clone());
            uri
        }
    };
    let (body, cache_control) = get(client, &uri).await?;
    let max_age = cache_control.as_deref().and_then(max_age);
    let (keys, skipped) =
        parse_jwks(&body, &shared.validation, max_age).map_err(|e| format!("{uri}: {e}"))?;
    if !skipped.is_empty() {
        log::debug!("identity provider: keys not used: {}", skipped.join("; "));
    }
    Ok(keys)
}

/// Reads the discovery document: its `issuer` must be the configured one exactly (OpenID
/// Connect Discovery 1.0, section 4.3), and its `jwks_uri` is where the keys are.
async fn discover(settings: &OidcSettings, client: &reqwest::Client) -> Result<Url, String> {
    let url = Url::parse(&settings.discovery_url())
        .map_err(|e| format!("{}: {e}", settings.discovery_url()))?;
    let (body, _) = get(client, &url).await?;
    let document: Value =
        serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))?;
    match document.get("issuer").and_then(Value::as_str) {
        Some(issuer) if issuer == settings.issuer => {}
        Some(issuer) => {
            return Err(format!(
                "{url} says the issuer is `{issuer}`, not `{}` as {ISSUER} says: set it exactly",
                settings.issuer
            ))
        }
        None => return Err(format!("{url} has no issuer")),
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{url} has no jwks_uri"))?;
    let jwks_uri = Url::parse(jwks_uri).map_err(|e| format!("{url}: jwks_uri: {e}"))?;
    match jwks_uri.scheme() {
        "https" => Ok(jwks_uri),
        "http" if is_loopback(&jwks_uri) => Ok(jwks_uri),
        _ => Err(format!(
            "{url}: jwks_uri {jwks_uri} must be https (http only for localhost)"
        )),
    }
}

/// A GET answered 200, its body (at most `MAX_BODY_BYTES`) and its `Cache-Control`.
async fn get(client: &reqwest::Client, url: &Url) -> Result<(Vec<u8>, Option<String>), String> {
    let mut response = client
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {}", chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    let cache_control = response
        .headers()
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("{url}: {}", chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(format!("{url} answered more than {MAX_BODY_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, cache_control))
}

/// An error with its causes: reqwest's own message alone says only "error sending request".
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://login.example.org/realms/hospital";

    fn settings(configure: impl FnOnce(&mut Settings)) -> Result<Option<OidcSettings>, String> {
        let mut s = Settings::for_database("/tmp/unused.db");
        configure(&mut s);
        OidcSettings::from_settings(&s)
    }

    #[test]
    fn settings_default_and_off() {
        let s = settings(|s| s.oidc_issuer = Some(ISS.into()))
            .expect("valid")
            .expect("on");
        assert_eq!(s.refresh_min, Duration::from_secs(30));
        assert_eq!(s.roles_claim.to_string(), "roles");
        assert!(s.role_map.is_empty());
        assert_eq!(s.default_role, Some(Role::Viewer));
        assert_eq!(s.audience, None);
        assert_eq!(s.scopes, ["openid", "profile", "email"]);
        assert_eq!(
            s.discovery_url(),
            "https://login.example.org/realms/hospital/.well-known/openid-configuration"
        );
        assert_eq!(s.origin().as_deref(), Some("https://login.example.org"));
        assert!(settings(|_| {}).expect("valid").is_none());
        assert!(settings(|s| s.oidc_issuer = Some("  ".into()))
            .expect("valid")
            .is_none());
    }

    #[test]
    fn every_setting_is_read() {
        let s = settings(|s| {
            s.oidc_issuer = Some(ISS.into());
            s.oidc_refresh_min = Some(Duration::from_secs(120).into());
            s.jwt_audience = Some("lhs-rounds".into());
            s.oidc_roles_claim = Some("resource_access.lhs-rounds.roles".into());
            s.oidc_role_map = Some("LHS-Rounds-Admins=admin".into());
            s.oidc_default_role = Some("none".into());
            s.oidc_client_id = Some("lhs-rounds-docs".into());
            s.oidc_scopes = Some("openid api://lhs-rounds/access_as_user".into());
            s.jwt_issuer = Some(ISS.into());
        })
        .expect("valid")
        .expect("on");
        assert_eq!(s.refresh_min, Duration::from_secs(120));
        assert_eq!(s.audience.as_deref(), Some("lhs-rounds"));
        assert_eq!(
            s.roles_claim.to_string(),
            "resource_access.lhs-rounds.roles"
        );
        assert!(!s.role_map.is_empty());
        assert_eq!(s.default_role, None);
        assert_eq!(s.client_id.as_deref(), Some("lhs-rounds-docs"));
        assert_eq!(s.scopes, ["openid", "api://lhs-rounds/access_as_user"]);
    }

    #[test]
    fn the_refresh_interval_is_a_duration_or_seconds_and_the_default_role_any_case() {
        use clap::Parser;
        let parse = |value: &str| {
            crate::platform::config::Cli::try_parse_from([
                "lhs-rounds",
                "--oidc-issuer",
                ISS,
                "--oidc-refresh-min",
                value,
                "--oidc-default-role",
                "None",
            ])
            .map(|cli| OidcSettings::from_settings(&cli.settings))
        };
        for (value, seconds) in [("45", 45), ("45s", 45), ("2m", 120)] {
            let s = parse(value).expect("parsed").expect("valid").expect("on");
            assert_eq!(s.refresh_min, Duration::from_secs(seconds), "{value}");
            assert_eq!(s.default_role, None);
        }
        assert!(parse("soon").is_err());
        assert!(parse("0").expect("parsed").is_err(), "at least 1s");
    }

    #[test]
    fn each_settings_error_names_its_variable() {
        type Change = fn(&mut Settings);
        let cases: &[(Change, &str)] = &[
            (|s| s.oidc_issuer = Some("login.example.org".into()), ISSUER),
            (
                |s| s.oidc_issuer = Some("http://login.example.org".into()),
                ISSUER,
            ),
            (
                |s| s.oidc_issuer = Some("https://login.example.org/?realm=x".into()),
                ISSUER,
            ),
            (
                |s| {
                    s.oidc_issuer = Some(ISS.into());
                    s.oidc_refresh_min = Some(Duration::from_millis(500).into());
                },
                REFRESH_MIN,
            ),
            (
                |s| {
                    s.oidc_issuer = Some(ISS.into());
                    s.oidc_roles_claim = Some("realm_access..roles".into());
                },
                ROLES_CLAIM,
            ),
            (
                |s| {
                    s.oidc_issuer = Some(ISS.into());
                    s.oidc_role_map = Some("Admins=root".into());
                },
                ROLE_MAP,
            ),
            (
                |s| {
                    s.oidc_issuer = Some(ISS.into());
                    s.oidc_default_role = Some("admin".into());
                },
                DEFAULT_ROLE,
            ),
            (
                |s| {
                    s.oidc_issuer = Some(ISS.into());
                    s.jwt_issuer = Some("https://other".into());
                },
                JWT_ISSUER,
            ),
            (|s| s.oidc_role_map = Some("A=admin".into()), ROLE_MAP),
            (|s| s.oidc_client_id = Some("docs".into()), CLIENT_ID),
        ];
        for (change, variable) in cases {
            let e = settings(*change).expect_err("refused");
            assert!(e.starts_with(variable), "{variable}: {e}");
        }
    }

    #[test]
    fn http_is_allowed_on_this_machine_only() {
        for ok in [
            "http://localhost:8080/realms/x",
            "http://127.0.0.1:1",
            "http://[::1]:1",
        ] {
            assert!(
                settings(|s| s.oidc_issuer = Some(ok.into())).is_ok(),
                "{ok}"
            );
        }
        for refused in ["http://localhost.example.org", "http://10.0.0.1"] {
            assert!(
                settings(|s| s.oidc_issuer = Some(refused.into())).is_err(),
                "{refused}"
            );
        }
    }

    // A 2048-bit modulus of 256 bytes, 0xC5 repeated: valid base64url, right size.
    fn modulus(bytes: usize) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(vec![0xC5u8; bytes])
    }

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            max_age("MAX-AGE=5, no-transform"),
            Some(Duration::from_secs(5))
        );
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
        assert_eq!(max_age("s-maxage=9"), None);
    }

    #[test]
    fn only_signing_keys_of_the_three_algorithms_are_kept() {
        let n = modulus(256);
        let body = json!({"keys": [
            {"kid": "rs", "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": "AQAB"},
            {"kid": "derived", "kty": "RSA", "n": n, "e": "AQAB"},
            {"kid": "ps", "kty": "RSA", "alg": "PS256", "n": n, "e": "AQAB"},
            {"kid": "enc", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc", "n": n, "e": "AQAB"},
            {"kid": "enc-no-alg", "kty": "RSA", "use": "enc", "n": n, "e": "AQAB"},
            {"kid": "rs512", "kty": "RSA", "alg": "RS512", "n": n, "e": "AQAB"},
            {"kid": "small", "kty": "RSA", "alg": "RS256", "n": modulus(128), "e": "AQAB"},
            {"kid": "hs", "kty": "oct", "alg": "HS256", "k": "c2VjcmV0"},
            {"kid": "oct", "kty": "oct", "k": "c2VjcmV0"},
            {"kid": "mismatch", "kty": "EC", "alg": "RS256", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kid": "p384", "kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "RSA", "alg": "RS256", "n": n, "e": "AQAB"},
            {"kid": "weird", "kty": "XYZ"},
        ]})
        .to_string();
        let template = Validation::new(Algorithm::RS256);
        let (set, skipped) = parse_jwks(body.as_bytes(), &template, None).expect("usable keys");
        let mut kids: Vec<_> = set.by_kid.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["derived", "ps", "rs"]);
        assert_eq!(set.by_kid["derived"][0].alg, Algorithm::RS256);
        assert_eq!(
            set.by_kid["ps"][0].validation.algorithms,
            [Algorithm::PS256]
        );
        assert_eq!(skipped.len(), 10, "{skipped:?}");
        assert_eq!(set.max_age, DEFAULT_MAX_AGE);
    }

    #[test]
    fn an_answer_without_usable_keys_is_an_error_and_max_age_is_capped() {
        let template = Validation::new(Algorithm::RS256);
        assert!(parse_jwks(br#"{"keys": []}"#, &template, None).is_err());
        assert!(parse_jwks(
            br#"{"keys": [{"kty":"oct","k":"AA","kid":"a"}]}"#,
            &template,
            None
        )
        .is_err());
        assert!(parse_jwks(b"<html>", &template, None).is_err());
        assert!(parse_jwks(br#"{"keys": {}}"#, &template, None).is_err());
        let body = json!({"keys": [{"kid": "a", "kty": "RSA", "n": modulus(256), "e": "AQAB"}]})
            .to_string();
        let week = Some(Duration::from_secs(7 * 24 * 3600));
        let (set, _) = parse_jwks(body.as_bytes(), &template, week).expect("usable");
        assert_eq!(set.max_age, MAX_MAX_AGE);
    }

    fn with_header(header: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.e30.c2ln", engine.encode(header))
    }

    #[test]
    fn header_checks() {
        let ok = |h: &str| read_header(&with_header(h)).map(|h| (h.alg, h.kid));
        assert_eq!(
            ok(r#"{"alg":"RS256","kid":"k"}"#).expect("ok"),
            (Algorithm::RS256, "k".to_owned())
        );
        for typ in [
            "JWT",
            "jwt",
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "application/JWT",
        ] {
            let header = format!(r#"{{"alg":"ES256","kid":"k","typ":"{typ}"}}"#);
            assert!(ok(&header).is_ok(), "{typ}");
        }
        for (header, reason) in [
            (r#"{"alg":"none","kid":"k"}"#, "alg none"),
            (r#"{"alg":"None","kid":"k"}"#, "alg none"),
            (r#"{"alg":"HS256","kid":"k"}"#, "shared secret"),
            (r#"{"alg":"RS512","kid":"k"}"#, "RS256, PS256 and ES256"),
            (r#"{"alg":"EdDSA","kid":"k"}"#, "RS256, PS256 and ES256"),
            (r#"{"alg":"RS256"}"#, "kid"),
            (r#"{"alg":"RS256","kid":""}"#, "kid"),
            (r#"{"alg":"RS256","kid":"k","typ":"JOSE"}"#, "typ"),
            (r#"{"alg":"RS256","kid":"k","typ":"id+jwt"}"#, "typ"),
            (r#"{"alg":"RS256","kid":"k","crit":["b64"]}"#, "crit"),
            (r#"{"kid":"k"}"#, "header"),
            (r#"{"alg":256,"kid":"k"}"#, "header"),
        ] {
            let Err(e) = ok(header) else {
                panic!("{header} accepted");
            };
            assert!(e.contains(reason), "{header}: {e}");
        }
        assert!(read_header("a.b").is_err());
        assert!(read_header("a.b.c.d.e").is_err());
        assert!(read_header(&"a".repeat(MAX_TOKEN_BYTES + 1)).is_err());
    }

    fn someone() -> Identity {
        Identity {
            sub: Some("s".to_owned()),
            name: None,
            email: None,
            role: None,
        }
    }

    #[test]
    fn verified_tokens_hold_for_their_keys_and_until_exp_plus_leeway() {
        let verified = Verified::default();
        let token = digest("a.b.c");
        verified.insert(token, 1, 1000, someone());
        assert!(verified.get(&token, 1, 1000 + LEEWAY_SECONDS).is_some());
        assert!(verified.get(&token, 1, 1001 + LEEWAY_SECONDS).is_none());
        assert!(verified.get(&token, 2, 900).is_none(), "other keys");
        assert!(verified.get(&digest("a.b.d"), 1, 900).is_none());
        verified.clear();
        assert!(verified.get(&token, 1, 900).is_none());
    }

    #[test]
    fn a_full_map_of_verified_tokens_starts_again() {
        let verified = Verified::default();
        for i in 0..=VERIFIED_CAPACITY {
            verified.insert(digest(&i.to_string()), 1, u64::MAX, someone());
        }
        assert_eq!(verified.entries.read().expect("lock").len(), 1);
    }
}

//! The HTTP semantics every route shares: validators (`ETag`) and conditional requests
//! (`If-Match`, `If-None-Match`, RFC 9110 §13), caching directives (RFC 9111), `HEAD`, and
//! CORS for front-ends on other origins (the Fetch standard).
//!
//! Written by hand where no crate does it for actix: entity-tag lists are parsed here (a few
//! lines of RFC 9110 grammar), and CORS preflights are answered here with the methods of the
//! route asked about, which `actix-cors` cannot know; `actix-cors` answers the actual requests.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::DefaultHasher;
use std::future::{ready, Future, Ready};
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_core::Stream;

use crate::platform::error::ApiError;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A request's JSON body, read but not yet looked at: a handler authorizes the caller first,
/// then takes [`JsonBody::value`], so that nothing a caller may not send is ever parsed or
/// checked. Only its size is limited while it is read (413).
pub struct JsonBody {
    bytes: web::Bytes,
    /// Why the `Content-Type` is not JSON, when it is not.
    not_json: Option<String>,
}

impl FromRequest for JsonBody {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsonBody, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let not_json = match req.mime_type() {
            Ok(Some(mime)) if mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON) => {
                None
            }
            _ => Some("the body must be JSON, sent with Content-Type: application/json".to_owned()),
        };
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let timeout = req.app_data::<web::Data<BodyTimeout>>().map(|t| t.0);
        let payload = web::Payload::from_request(req, payload).into_inner();
        Box::pin(async move {
            if declared.is_some_and(|length| length > BODY_LIMIT) {
                return Err(ApiError::PayloadTooLarge { limit: BODY_LIMIT });
            }
            let payload = payload
                .map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))?;
            let bytes = payload
                .to_bytes_limited(BODY_LIMIT)
                .await
                .map_err(|_| ApiError::PayloadTooLarge { limit: BODY_LIMIT })?
                .map_err(|e| match (timed_out(&e), timeout) {
                    (true, Some(timeout)) => ApiError::BodyTimeout(timeout),
                    _ => ApiError::BadRequest(format!("the body could not be read: {e}")),
                })?;
            Ok(JsonBody { bytes, not_json })
        })
    }
}

impl JsonBody {
    /// The body as JSON: 415 when it was not sent as JSON, 400 when it is not well-formed.
    pub fn value(self) -> Result<serde_json::Value, ApiError> {
        if let Some(why) = self.not_json {
            return Err(ApiError::UnsupportedMediaType(why));
        }
        serde_json::from_slice(&self.bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not well-formed JSON: {e}")))
    }
}

/// How long a request's body may take to arrive in full (`LHS_BODY_TIMEOUT`), from the moment
/// its head was read (the head has a timeout of its own).
#[derive(Debug, Clone, Copy)]
pub struct BodyTimeout(pub Duration);

/// Whether an error reading a body is [`body_deadline`]'s.
fn timed_out(error: &actix_web::Error) -> bool {
    matches!(
        error.as_error::<PayloadError>(),
        Some(PayloadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut
    )
}

/// Puts a deadline on the body of every request that has one, whoever reads it (`JsonBody`
/// or any other extractor): once [`BodyTimeout`] has passed, reading it fails, the answer is
/// 408 problem+json whatever the handler made of the failure, and the connection is closed
/// (the rest of the body may still be on its way). A client dripping its body a byte at a time
/// holds a connection that long at most. Requests without a body are passed on untouched.
///
/// A body that was not read in full (timed out, or never read by its handler) is kept until the
/// answer is sent: actix then closes the connection rather than reading on, for ever, a
/// chunked body that a client may never end.
pub async fn body_deadline<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let timeout = req
        .app_data::<web::Data<BodyTimeout>>()
        .map(|t| t.0)
        .filter(|_| has_body(req.headers()));
    let Some(timeout) = timeout else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let expired = Rc::new(Cell::new(false));
    let payload = Rc::new(RefCell::new(req.take_payload()));
    let body = Deadline {
        body: payload.clone(),
        at: tokio::time::Instant::now() + timeout,
        timer: None,
        expired: expired.clone(),
    };
    req.set_payload(Payload::from(Box::pin(body) as BoxedBody));
    let mut response = next.call(req).await?.map_into_boxed_body();
    if expired.get() {
        if response.status() != StatusCode::REQUEST_TIMEOUT {
            let answer = actix_web::ResponseError::error_response(&ApiError::BodyTimeout(timeout));
            response = response.into_response(answer);
        }
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response.map_body(|_, body| {
        BoxBody::new(KeepingRequestBody {
            body,
            _request_body: payload,
        })
    }))
}

/// An answer's body that keeps its request's body alive until it is sent in full: actix reads
/// on a chunked request body whose reader is gone (to reuse the connection), and closes the
/// connection instead while the reader is still there (see [`body_deadline`]).
struct KeepingRequestBody {
    body: BoxBody,
    _request_body: Rc<RefCell<Payload>>,
}

impl MessageBody for KeepingRequestBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// Whether a request says it has a body: a `Content-Length` above zero, or a
/// `Transfer-Encoding` (chunked, of unknown length).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.to_str().map_or(true, |l| l.trim() != "0"))
}

/// The payload type actix takes from a stream of its own.
type BoxedBody = Pin<Box<dyn Stream<Item = Result<web::Bytes, PayloadError>>>>;

/// A request body that fails with `TimedOut` once its deadline has passed. The timer is only
/// started when the body is read and not all there yet.
struct Deadline {
    body: Rc<RefCell<Payload>>,
    at: tokio::time::Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for Deadline {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut *self.body.borrow_mut()).poll_next(cx) {
            return Poll::Ready(item);
        }
        let at = self.at;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                self.expired.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the body did not arrive in time",
                )))))
            }
        }
    }
}

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE_SECONDS: u32 = 600;
/// The request headers a front-end may send.
pub const CORS_ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "if-match",
    "if-none-match",
    "idempotency-key",
    "x-request-id",
];
/// The answer headers a front-end's script may read.
pub const CORS_EXPOSED_HEADERS: &[&str] = &[
    "etag",
    "location",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "idempotency-replayed",
    "x-request-id",
];

/// One entity-tag: `"abc"` or `W/"abc"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    weak: bool,
    /// The opaque tag with its quotes, as it is compared and sent.
    tag: String,
}

/// The value of `If-Match` or `If-None-Match`: `*` or a list of entity-tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagList {
    Any,
    Tags(Vec<EntityTag>),
}

impl TagList {
    /// What [`TagList::parse`] accepts, for the document: `*` or entity-tags (RFC 9110 §8.8.3)
    /// separated by commas, with optional white space and empty list elements.
    pub const PATTERN: &'static str = r#"^[ \t]*(\*|[ \t,]*(W/)?"[\x21\x23-\x7E]*"([ \t]*,[ \t,]*(W/)?"[\x21\x23-\x7E]*")*[ \t,]*)[ \t]*$"#;

    /// Parses a header value (RFC 9110 §8.8.3: `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE`).
    pub fn parse(value: &str) -> Option<TagList> {
        let value = value.trim();
        if value == "*" {
            return Some(TagList::Any);
        }
        let mut tags = Vec::new();
        let mut rest = value;
        loop {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            if rest.is_empty() {
                break;
            }
            let (weak, quoted) = match rest.strip_prefix("W/") {
                Some(after) => (true, after),
                None => (false, rest),
            };
            let inner = quoted.strip_prefix('"')?;
            let end = inner.find('"')?;
            let opaque = &inner[..end];
            // etagc: %x21 / %x23-7E / obs-text; no quotes, no spaces or controls.
            if opaque.bytes().any(|b| b == b'"' || b <= 0x20 || b == 0x7f) {
                return None;
            }
            tags.push(EntityTag {
                weak,
                tag: format!("\"{}\"", without_coding(opaque)),
            });
            rest = &inner[end + 1..];
            let trimmed = rest.trim_start_matches([' ', '\t']);
            if !trimmed.is_empty() && !trimmed.starts_with(',') {
                return None;
            }
            rest = trimmed;
        }
        (!tags.is_empty()).then_some(TagList::Tags(tags))
    }

    /// `If-Match`: strong comparison, so a weak tag never matches.
    pub fn matches_strongly(&self, current: &str) -> bool {
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|t| !t.weak && t.tag == current),
        }
    }

    /// `If-None-Match`: weak comparison.
    pub fn matches_weakly(&self, current: &str) -> bool {
        let current = current.strip_prefix("W/").unwrap_or(current);
        match self {
            TagList::Any => true,
            TagList::Tags(tags) => tags.iter().any(|t| t.tag == current),
        }
    }
}

/// The conditional request headers of a request, parsed.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub if_match: Option<TagList>,
    pub if_none_match: Option<TagList>,
}

impl Conditions {
    pub fn from_headers(headers: &HeaderMap) -> Result<Conditions, ApiError> {
        let read = |name: HeaderName| -> Result<Option<TagList>, ApiError> {
            let values: Vec<&HeaderValue> = headers.get_all(&name).collect();
            if values.is_empty() {
                return Ok(None);
            }
            let joined = values
                .iter()
                .map(|v| v.to_str())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| malformed(&name))?
                .join(", ");
            TagList::parse(&joined)
                .map(Some)
                .ok_or_else(|| malformed(&name))
        };
        Ok(Conditions {
            if_match: read(header::IF_MATCH)?,
            if_none_match: read(header::IF_NONE_MATCH)?,
        })
    }
}

fn malformed(name: &HeaderName) -> ApiError {
    ApiError::BadRequest(format!(
        "the {name} header is not `*` or a list of entity-tags such as \"v3\""
    ))
}

impl FromRequest for Conditions {
    type Error = ApiError;
    type Future = Ready<Result<Conditions, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Conditions::from_headers(req.headers()))
    }
}

/// The suffixes, inside the quotes, of the ETags of compressed answers (`"v3-gzip"`): one per
/// content coding sent (see `platform::compression`). No ETag made here ends with one otherwise.
const CODING_SUFFIXES: [&str; 2] = ["-gzip", "-br"];

/// The ETag of an answer in the content coding `token` (`gzip`, `br`), from the identity one's
/// (`"v3"` → `"v3-gzip"`, `W/"x"` → `W/"x-gzip"`).
pub fn coded_etag(etag: &str, token: &str) -> String {
    match etag.strip_suffix('"') {
        Some(open) => format!("{open}-{token}\""),
        None => etag.to_owned(),
    }
}

/// An opaque tag as the identity answer's: a compressed answer and its identity answer are
/// one resource's one state, so a client may send back the tag of either in `If-None-Match`
/// (304) or `If-Match` (the write goes ahead).
fn without_coding(opaque: &str) -> &str {
    CODING_SUFFIXES
        .iter()
        .find_map(|suffix| opaque.strip_suffix(suffix))
        .unwrap_or(opaque)
}

/// The strong ETag of one record at `version`, as the caller sees it: organizers see more
/// fields, so their representation has a tag of its own.
pub fn record_etag(version: i64, private: bool) -> String {
    if private {
        format!("\"v{version}-p\"")
    } else {
        format!("\"v{version}\"")
    }
}

/// The version an ETag made by [`record_etag`] names, if the caller's view matches.
pub fn version_of(etag: &str, private: bool) -> Option<i64> {
    let inner = etag.strip_prefix("\"v")?.strip_suffix('"')?;
    let number = if private {
        inner.strip_suffix("-p")?
    } else {
        inner
    };
    number.parse().ok()
}

/// A strong ETag made from the parts that decide an answer (a list: the schedule's revision,
/// the query, the caller's view, the moment time changes it).
pub fn derived_etag(prefix: &str, parts: &impl Hash) -> String {
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("\"{prefix}{:016x}\"", hasher.finish())
}

/// The strong ETag of a body (for answers outside the schedule's revision, such as feedback).
pub fn body_etag(body: &[u8]) -> String {
    derived_etag("b", &body)
}

/// `Cache-Control` and `Vary` of a read: anyone's read may be stored but must be revalidated;
/// one made with a token is for that caller only. A token may change every answer here (who may
/// read, which fields are shown), so caches must key on it.
pub fn cache_headers(response: &mut HttpResponseBuilder, private: bool) {
    // Static values: a hot answer neither checks nor copies them.
    response.insert_header((
        header::CACHE_CONTROL,
        HeaderValue::from_static(if private {
            "private, no-cache"
        } else {
            "no-cache"
        }),
    ));
    response.append_header((header::VARY, HeaderValue::from_static("Authorization")));
}

/// An ETag made a header value once, so that every answer carrying it shares the bytes.
pub fn etag_value(etag: String) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_maybe_shared(web::Bytes::from(etag))
        .map_err(|e| ApiError::Internal(format!("an ETag is not a valid header value: {e}")))
}

/// 200 with a body and its validators.
pub fn ok(
    body: web::Bytes,
    content_type: &'static str,
    etag: HeaderValue,
    private: bool,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    cache_headers(&mut response, private);
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(content_type)))
        .body(body)
}

/// 304: the caller's copy is current.
pub fn not_modified(etag: HeaderValue, private: bool) -> HttpResponse {
    let mut response = HttpResponse::NotModified();
    cache_headers(&mut response, private);
    response.insert_header((header::ETAG, etag)).finish()
}

/// `HEAD` on every `GET` route: the request is served as a `GET`, so the status and headers are
/// exactly those of the `GET`; actix's HTTP/1 codec, which read the request as a HEAD, sends
/// the headers (`Content-Length` included) and never the body.
pub async fn head_as_get<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The headers every answer carries: no content sniffing, no referrer, and a content security
/// policy. API answers are data that no browser should render or frame; Swagger UI at `/docs/`
/// runs its vendored scripts and styles from this origin (the UI sets inline styles, and its
/// icons are `data:` images) under `docs_policy`.
pub fn add_security_headers(path: &str, headers: &mut HeaderMap, docs_policy: &DocsPolicy) {
    const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The service's own pages set their policy and referrer policy themselves (`site::pages`);
    // nothing else does, so every API answer gets the strict ones.
    if headers.contains_key(header::CONTENT_SECURITY_POLICY) && !is_docs(path) {
        return;
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    let policy = if is_docs(path) {
        docs_policy.0.clone()
    } else {
        HeaderValue::from_static(API_POLICY)
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
}

/// Whether `path` is the API docs' (Swagger UI).
pub fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// The content security policy of the API docs: their own scripts, styles and images, and calls
/// to this origin; with sign-in from the docs, also to the identity provider's origin, where
/// Swagger UI reads the discovery document and exchanges the code for a token.
#[derive(Debug, Clone)]
pub struct DocsPolicy(HeaderValue);

impl DocsPolicy {
    pub fn new(identity_provider: Option<&str>) -> Result<DocsPolicy, String> {
        let connect = match identity_provider {
            Some(origin) => format!("'self' {origin}"),
            None => "'self'".to_owned(),
        };
        let policy = format!(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src {connect}; font-src 'self'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'"
        );
        HeaderValue::from_str(&policy)
            .map(DocsPolicy)
            .map_err(|_| format!("the identity provider's origin {connect} cannot be a header"))
    }
}

impl Default for DocsPolicy {
    fn default() -> Self {
        DocsPolicy(HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
        ))
    }
}

/// The longest origin `LHS_CORS_ORIGINS` takes (a scheme, a DNS name of at most 253
/// characters and a port fit), as the document declares `Access-Control-Allow-Origin`.
pub const ORIGIN_MAX_LENGTH: usize = 300;

/// The origins allowed to call the API from a browser (`LHS_CORS_ORIGINS`).
#[derive(Debug, Clone, Default)]
pub struct CorsOrigins(pub Vec<String>);

impl CorsOrigins {
    pub fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|allowed| allowed == origin)
    }
}

/// The methods each path accepts, for `Allow` and for CORS preflights.
pub trait AllowedMethods {
    fn allowed(&self, path: &str) -> Option<Vec<Method>>;
}

/// Answers `OPTIONS`: a CORS preflight from an allowed origin for a method the route has gets
/// its approval with that route's methods; any other preflight gets none (no
/// `Access-Control-Allow-Origin`, so the browser refuses). A plain `OPTIONS` gets `Allow`.
pub fn options_answer(
    req: &HttpRequest,
    origins: &CorsOrigins,
    routes: &dyn AllowedMethods,
) -> HttpResponse {
    let Some(methods) = routes.allowed(req.path()) else {
        return actix_web::ResponseError::error_response(&ApiError::NotFound(format!(
            "there is nothing at {}",
            req.path()
        )));
    };
    let list = |methods: &[Method]| {
        methods
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let headers = req.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let requested = headers
        .get(header::ACCESS_CONTROL_REQUEST_METHOD)
        .and_then(|v| v.to_str().ok());
    let (Some(origin), Some(requested)) = (origin, requested) else {
        let mut all = methods.clone();
        all.push(Method::OPTIONS);
        return HttpResponse::NoContent()
            .insert_header((header::ALLOW, list(&all)))
            .finish();
    };
    let refuse = |why: String| {
        let mut response = actix_web::ResponseError::error_response(&ApiError::Forbidden(why));
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
        response
    };
    if !origins.allows(origin) {
        return refuse(format!(
            "the origin {origin} may not call this API from a browser"
        ));
    }
    let Ok(requested) = Method::from_bytes(requested.trim().as_bytes()) else {
        return refuse("Access-Control-Request-Method is not a method".to_owned());
    };
    if !methods.contains(&requested) {
        return refuse(format!(
            "{requested} is not a method of {}; it has {}",
            req.path(),
            list(&methods)
        ));
    }
    let asked_headers: Vec<String> = headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if let Some(other) = asked_headers
        .iter()
        .find(|h| !CORS_ALLOWED_HEADERS.contains(&h.as_str()))
    {
        return refuse(format!("the request header {other} is not allowed"));
    }
    HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, list(&methods)))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            CORS_ALLOWED_HEADERS.join(", "),
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE_SECONDS))
        .insert_header((
            header::VARY,
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        ))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_tag_lists_are_parsed_as_rfc_9110_writes_them() {
        assert_eq!(TagList::parse("*"), Some(TagList::Any));
        let list = TagList::parse(r#""v1", W/"v2" ,"v3-p""#).expect("a valid list");
        assert!(list.matches_strongly("\"v1\""));
        assert!(
            !list.matches_strongly("\"v2\""),
            "a weak tag never matches If-Match"
        );
        assert!(list.matches_weakly("\"v2\""));
        assert!(list.matches_strongly("\"v3-p\""));
        assert_eq!(TagList::parse("v1"), None, "tags are quoted");
        assert_eq!(TagList::parse(r#""a b""#), None);
        assert_eq!(TagList::parse(r#""a" junk"#), None);
        assert_eq!(TagList::parse(""), None);
    }

    #[test]
    fn the_tag_of_a_compressed_answer_is_read_as_the_identity_ones() {
        let list = TagList::parse(r#""v4-gzip", W/"r9-abc-br""#).expect("a valid list");
        assert!(list.matches_strongly("\"v4\""));
        assert!(list.matches_weakly("\"r9-abc\""));
        assert_eq!(coded_etag("\"v4-p\"", "br"), "\"v4-p-br\"");
        assert_eq!(coded_etag("W/\"x\"", "gzip"), "W/\"x-gzip\"");
    }

    #[test]
    fn a_record_etag_names_its_version_for_its_view_only() {
        let tag = record_etag(12, true);
        assert_eq!(version_of(&tag, true), Some(12));
        assert_eq!(version_of(&tag, false), None);
        assert_eq!(version_of(&record_etag(7, false), false), Some(7));
    }
}

//! Content codings (RFC 9110 §8.4): answers are sent compressed, with brotli or gzip, to the
//! clients that accept it (`Accept-Encoding`), and as they are to the others.
//!
//! - What: JSON (problem details included), the OpenAPI document, the iCalendar feeds, and the
//!   Swagger UI's scripts, styles and pages. Answers under [`MIN_BYTES`] are sent as they are:
//!   compressing them saves less than the headers it adds.
//! - Once per representation, not per request: a schedule read kept by the read cache keeps its
//!   compressed copies with it, made the first time a client asks for each coding
//!   ([`Variants`]); the document and the Swagger UI files are static, compressed once per
//!   process. Other answers (writes, reads outside the schedule) are compressed as they are sent,
//!   by [`compress`].
//! - Validators: a compressed answer is another representation, so its strong `ETag` is the
//!   identity one with the coding's suffix inside the quotes (`"v3-gzip"`, `"v3-br"`: see
//!   [`http::coded_etag`]); conditional requests read those tags as the identity one, so
//!   `If-None-Match` and `If-Match` work with whichever a client kept.
//! - Every answer that could be compressed says `Vary: Accept-Encoding`, so that shared caches
//!   keep the codings apart.
//!
//! Why not actix's `Compress` middleware: it compresses every answer on every request, and it
//! leaves the `ETag` alone, so a compressed answer would carry the identity answer's strong tag.
//! The choice of coding is parsed here (a few lines) because it runs on every read: actix's
//! `AcceptEncoding::negotiate` builds a set and a list per call.

use std::io::Write;
use std::sync::OnceLock;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpResponse;

use crate::platform::http;

/// Answers shorter than this are sent as they are.
pub const MIN_BYTES: usize = 1024;

/// A content coding this service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    /// The `Content-Encoding` token, and the suffix of the ETag of answers in this coding.
    fn token(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }

    /// The coding a client prefers among ours (`Accept-Encoding`, RFC 9110 §12.5.3): the one
    /// with the highest weight, brotli on a tie (smaller, as fast to decode); none when
    /// the header is missing or accepts neither.
    pub fn preferred(headers: &HeaderMap) -> Coding {
        let (mut gzip, mut brotli, mut any) = (None, None, None);
        for line in headers.get_all(header::ACCEPT_ENCODING) {
            let Ok(line) = line.to_str() else { continue };
            for item in line.split(',') {
                let mut parts = item.split(';');
                let name = parts.next().unwrap_or_default().trim();
                let mut weight = Some(1.0_f32);
                for parameter in parts {
                    let parameter = parameter.trim();
                    if let Some(value) = parameter
                        .strip_prefix("q=")
                        .or_else(|| parameter.strip_prefix("Q="))
                    {
                        weight = value
                            .trim()
                            .parse::<f32>()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q));
                    }
                }
                let Some(weight) = weight else { continue };
                if name.eq_ignore_ascii_case("br") {
                    brotli = Some(weight);
                } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
                    gzip = Some(weight);
                } else if name == "*" {
                    any = Some(weight);
                }
            }
        }
        let gzip = gzip.or(any).unwrap_or(0.0);
        let brotli = brotli.or(any).unwrap_or(0.0);
        if brotli > 0.0 && brotli >= gzip {
            Coding::Brotli
        } else if gzip > 0.0 {
            Coding::Gzip
        } else {
            Coding::Identity
        }
    }
}

/// How hard to compress: answers are compressed while a client waits; static files once per
/// process, so harder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    Answer,
    Static,
}

/// Whether answers of this media type are worth compressing (text; images and archives are
/// compressed already). Asked of every answer, so it allocates nothing.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .as_bytes();
    let is = |name: &str| essence.eq_ignore_ascii_case(name.as_bytes());
    let starts = |prefix: &str| {
        essence
            .get(..prefix.len())
            .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
    };
    let ends = |suffix: &str| {
        essence.len() >= suffix.len()
            && essence[essence.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    starts("text/")
        || is("application/json")
        || ends("+json")
        || is("application/javascript")
        || is("image/svg+xml")
}

/// `body` in `coding`.
pub fn encode(coding: Coding, body: &[u8], effort: Effort) -> Bytes {
    match coding {
        Coding::Identity => Bytes::copy_from_slice(body),
        Coding::Gzip => {
            let level = match effort {
                Effort::Answer => flate2::Compression::default(),
                Effort::Static => flate2::Compression::best(),
            };
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), level);
            // Writing to a Vec cannot fail.
            let written = encoder.write_all(body).and_then(|()| encoder.finish());
            written.map_or_else(|_| Bytes::copy_from_slice(body), Bytes::from)
        }
        Coding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: match effort {
                    Effort::Answer => 5,
                    Effort::Static => 9,
                },
                lgwin: 22,
                size_hint: body.len(),
                ..Default::default()
            };
            let mut out = Vec::with_capacity(body.len() / 4);
            match brotli::BrotliCompress(&mut &body[..], &mut out, &params) {
                Ok(_) => Bytes::from(out),
                Err(_) => Bytes::copy_from_slice(body),
            }
        }
    }
}

/// One representation and its compressed copies, each made the first time it is asked for.
pub struct Variants {
    identity: Bytes,
    content_type: &'static str,
    effort: Effort,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
}

impl Variants {
    pub fn new(identity: Bytes, content_type: &'static str, effort: Effort) -> Variants {
        Variants {
            identity,
            content_type,
            effort,
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
        }
    }

    pub fn identity(&self) -> &Bytes {
        &self.identity
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// Whether this representation is sent compressed to clients that accept it.
    pub fn compressible(&self) -> bool {
        self.identity.len() >= MIN_BYTES && compressible(self.content_type)
    }

    /// The coding this representation is sent in to a client that prefers `preferred`.
    pub fn coding_for(&self, preferred: Coding) -> Coding {
        if self.compressible() {
            preferred
        } else {
            Coding::Identity
        }
    }

    /// Whether the copy in `coding` is made already (or needs none).
    pub fn ready(&self, coding: Coding) -> bool {
        match coding {
            Coding::Identity => true,
            Coding::Gzip => self.gzip.get().is_some(),
            Coding::Brotli => self.brotli.get().is_some(),
        }
    }

    /// The body in `coding`, compressed now if it is the first time.
    pub fn body(&self, coding: Coding) -> Bytes {
        let cell = match coding {
            Coding::Identity => return self.identity.clone(),
            Coding::Gzip => &self.gzip,
            Coding::Brotli => &self.brotli,
        };
        cell.get_or_init(|| encode(coding, &self.identity, self.effort))
            .clone()
    }

    /// Bytes the compressed copies are expected to take, counted ahead by the read cache's
    /// budget (they are made later): JSON compresses to well under a quarter in each coding.
    pub fn expected_extra(&self) -> usize {
        if self.compressible() {
            self.identity.len() / 2
        } else {
            0
        }
    }

    /// 200 with this representation in the coding `preferred` gives, `etag` (the identity
    /// one) coded to match, and `Vary: Accept-Encoding` when it could be compressed.
    pub fn ok(&self, preferred: Coding, etag: &HeaderValue, private: bool) -> HttpResponse {
        let coding = self.coding_for(preferred);
        let mut response = http::ok(
            self.body(coding),
            self.content_type,
            coded(etag, coding),
            private,
        );
        self.describe(coding, response.headers_mut());
        response
    }

    /// 304 for a client that prefers `preferred`: the headers its 200 would have had.
    pub fn not_modified(
        &self,
        preferred: Coding,
        etag: &HeaderValue,
        private: bool,
    ) -> HttpResponse {
        not_modified(self.compressible(), preferred, etag, private)
    }

    /// `Content-Encoding` and `Vary` of this representation sent in `coding`.
    pub fn describe(&self, coding: Coding, headers: &mut HeaderMap) {
        if self.compressible() {
            add_vary(headers);
        }
        if let Some(token) = coding.token() {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
        }
    }
}

/// 304 for a client that prefers `preferred`, of an answer that is sent compressed when
/// `compressible`: the ETag and `Vary` its 200 would have had (RFC 9110 §15.4.5).
pub fn not_modified(
    compressible: bool,
    preferred: Coding,
    etag: &HeaderValue,
    private: bool,
) -> HttpResponse {
    let coding = if compressible {
        preferred
    } else {
        Coding::Identity
    };
    let mut response = http::not_modified(coded(etag, coding), private);
    if compressible {
        add_vary(response.headers_mut());
    }
    response
}

/// The ETag of the representation in `coding`, from the identity one's.
pub fn coded(etag: &HeaderValue, coding: Coding) -> HeaderValue {
    let Some(token) = coding.token() else {
        return etag.clone();
    };
    etag.to_str()
        .ok()
        .and_then(|tag| HeaderValue::from_str(&http::coded_etag(tag, token)).ok())
        .unwrap_or_else(|| etag.clone())
}

/// Adds `Accept-Encoding` to `Vary`, once.
fn add_vary(headers: &mut HeaderMap) {
    let varies = headers.get_all(header::VARY).any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|name| name.trim().eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// Compresses, as they are sent, the answers that were not compressed where they were made
/// (writes, reads outside the read cache, problems, metrics), and marks every answer that could
/// be compressed with `Vary: Accept-Encoding`. Answers that carry a `Content-Encoding` already
/// are left alone.
pub async fn compress<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut response = next.call(req).await?.map_into_boxed_body();
    let headers = response.headers();
    if headers.contains_key(header::CONTENT_ENCODING) {
        return Ok(response);
    }
    let worth = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(compressible);
    if !worth {
        return Ok(response);
    }
    add_vary(response.headers_mut());
    let large =
        matches!(response.response().body().size(), BodySize::Sized(n) if n >= MIN_BYTES as u64);
    if !large {
        return Ok(response);
    }
    // Read only now: most answers never get this far.
    let preferred = Coding::preferred(response.request().headers());
    if preferred == Coding::Identity {
        return Ok(response);
    }
    let (request, answer) = response.into_parts();
    let (head, body) = answer.into_parts();
    let body = match body.try_into_bytes() {
        Ok(bytes) => BoxBody::new(encode(preferred, &bytes, Effort::Answer)),
        // A stream: sent as it is.
        Err(body) => return Ok(ServiceResponse::new(request, head.set_body(body))),
    };
    let mut answer = head.set_body(body);
    let headers = answer.headers_mut();
    if let Some(token) = preferred.token() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
    }
    if let Some(etag) = headers.get(header::ETAG).map(|etag| coded(etag, preferred)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(ServiceResponse::new(request, answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;
    use std::io::Read;

    fn accepting(value: &'static str) -> Coding {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        Coding::preferred(&headers)
    }

    #[test]
    fn the_coding_is_the_one_the_client_weighs_most() {
        assert_eq!(Coding::preferred(&HeaderMap::new()), Coding::Identity);
        assert_eq!(accepting("gzip, deflate, br, zstd"), Coding::Brotli);
        assert_eq!(accepting("gzip"), Coding::Gzip);
        assert_eq!(accepting("x-gzip"), Coding::Gzip);
        assert_eq!(accepting("br;q=0.5, gzip"), Coding::Gzip);
        assert_eq!(accepting("gzip;q=0.5, br;q=0.9"), Coding::Brotli);
        assert_eq!(accepting("BR;Q=1"), Coding::Brotli);
        assert_eq!(accepting("*"), Coding::Brotli);
        assert_eq!(accepting("*;q=0.5, br;q=0"), Coding::Gzip);
        assert_eq!(accepting("gzip;q=0, br;q=0"), Coding::Identity);
        assert_eq!(accepting("identity, deflate, zstd"), Coding::Identity);
        assert_eq!(accepting("gzip;q=banana"), Coding::Identity);
        assert_eq!(accepting("gzip;q=2"), Coding::Identity);
    }

    #[test]
    fn both_codings_give_the_body_back() {
        let body = serde_json::to_vec(&vec![
            serde_json::json!({"title": "Sepsis rounds", "n": 1});
            100
        ])
        .expect("JSON");
        for effort in [Effort::Answer, Effort::Static] {
            let gzip = encode(Coding::Gzip, &body, effort);
            assert!(
                gzip.len() < body.len() / 4,
                "{} of {}",
                gzip.len(),
                body.len()
            );
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&gzip[..])
                .read_to_end(&mut back)
                .expect("gzip");
            assert_eq!(back, body);

            let brotli = encode(Coding::Brotli, &body, effort);
            assert!(brotli.len() < body.len() / 4);
            let mut back = Vec::new();
            brotli::Decompressor::new(&brotli[..], 4096)
                .read_to_end(&mut back)
                .expect("brotli");
            assert_eq!(back, body);
        }
    }

    #[test]
    fn small_answers_and_images_are_sent_as_they_are() {
        let small = Variants::new(
            Bytes::from(vec![b'x'; MIN_BYTES - 1]),
            "application/json",
            Effort::Answer,
        );
        assert_eq!(small.coding_for(Coding::Gzip), Coding::Identity);
        let large = Variants::new(
            Bytes::from(vec![b'x'; MIN_BYTES]),
            "application/json",
            Effort::Answer,
        );
        assert_eq!(large.coding_for(Coding::Gzip), Coding::Gzip);
        let image = Variants::new(
            Bytes::from(vec![b'x'; 4 * MIN_BYTES]),
            "image/png",
            Effort::Static,
        );
        assert_eq!(image.coding_for(Coding::Brotli), Coding::Identity);
        assert!(compressible("text/calendar; charset=utf-8"));
        assert!(compressible("application/problem+json"));
        assert!(compressible("application/javascript"));
        assert!(!compressible("image/png"));
        assert!(compressible("Application/JSON"));
        assert!(!compressible("application/octet-stream"));
        assert!(!compressible(""));
    }

    #[test]
    fn a_compressed_copy_is_made_once() {
        let variants = Variants::new(
            Bytes::from(vec![b'a'; 4 * MIN_BYTES]),
            "text/css",
            Effort::Static,
        );
        assert!(!variants.ready(Coding::Brotli));
        let first = variants.body(Coding::Brotli);
        assert!(variants.ready(Coding::Brotli));
        let second = variants.body(Coding::Brotli);
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the same bytes, not compressed again"
        );
    }

    #[test]
    fn the_etag_of_every_coding_is_read_back_as_the_identity_one() {
        for coding in [Coding::Gzip, Coding::Brotli] {
            let tag = coded(&HeaderValue::from_static("\"v7\""), coding);
            let list = http::TagList::parse(tag.to_str().expect("text")).expect("a tag");
            assert!(list.matches_strongly("\"v7\""), "{tag:?}");
        }
    }

    #[test]
    fn a_coded_etag_carries_the_coding_inside_its_quotes() {
        let etag = HeaderValue::from_static("\"v3-p\"");
        assert_eq!(coded(&etag, Coding::Identity), "\"v3-p\"");
        assert_eq!(coded(&etag, Coding::Gzip), "\"v3-p-gzip\"");
        assert_eq!(coded(&etag, Coding::Brotli), "\"v3-p-br\"");
        let mut headers = HeaderMap::new();
        headers.append(header::VARY, HeaderValue::from_static("Authorization"));
        add_vary(&mut headers);
        add_vary(&mut headers);
        assert_eq!(headers.get_all(HeaderName::from_static("vary")).count(), 2);
    }
}

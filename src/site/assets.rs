//! The pages' one stylesheet, compiled into the binary and served under a name that carries a
//! digest of its bytes (`/assets/site-<digest>.css`), so that it can be cached for a year and
//! never be stale: a new build with another stylesheet names another file. No font, image or
//! script comes from anywhere else (the intranet may have no internet).

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::platform::compression::{Coding, Effort, Variants};
use crate::platform::http::TagList;

/// The stylesheet: screen (phones first), and print.
const STYLESHEET: &str = include_str!("../../static/site.css");

/// Where the stylesheets are served.
pub const PREFIX: &str = "/assets";

struct Stylesheet {
    path: String,
    body: Variants,
    etag: HeaderValue,
}

fn stylesheet() -> &'static Stylesheet {
    static SHEET: OnceLock<Stylesheet> = OnceLock::new();
    SHEET.get_or_init(|| {
        let digest = hex::encode(Sha256::digest(STYLESHEET.as_bytes()));
        let short = &digest[..16];
        Stylesheet {
            path: format!("{PREFIX}/site-{short}.css"),
            body: Variants::new(
                web::Bytes::from_static(STYLESHEET.as_bytes()),
                "text/css; charset=utf-8",
                Effort::Static,
            ),
            etag: HeaderValue::from_str(&format!("\"{short}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"site\"")),
        }
    })
}

/// The stylesheet's fingerprinted path, which every page links.
pub fn stylesheet_path() -> &'static str {
    &stylesheet().path
}

/// The stylesheet, cached for a year (its name changes with its bytes); any other name under
/// `/assets/` is not found.
pub async fn asset(name: web::Path<String>, req: HttpRequest) -> HttpResponse {
    let sheet = stylesheet();
    if sheet
        .path
        .strip_prefix(PREFIX)
        .and_then(|p| p.strip_prefix('/'))
        != Some(name.as_str())
    {
        return HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    }
    let coding = Coding::preferred(req.headers());
    let current = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(TagList::parse)
        .is_some_and(|tags| {
            sheet
                .etag
                .to_str()
                .is_ok_and(|tag| tags.matches_weakly(tag))
        });
    let mut response = if current {
        sheet.body.not_modified(coding, &sheet.etag, false)
    } else {
        sheet.body.ok(coding, &sheet.etag, false)
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

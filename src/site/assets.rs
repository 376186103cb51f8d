//! The pages' stylesheet and the check-in page's small script, compiled into the binary and
//! served under names that carry a digest of their bytes (`/assets/site-<digest>.css`), so
//! that they can be cached for a year and never be stale: a new build with other bytes names
//! another file. No font, image or script comes from anywhere else (the intranet may have no
//! internet).

use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::platform::compression::{Coding, Effort, Variants};
use crate::platform::http::TagList;

/// The stylesheet: screen (phones first), and print.
const STYLESHEET: &str = include_str!("../../static/site.css");
/// The check-in page's script: it remembers on the device who checks in there.
const CHECKIN_SCRIPT: &str = include_str!("../../static/checkin.js");

/// Where the assets are served.
pub const PREFIX: &str = "/assets";

struct Asset {
    path: String,
    body: Variants,
    etag: HeaderValue,
}

impl Asset {
    fn new(stem: &str, extension: &str, text: &'static str, media_type: &'static str) -> Asset {
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        let short = &digest[..16];
        Asset {
            path: format!("{PREFIX}/{stem}-{short}.{extension}"),
            body: Variants::new(
                web::Bytes::from_static(text.as_bytes()),
                media_type,
                Effort::Static,
            ),
            etag: HeaderValue::from_str(&format!("\"{short}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"asset\"")),
        }
    }
}

fn assets() -> &'static [Asset; 2] {
    static ASSETS: OnceLock<[Asset; 2]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            Asset::new("site", "css", STYLESHEET, "text/css; charset=utf-8"),
            Asset::new(
                "checkin",
                "js",
                CHECKIN_SCRIPT,
                "text/javascript; charset=utf-8",
            ),
        ]
    })
}

/// The stylesheet's fingerprinted path, which every page links.
pub fn stylesheet_path() -> &'static str {
    &assets()[0].path
}

/// The check-in script's fingerprinted path, which the check-in page loads.
pub fn checkin_script_path() -> &'static str {
    &assets()[1].path
}

/// An asset, cached for a year (its name changes with its bytes); any other name under
/// `/assets/` is not found.
pub async fn asset(name: web::Path<String>, req: HttpRequest) -> HttpResponse {
    let Some(asset) = assets().iter().find(|a| {
        a.path
            .strip_prefix(PREFIX)
            .and_then(|p| p.strip_prefix('/'))
            == Some(name.as_str())
    }) else {
        return HttpResponse::NotFound()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish();
    };
    let coding = Coding::preferred(req.headers());
    let current = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .and_then(TagList::parse)
        .is_some_and(|tags| {
            asset
                .etag
                .to_str()
                .is_ok_and(|tag| tags.matches_weakly(tag))
        });
    let mut response = if current {
        asset.body.not_modified(coding, &asset.etag, false)
    } else {
        asset.body.ok(coding, &asset.etag, false)
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

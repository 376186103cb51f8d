//! The pages' sessions: who signed in to the pages (through the identity provider, see
//! `site::signin`), held in the database and named by an opaque id in a `Secure`, `HttpOnly`,
//! `SameSite=Lax` cookie. The browser holds the id only: no token, nothing a script can read.
//! The database holds the SHA-256 digest of the id, so a copy of it opens no session; any
//! replica reads the same rows.
//!
//! A session lasts [`LIFETIME`] from sign-in and holds who the access token said at sign-in
//! (subject, name, e-mail address, role): pages never see the token itself.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::HttpRequest;
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::platform::auth::oidc::Identity;
use crate::platform::auth::{Auth, Caller, Role};
use crate::platform::db::{self, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::resource::Ctx;
use crate::platform::schema::{page_sessions, page_signins};

/// The session cookie.
pub const COOKIE: &str = "lhs_session";
/// The cookie that ties a sign-in's callback to the browser that started it (its `state`).
pub const SIGNIN_COOKIE: &str = "lhs_signin";
/// How long a session lasts from sign-in: a working day.
pub const LIFETIME: Duration = Duration::hours(8);
/// How long a sign-in may take at the identity provider.
pub const SIGNIN_LIFETIME: Duration = Duration::minutes(10);

/// 32 random bytes, base64url without padding (43 characters): a session id, a sign-in's
/// `state`, or a PKCE code verifier (RFC 7636 asks for 43 to 128 such characters).
pub fn random_token() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no random numbers: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The PKCE `S256` challenge of a verifier: base64url(SHA-256(verifier)).
pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// What the database keeps of a token the browser holds.
fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A sign-in under way: its PKCE verifier, and the page to go to once signed in.
#[derive(Debug, Clone)]
pub struct Signin {
    pub verifier: String,
    pub next_path: String,
}

/// Records a sign-in started with `state`, and forgets the sign-ins and sessions that expired.
pub fn begin(conn: &mut DbConnection, state: &str, signin: &Signin) -> Result<(), ApiError> {
    let now = db::now();
    crate::on_backend!(conn, |c| {
        diesel::delete(page_signins::table.filter(page_signins::expires_at.le(now))).execute(c)?;
        diesel::delete(page_sessions::table.filter(page_sessions::expires_at.le(now)))
            .execute(c)?;
        diesel::insert_into(page_signins::table)
            .values((
                page_signins::state_digest.eq(digest(state)),
                page_signins::verifier.eq(&signin.verifier),
                page_signins::next_path.eq(&signin.next_path),
                page_signins::expires_at.eq(now + SIGNIN_LIFETIME),
            ))
            .execute(c)
    })?;
    Ok(())
}

/// The sign-in started with `state`, if it has not expired; taken, so that a callback works
/// once.
pub fn take(conn: &mut DbConnection, state: &str) -> Result<Option<Signin>, ApiError> {
    let key = digest(state);
    let found = crate::on_backend!(conn, |c| page_signins::table
        .find(&key)
        .select((
            page_signins::verifier,
            page_signins::next_path,
            page_signins::expires_at,
        ))
        .first::<(String, String, NaiveDateTime)>(c)
        .optional())?;
    let taken = crate::on_backend!(conn, |c| diesel::delete(page_signins::table.find(&key))
        .execute(c))?;
    Ok(match found {
        Some((verifier, next_path, expires_at)) if taken == 1 && expires_at > db::now() => {
            Some(Signin {
                verifier,
                next_path,
            })
        }
        _ => None,
    })
}

/// Opens a session for `caller` (signed in, with a subject): its id, for the cookie.
pub fn open(conn: &mut DbConnection, caller: &Caller) -> Result<String, ApiError> {
    let Some(sub) = caller.subject.as_deref() else {
        return Err(ApiError::Unauthorized {
            invalid_token: Some("the token names no subject".to_owned()),
        });
    };
    let id = random_token()?;
    let now = db::now();
    crate::on_backend!(conn, |c| diesel::insert_into(page_sessions::table)
        .values((
            page_sessions::id_digest.eq(digest(&id)),
            page_sessions::sub.eq(sub),
            page_sessions::name.eq(caller.name.as_deref()),
            page_sessions::email.eq(caller.email.as_deref()),
            page_sessions::role.eq(caller.role().map(Role::as_str)),
            page_sessions::created_at.eq(now),
            page_sessions::expires_at.eq(now + LIFETIME),
        ))
        .execute(c))?;
    Ok(id)
}

type SessionRow = (String, Option<String>, Option<String>, Option<String>);

/// Who the session `id` is, while it lasts.
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Identity>, ApiError> {
    let row = crate::on_backend!(conn, |c| page_sessions::table
        .find(digest(id))
        .filter(page_sessions::expires_at.gt(db::now()))
        .select((
            page_sessions::sub,
            page_sessions::name,
            page_sessions::email,
            page_sessions::role,
        ))
        .first::<SessionRow>(c)
        .optional())?;
    Ok(row.map(|(sub, name, email, role)| Identity {
        sub: Some(sub),
        name,
        email,
        role: role.as_deref().and_then(Role::parse),
    }))
}

/// Ends the session `id`.
pub fn close(conn: &mut DbConnection, id: &str) -> Result<(), ApiError> {
    crate::on_backend!(conn, |c| diesel::delete(
        page_sessions::table.find(digest(id))
    )
    .execute(c))?;
    Ok(())
}

/// Whoever the request's session cookie names, while the session lasts: `None` without one.
pub async fn caller(ctx: &Ctx, req: &HttpRequest, auth: &Auth) -> Result<Option<Caller>, ApiError> {
    let Some(id) = cookie_value(req, COOKIE) else {
        return Ok(None);
    };
    let identity = ctx.db.call(move |conn| find(conn, &id)).await?;
    Ok(identity.map(|identity| auth.caller_for(identity)))
}

/// Makes the request's session, if it has one, the caller of `ctx` (as a token makes its
/// person the caller of an API request): what a page then reads or writes is theirs.
pub async fn sign_in(ctx: &mut Ctx, req: &HttpRequest, auth: &Auth) -> Result<(), ApiError> {
    if let Some(caller) = caller(ctx, req, auth).await? {
        ctx.caller = caller;
    }
    Ok(())
}

/// A cookie of the pages: `Secure`, `HttpOnly`, `SameSite=Lax`, for `path`, kept `max_age`
/// (zero: removed).
pub fn cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    max_age: Duration,
) -> Cookie<'static> {
    let mut cookie = Cookie::new(name, value);
    cookie.set_path(path);
    cookie.set_secure(true);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_max_age(time::Duration::seconds(max_age.num_seconds()));
    cookie
}

/// The value of cookie `name` the request carries.
pub fn cookie_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_owned())
}

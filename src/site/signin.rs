//! Sign-in for the pages, with the identity provider the API trusts (`LHS_OIDC_ISSUER`): the
//! authorization code flow with PKCE (RFC 7636, `S256`), as a public client
//! (`LHS_OIDC_CLIENT_ID`, the one the API docs sign in with).
//!
//! `GET /signin?next=/me` starts it: a `state` (kept in a short-lived cookie and, as a digest,
//! in the database with the PKCE verifier) and a redirect to the provider. The provider sends
//! the browser back to `GET /signin/callback` with a code, which is exchanged (with the
//! verifier) for an access token; that token is checked exactly as a bearer token of the API
//! is (signature, issuer, audience, roles from groups), and a session opens for who it names
//! (see `site::session`). The token is then dropped: pages never hold it. `POST /signout` ends
//! the session. Without OpenID Connect and a client id, there is no sign-in and the pages are
//! public only.
//!
//! Starting a sign-in needs no credentials, yet writes a row and may ask the provider: it is
//! limited per client (`LHS_SIGNIN_RATE_LIMIT`), and the provider's endpoints are kept for a
//! few minutes ([`ProviderEndpoints`]) rather than read again for every sign-in.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration as StdDuration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;
use url::Url;

use crate::platform::auth::oidc::OidcSettings;
use crate::platform::auth::Auth;
use crate::platform::error::ApiError;
use crate::platform::resource::Ctx;
use crate::schedule::calendar::CalendarSettings;
use crate::site::forms::{from_this_service, query_value, refused_cross_site};
use crate::site::pages::{self, message_page};
use crate::site::session::{self, Signin};

/// Where the provider sends the browser back.
pub const CALLBACK: &str = "/signin/callback";
/// How long the provider may take to answer discovery or the token request.
const PROVIDER_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The provider and client the pages sign in with, when sign-in is set up.
pub fn configured(auth: &Auth) -> Option<(&OidcSettings, &str)> {
    let oidc = auth.oidc()?;
    let client = oidc.client_id.as_deref()?;
    Some((oidc, client))
}

/// A page that says sign-in cannot be used here.
fn not_set_up() -> HttpResponse {
    message_page(
        StatusCode::NOT_FOUND,
        "Sign-in is not set up",
        "This service has no sign-in for its pages: they show what is public. Ask its operators \
         to connect it to the hospital's identity provider.",
    )
}

/// 429 for a client over `LHS_SIGNIN_RATE_LIMIT`, with when to try again.
fn too_many_signins(refused: &ApiError) -> HttpResponse {
    let ApiError::TooManyRequests { retry_after, .. } = refused else {
        return pages::error_page(refused);
    };
    let mut page = message_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-ins",
        "Too many sign-ins were started from here just now. Please wait a minute and try again.",
    );
    page.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
    page
}

fn provider_unreachable(why: &str) -> HttpResponse {
    log::warn!("page sign-in: {why}");
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is unavailable",
        "The hospital's sign-in service cannot be reached just now. Please try again shortly.",
    )
}

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .user_agent(concat!("lhs-rounds/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))
}

/// How long the provider's endpoints are kept before discovery is read again: a provider that
/// moves them is followed within this.
const ENDPOINTS_KEPT: StdDuration = StdDuration::from_secs(300);

/// The provider's authorization and token endpoints as this process last read them, and from
/// which discovery document (app data, shared by the workers). Public configuration, not
/// state: replicas each keep their own copy.
#[derive(Default)]
pub struct ProviderEndpoints(Mutex<Option<KeptEndpoints>>);

struct KeptEndpoints {
    read_at: Instant,
    discovery_url: String,
    authorization: Url,
    token: Url,
}

impl ProviderEndpoints {
    /// The endpoints, read from the discovery document when none are kept, or they are older
    /// than [`ENDPOINTS_KEPT`], or were read from another provider.
    async fn get(&self, oidc: &OidcSettings) -> Result<(Url, Url), String> {
        let url = oidc.discovery_url();
        if let Some(kept) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            if kept.discovery_url == url && kept.read_at.elapsed() < ENDPOINTS_KEPT {
                return Ok((kept.authorization.clone(), kept.token.clone()));
            }
        }
        let (authorization, token) = endpoints(oidc).await?;
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(KeptEndpoints {
            read_at: Instant::now(),
            discovery_url: url,
            authorization: authorization.clone(),
            token: token.clone(),
        });
        Ok((authorization, token))
    }

    /// Drops what is kept: after the provider failed to exchange a code, read discovery again
    /// next time, in case the endpoints moved.
    fn forget(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The provider's authorization and token endpoints, from its discovery document.
async fn endpoints(oidc: &OidcSettings) -> Result<(Url, Url), String> {
    let url = oidc.discovery_url();
    let document: Value = client()?
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("{url}: {e}"))?
        .bytes()
        .await
        .map_err(|e| format!("{url}: {e}"))
        .and_then(|body| {
            serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))
        })?;
    if document.get("issuer").and_then(Value::as_str) != Some(oidc.issuer.as_str()) {
        return Err(format!("{url} names another issuer"));
    }
    // As for the keys: https, or http on this machine only (a test's provider).
    let endpoint = |name: &str| {
        document
            .get(name)
            .and_then(Value::as_str)
            .and_then(|u| Url::parse(u).ok())
            .filter(|u| u.scheme() == "https" || (u.scheme() == "http" && on_this_machine(u)))
            .ok_or_else(|| format!("{url} has no usable {name} (https, or http on localhost)"))
    };
    Ok((
        endpoint("authorization_endpoint")?,
        endpoint("token_endpoint")?,
    ))
}

fn on_this_machine(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Where to go once signed in: a path of this service only (never another site).
fn next_path(req: &HttpRequest) -> String {
    match query_value(req, "next") {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/me".to_owned(),
    }
}

fn see_other(location: &str) -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::SeeOther();
    response
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    response
}

/// Sign in (to the identity provider, and back)
pub async fn start(
    ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    calendar: web::Data<CalendarSettings>,
    provider: web::Data<ProviderEndpoints>,
) -> HttpResponse {
    let Some((oidc, client_id)) = configured(&auth) else {
        return not_set_up();
    };
    if let Some(Err(refused)) = ctx.limits.signin.as_ref().map(|l| l.take(ctx.client)) {
        return too_many_signins(&refused);
    }
    let (authorize, _) = match provider.get(oidc).await {
        Ok(found) => found,
        Err(why) => return provider_unreachable(&why),
    };
    let (state, verifier) = match (session::random_token(), session::random_token()) {
        (Ok(state), Ok(verifier)) => (state, verifier),
        (Err(error), _) | (_, Err(error)) => return pages::error_page(&error),
    };
    let signin = Signin {
        verifier,
        next_path: next_path(&req),
    };
    let challenge = session::challenge(&signin.verifier);
    let kept = state.clone();
    if let Err(error) = ctx
        .db
        .write(move |conn| session::begin(conn, &kept, &signin))
        .await
    {
        return pages::error_page(&error);
    }
    let mut location = authorize;
    location
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair(
            "redirect_uri",
            &format!("{}{CALLBACK}", calendar.base(&req)),
        )
        .append_pair("scope", &oidc.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    see_other(location.as_str())
        .cookie(session::cookie(
            session::SIGNIN_COOKIE,
            state,
            "/signin",
            session::SIGNIN_LIFETIME,
        ))
        .finish()
}

fn refused(text: &str) -> HttpResponse {
    message_page(StatusCode::BAD_REQUEST, "Sign-in did not complete", text)
}

/// Exchanges the code for an access token at the provider.
async fn access_token(
    token_endpoint: Url,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<String, String> {
    let answer = client()?
        .post(token_endpoint.clone())
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", client_id),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .map_err(|e| format!("{token_endpoint}: {e}"))?;
    let status = answer.status();
    let body: Value = answer
        .bytes()
        .await
        .map_err(|e| format!("{token_endpoint}: {e}"))
        .and_then(|body| {
            serde_json::from_slice(&body)
                .map_err(|e| format!("{token_endpoint} answered {status}, not JSON: {e}"))
        })?;
    match body.get("access_token").and_then(Value::as_str) {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        // The provider's error code only: never the body, which may hold tokens.
        _ => Err(format!(
            "{token_endpoint} answered {status}: {}",
            body.get("error")
                .and_then(Value::as_str)
                .unwrap_or("no token")
        )),
    }
}

/// Back from the identity provider
pub async fn callback(
    ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    calendar: web::Data<CalendarSettings>,
    provider: web::Data<ProviderEndpoints>,
) -> HttpResponse {
    let Some((oidc, client_id)) = configured(&auth) else {
        return not_set_up();
    };
    let clear_state = session::cookie(
        session::SIGNIN_COOKIE,
        String::new(),
        "/signin",
        chrono::Duration::zero(),
    );
    let (Some(state), Some(code)) = (query_value(&req, "state"), query_value(&req, "code")) else {
        return refused(
            "The sign-in service did not sign you in. Please go back to the schedule and try \
             again.",
        );
    };
    // The browser that comes back must be the one that set out: another site cannot finish a
    // sign-in of its own in this browser.
    if session::cookie_value(&req, session::SIGNIN_COOKIE).as_deref() != Some(state.as_str()) {
        return refused("This sign-in was not started from this browser. Please sign in again.");
    }
    let taken = state.clone();
    let signin = match ctx.db.write(move |conn| session::take(conn, &taken)).await {
        Ok(Some(signin)) => signin,
        Ok(None) => {
            return refused("This sign-in took too long or was already used. Please sign in again.")
        }
        Err(error) => return pages::error_page(&error),
    };
    let (_, token_endpoint) = match provider.get(oidc).await {
        Ok(found) => found,
        Err(why) => return provider_unreachable(&why),
    };
    let redirect_uri = format!("{}{CALLBACK}", calendar.base(&req));
    let token = match access_token(
        token_endpoint,
        client_id,
        &code,
        &redirect_uri,
        &signin.verifier,
    )
    .await
    {
        Ok(token) => token,
        Err(why) => {
            provider.forget();
            log::warn!("page sign-in: the code was not exchanged: {why}");
            return refused("The sign-in service did not confirm who you are. Please try again.");
        }
    };
    let caller =
        match auth.check_token(&token).await {
            Ok(caller) if caller.subject.is_some() => caller,
            Ok(_) | Err(ApiError::Unauthorized { .. }) => return message_page(
                StatusCode::FORBIDDEN,
                "Not signed in",
                "The sign-in service's answer was not accepted by this service. Please ask its \
                 operators.",
            ),
            Err(error) => return pages::error_page(&error),
        };
    let id = match ctx.db.write(move |conn| session::open(conn, &caller)).await {
        Ok(id) => id,
        Err(error) => return pages::error_page(&error),
    };
    see_other(&signin.next_path)
        .cookie(session::cookie(session::COOKIE, id, "/", session::LIFETIME))
        .cookie(clear_state)
        .finish()
}

/// Sign out (the form on `/me`)
pub async fn sign_out(
    ctx: Ctx,
    req: HttpRequest,
    calendar: web::Data<CalendarSettings>,
) -> HttpResponse {
    if !from_this_service(&req, &calendar) {
        return refused_cross_site();
    }
    if let Some(id) = session::cookie_value(&req, session::COOKIE) {
        if let Err(error) = ctx.db.write(move |conn| session::close(conn, &id)).await {
            return pages::error_page(&error);
        }
    }
    let mut response = see_other("/")
        .cookie(session::cookie(
            session::COOKIE,
            String::new(),
            "/",
            chrono::Duration::zero(),
        ))
        .finish();
    pages::page_headers(&mut response, HeaderValue::from_static(pages::PAGE_POLICY));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn next_is_a_path_of_this_service_only() {
        for (query, expected) in [
            ("next=%2Fme%2Fcertificate%2F2026", "/me/certificate/2026"),
            (
                "next=%2Fcheckin%2F3%3Fcode%3DK7QM3X",
                "/checkin/3?code=K7QM3X",
            ),
            ("next=%2F%2Fevil.example", "/me"),
            ("next=https%3A%2F%2Fevil.example", "/me"),
            ("next=%2F%5Cevil.example", "/me"),
            ("next=%2Fme%0D%0ASet-Cookie%3A%20x", "/me"),
            ("", "/me"),
        ] {
            let req = TestRequest::with_uri(&format!("/signin?{query}")).to_http_request();
            assert_eq!(next_path(&req), expected, "{query}");
        }
    }

    #[test]
    fn the_provider_s_endpoints_are_https_or_on_this_machine() {
        for (url, local) in [
            ("http://127.0.0.1:8080/token", true),
            ("http://localhost/token", true),
            ("http://[::1]:9000/token", true),
            ("http://idp.example.org/token", false),
            ("http://10.0.0.1/token", false),
        ] {
            let parsed = Url::parse(url).expect("a URL");
            assert_eq!(on_this_machine(&parsed), local, "{url}");
        }
    }
}

//! The service's own pages: `/` (the series), `/rounds/{id}` (one round) and `/embed/upcoming`
//! (the upcoming rounds, for the hospital's web site to frame). Rendered on the server from
//! the same persistence functions as the JSON answers, in one snapshot, and kept in the same
//! read cache under the same `schedule_revision`; they work without JavaScript.
//!
//! A page shows the schedule as the public sees it, whoever asks: confirmed speakers only, no
//! private field, public materials only.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::disclosure::statements;
use crate::learning::measures::Measures;
use crate::learning::outcomes::{OutcomeQuery, Outcomes};
use crate::platform::auth::Auth;
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::pagination::Paging;
use crate::platform::resource::{Access, Ctx, Resource, API_PREFIX};
use crate::schedule::calendar::CalendarSettings;
use crate::schedule::feedback::FeedbackWindow;
use crate::schedule::materials::{self, Material, MaterialSettings, Visibility};
use crate::schedule::rounds::{self, Round, RoundFilter, RoundStatus, Rounds, SpeakerStatus, When};
use crate::schedule::series::{Series, SeriesRecord, ID as SERIES_ID};
use crate::site::assets;
use crate::site::render;
use crate::site::session;

/// The most upcoming rounds `/` lists.
const UPCOMING_MAX: i64 = 50;
/// The most past rounds `/` lists (the most recent).
const PAST_MAX: i64 = 100;
/// The most upcoming rounds the embedded fragment lists.
const EMBED_MAX: i64 = 10;
/// The most outcomes and measures a round's page shows.
const ROUND_LISTS_MAX: i64 = 100;

/// The media type of every page.
pub const HTML: &str = "text/html; charset=utf-8";

/// The content security policy of the pages: their one stylesheet and their images (the run
/// charts) from this origin, forms posted to this origin only, no script at all, and no
/// framing.
pub const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// How the pages are served: whether at all (`LHS_SITE`), and who may frame
/// `/embed/upcoming` (`LHS_EMBED_ORIGINS`).
#[derive(Debug, Clone)]
pub struct SiteSettings {
    pub enabled: bool,
    /// The policy of the embedded fragment: `frame-ancestors` the allowed origins, or none.
    pub embed_policy: HeaderValue,
}

impl SiteSettings {
    /// `origins` as `LHS_EMBED_ORIGINS` gives them (checked like `LHS_CORS_ORIGINS`).
    pub fn new(enabled: bool, origins: &[String]) -> Result<SiteSettings, String> {
        let ancestors = match origins {
            [] => "'none'".to_owned(),
            origins => origins.join(" "),
        };
        let policy = format!(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             base-uri 'none'; frame-ancestors {ancestors}"
        );
        Ok(SiteSettings {
            enabled,
            embed_policy: HeaderValue::from_str(&policy)
                .map_err(|_| format!("LHS_EMBED_ORIGINS: {ancestors:?} cannot be a header"))?,
        })
    }
}

impl Default for SiteSettings {
    fn default() -> Self {
        SiteSettings {
            enabled: true,
            embed_policy: HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                 base-uri 'none'; frame-ancestors 'none'",
            ),
        }
    }
}

/// The headers of every page: its policy, and a referrer sent to this origin only, so that a
/// form posted from a page carries the `Origin` the form check looks for (the API's
/// `no-referrer` would make browsers send `Origin: null`).
pub fn page_headers(response: &mut HttpResponse, policy: HeaderValue) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// A page answered outside the cache (an error, a form's result), with the page headers.
pub fn page(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, HTML))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body);
    page_headers(&mut response, HeaderValue::from_static(PAGE_POLICY));
    response
}

/// A page for the person signed in to the pages only: never kept by a cache.
pub fn private_page(html: String) -> HttpResponse {
    let mut response = page(StatusCode::OK, html);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// A page that says what went wrong, in words.
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message<'a> {
    pub css: &'a str,
    pub title: &'a str,
    pub text: &'a str,
    pub back: &'a str,
    pub back_label: &'a str,
}

/// An error as a page: the status, and what a person can do about it.
pub fn error_page(error: &ApiError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(error);
    let (title, text) = match status {
        StatusCode::NOT_FOUND => (
            "Not found",
            "There is no such page. The round may have been removed.",
        ),
        StatusCode::TOO_MANY_REQUESTS => (
            "Too many requests",
            "Too many forms were sent from here just now. Please wait a minute and try again.",
        ),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => (
            "Not allowed",
            "This service shows this only to people who are signed in.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => (
            "Unavailable",
            "The service cannot reach its database just now. Please try again shortly.",
        ),
        _ if status.is_client_error() => ("Not understood", "The request was not understood."),
        _ => (
            "Something went wrong",
            "The service could not answer. Please try again later.",
        ),
    };
    if status.is_server_error() {
        log::warn!("a page could not be rendered: {error}");
    }
    message_page(status, title, text)
}

/// A short page with a title, a sentence and a link back to the schedule.
pub fn message_page(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    let body = Message {
        css: assets::stylesheet_path(),
        title,
        text,
        back: "/",
        back_label: "Back to the schedule",
    }
    .render()
    .unwrap_or_else(|_| title.to_owned());
    page(status, body)
}

/// A round as a line of the schedule.
pub struct Line {
    pub id: i32,
    pub text: String,
    pub cancelled: bool,
}

/// A contact of the series.
pub struct ContactLine {
    pub name: String,
    pub email: String,
    pub role: Option<String>,
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home<'a> {
    css: &'a str,
    name: String,
    description: String,
    contacts: Vec<ContactLine>,
    upcoming: Vec<Line>,
    past: Vec<Line>,
    zone: String,
    feed: String,
    webcal: Option<String>,
    comment_max: usize,
}

#[derive(Template)]
#[template(path = "embed.html")]
struct Embed<'a> {
    css: &'a str,
    name: String,
    upcoming: Vec<Line>,
    zone: String,
}

/// A confirmed speaker, as a round's page lists them.
pub struct SpeakerLine {
    pub name: String,
    pub role: &'static str,
}

/// A material, as a round's page links it.
pub struct MaterialLine {
    pub title: String,
    pub href: String,
    pub kind: String,
}

/// An initiative the round discussed, with the run charts of its measures.
pub struct InitiativeLine {
    pub title: String,
    pub charts: Vec<(String, String)>,
}

/// An outcome of the round.
pub struct OutcomeLine {
    pub kind: &'static str,
    pub text: String,
    pub status: Option<String>,
}

#[derive(Template)]
#[template(path = "round.html")]
struct RoundPage<'a> {
    css: &'a str,
    series: String,
    id: i32,
    heading: String,
    line: String,
    cancelled: bool,
    speakers: Vec<SpeakerLine>,
    departments: Vec<String>,
    materials: Vec<MaterialLine>,
    initiatives: Vec<InitiativeLine>,
    outcomes: Vec<OutcomeLine>,
    disclosure: Option<Disclosure>,
    calendar: String,
    feedback_open: bool,
    feedback_closes: String,
    comment_max: usize,
}

/// A round's published disclosure statement (its latest version), as learners read it: each
/// person's sentence, and the mitigation statement.
pub struct Disclosure {
    pub sentences: Vec<String>,
    pub mitigation: Option<String>,
    pub published: String,
    pub version: i64,
}

fn disclosure_of(conn: &mut DbConnection, id: i32) -> Result<Option<Disclosure>, ApiError> {
    let Some(statement) = statements::find(conn, id, None)? else {
        return Ok(None);
    };
    let zone = crate::schedule::series::zone(conn)?;
    let published = crate::platform::timezone::local(&zone, statement.published_at.0);
    let content = statement.content;
    let relevant = content
        .people
        .0
        .iter()
        .any(|p| !p.relevant_relationships.0.is_empty());
    Ok(Some(Disclosure {
        sentences: content
            .people
            .0
            .iter()
            .map(|p| p.disclosure.as_str().to_owned())
            .collect(),
        mitigation: relevant.then(|| content.mitigation_statement.as_str().to_owned()),
        published: format!(
            "{}, {}",
            render::day(published),
            published.format("%-I:%M%P")
        ),
        version: statement.version.get(),
    }))
}

/// A round's confirmed speakers as the page writes them ("Tara Lagu, MD, MPH").
fn confirmed_names(round: &Round) -> Vec<&str> {
    round
        .speakers
        .0
        .iter()
        .filter(|s| s.status == SpeakerStatus::Confirmed)
        .map(|s| s.display_name.as_str())
        .collect()
}

/// A round's line on the schedule.
pub fn line_of(round: &Round) -> Line {
    Line {
        id: round.id.0,
        text: render::line(
            round.starts_at_local.0,
            round.ends_at_local.0,
            round.location.as_str(),
            &confirmed_names(round),
            round.title.as_ref().map(|t| t.as_str()),
        ),
        cancelled: round.status == RoundStatus::Cancelled,
    }
}

fn found_series(conn: &mut DbConnection) -> Result<Series, ApiError> {
    SeriesRecord::find(conn, SERIES_ID)?.ok_or_else(|| {
        ApiError::Internal("the series row is missing; run `lhs-rounds migrate`".to_owned())
    })
}

/// The rounds `when` takes in as of `now` (at most `max`), and the moment that list stops
/// holding (the next round still going or to come ends).
fn rounds_when(
    conn: &mut DbConnection,
    when: When,
    max: i64,
    now: NaiveDateTime,
) -> Result<(Vec<Round>, Option<NaiveDateTime>), ApiError> {
    let filter = RoundFilter {
        when: Some(when),
        ..RoundFilter::default()
    };
    let listing = rounds::list_at(conn, &filter, Paging::new(max, 0), now)?;
    Ok((listing.page.items, listing.valid_until))
}

/// The name of the series' zone as a person reads it ("America/New_York" as "New York time").
fn zone_words(series: &Series) -> String {
    let name = series.timezone.as_str();
    let city = name.rsplit('/').next().unwrap_or(name).replace('_', " ");
    format!("{city} time ({name})")
}

/// The HTML of `/` as of `now`, with the moment it stops holding. `webcal` is the feed's
/// address for calendar applications, when the service knows its own host.
pub fn home_html(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    webcal: Option<String>,
) -> Result<(String, Option<NaiveDateTime>), ApiError> {
    let series = found_series(conn)?;
    let (upcoming, valid_until) = rounds_when(conn, When::Upcoming, UPCOMING_MAX, now)?;
    let (past, _) = rounds_when(conn, When::Past, PAST_MAX, now)?;
    let page = Home {
        css: assets::stylesheet_path(),
        name: series.name.as_str().to_owned(),
        description: series
            .description
            .as_ref()
            .map(|d| render::markdown(d.as_str()))
            .unwrap_or_default(),
        contacts: series
            .contacts
            .0
            .iter()
            .map(|c| ContactLine {
                name: c.name.as_str().to_owned(),
                email: c.email.as_str().to_owned(),
                role: c.role.as_ref().map(|r| r.as_str().to_owned()),
            })
            .collect(),
        upcoming: upcoming.iter().map(line_of).collect(),
        past: past.iter().map(line_of).collect(),
        zone: zone_words(&series),
        feed: format!("{API_PREFIX}/rounds.ics"),
        webcal,
        comment_max: crate::schedule::feedback::COMMENT_MAX,
    };
    Ok((render_template(&page)?, valid_until))
}

fn render_template(page: &impl Template) -> Result<String, ApiError> {
    page.render()
        .map_err(|e| ApiError::Internal(format!("a page template failed: {e}")))
}

/// Where calendar applications subscribe: `webcal://` and the feed's path on the service's
/// public address (`LHS_PUBLIC_URL`), or else on the host the request named, when it is a
/// plain host name (and then the page is kept under that host).
fn webcal_address(req: &HttpRequest, calendar: &CalendarSettings) -> Option<String> {
    let authority = match &calendar.public_url {
        Some(url) => url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .to_owned(),
        None => req.connection_info().host().to_owned(),
    };
    let plain = !authority.is_empty()
        && authority.len() <= 300
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '/'));
    plain.then(|| format!("webcal://{authority}{API_PREFIX}/rounds.ics"))
}

/// The series' page
pub async fn home(
    mut ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    calendar: web::Data<CalendarSettings>,
) -> HttpResponse {
    // Signed in to the pages: a schedule not public to read is theirs to read (the page is the
    // same for everyone who may read it).
    if let Err(error) = session::sign_in(&mut ctx, &req, &auth).await {
        return error_page(&error);
    }
    let granted = match ctx.authorize::<Rounds>(Access::Read) {
        Ok(granted) => granted,
        Err(error) => return error_page(&error),
    };
    let webcal = webcal_address(&req, &calendar);
    let variant = webcal.clone().unwrap_or_default();
    let answer = ctx
        .read_public(granted, variant, move |conn| {
            let (html, valid_until) = home_html(conn, db::now(), webcal)?;
            Ok(Rendered::text(html, HTML).until(valid_until))
        })
        .await;
    finish(answer, HeaderValue::from_static(PAGE_POLICY))
}

/// The upcoming rounds, as a fragment for the hospital's web site to frame
pub async fn embed_upcoming(ctx: Ctx, site: web::Data<SiteSettings>) -> HttpResponse {
    let granted = match ctx.authorize::<Rounds>(Access::Read) {
        Ok(granted) => granted,
        Err(error) => return error_page(&error),
    };
    let answer = ctx
        .read_public(granted, String::new(), move |conn| {
            let series = found_series(conn)?;
            let (upcoming, valid_until) = rounds_when(conn, When::Upcoming, EMBED_MAX, db::now())?;
            let page = Embed {
                css: assets::stylesheet_path(),
                name: series.name.as_str().to_owned(),
                upcoming: upcoming.iter().map(line_of).collect(),
                zone: zone_words(&series),
            };
            Ok(Rendered::text(render_template(&page)?, HTML).until(valid_until))
        })
        .await;
    finish(answer, site.embed_policy.clone())
}

fn finish(answer: Result<HttpResponse, ApiError>, policy: HeaderValue) -> HttpResponse {
    match answer {
        Ok(mut response) => {
            page_headers(&mut response, policy);
            response
        }
        Err(error) => error_page(&error),
    }
}

/// The materials a round's page lists: the public ones (the page everyone gets, kept in the
/// read cache), or those a person signed in to the pages may see, their files served through
/// the pages (which know the session; the API takes tokens only).
#[derive(Debug, Clone, Copy)]
pub enum Shown<'a> {
    Public,
    SignedIn(&'a [Visibility]),
}

/// The HTML of `/rounds/{id}` as of `now`, with the moment it stops holding (the feedback
/// form comes and goes with the round's window); `None` when there is no such round.
pub fn round_html(
    conn: &mut DbConnection,
    id: i32,
    now: DateTime<Utc>,
    shown: Shown<'_>,
) -> Result<Option<(String, Option<NaiveDateTime>)>, ApiError> {
    let Some(round) = Rounds::find(conn, id)? else {
        return Ok(None);
    };
    let series = found_series(conn)?;
    let terms = rounds::feedback_terms(conn, id)?;
    let cancelled = round.status == RoundStatus::Cancelled;
    let (feedback_open, feedback_closes, valid_until) = match terms {
        Some(terms) if !cancelled => {
            let window = FeedbackWindow::of(&terms);
            let closes = crate::platform::timezone::local(&terms.zone, window.closes);
            if now < window.opens {
                (false, String::new(), Some(window.opens.naive_utc()))
            } else if now < window.closes {
                (
                    true,
                    closes.format("%A, %B %-d, %Y").to_string(),
                    Some(window.closes.naive_utc()),
                )
            } else {
                (false, String::new(), None)
            }
        }
        _ => (false, String::new(), None),
    };
    let seen = match shown {
        Shown::Public => &[Visibility::Public][..],
        Shown::SignedIn(seen) => seen,
    };
    let materials = materials::seen_of_rounds(conn, &[id], seen)?
        .into_iter()
        .map(|m: Material| MaterialLine {
            href: match (&m.url, shown) {
                (Some(url), _) => url.as_str().to_owned(),
                (None, Shown::Public) => materials::download_path(id, m.id.0),
                (None, Shown::SignedIn(_)) => format!("/rounds/{id}/materials/{}/file", m.id.0),
            },
            kind: m.kind.as_str().replace('_', " "),
            title: m.title.as_str().to_owned(),
        })
        .collect();
    let mut initiatives = Vec::new();
    for initiative in &round.initiatives.0 {
        let measures = Measures::list(conn, &initiative.id.0, Paging::new(ROUND_LISTS_MAX, 0))?;
        initiatives.push(InitiativeLine {
            title: initiative.title.as_str().to_owned(),
            charts: measures
                .page
                .items
                .iter()
                .map(|m| {
                    (
                        format!("{API_PREFIX}/measures/{}/run-chart.svg", m.id.0),
                        format!("Run chart of {}", m.name.as_str()),
                    )
                })
                .collect(),
        });
    }
    let outcomes = Outcomes::list(
        conn,
        &OutcomeQuery::Round(id),
        Paging::new(ROUND_LISTS_MAX, 0),
    )?
    .page
    .items
    .into_iter()
    .map(|o| OutcomeLine {
        kind: match o.kind.as_str() {
            "decision" => "Decision",
            "action_item" => "Action item",
            _ => "Information",
        },
        text: o.text.as_str().to_owned(),
        status: o.status.map(|s| s.as_str().replace('_', " ")),
    })
    .collect();
    let disclosure = disclosure_of(conn, id)?;
    let page = RoundPage {
        disclosure,
        css: assets::stylesheet_path(),
        series: series.name.as_str().to_owned(),
        id,
        heading: round
            .title
            .as_ref()
            .map(|t| t.as_str().to_owned())
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| format!("Round of {}", render::day(round.starts_at_local.0))),
        line: line_of(&round).text,
        cancelled,
        speakers: round
            .speakers
            .0
            .iter()
            .filter(|s| s.status == SpeakerStatus::Confirmed)
            .map(|s| SpeakerLine {
                name: s.display_name.as_str().to_owned(),
                role: match s.role.as_str() {
                    "moderator" => "Moderator",
                    "panelist" => "Panelist",
                    _ => "Presenter",
                },
            })
            .collect(),
        departments: round
            .departments
            .0
            .iter()
            .map(|d| match &d.abbreviation {
                Some(a) => format!("{} ({})", d.name.as_str(), a.as_str()),
                None => d.name.as_str().to_owned(),
            })
            .collect(),
        materials,
        initiatives,
        outcomes,
        calendar: format!("{API_PREFIX}/rounds/{id}.ics"),
        feedback_open,
        feedback_closes,
        comment_max: crate::schedule::feedback::COMMENT_MAX,
    };
    Ok(Some((render_template(&page)?, valid_until)))
}

/// One round's page
pub async fn round(
    mut ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    id: web::Path<String>,
) -> HttpResponse {
    // Signed in to the pages: their rights (a schedule not public to read is theirs to read),
    // and, with a role, the materials they may see too, on a page for them only, never kept.
    // A bearer token changes nothing here: pages are for browsers.
    let seen = match session::caller(&ctx, &req, &auth).await {
        Ok(Some(caller)) => {
            let seen = Visibility::seen_by(&caller);
            ctx.caller = caller;
            seen
        }
        Ok(None) => Vec::new(),
        Err(error) => return error_page(&error),
    };
    let granted = match ctx.authorize::<Rounds>(Access::Read) {
        Ok(granted) => granted,
        Err(error) => return error_page(&error),
    };
    // Not a number: no such page (an API route would say 400; a person needs "not found").
    let Ok(id) = id.parse::<i32>() else {
        return error_page(&ApiError::NotFound("no such round".to_owned()));
    };
    if seen.len() > 1 {
        let written = ctx
            .db
            .read_snapshot(move |conn| {
                round_html(conn, id, db::now().and_utc(), Shown::SignedIn(&seen))
            })
            .await;
        return match written {
            Ok(Some((html, _))) => private_page(html),
            Ok(None) => error_page(&ApiError::not_found(Rounds::NAME, id)),
            Err(error) => error_page(&error),
        };
    }
    let answer = ctx
        .read_public(granted, String::new(), move |conn| {
            match round_html(conn, id, db::now().and_utc(), Shown::Public)? {
                Some((html, valid_until)) => Ok(Rendered::text(html, HTML).until(valid_until)),
                None => Err(ApiError::not_found(Rounds::NAME, id)),
            }
        })
        .await;
    finish(answer, HeaderValue::from_static(PAGE_POLICY))
}

/// A material's file, for a person signed in to the pages (the round's page links it when it
/// is not public); anyone else gets what the API would give them.
pub async fn material_file(
    mut ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    settings: web::Data<MaterialSettings>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (Ok(round_id), Ok(id)) = (path.0.parse::<i32>(), path.1.parse::<i32>()) else {
        return error_page(&ApiError::NotFound("no such material".to_owned()));
    };
    match session::caller(&ctx, &req, &auth).await {
        Ok(Some(caller)) => {
            ctx.caller = caller;
            ctx.private = true;
        }
        Ok(None) => {}
        Err(error) => return error_page(&error),
    }
    match materials::send_file(ctx, &req, round_id, id, &settings).await {
        Ok(response) => response,
        Err(error) => error_page(&error),
    }
}

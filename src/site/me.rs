//! `/me`: the signed-in person's transcript, year by year, and `/me/certificate/{year}`, a
//! certificate of a year's attendance and credit that prints on one page. Read through the
//! same functions as `GET /api/v1/me/transcript`; private to the person (`no-store`, never in
//! the read cache). Without a session, `/me` sends the browser to sign in; without sign-in set
//! up, it says so.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::Datelike;

use crate::credit::attendance::CreditStatus;
use crate::credit::attendees;
use crate::credit::transcripts::{self, Transcript, TranscriptItem, TranscriptQuery};
use crate::platform::auth::{Auth, Caller};
use crate::platform::error::ApiError;
use crate::platform::resource::Ctx;
use crate::platform::timezone::{self, Zone};
use crate::schedule::series::{self, CreditType};
use crate::site::pages::{self, error_page, message_page};
use crate::site::{assets, render, session, signin};

/// One round on the transcript.
pub struct Row {
    pub date: String,
    pub title: String,
    pub status: &'static str,
    pub hours: String,
}

/// One year of the transcript.
pub struct Year {
    pub year: i32,
    pub rows: Vec<Row>,
    pub sessions: usize,
    pub awarded_hours: f64,
}

impl Year {
    /// The hours awarded that year, as the page writes them.
    pub fn awarded(&self) -> String {
        hours(self.awarded_hours)
    }
}

#[derive(Template)]
#[template(path = "me.html")]
struct MePage<'a> {
    css: &'a str,
    name: String,
    email: String,
    credit: &'static str,
    years: Vec<Year>,
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertificatePage<'a> {
    css: &'a str,
    name: String,
    series: String,
    credit: &'static str,
    year: Year,
}

/// What a credit status means to the person who earned it.
fn status_words(status: CreditStatus) -> &'static str {
    match status {
        CreditStatus::Awarded => "Awarded",
        CreditStatus::PendingEvaluation => "Awaiting your evaluation",
        CreditStatus::NotCreditable => "Not creditable",
        CreditStatus::None => "No credit",
    }
}

/// The credit the series designates, in words.
fn credit_words(credit: Option<CreditType>) -> &'static str {
    match credit {
        Some(CreditType::AmaPraCategory1) => "AMA PRA Category 1 Credit™",
        Some(CreditType::AnccContactHours) => "ANCC contact hours",
        Some(CreditType::Participation) => "hours of participation",
        None => "hours",
    }
}

fn hours(value: f64) -> String {
    format!("{value:.2}")
}

/// The transcript's rounds by year (in the series' zone), the latest year first.
fn years(items: &[TranscriptItem], zone: &Zone) -> Vec<Year> {
    let mut years: Vec<Year> = Vec::new();
    for item in items.iter().rev() {
        let start = timezone::local(zone, item.starts_at.0);
        let row = Row {
            date: render::day(start),
            title: item
                .title
                .as_ref()
                .map(|t| t.as_str().to_owned())
                .unwrap_or_else(|| "LHS Rounds".to_owned()),
            status: status_words(item.credit_status),
            hours: hours(item.claimed_hours.hours()),
        };
        let awarded = match item.credit_status {
            CreditStatus::Awarded => item.claimed_hours.hours(),
            _ => 0.0,
        };
        match years.last_mut() {
            Some(year) if year.year == start.year() => {
                year.rows.push(row);
                year.sessions += 1;
                year.awarded_hours += awarded;
            }
            _ => years.push(Year {
                year: start.year(),
                rows: vec![row],
                sessions: 1,
                awarded_hours: awarded,
            }),
        }
    }
    years
}

/// The signed-in person, or the answer for someone who is not.
async fn signed_in(ctx: &Ctx, req: &HttpRequest, auth: &Auth) -> Result<Caller, HttpResponse> {
    match session::caller(ctx, req, auth).await {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) if signin::configured(auth).is_some() => {
            let next = serde_urlencoded::to_string([("next", req.path())]).unwrap_or_default();
            Err(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/signin?{next}")))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish())
        }
        Ok(None) => Err(message_page(
            StatusCode::NOT_FOUND,
            "Sign-in is not set up",
            "This service has no sign-in for its pages, so it cannot show a transcript here.",
        )),
        Err(error) => Err(error_page(&error)),
    }
}

/// The caller's transcript (all of it), the series' zone and name; `None` before their first
/// check-in.
async fn transcript_of(
    mut ctx: Ctx,
    caller: Caller,
) -> Result<(Option<Transcript>, Zone, String), ApiError> {
    ctx.caller = caller.clone();
    let granted = ctx.authorize_with(caller.require_signed_in())?;
    ctx.write(granted, move |conn, author| {
        let (name, zone) = series::name_and_zone(conn)?;
        let span = TranscriptQuery {
            from: None,
            to: None,
        };
        let transcript = attendees::of_caller(conn, &caller, author)?
            .map(|attendee| transcripts::transcript(conn, attendee, &span))
            .transpose()?;
        Ok((transcript, zone, name))
    })
    .await
}

/// My transcript
pub async fn me(ctx: Ctx, req: HttpRequest, auth: web::Data<Auth>) -> HttpResponse {
    let caller = match signed_in(&ctx, &req, &auth).await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let (name, email) = (
        caller.name.clone().unwrap_or_default(),
        caller.email.clone().unwrap_or_default(),
    );
    let (transcript, zone, _) = match transcript_of(ctx, caller).await {
        Ok(found) => found,
        Err(error) => return error_page(&error),
    };
    let credit = credit_words(
        transcript
            .as_ref()
            .and_then(|t| t.items.iter().find_map(|i| i.credit_type)),
    );
    let page = MePage {
        css: assets::stylesheet_path(),
        name: transcript
            .as_ref()
            .map_or(name, |t| t.attendee.full_name.as_str().to_owned()),
        email,
        credit,
        years: transcript
            .as_ref()
            .map(|t| years(&t.items, &zone))
            .unwrap_or_default(),
    };
    match page.render() {
        Ok(html) => pages::private_page(html),
        Err(e) => error_page(&ApiError::Internal(format!("the /me template failed: {e}"))),
    }
}

/// A year's certificate
pub async fn certificate(
    ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    year: web::Path<String>,
) -> HttpResponse {
    let caller = match signed_in(&ctx, &req, &auth).await {
        Ok(caller) => caller,
        Err(answer) => return answer,
    };
    let Ok(wanted) = year.parse::<i32>() else {
        return error_page(&ApiError::NotFound("no such year".to_owned()));
    };
    let (transcript, zone, series_name) = match transcript_of(ctx, caller).await {
        Ok(found) => found,
        Err(error) => return error_page(&error),
    };
    let Some(transcript) = transcript else {
        return error_page(&ApiError::NotFound("no attendance yet".to_owned()));
    };
    let credit = credit_words(transcript.items.iter().find_map(|i| i.credit_type));
    let Some(mut year) = years(&transcript.items, &zone)
        .into_iter()
        .find(|y| y.year == wanted)
    else {
        return message_page(
            StatusCode::NOT_FOUND,
            "No attendance that year",
            "Your transcript has no round in that year.",
        );
    };
    // A certificate lists the year in date order.
    year.rows.reverse();
    let page = CertificatePage {
        css: assets::stylesheet_path(),
        name: transcript.attendee.full_name.as_str().to_owned(),
        series: series_name,
        credit,
        year,
    };
    match page.render() {
        Ok(html) => pages::private_page(html),
        Err(e) => error_page(&ApiError::Internal(format!(
            "the certificate template failed: {e}"
        ))),
    }
}

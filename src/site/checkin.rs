//! The check-in page: `/checkin/{id}?code=…`, which the QR code in the room opens. Mobile
//! first, one button: name, e-mail and profession (kept on the device for next time by the
//! page's one small script, `static/checkin.js`), and the round's code from the URL. The form
//! posts to `POST /checkin/{id}` as an ordinary HTML form with a `nonce` made when the page was
//! loaded, so that a resubmit over a flaky connection finds the check-in it made instead of
//! making a second one; it is answered with a 303 to a page that says what happened.
//!
//! The check-in is written as `POST /api/v1/rounds/{id}/attendance` writes it
//! (`attendance::record_checked`): the same quota, schema, rules and change log.

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::credit::attendance::{self, AttendanceRecord, CreditStatus};
use crate::credit::attendees::Profession;
use crate::credit::checkin::{self, RoundCredit, Window};
use crate::platform::auth::Auth;
use crate::platform::db;
use crate::platform::error::{ApiError, FieldError};
use crate::platform::resource::{Access, Ctx};
use crate::platform::timezone;
use crate::schedule::calendar::CalendarSettings;
use crate::schedule::rounds::{RoundStatus, Rounds};
use crate::site::forms::{
    from_this_service, non_blank, query_value, refused_cross_site, see_other, Errors,
};
use crate::site::pages::{self, error_page, Message};
use crate::site::{assets, render, session, signin};

/// The check-in page's policy: the pages' own, and its one script from this origin.
pub const CHECKIN_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The fields of the check-in form, as typed (a body that cannot be read is an empty form).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Fields {
    pub code: String,
    pub nonce: String,
    pub full_name: String,
    pub email: String,
    pub profession: String,
}

impl Fields {
    fn read(body: &[u8]) -> Fields {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    }

    /// The body `POST /rounds/{id}/attendance` takes: blank fields left out, so that the
    /// schema names a missing field rather than an empty one.
    fn body(&self) -> Value {
        let attendee = non_blank(&[
            ("full_name", &self.full_name),
            ("email", &self.email),
            ("profession", &self.profession),
        ]);
        let mut body = non_blank(&[("code", &self.code), ("nonce", &self.nonce)]);
        body.insert("attendee".to_owned(), Value::Object(attendee));
        Value::Object(body)
    }
}

/// The check-in form's fields: name, the id a link to it points at, and its label.
const CHECKIN_FIELDS: [(&str, &str, &str); 4] = [
    ("full_name", "full_name", "Name"),
    ("email", "email", "E-mail"),
    ("profession", "profession", "Profession"),
    ("code", "code", "Code"),
];

/// Which field of the check-in form an error of the API is about (it names a field of the
/// attendee `attendee.email`, or `attendee/email`), and how it says it is required.
fn checkin_field(name: &str) -> Option<(&'static str, &'static str)> {
    match name
        .trim_start_matches("attendee")
        .trim_start_matches(['.', '/'])
    {
        "code" => Some(("code", "Please type the code shown in the room.")),
        "full_name" => Some(("full_name", "Please write your name.")),
        "email" => Some(("email", "Please write your e-mail address.")),
        "profession" => Some(("profession", "Please choose your profession.")),
        _ => None,
    }
}

/// The errors of a check-in, beside their fields; a code that is not the round's in words a
/// person in the room can act on.
fn checkin_errors(errors: Vec<FieldError>) -> Errors {
    let errors = errors
        .into_iter()
        .map(|mut error| {
            if error.field == "code" && error.message.contains("does not match") {
                error.message = "This is not the code of this round: please check the code \
                                 shown in the room."
                    .to_owned();
            }
            error
        })
        .collect();
    Errors::of(errors, checkin_field)
}

/// A profession as the form offers it: its value, its words, and whether it is chosen.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn choices(chosen: &str) -> Vec<Choice> {
    Profession::ALL
        .iter()
        .map(|p| {
            let value = p.as_str();
            let label = match p {
                Profession::Physician => "Physician (MD, DO)",
                Profession::PhysicianAssistant => "Physician assistant",
                Profession::NursePractitioner => "Nurse practitioner",
                Profession::Nurse => "Nurse",
                Profession::Pharmacist => "Pharmacist",
                Profession::Psychologist => "Psychologist",
                Profession::Student => "Student or trainee",
                Profession::Other => "Other",
            };
            Choice {
                value,
                label,
                selected: value == chosen,
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "checkin.html")]
struct CheckinPage<'a> {
    css: &'a str,
    script: &'a str,
    id: i32,
    title: String,
    when: String,
    fields: Fields,
    professions: Vec<Choice>,
    errors: Errors,
    summary: Vec<(&'static str, &'static str, String)>,
    account: Account,
}

/// Who checks in, as far as the pages' sign-in knows: the signed-in person (their name and
/// address filled in), or where to sign in, when sign-in is set up.
#[derive(Debug, Clone, Default)]
pub struct Account {
    pub signed_in_as: Option<String>,
    pub signin_url: Option<String>,
}

/// The check-in's caller and account: the session's person, when the request has one (the
/// check-in is then theirs, as with a token), else anonymous.
async fn account(
    ctx: &mut Ctx,
    req: &HttpRequest,
    auth: &Auth,
    round: i32,
    fields: &mut Fields,
) -> Result<Account, ApiError> {
    match session::caller(ctx, req, auth).await? {
        Some(caller) => {
            let name = caller.name.clone().unwrap_or_default();
            let email = caller.email.clone().unwrap_or_default();
            if fields.full_name.trim().is_empty() {
                fields.full_name.clone_from(&name);
            }
            if fields.email.trim().is_empty() {
                fields.email.clone_from(&email);
            }
            ctx.caller = caller;
            Ok(Account {
                signed_in_as: Some(match (name.is_empty(), email.is_empty()) {
                    (false, false) => format!("{name} ({email})"),
                    (false, true) => name,
                    _ => email,
                }),
                signin_url: None,
            })
        }
        None => Ok(Account {
            signed_in_as: None,
            signin_url: signin::configured(auth).map(|_| {
                let code =
                    serde_urlencoded::to_string([("code", &fields.code)]).unwrap_or_default();
                let back = format!("/checkin/{round}?{code}");
                format!(
                    "/signin?{}",
                    serde_urlencoded::to_string([("next", back)]).unwrap_or_default()
                )
            }),
        }),
    }
}

/// "Thursday, July 18, 2019, 12–1pm": when a round is, in its series' zone.
fn when(round: &RoundCredit) -> String {
    let start = timezone::local(&round.zone, round.starts_at.and_utc());
    let end = timezone::local(&round.zone, round.ends_at.and_utc());
    format!("{}, {}", render::day(start), render::hours(start, end))
}

fn title(round: &RoundCredit) -> String {
    round
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("LHS Rounds")
        .to_owned()
}

/// "Thursday, July 18, 2019 at 11:45am (America/New_York)".
fn moment(window: &Window, at: DateTime<Utc>) -> String {
    let local = timezone::local(&window.zone, at);
    format!(
        "{} at {} ({})",
        render::day(local),
        local.format("%-I:%M%P"),
        timezone::name(&window.zone)
    )
}

/// Why the round takes no check-in at `now`, in words, with a title; `None` while it does.
fn refusal(round: &RoundCredit, now: DateTime<Utc>) -> Option<(&'static str, String)> {
    if round.status == RoundStatus::Cancelled {
        return Some((
            "This round was cancelled",
            format!(
                "“{}” ({}) was cancelled, so it takes no check-in.",
                title(round),
                when(round)
            ),
        ));
    }
    let window = round.window();
    if now < window.opens {
        return Some((
            "Check-in is not open yet",
            format!(
                "Check-in for “{}” opens on {} and closes on {}.",
                title(round),
                moment(&window, window.opens),
                moment(&window, window.closes)
            ),
        ));
    }
    if now >= window.closes {
        return Some((
            "Check-in is closed",
            format!(
                "Check-in for “{}” was open from {} until {}. If you were there, please ask \
                 the organizers to mark your attendance.",
                title(round),
                moment(&window, window.opens),
                moment(&window, window.closes)
            ),
        ));
    }
    None
}

/// The check-in form of `round`, filled in with `fields`, each error of `errors` beside its field.
fn form_page(
    status: StatusCode,
    round: &RoundCredit,
    fields: Fields,
    errors: Errors,
    account: Account,
) -> HttpResponse {
    let page = CheckinPage {
        css: assets::stylesheet_path(),
        script: assets::checkin_script_path(),
        id: round.id,
        title: title(round),
        when: when(round),
        professions: choices(&fields.profession),
        summary: errors.summary(&CHECKIN_FIELDS),
        fields,
        errors,
        account,
    };
    match page.render() {
        Ok(html) => {
            let mut response = pages::page(status, html);
            pages::page_headers(&mut response, HeaderValue::from_static(CHECKIN_POLICY));
            response
        }
        Err(e) => error_page(&ApiError::Internal(format!(
            "the check-in template failed: {e}"
        ))),
    }
}

fn round_id(id: &str) -> Result<i32, ApiError> {
    id.parse::<i32>()
        .map_err(|_| ApiError::NotFound("no such round".to_owned()))
}

/// A new nonce: the id of the check-in this page's form sends, the same on every resubmit.
fn new_nonce() -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| ApiError::Internal(format!("no random numbers: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Round `id` as the check-in page names it: by its title only where the caller may read the
/// schedule (with `LHS_PUBLIC_READ=false`, a page anyone may open names no round).
async fn round_named(ctx: &Ctx, id: i32) -> Result<RoundCredit, ApiError> {
    let mut round = ctx
        .db
        .call(move |conn| checkin::round_credit(conn, id))
        .await?;
    if ctx.authorize::<Rounds>(Access::Read).is_err() {
        round.title = None;
    }
    Ok(round)
}

/// The check-in page (the QR code's address)
pub async fn form(
    mut ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    id: web::Path<String>,
) -> HttpResponse {
    let shown = async {
        let id = round_id(&id)?;
        let mut fields = Fields {
            // The code in the page's address, as the QR code carries it.
            code: query_value(&req, "code").unwrap_or_default(),
            nonce: new_nonce()?,
            ..Fields::default()
        };
        // Who is signed in first: what the page may name depends on it.
        let account = account(&mut ctx, &req, &auth, id, &mut fields).await?;
        let round = round_named(&ctx, id).await?;
        if let Some((title, text)) = refusal(&round, db::now().and_utc()) {
            return Ok(round_message(StatusCode::OK, round.id, title, &text));
        }
        Ok(form_page(
            StatusCode::OK,
            &round,
            fields,
            Errors::default(),
            account,
        ))
    }
    .await;
    shown.unwrap_or_else(|error: ApiError| error_page(&error))
}

/// A page about round `id`, with a link to its page.
fn round_message(status: StatusCode, id: i32, title: &str, text: &str) -> HttpResponse {
    let back = format!("/rounds/{id}");
    let body = Message {
        css: assets::stylesheet_path(),
        title,
        text,
        back: &back,
        back_label: "See the round",
    }
    .render()
    .unwrap_or_else(|_| title.to_owned());
    pages::page(status, body)
}

/// Check in (the check-in page's form)
pub async fn check_in(
    mut ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    calendar: web::Data<CalendarSettings>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (granted, _quota) = match attendance::authorize_check_in(&ctx) {
        Ok(granted) => granted,
        Err(error) => return error_page(&error),
    };
    if !from_this_service(&req, &calendar) {
        return refused_cross_site();
    }
    let id = match round_id(&id) {
        Ok(id) => id,
        Err(error) => return error_page(&error),
    };
    let mut fields = Fields::read(&body);
    let account = match account(&mut ctx, &req, &auth, id, &mut fields).await {
        Ok(account) => account,
        Err(error) => return error_page(&error),
    };
    match attendance::record_checked(&ctx, granted, id, fields.body()).await {
        Ok((record, created)) => see_other(&done_location(&record, created)),
        Err(ApiError::Validation(errors)) => match round_named(&ctx, id).await {
            Ok(round) => form_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &round,
                fields,
                checkin_errors(errors),
                account,
            ),
            Err(error) => error_page(&error),
        },
        // Cancelled, or outside the window: said in the page's words, with the window's times.
        Err(ApiError::Conflict(why)) => match round_named(&ctx, id).await {
            Ok(round) => match refusal(&round, db::now().and_utc()) {
                Some((title, text)) => round_message(StatusCode::CONFLICT, round.id, title, &text),
                None => round_message(StatusCode::CONFLICT, round.id, "Not checked in", &why),
            },
            Err(error) => error_page(&error),
        },
        Err(error) => error_page(&error),
    }
}

/// Where a check-in's form is sent on: its result page, which says whether it is new and what
/// became of its credit (nothing about the person).
fn done_location(record: &AttendanceRecord, created: bool) -> String {
    format!(
        "/checkin/{}/done?{}",
        record.round_id.0,
        serde_urlencoded::to_string([
            ("as", if created { "new" } else { "again" }),
            ("credit", record.credit_status.as_str()),
            ("hours", &record.claimed_hours.to_string()),
        ])
        .unwrap_or_default()
    )
}

/// "1 hour", "0.75 hours".
fn hours_text(hours: f64) -> String {
    if hours == 1.0 {
        "1 hour".to_owned()
    } else {
        format!("{hours} hours")
    }
}

/// What a person sees after checking in: checked in, or already checked in, and their credit.
pub async fn done(req: HttpRequest, id: web::Path<String>) -> HttpResponse {
    let id = match round_id(&id) {
        Ok(id) => id,
        Err(error) => return error_page(&error),
    };
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let value = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    let (title, first) = match value("as") {
        "again" => (
            "You are already checked in",
            "This round already has your check-in: nothing more is needed.",
        ),
        _ => ("You are checked in", "Your attendance is recorded."),
    };
    let hours = value("hours")
        .parse::<f64>()
        .ok()
        .filter(|h| h.is_finite() && *h > 0.0);
    let credit = match (value("credit").parse::<CreditStatus>().ok(), hours) {
        (Some(CreditStatus::Awarded), Some(h)) => {
            format!(" Your credit is claimed: {}.", hours_text(h))
        }
        (Some(CreditStatus::PendingEvaluation), Some(h)) => format!(
            " Your credit ({}) is claimed, and is awarded when you send this round's \
             evaluation (the feedback form on its page).",
            hours_text(h)
        ),
        (Some(CreditStatus::NotCreditable), _) => " This round's disclosures were not shown \
             to its learners before it started, so it carries no credit; your attendance \
             counts all the same."
            .to_owned(),
        _ => String::new(),
    };
    round_message(StatusCode::OK, id, title, &format!("{first}{credit}"))
}

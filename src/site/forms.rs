//! The pages' forms: a topic suggestion (`POST /suggestions`, on `/`) and session feedback
//! (`POST /rounds/{id}/feedback`, on a round's page inside its feedback window). Each posts
//! as an ordinary HTML form and is answered with a 303 to a page that says it was received;
//! a form with errors comes back (422) with each error beside its field
//! (`aria-describedby`).
//!
//! A form is sent as `POST /api/v1/feedback` takes it: the same authorization, quota for
//! anonymous senders, schema, rules and write (`feedback::create_checked`). It is refused
//! (403) unless it came from a page of this service: its `Origin`, or without one its
//! `Referer`, must name this service's own host, so that another site cannot post it for a
//! signed-in person.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Map, Value};

use crate::platform::auth::Auth;
use crate::platform::error::{ApiError, FieldError};
use crate::platform::resource::{Ctx, Granted};
use crate::schedule::calendar::CalendarSettings;
use crate::schedule::feedback::{self, COMMENT_MAX};
use crate::site::pages::{self, error_page, message_page};
use crate::site::{assets, session};

/// The fields the forms take, as typed (a body that cannot be read is an empty form, whose
/// required fields the rules then name).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct Fields {
    pub comment: String,
    pub author_name: String,
    pub author_email: String,
    pub rating: String,
}

impl Fields {
    fn read(body: &[u8]) -> Fields {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    }

    /// The body `POST /feedback` takes: blank fields left out, so that the schema names a
    /// missing comment or rating rather than an empty one.
    fn body(&self, kind: &str, round_id: Option<i32>) -> Value {
        let mut body = non_blank(&[
            ("comment", &self.comment),
            ("author_name", &self.author_name),
            ("author_email", &self.author_email),
        ]);
        body.insert("kind".to_owned(), Value::from(kind));
        if let Some(id) = round_id {
            body.insert("round_id".to_owned(), Value::from(id));
        }
        if !self.rating.trim().is_empty() {
            // Not a number: sent as text, which the schema refuses naming `rating`.
            let rating = self
                .rating
                .trim()
                .parse::<i64>()
                .map_or_else(|_| Value::from(self.rating.trim()), Value::from);
            body.insert("rating".to_owned(), rating);
        }
        Value::Object(body)
    }
}

/// The value of query parameter `name` of the page's address (a malformed query has none).
pub fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
        .unwrap_or_default()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value)
}

/// The fields of a form that are not blank, trimmed, as a JSON object.
pub fn non_blank(fields: &[(&str, &String)]) -> Map<String, Value> {
    fields
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| ((*name).to_owned(), Value::from(value.trim())))
        .collect()
}

/// The errors of a form, by field (each field's messages joined), and those about no field of
/// it: the form's own.
#[derive(Debug, Default)]
pub struct Errors {
    fields: Vec<(&'static str, String)>,
    pub form: Vec<String>,
}

impl Errors {
    /// The errors the API named, each given to the field `field_of` says (its id in the form,
    /// and the words that say it is required), or to the form.
    pub fn of(
        errors: Vec<FieldError>,
        field_of: impl Fn(&str) -> Option<(&'static str, &'static str)>,
    ) -> Errors {
        let mut out = Errors::default();
        for error in errors {
            let Some((field, required)) = field_of(&error.field) else {
                out.form.push(error.message);
                continue;
            };
            // The API's words name the body ("is required for topic_suggestion"); a person
            // filling in a form needs the form's.
            let message = if error.message.starts_with("is required") {
                required.to_owned()
            } else {
                error.message
            };
            match out.fields.iter_mut().find(|(f, _)| *f == field) {
                Some((_, first)) => *first = format!("{first}; {message}"),
                None => out.fields.push((field, message)),
            }
        }
        out
    }

    /// The error of `field`, if any.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, message)| message.as_str())
    }

    pub fn has(&self, field: &str) -> bool {
        self.get(field).is_some()
    }

    /// The fields with an error, in the form's order (`form`: each field's name, the id of the
    /// element a link to it points at, and its label): for the summary at the top of the form.
    pub fn summary(
        &self,
        form: &[(&str, &'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str, String)> {
        form.iter()
            .filter_map(|(field, anchor, label)| {
                self.get(field).map(|e| (*anchor, *label, e.to_owned()))
            })
            .collect()
    }

    pub fn count(&self) -> usize {
        self.fields.len() + self.form.len()
    }
}

/// The feedback forms' fields: name, the id a link to it points at, and its label.
const FEEDBACK_FIELDS: [(&str, &str, &str); 4] = [
    ("rating", "rating-1", "Rating"),
    ("comment", "comment", "Comment"),
    ("author_name", "author_name", "Name"),
    ("author_email", "author_email", "E-mail"),
];

/// Which field of a feedback form an error of the API is about, and how it says it is required.
fn feedback_field(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "rating" => Some(("rating", "Please choose a rating from 1 to 5.")),
        "comment" => Some(("comment", "Please write your suggestion.")),
        "author_name" => Some(("author_name", "Please fill this in.")),
        "author_email" => Some(("author_email", "Please fill this in.")),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    css: &'a str,
    form: Form,
    fields: Fields,
    errors: Errors,
    error_count: usize,
    summary: Vec<(&'static str, &'static str, String)>,
    comment_max: usize,
}

/// Whether the request came from a page of this service: its `Origin` names this host, or,
/// without an `Origin`, its `Referer` is a page of this host. The host is the one the request
/// was sent to, or that of `LHS_PUBLIC_URL`. A cross-site form cannot forge either: browsers
/// set them, and send `Origin` on every cross-origin POST.
pub fn from_this_service(req: &HttpRequest, calendar: &CalendarSettings) -> bool {
    let host = req.connection_info().host().to_ascii_lowercase();
    let public = calendar.public_url.as_deref().map(authority_of);
    let ours = |url: &str| {
        let authority = authority_of(url);
        url.contains("://")
            && (authority == host || public.as_deref().is_some_and(|p| p == authority))
    };
    let text = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    match (text(header::ORIGIN), text(header::REFERER)) {
        (Some(origin), _) => ours(origin),
        (None, Some(referer)) => ours(referer),
        (None, None) => false,
    }
}

/// `host[:port]` of a URL, lower-cased.
fn authority_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

pub fn refused_cross_site() -> HttpResponse {
    message_page(
        StatusCode::FORBIDDEN,
        "Form refused",
        "This form can only be sent from this service's own pages. Please open the schedule \
         and send it from there.",
    )
}

pub fn see_other(location: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish();
    pages::page_headers(&mut response, HeaderValue::from_static(pages::PAGE_POLICY));
    response
}

/// Where a feedback form stands, to show it again with its errors.
struct Form {
    title: &'static str,
    action: String,
    back: String,
    back_label: &'static str,
    rating: bool,
}

/// What became of a sent form: 303 to `sent`, the form again with its errors, or an error page.
fn outcome(
    written: Result<HttpResponse, ApiError>,
    sent: &str,
    form: Form,
    fields: Fields,
) -> HttpResponse {
    match written {
        Ok(response) if response.status() == StatusCode::CREATED => see_other(sent),
        Ok(response) => {
            log::warn!("a form's write answered {}", response.status());
            error_page(&ApiError::Internal("unexpected answer".to_owned()))
        }
        Err(ApiError::Validation(errors)) => {
            let errors = Errors::of(errors, feedback_field);
            let page = FormPage {
                css: assets::stylesheet_path(),
                form,
                fields,
                error_count: errors.count(),
                summary: errors.summary(&FEEDBACK_FIELDS),
                errors,
                comment_max: COMMENT_MAX,
            };
            match page.render() {
                Ok(html) => pages::page(StatusCode::UNPROCESSABLE_ENTITY, html),
                Err(e) => error_page(&ApiError::Internal(format!("a form template failed: {e}"))),
            }
        }
        Err(error) => error_page(&error),
    }
}

/// Who sends a form, and whether they may: signed in to the pages, it is theirs, as with a
/// token; anyone else is limited as anonymous feedback is; a form from another site is refused.
async fn sender(
    ctx: &mut Ctx,
    req: &HttpRequest,
    auth: &Auth,
    calendar: &CalendarSettings,
) -> Result<Granted, HttpResponse> {
    session::sign_in(ctx, req, auth)
        .await
        .map_err(|error| error_page(&error))?;
    let granted = feedback::authorize_sending(ctx).map_err(|error| error_page(&error))?;
    if !from_this_service(req, calendar) {
        return Err(refused_cross_site());
    }
    Ok(granted)
}

/// Send a topic suggestion (the form on `/`)
pub async fn suggest(
    mut ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    calendar: web::Data<CalendarSettings>,
    body: web::Bytes,
) -> HttpResponse {
    let granted = match sender(&mut ctx, &req, &auth, &calendar).await {
        Ok(granted) => granted,
        Err(page) => return page,
    };
    let fields = Fields::read(&body);
    let written =
        feedback::create_checked(ctx, granted, fields.body("topic_suggestion", None)).await;
    let form = Form {
        title: "Suggest a topic",
        action: "/suggestions".to_owned(),
        back: "/".to_owned(),
        back_label: "Back to the schedule",
        rating: false,
    };
    outcome(written, "/suggestions/sent", form, fields)
}

/// Send session feedback on a round (the form on its page)
pub async fn rate(
    mut ctx: Ctx,
    req: HttpRequest,
    auth: web::Data<Auth>,
    calendar: web::Data<CalendarSettings>,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    // Signed in, the feedback is also their evaluation of the round (a claim waiting for it is
    // awarded).
    let granted = match sender(&mut ctx, &req, &auth, &calendar).await {
        Ok(granted) => granted,
        Err(page) => return page,
    };
    let Ok(id) = id.parse::<i32>() else {
        return error_page(&ApiError::NotFound("no such round".to_owned()));
    };
    let fields = Fields::read(&body);
    let written =
        feedback::create_checked(ctx, granted, fields.body("session_feedback", Some(id))).await;
    let sent = format!("/rounds/{id}/feedback/sent");
    let form = Form {
        title: "Rate this round",
        action: format!("/rounds/{id}/feedback"),
        back: format!("/rounds/{id}"),
        back_label: "Back to the round",
        rating: true,
    };
    outcome(written, &sent, form, fields)
}

/// What a person sees after sending a suggestion
pub async fn suggestion_sent() -> HttpResponse {
    message_page(
        StatusCode::OK,
        "Thank you",
        "Your topic suggestion was received. The organisers read every one.",
    )
}

/// What a person sees after rating a round
pub async fn feedback_sent() -> HttpResponse {
    message_page(
        StatusCode::OK,
        "Thank you",
        "Your feedback on this round was received.",
    )
}

//! The route table: every operation of the service, listed once. Start-up registers it with
//! actix (`startup`) and the OpenAPI builder reads its documentation from it
//! (`openapi`), so a route cannot be served without being documented.
//!
//! Each handler carries its method and path (`#[get("/rounds/{id}")]`) and its documentation
//! (`#[utoipa::path]`); this table only says which handlers exist, under which prefix, and in
//! which order actix tries them.

use actix_web::dev::HttpServiceFactory;
use actix_web::web;
use utoipa_actix_web::OpenApiFactory;

use crate::learning::{initiatives, measures, outcomes, pdsa, report};
pub use crate::platform::resource::API_PREFIX;
use crate::site::{assets, checkin as checkin_page, forms, me as me_page, pages, signin};
use crate::{
    credit::attendance, credit::attendees, credit::checkin, credit::transcripts,
    disclosure::readiness, disclosure::relationships, disclosure::reviews, disclosure::statements,
    integration::changes, integration::webhooks, operations::health, platform::me,
    schedule::calendar, schedule::confirmations, schedule::departments, schedule::feedback,
    schedule::materials, schedule::planning, schedule::rounds, schedule::series,
    schedule::speakers,
};

/// Something handlers are registered with: actix's service configuration, or the OpenAPI
/// builder's collector.
pub trait Router {
    fn service<H>(&mut self, handler: H) -> &mut Self
    where
        H: HttpServiceFactory + OpenApiFactory + 'static;
}

impl Router for web::ServiceConfig {
    fn service<H>(&mut self, handler: H) -> &mut Self
    where
        H: HttpServiceFactory + OpenApiFactory + 'static,
    {
        web::ServiceConfig::service(self, handler)
    }
}

/// The series' own pages and their forms, at the root (`LHS_SITE`): HTML for people, not part
/// of the API or its document.
pub fn site(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(pages::home))
        .route("/embed/upcoming", web::get().to(pages::embed_upcoming))
        .route("/rounds/{id}", web::get().to(pages::round))
        .route(
            "/rounds/{id}/materials/{material_id}/file",
            web::get().to(pages::material_file),
        )
        .route("/rounds/{id}/feedback", web::post().to(forms::rate))
        .route(
            "/rounds/{id}/feedback/sent",
            web::get().to(forms::feedback_sent),
        )
        .route("/checkin/{id}", web::get().to(checkin_page::form))
        .route("/checkin/{id}", web::post().to(checkin_page::check_in))
        .route("/checkin/{id}/done", web::get().to(checkin_page::done))
        .route("/signin", web::get().to(signin::start))
        .route(signin::CALLBACK, web::get().to(signin::callback))
        .route("/signout", web::post().to(signin::sign_out))
        .route("/me", web::get().to(me_page::me))
        .route(
            "/me/certificate/{year}",
            web::get().to(me_page::certificate),
        )
        .route("/suggestions", web::post().to(forms::suggest))
        .route("/suggestions/sent", web::get().to(forms::suggestion_sent))
        .route("/assets/{name}", web::get().to(assets::asset));
}

/// The probes, at the root.
pub fn probes<R: Router>(r: &mut R) {
    r.service(health::healthz).service(health::readyz);
}

/// The API, under [`API_PREFIX`]. Rounds first: actix tries routes in order, matching each
/// `{id}` pattern with a regular expression, and the schedule is what front-ends read most.
pub fn api<R: Router>(r: &mut R) {
    // The feeds and the attention list before `/rounds/{id}`, whose `{id}` would take `5.ics`
    // and `attention` too.
    r.service(calendar::rounds_feed)
        .service(calendar::round_event)
        .service(readiness::attention)
        .service(checkin::checkin_svg)
        .service(rounds::list_rounds)
        .service(rounds::create_round)
        .service(rounds::get_round)
        .service(rounds::replace_round)
        .service(rounds::patch_round)
        .service(materials::delete_round)
        .service(rounds::list_speaker_rounds)
        .service(confirmations::respond)
        .service(reviews::get_review)
        .service(reviews::put_review)
        .service(readiness::readiness)
        .service(statements::publish)
        .service(statements::get_statement)
        .service(materials::list_materials)
        .service(materials::create_material)
        .service(materials::get_material)
        .service(materials::replace_material)
        .service(materials::patch_material)
        .service(materials::delete_material)
        .service(materials::upload_file)
        .service(materials::download_file)
        .service(materials::delete_file)
        .service(checkin::get_checkin_code)
        .service(checkin::regenerate_checkin_code)
        .service(attendance::record_attendance)
        .service(attendance::list_attendance)
        .service(attendance::import_attendance)
        .service(attendance::get_attendance)
        .service(attendance::claim_credit)
        .service(attendance::void_attendance)
        .service(attendance::override_credit)
        .service(feedback::list_feedback)
        .service(feedback::create_feedback)
        .service(feedback::get_feedback)
        .service(feedback::triage_feedback)
        .service(feedback::delete_feedback)
        .service(feedback::list_round_feedback)
        .service(feedback::create_round_feedback)
        .service(feedback::round_feedback_summary)
        .service(speakers::list_speakers)
        .service(speakers::create_speaker)
        .service(speakers::get_speaker)
        .service(speakers::replace_speaker)
        .service(speakers::patch_speaker)
        .service(speakers::delete_speaker)
        .service(relationships::get_disclosure)
        .service(relationships::put_disclosure)
        .service(relationships::disclosure_history)
        .service(departments::list_departments)
        .service(departments::create_department)
        .service(departments::get_department)
        .service(departments::replace_department)
        .service(departments::patch_department)
        .service(departments::delete_department)
        .service(transcripts::series_report)
        .service(series::get_series)
        .service(series::replace_series)
        .service(series::patch_series)
        .service(planning::plan_series)
        .service(changes::change_feed)
        .service(changes::list_audit)
        .service(webhooks::create_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::get_webhook)
        .service(webhooks::patch_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::rotate_secret)
        .service(webhooks::list_deliveries)
        .service(webhooks::get_delivery)
        .service(webhooks::retry_delivery)
        .service(attendees::list_attendees)
        .service(attendees::create_attendee)
        .service(attendees::get_attendee)
        .service(attendees::replace_attendee)
        .service(attendees::patch_attendee)
        .service(attendees::delete_attendee)
        .service(transcripts::attendee_transcript)
        .service(attendees::get_my_attendee)
        .service(attendees::patch_my_attendee)
        .service(transcripts::my_transcript)
        .service(me::me);
    learning(r);
}

/// The learning loop: initiatives and their round links, PDSA cycles, measures with their
/// points and run charts, and what each round decided. Each feed or picture (`.ics`, `.svg`)
/// comes before the route whose last segment would take it.
fn learning<R: Router>(r: &mut R) {
    r.service(initiatives::list_initiatives)
        .service(initiatives::create_initiative)
        .service(initiatives::get_initiative)
        .service(initiatives::replace_initiative)
        .service(initiatives::patch_initiative)
        .service(initiatives::delete_initiative)
        .service(initiatives::link_round)
        .service(initiatives::unlink_round)
        .service(initiatives::list_round_initiatives)
        .service(report::initiative_report)
        .service(pdsa::list_pdsa_cycles)
        .service(pdsa::create_pdsa_cycle)
        .service(pdsa::get_pdsa_cycle)
        .service(pdsa::replace_pdsa_cycle)
        .service(pdsa::patch_pdsa_cycle)
        .service(pdsa::delete_pdsa_cycle)
        .service(measures::list_measures)
        .service(measures::create_measure)
        .service(measures::get_measure)
        .service(measures::replace_measure)
        .service(measures::patch_measure)
        .service(measures::delete_measure)
        .service(measures::list_points)
        .service(measures::upsert_points)
        .service(measures::delete_point)
        .service(measures::run_chart_svg)
        .service(measures::run_chart)
        .service(outcomes::list_round_outcomes)
        .service(outcomes::create_outcome)
        .service(outcomes::get_outcome)
        .service(outcomes::replace_outcome)
        .service(outcomes::patch_outcome)
        .service(outcomes::delete_outcome)
        .service(outcomes::carried_over)
        .service(outcomes::action_items_feed)
        .service(outcomes::list_action_items);
}

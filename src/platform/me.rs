//! `GET /me`: who the bearer token says the caller is, so that a front-end can decide what to
//! show. Nothing is looked up: the answer is the verified token's subject, name, e-mail address
//! and role.

use actix_web::{get, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::platform::auth::oidc::{EMAIL_MAX, NAME_MAX, SUBJECT_MAX};
use crate::platform::auth::Role;
use crate::platform::cache::Rendered;
use crate::platform::error::{ApiError, ReadErrors};
use crate::platform::resource::Ctx;

/// The caller, as the token says: every member is always present, `null` when the token has
/// no such claim.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "sub": "3f1c9a4e-0b7d-4b8e-9d55-1f2c3a4b5c6d",
    "name": "Jane Doe",
    "email": "jane.doe@example.org",
    "role": "organizer"
}))]
pub struct Me {
    /// The token's subject (`sub`): the person's stable id at the identity provider, recorded
    /// as `created_by` on what they change. `null` only for a token without one (some
    /// providers' machine-to-machine tokens).
    #[schema(required = true, max_length = 255)]
    pub sub: Option<String>,
    /// `name`, or `preferred_username` without one; `null` when the token has neither.
    #[schema(required = true, max_length = 300)]
    pub name: Option<String>,
    /// `email`, as the token gives it; `null` without one.
    #[schema(required = true, max_length = 320)]
    pub email: Option<String>,
    /// The highest role the token grants; `null` when it grants none (with
    /// `LHS_OIDC_DEFAULT_ROLE=none`, a person in no mapped group).
    #[schema(required = true)]
    pub role: Option<Role>,
}

// The limits the schema states are the ones the token checks keep.
const _: () = assert!(SUBJECT_MAX == 255 && NAME_MAX == 300 && EMAIL_MAX == 320);

/// Who the bearer token says the caller is
///
/// Any valid token will do, whatever its role; without one the answer is 401.
#[utoipa::path(
    tag = "me",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller, as the token says", body = Me), ReadErrors)
)]
#[get("/me")]
pub async fn me(ctx: Ctx) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let caller = &ctx.caller;
    let me = Me {
        sub: caller.subject.clone(),
        name: caller.name.clone(),
        email: caller.email.clone(),
        role: caller.role(),
    };
    ctx.answer(granted, Rendered::json(&me)?)
}

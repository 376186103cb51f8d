//! Attendees: the people who attend rounds, as a CME provider records its learners. Private:
//! organizers see them all, a signed-in person their own (`/me/attendee`); nothing public
//! shows them.
//!
//! A signed-in person is matched to their attendee by the token's `sub`, then by its e-mail
//! address (only an attendee with no `sub` yet, which then takes the token's); one is made on
//! their first check-in.

use actix_web::{get, patch, HttpResponse};
use diesel::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::platform::auth::{Caller, Role};
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Email, Id, Line, Name, Text};
use crate::platform::http::JsonBody;
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{found, Allowed, Audit, Author, Ctx, Keyed, New, Resource, Update};
use crate::platform::schema::attendees;
use crate::platform::validate::{Doc, ExistingIds, Input};

pub type FullName = Name<300>;
/// The identity provider's subject (the token's `sub`).
pub type AttendeeSub = Text<255>;

crate::text_enum! {
    /// What the attendee is: physicians are counted apart from other learners in the yearly
    /// report (ACCME's PARS).
    pub enum Profession {
        Physician = "physician",
        PhysicianAssistant = "physician_assistant",
        NursePractitioner = "nurse_practitioner",
        Nurse = "nurse",
        Pharmacist = "pharmacist",
        Psychologist = "psychologist",
        Other = "other",
        Student = "student",
    }
}

/// A National Provider Identifier: 10 digits, the last a check digit (see [`npi_is_valid`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Npi(String);

impl Npi {
    pub fn stored(value: impl Into<String>) -> Npi {
        Npi(value.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for Npi {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for Npi {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Npi(String::deserialize(deserializer)?))
    }
}
impl PartialSchema for Npi {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9]{10}$"))
            .min_length(Some(10))
            .max_length(Some(10))
            .examples(["1234567893"])
            .into()
    }
}
impl ToSchema for Npi {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Npi")
    }
}

/// The NPI standard's check: the Luhn algorithm over "80840" followed by the first nine digits
/// (the card issuer prefix of health applications), whose check digit must be the tenth. Written
/// here: it is ten lines, and the crates that do Luhn know nothing of the prefix.
pub fn npi_is_valid(npi: &str) -> bool {
    let digits: Vec<u32> = npi.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 10 || npi.len() != 10 {
        return false;
    }
    let payload = [8, 0, 8, 4, 0]
        .into_iter()
        .chain(digits[..9].iter().copied());
    // Luhn: from the rightmost payload digit leftwards, every other digit doubled (the check
    // digit, appended on the right, is the one not doubled).
    let sum: u32 = payload
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match i % 2 {
            0 if d * 2 > 9 => d * 2 - 9,
            0 => d * 2,
            _ => d,
        })
        .sum();
    (10 - sum % 10) % 10 == digits[9]
}

/// An attendee, as organizers and the person see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "full_name": "Dr. Jane Doe", "email": "jane.doe@example.org",
    "profession": "physician", "npi": "1234567893", "sub": null,
    "created_at": "2019-01-17T17:05:00Z", "updated_at": "2019-01-17T17:05:00Z"
}))]
pub struct Attendee {
    pub id: Id,
    pub full_name: FullName,
    /// Unique, ignoring case.
    pub email: Email,
    pub profession: Profession,
    pub npi: Option<Npi>,
    /// The identity provider's subject; unique when set.
    pub sub: Option<AttendeeSub>,
    #[serde(flatten)]
    pub audit: Audit,
}

crate::record!(Attendee);

/// An attendee, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "full_name": "Dr. Jane Doe", "email": "jane.doe@example.org", "profession": "physician",
    "npi": "1234567893"
}))]
pub struct AttendeeInput {
    pub full_name: FullName,
    /// Unique, ignoring case.
    pub email: Email,
    pub profession: Profession,
    /// 10 digits with the NPI check digit.
    #[serde(default)]
    pub npi: Option<Npi>,
    /// The identity provider's subject, unique when set: a signed-in person with this `sub`
    /// is this attendee.
    #[serde(default)]
    pub sub: Option<AttendeeSub>,
}

/// The NPI's check digit, which JSON Schema cannot state.
fn npi_rules(doc: &Doc<'_>) -> Vec<FieldError> {
    match doc.get::<String>("npi") {
        Some(npi) if !npi_is_valid(&npi) => vec![FieldError::new(
            "npi",
            "is not a valid NPI: its check digit (the NPI standard's Luhn check over 80840 and \
             the first nine digits) does not match",
        )],
        _ => Vec::new(),
    }
}

impl Input for AttendeeInput {
    /// The NPI's check digit.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        npi_rules(doc)
    }
}

/// What a person may change of their own attendee (`PATCH /me/attendee`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"profession": "physician", "npi": "1234567893"}))]
pub struct MyAttendeeInput {
    pub profession: Profession,
    /// 10 digits with the NPI check digit; `null` clears it.
    #[serde(default)]
    pub npi: Option<Npi>,
}

impl Input for MyAttendeeInput {
    /// The NPI's check digit.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        npi_rules(doc)
    }
}

/// The filter of the attendee list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttendeeFilter {
    /// Words the name or e-mail address contains, ignoring case.
    pub q: Option<Line<200>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = attendees)]
pub(crate) struct AttendeeRow {
    id: i32,
    full_name: String,
    email: String,
    profession: Profession,
    npi: Option<String>,
    sub: Option<String>,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

impl From<AttendeeRow> for Attendee {
    fn from(row: AttendeeRow) -> Self {
        Attendee {
            id: Id(row.id),
            full_name: Name::stored(row.full_name),
            email: Email::stored(row.email),
            profession: row.profession,
            npi: row.npi.map(Npi::stored),
            sub: row.sub.map(Text::stored),
            audit: crate::audit!(row),
        }
    }
}

/// Uniqueness of e-mail addresses ignores case in every script, which SQLite's `lower()`
/// cannot do.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn search_text(full_name: &str, email: &str) -> String {
    format!("{} {}", full_name.to_lowercase(), email.to_lowercase())
}

/// The columns a body writes, for `INSERT` and `UPDATE` alike.
macro_rules! written_columns {
    ($input:expr) => {
        (
            attendees::full_name.eq($input.full_name.as_str()),
            attendees::name_key.eq($input.full_name.as_str().to_lowercase()),
            attendees::email.eq($input.email.as_str()),
            attendees::email_key.eq(email_key($input.email.as_str())),
            attendees::profession.eq($input.profession),
            attendees::npi.eq($input.npi.as_ref().map(Npi::as_str)),
            attendees::sub.eq(Text::non_blank($input.sub.as_ref())),
            attendees::search_text.eq(search_text(
                $input.full_name.as_str(),
                $input.email.as_str(),
            )),
        )
    };
}

fn filtered(
    filter: &AttendeeFilter,
) -> attendees::BoxedQuery<'static, crate::platform::db::MultiBackend> {
    let mut query = attendees::table.into_boxed();
    if let Some(q) = &filter.q {
        for word in q.as_str().split_whitespace() {
            query = query
                .filter(attendees::search_text.like(db::contains_pattern(&word.to_lowercase())));
        }
    }
    query
}

/// Attendees: what [`resource`] needs to serve them.
pub struct Attendees;

impl Resource for Attendees {
    crate::table_resource! {
        name "attendee" in "attendees", schedule false, read Allowed::Role(Role::Organizer),
        write Allowed::Role(Role::Organizer);
        Attendee from AttendeeRow in attendees, input AttendeeInput, change AttendeeInput;
        list AttendeeFilter, by filtered, (attendees::name_key, attendees::id);
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Attendee, ApiError> {
        ensure_unique(conn, &new.input, None)?;
        let values = (
            written_columns!(new.input),
            crate::created_columns!(attendees, new.actor),
        );
        Ok(crate::insert_row!(conn, attendees, AttendeeRow, values)?.into())
    }

    fn change_of(record: &Attendee) -> AttendeeInput {
        AttendeeInput {
            full_name: record.full_name.clone(),
            email: record.email.clone(),
            profession: record.profession,
            npi: record.npi.clone(),
            sub: record.sub.clone(),
        }
    }

    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Attendee>, ApiError> {
        let (id, input) = (update.current.id.0, &update.change);
        ensure_unique(conn, input, Some(id))?;
        let changes = (
            written_columns!(input),
            crate::updated_columns!(attendees, update.actor),
        );
        let row = crate::update_row!(conn, attendees, AttendeeRow, id, update.expected, changes)?;
        Ok(row.map(Attendee::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        found(Attendees::find(conn, id)?, Attendees::NAME, id)?;
        let attendance = crate::count_rows!(conn, attendance, attendee_id, id)?;
        db::refuse_while_used(
            &format!("attendee {id} has"),
            &[(attendance, "attendance record")],
            "attendance is never deleted (void a record that was a mistake instead)",
        )?;
        Ok(crate::delete_row!(conn, attendees, id, expected)? == 1)
    }
}

/// 409 when another attendee has the e-mail address (ignoring case) or the `sub`.
fn ensure_unique(
    conn: &mut DbConnection,
    input: &AttendeeInput,
    except: Option<i32>,
) -> Result<(), ApiError> {
    let holder = attendees::table
        .filter(attendees::email_key.eq(email_key(input.email.as_str())))
        .select(attendees::id)
        .first::<i32>(conn)
        .optional()?;
    if let Some(id) = holder.filter(|id| Some(*id) != except) {
        return Err(ApiError::Conflict(format!(
            "attendee {id} already has this e-mail address (addresses are unique, ignoring case)"
        )));
    }
    if let Some(sub) = Text::non_blank(input.sub.as_ref()) {
        let holder = attendees::table
            .filter(attendees::sub.eq(sub))
            .select(attendees::id)
            .first::<i32>(conn)
            .optional()?;
        if let Some(id) = holder.filter(|id| Some(*id) != except) {
            return Err(ApiError::Conflict(format!(
                "attendee {id} already has this sub (a person is one attendee)"
            )));
        }
    }
    Ok(())
}

/// Which of the ids name an attendee.
pub const EXISTING: ExistingIds = crate::existing_ids!(attendees);

// ---- matching people -----------------------------------------------------------------------

/// Who someone checking in says they are, when no token says it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "full_name": "Jane Doe", "email": "jane.doe@example.org", "profession": "nurse"
}))]
pub struct AttendeeDetails {
    pub full_name: FullName,
    pub email: Email,
    pub profession: Profession,
}

fn by_email(conn: &mut DbConnection, email: &str) -> Result<Option<Attendee>, ApiError> {
    Ok(crate::on_backend!(conn, |c| attendees::table
        .filter(attendees::email_key.eq(email_key(email)))
        .select(AttendeeRow::as_select())
        .first::<AttendeeRow>(c)
        .optional())?
    .map(Attendee::from))
}

fn by_sub(conn: &mut DbConnection, sub: &str) -> Result<Option<Attendee>, ApiError> {
    Ok(crate::on_backend!(conn, |c| attendees::table
        .filter(attendees::sub.eq(sub))
        .select(AttendeeRow::as_select())
        .first::<AttendeeRow>(c)
        .optional())?
    .map(Attendee::from))
}

/// The signed-in caller's attendee, matched by `sub`, then by e-mail address (an attendee with
/// no `sub` yet takes the caller's, recorded in the change log); `None` if neither matches.
pub fn of_caller(
    conn: &mut DbConnection,
    caller: &Caller,
    author: Author<'_>,
) -> Result<Option<Attendee>, ApiError> {
    if let Some(sub) = caller.subject.as_deref() {
        if let Some(found) = by_sub(conn, sub)? {
            return Ok(Some(found));
        }
    }
    let Some(email) = caller.email.as_deref() else {
        return Ok(None);
    };
    let Some(found) = by_email(conn, email)? else {
        return Ok(None);
    };
    match (found.sub.as_ref(), caller.subject.as_deref()) {
        (None, Some(sub)) => {
            let row =
                crate::on_backend!(conn, |c| diesel::update(attendees::table.find(found.id.0))
                    .set((
                        attendees::sub.eq(sub),
                        crate::updated_columns!(attendees, author.actor),
                    ))
                    .returning(AttendeeRow::as_returning())
                    .get_result::<AttendeeRow>(c))?;
            let linked = Attendee::from(row);
            author.record(
                conn,
                Attendees::NAME,
                linked.id(),
                Some(&found),
                Some(&linked),
            )?;
            Ok(Some(linked))
        }
        // The address is another signed-in person's: not this caller's attendee.
        (Some(_), Some(_)) => Ok(None),
        _ => Ok(Some(found)),
    }
}

/// The attendee with `details`' e-mail address, or a new one made from them (and the caller's
/// `sub`), recorded in the change log. Concurrent first check-ins of one person make one
/// attendee: the unique e-mail key decides, and the others read the winner's.
pub fn find_or_create(
    conn: &mut DbConnection,
    details: &AttendeeDetails,
    sub: Option<&str>,
    author: Author<'_>,
) -> Result<(Attendee, bool), ApiError> {
    if let Some(existing) = by_email(conn, details.email.as_str())? {
        return Ok((existing, false));
    }
    let input = AttendeeInput {
        full_name: details.full_name.clone(),
        email: details.email.clone(),
        profession: details.profession,
        npi: None,
        sub: sub.map(Text::stored),
    };
    let values = (
        written_columns!(input),
        crate::created_columns!(attendees, author.actor),
    );
    let inserted = crate::on_backend!(conn, |c| diesel::insert_into(attendees::table)
        .values(values.clone())
        .on_conflict_do_nothing()
        .returning(AttendeeRow::as_returning())
        .get_result::<AttendeeRow>(c)
        .optional())?;
    match inserted {
        Some(row) => {
            let attendee = Attendee::from(row);
            author.record(conn, Attendees::NAME, attendee.id(), None, Some(&attendee))?;
            Ok((attendee, true))
        }
        None => match by_email(conn, details.email.as_str())? {
            Some(existing) => Ok((existing, false)),
            // The conflict was on `sub`: the person is already an attendee by another address.
            None => match sub {
                Some(sub) => Ok((
                    by_sub(conn, sub)?.ok_or_else(|| {
                        ApiError::Conflict("the attendee changed meanwhile; retry".to_owned())
                    })?,
                    false,
                )),
                None => Err(ApiError::Conflict(
                    "the attendee changed meanwhile; retry".to_owned(),
                )),
            },
        },
    }
}

/// The caller's own attendee, or 404 saying how one is made.
fn mine(
    conn: &mut DbConnection,
    caller: &Caller,
    author: Author<'_>,
) -> Result<Attendee, ApiError> {
    of_caller(conn, caller, author)?.ok_or_else(|| {
        ApiError::NotFound(
            "you are not an attendee yet: one is made when you first check in to a round"
                .to_owned(),
        )
    })
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Attendees, one = "attendee", many = "attendees", tag = "attendance",
    record = Attendee, input = AttendeeInput, change = AttendeeInput,
    read = [("bearer" = ["organizer", "admin"])], write = [("bearer" = ["organizer", "admin"])];
    list list_attendees "/attendees" "List attendees, by name" [AttendeeFilter, Paging];
    create create_attendee "/attendees" "Create an attendee";
    get get_attendee "/attendees/{id}" "Get an attendee";
    replace replace_attendee "/attendees/{id}" "Replace an attendee";
    patch patch_attendee "/attendees/{id}" "Change some fields of an attendee (JSON merge patch)";
    delete delete_attendee "/attendees/{id}" "Delete an attendee who has no attendance";
}

/// The caller's own attendee
///
/// Matched by the token's `sub`, then by its e-mail address. 404 until the person first checks
/// in (or an organizer makes their attendee).
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's attendee", body = Attendee), ReadErrors)
)]
#[get("/me/attendee")]
pub async fn get_my_attendee(ctx: Ctx) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let caller = ctx.caller.clone();
    let attendee = ctx
        .write(granted, move |conn, author| mine(conn, &caller, author))
        .await?;
    let etag = crate::platform::http::record_etag(attendee.version(), true);
    ctx.answer(granted, Rendered::json(&attendee)?.with_etag(etag))
}

/// Change the caller's profession and NPI
///
/// The only fields a person may change of their own attendee; the rest is an organizer's.
#[utoipa::path(
    tag = "attendance",
    security(("bearer" = [])),
    request_body(content = MyAttendeeInput, content_type = "application/merge-patch+json",
        description = "Fields to change; `null` clears the NPI"),
    responses((status = 200, description = "The caller's attendee as changed", body = Attendee), WriteErrors)
)]
#[patch("/me/attendee")]
pub async fn patch_my_attendee(ctx: Ctx, body: JsonBody) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize_with(ctx.caller.require_signed_in())?;
    let patch = body.value()?;
    let caller = ctx.caller.clone();
    let validators = ctx.validators.clone();
    let attendee = ctx
        .write(granted, move |conn, author| {
            let current = mine(conn, &caller, author)?;
            let mut document = serde_json::to_value(MyAttendeeInput {
                profession: current.profession,
                npi: current.npi.clone(),
            })?;
            crate::platform::validate::merge_patch(&mut document, &patch);
            let change: MyAttendeeInput =
                validators.body::<MyAttendeeInput>(document).into_result()?;
            let row = crate::on_backend!(conn, |c| diesel::update(
                attendees::table.find(current.id.0)
            )
            .set((
                attendees::profession.eq(change.profession),
                attendees::npi.eq(change.npi.as_ref().map(Npi::as_str)),
                crate::updated_columns!(attendees, author.actor),
            ))
            .returning(AttendeeRow::as_returning())
            .get_result::<AttendeeRow>(c))?;
            let changed = Attendee::from(row);
            author.record(
                conn,
                Attendees::NAME,
                changed.id(),
                Some(&current),
                Some(&changed),
            )?;
            Ok(changed)
        })
        .await?;
    let etag = crate::platform::http::record_etag(attendee.version(), true);
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::ETAG, etag))
        .json(attendee))
}

#[cfg(test)]
mod tests {
    use super::npi_is_valid;

    #[test]
    fn npis_have_the_standards_check_digit() {
        // Published valid NPIs: CMS's example (1234567893) and NPIs listed in the NPPES registry.
        for valid in ["1234567893", "1245319599", "1003000126", "1467560003"] {
            assert!(npi_is_valid(valid), "{valid}");
        }
        for invalid in [
            "1234567890",
            "1234567894",
            "1245319598",
            "123456789",
            "12345678931",
            "12345678a3",
            "",
        ] {
            assert!(!npi_is_valid(invalid), "{invalid}");
        }
    }
}

//! Speakers: the people who present at rounds, with their credentials (MD, MPH, PhD...).

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::platform::auth::{Role, Subject};
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::ApiError;
use crate::platform::fields::{Credential, DepartmentRef, Email, Id, Line, Name, Text};
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{found, Allowed, Audit, New, Resource, Update};
use crate::platform::schema::speakers;
use crate::platform::validate::{ExistingIds, Input};

pub type FullName = Name<200>;
pub type JobTitle = Text<200>;
pub type Bio = Text<10000>;
/// The name with every credential: "Tara Lagu, MD, MPH" (the name, and ten credentials of at
/// most 20 characters, each after ", ").
pub type DisplayName = Text<420>;
/// A search term.
pub type Search = Line<200>;

crate::list_type!(
    /// Credentials such as `["MD", "MPH"]`, in the order they are written after the name; each
    /// once.
    pub Credentials(Credential),
    max = 10,
    unique = true
);

/// A speaker, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 7, "full_name": "Tara Lagu", "credentials": ["MD", "MPH"], "display_name": "Tara Lagu, MD, MPH",
    "title": null, "email": null, "sub": null, "department_id": 5, "bio": null,
    "created_at": "2019-01-02T15:00:00Z", "updated_at": "2019-01-02T15:00:00Z"
}))]
pub struct Speaker {
    pub id: Id,
    pub full_name: FullName,
    pub credentials: Credentials,
    /// The name with its credentials, as printed on the schedule.
    pub display_name: DisplayName,
    pub title: Option<JobTitle>,
    /// Shown to organizers and admins only (left out for everyone else).
    // Outer `None`: hidden from this caller; `Some(None)`: the speaker has no address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Option<Email>>,
    /// The identity provider's subject (the token's `sub`) of this speaker, who may then confirm
    /// or decline their own places on rounds; shown to organizers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<Option<Subject>>,
    pub department_id: Option<Id>,
    pub bio: Option<Bio>,
    #[serde(flatten)]
    pub audit: Audit,
}

/// A speaker, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "full_name": "Peter Lindenauer", "credentials": ["MD", "MSc"], "department_id": 5
}))]
pub struct SpeakerInput {
    pub full_name: FullName,
    #[serde(default)]
    pub credentials: Credentials,
    /// Job title, such as "Chief Quality Officer".
    pub title: Option<JobTitle>,
    pub email: Option<Email>,
    /// The identity provider's subject (`sub`) of the speaker, so that they may confirm or
    /// decline their own places when signed in; unique.
    pub sub: Option<Subject>,
    pub department_id: Option<DepartmentRef>,
    pub bio: Option<Bio>,
}

impl Input for SpeakerInput {}

/// "Tara Lagu, MD, MPH".
pub fn display_name(full_name: &str, credentials: &Credentials) -> String {
    std::iter::once(full_name)
        .chain(credentials.0.iter().map(Credential::as_str))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Credentials are stored as a JSON array in a text column (portable to both backends).
pub fn decode_credentials(stored: &str) -> Credentials {
    Credentials(
        serde_json::from_str::<Vec<String>>(stored)
            .unwrap_or_default()
            .into_iter()
            .map(Credential::stored)
            .collect(),
    )
}

fn encode_credentials(credentials: &Credentials) -> String {
    serde_json::to_string(credentials).unwrap_or_else(|_| "[]".to_owned())
}

fn search_text(input: &SpeakerInput) -> String {
    let mut text = input.full_name.as_str().to_lowercase();
    let title = input.title.as_ref().map(Text::as_str);
    for part in input
        .credentials
        .0
        .iter()
        .map(Credential::as_str)
        .chain(title)
    {
        text.push(' ');
        text.push_str(&part.to_lowercase());
    }
    text
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = speakers)]
struct SpeakerRow {
    id: i32,
    full_name: String,
    credentials: String,
    title: Option<String>,
    email: Option<String>,
    department_id: Option<i32>,
    bio: Option<String>,
    sub: Option<String>,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

impl From<SpeakerRow> for Speaker {
    fn from(row: SpeakerRow) -> Self {
        let credentials = decode_credentials(&row.credentials);
        Speaker {
            id: Id(row.id),
            display_name: Text::stored(display_name(&row.full_name, &credentials)),
            full_name: Name::stored(row.full_name),
            credentials,
            title: row.title.map(Text::stored),
            email: Some(row.email.map(Email::stored)),
            sub: Some(row.sub.map(Text::stored)),
            department_id: row.department_id.map(Id),
            bio: row.bio.map(Text::stored),
            audit: crate::audit!(row),
        }
    }
}

/// Filters of the speaker list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpeakerFilter {
    /// Text in the name, credentials or job title, ignoring case.
    pub q: Option<Search>,
    /// Only speakers of this department.
    pub department_id: Option<Id>,
}

crate::record!(Speaker, hides email, sub);

// ---- persistence -------------------------------------------------------------------------

fn filtered(filter: &SpeakerFilter) -> speakers::BoxedQuery<'static, MultiBackend> {
    let mut query = speakers::table.into_boxed();
    if let Some(q) = filter.q.as_ref().filter(|q| !q.as_str().is_empty()) {
        query = query.filter(
            speakers::search_text
                .like(db::contains_pattern(&q.as_str().to_lowercase()))
                .escape('\\'),
        );
    }
    if let Some(department_id) = filter.department_id {
        query = query.filter(speakers::department_id.eq(department_id.0));
    }
    query
}

/// The columns a speaker's input sets, for an insert and an update alike.
type Columns<'a> = (
    diesel::dsl::Eq<speakers::full_name, &'a str>,
    diesel::dsl::Eq<speakers::credentials, String>,
    diesel::dsl::Eq<speakers::title, Option<&'a str>>,
    diesel::dsl::Eq<speakers::email, Option<&'a str>>,
    diesel::dsl::Eq<speakers::department_id, Option<i32>>,
    diesel::dsl::Eq<speakers::bio, Option<&'a str>>,
    diesel::dsl::Eq<speakers::search_text, String>,
    diesel::dsl::Eq<speakers::sub, Option<&'a str>>,
);

fn columns(input: &SpeakerInput) -> Columns<'_> {
    (
        speakers::full_name.eq(input.full_name.as_str()),
        speakers::credentials.eq(encode_credentials(&input.credentials)),
        speakers::title.eq(Text::non_blank(input.title.as_ref())),
        speakers::email.eq(input.email.as_ref().map(Email::as_str)),
        speakers::department_id.eq(input.department_id.map(|d| d.0)),
        speakers::bio.eq(Text::non_blank(input.bio.as_ref())),
        speakers::search_text.eq(search_text(input)),
        speakers::sub.eq(Text::non_blank(input.sub.as_ref())),
    )
}

/// Speakers: what [`resource`] needs to serve them.
pub struct Speakers;

impl Resource for Speakers {
    crate::table_resource! {
        name "speaker" in "speakers", schedule true, write Allowed::Role(Role::Organizer);
        Speaker from SpeakerRow in speakers, input SpeakerInput, change SpeakerInput;
        list SpeakerFilter, by filtered, (speakers::search_text, speakers::id);
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Speaker, ApiError> {
        ensure_sub_is_free(conn, new.input.sub.as_ref(), None)?;
        let values = (
            columns(&new.input),
            crate::created_columns!(speakers, new.actor),
        );
        Ok(crate::insert_row!(conn, speakers, SpeakerRow, values)?.into())
    }

    fn change_of(record: &Speaker) -> SpeakerInput {
        SpeakerInput {
            full_name: record.full_name.clone(),
            credentials: record.credentials.clone(),
            title: record.title.clone(),
            email: record.email.clone().flatten(),
            sub: record.sub.clone().flatten(),
            department_id: record.department_id.map(|d| DepartmentRef(d.0)),
            bio: record.bio.clone(),
        }
    }

    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Speaker>, ApiError> {
        ensure_sub_is_free(conn, update.change.sub.as_ref(), Some(update.current.id.0))?;
        let changes = (
            columns(&update.change),
            crate::updated_columns!(speakers, update.actor),
        );
        let id = update.current.id.0;
        let row = crate::update_row!(conn, speakers, SpeakerRow, id, update.expected, changes)?;
        Ok(row.map(Speaker::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        found(Speakers::find(conn, id)?, Speakers::NAME, id)?;
        let rounds = crate::count_rows!(conn, round_speakers, speaker_id, id)?;
        // Initiative teams and action items link people to speakers too (`learning`).
        let teams = crate::count_rows!(conn, initiative_team, speaker_id, Some(id))?;
        let owners = crate::count_rows!(conn, round_outcomes, owner_speaker_id, Some(id))?;
        db::refuse_while_used(
            &format!("speaker {id} is still on"),
            &[
                (rounds, "round"),
                (teams, "initiative team"),
                (owners, "owned action item"),
            ],
            "take them off first",
        )?;
        Ok(crate::delete_row!(conn, speakers, id, expected)? == 1)
    }
}

/// 409 when another speaker has this `sub` already: a sign-in names one speaker.
fn ensure_sub_is_free(
    conn: &mut DbConnection,
    sub: Option<&Subject>,
    except: Option<i32>,
) -> Result<(), ApiError> {
    let Some(sub) = Text::non_blank(sub) else {
        return Ok(());
    };
    match find_by_sub(conn, sub)? {
        Some(id) if Some(id) != except => Err(ApiError::Conflict(format!(
            "speaker {id} already has this sub: one speaker per sign-in"
        ))),
        _ => Ok(()),
    }
}

/// The speaker whose `sub` is the identity provider's subject `sub`, if any.
pub fn find_by_sub(conn: &mut DbConnection, sub: &str) -> Result<Option<i32>, ApiError> {
    Ok(speakers::table
        .filter(speakers::sub.eq(sub))
        .select(speakers::id)
        .first::<i32>(conn)
        .optional()?)
}

/// The speaker with this exact name, if any (the demo loader reuses people across rounds).
pub fn find_by_name(conn: &mut DbConnection, full_name: &str) -> Result<Option<i32>, ApiError> {
    Ok(speakers::table
        .filter(speakers::full_name.eq(full_name))
        .order(speakers::id)
        .select(speakers::id)
        .first::<i32>(conn)
        .optional()?)
}

/// Whether a speaker exists, without loading them.
pub fn exists(conn: &mut DbConnection, id: i32) -> Result<bool, ApiError> {
    Ok(crate::on_backend!(conn, |c| speakers::table
        .find(id)
        .select(speakers::id)
        .first::<i32>(c)
        .optional())?
    .is_some())
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Speakers, one = "speaker", many = "speakers", tag = "speakers",
    record = Speaker, input = SpeakerInput, change = SpeakerInput,
    read = [(), ("bearer" = [])], write = [("bearer" = ["organizer", "admin"])];
    list list_speakers "/speakers" "List speakers, by name" [SpeakerFilter, Paging];
    create create_speaker "/speakers" "Create a speaker";
    get get_speaker "/speakers/{id}" "Get a speaker";
    replace replace_speaker "/speakers/{id}" "Replace a speaker";
    patch patch_speaker "/speakers/{id}" "Change some fields of a speaker (JSON merge patch)";
    delete delete_speaker "/speakers/{id}" "Delete a speaker who is on no round";
}

/// Which of the ids name a speaker.
pub const EXISTING: ExistingIds = crate::existing_ids!(speakers);

//! Speakers: the people who present at rounds, with their credentials (MD, MPH, PhD...).

use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Caller, Role, Visible};
use crate::cache::{Key, ReadCache, Rendered};
use crate::db::{self, Database, DbConnection};
use crate::error::ApiError;
use crate::input::{merge_patch, Checked, ObjectReader, QueryReader, RefKind};
use crate::openapi::{ReadErrors, WriteErrors};
use crate::pagination::{Page, Paging};
use crate::rounds::{self, Round, RoundFilter};
use crate::schema::{round_speakers, speakers};

pub const NAME_MAX: usize = 200;
pub const CREDENTIAL_MAX: usize = 20;
pub const CREDENTIALS_MAX_ITEMS: usize = 10;
pub const TITLE_MAX: usize = 200;
pub const BIO_MAX: usize = 10_000;

/// A speaker, as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 7, "full_name": "Tara Lagu", "credentials": ["MD", "MPH"], "display_name": "Tara Lagu, MD, MPH",
    "title": null, "email": null, "department_id": 5, "bio": null,
    "created_at": "2019-01-02T15:00:00Z", "updated_at": "2019-01-02T15:00:00Z"
}))]
pub struct Speaker {
    pub id: i32,
    pub full_name: String,
    /// In the order they are written after the name.
    pub credentials: Vec<String>,
    /// The name with its credentials, as printed on the schedule.
    pub display_name: String,
    pub title: Option<String>,
    /// Shown to organisers and admins only (left out for everyone else).
    // Outer `None`: hidden from this caller; `Some(None)`: the speaker has no address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = "email")]
    pub email: Option<Option<String>>,
    pub department_id: Option<i32>,
    pub bio: Option<String>,
    /// The token subject that created it; shown to organisers and admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub created_by: Option<String>,
    /// The token subject that last changed it; shown to organisers and admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub updated_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One credential, such as `MD`, `MPH` or `PhD`.
#[derive(ToSchema)]
#[schema(
    min_length = 1,
    max_length = 20,
    pattern = r"^[^,\u0000-\u001F\u007F-\u009F]*[^,\s\u0000-\u001F\u007F-\u009F][^,\u0000-\u001F\u007F-\u009F]*$",
    example = "MPH"
)]
#[allow(dead_code)] // documents the items of `credentials`
pub struct Credential(String);

/// A speaker, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "full_name": "Peter Lindenauer", "credentials": ["MD", "MSc"], "department_id": 5
}))]
pub struct SpeakerInput {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub full_name: String,
    /// Such as `["MD", "MPH"]`; no duplicates, no commas.
    #[serde(default)]
    #[schema(max_items = 10, value_type = BTreeSet<Credential>)]
    pub credentials: Vec<String>,
    /// Job title, such as "Chief Quality Officer".
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub title: Option<String>,
    #[schema(format = "email", max_length = 254)]
    pub email: Option<String>,
    #[schema(minimum = 1, maximum = 2147483647)]
    pub department_id: Option<i32>,
    #[schema(
        max_length = 10000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub bio: Option<String>,
}

impl SpeakerInput {
    pub fn read(body: Value) -> Checked<SpeakerInput> {
        let mut r = ObjectReader::new(body);
        let full_name = r.required_text("full_name", NAME_MAX);
        let credentials = read_credentials(&mut r);
        let input = SpeakerInput {
            full_name,
            credentials,
            title: r.text("title", TITLE_MAX),
            email: r.email("email"),
            department_id: r.reference("department_id", RefKind::Department),
            bio: r.text("bio", BIO_MAX),
        };
        r.finish(input)
    }
}

fn read_credentials(r: &mut ObjectReader) -> Vec<String> {
    let items = r.array("credentials", CREDENTIALS_MAX_ITEMS);
    let mut credentials: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let field = format!("credentials[{i}]");
        match item.as_str().map(str::trim) {
            Some("") => r.error(&field, "must not be blank"),
            Some(c) if c.chars().count() > CREDENTIAL_MAX => r.error(
                &field,
                format!("must be at most {CREDENTIAL_MAX} characters"),
            ),
            Some(c) if c.chars().any(char::is_control) => {
                r.error(&field, "must not contain control characters")
            }
            Some(c) if c.contains(',') => r.error(
                &field,
                "must not contain a comma: give each credential separately",
            ),
            Some(c) if credentials.iter().any(|seen| seen == c) => {
                r.error(&field, format!("{c} is listed twice"))
            }
            Some(c) => credentials.push(c.to_owned()),
            None => r.error(&field, "must be a string"),
        }
    }
    credentials
}

impl From<Speaker> for SpeakerInput {
    fn from(s: Speaker) -> Self {
        SpeakerInput {
            full_name: s.full_name,
            credentials: s.credentials,
            title: s.title,
            email: s.email.flatten(),
            department_id: s.department_id,
            bio: s.bio,
        }
    }
}

/// "Tara Lagu, MD, MPH".
pub fn display_name(full_name: &str, credentials: &[String]) -> String {
    std::iter::once(full_name)
        .chain(credentials.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Credentials are stored as a JSON array in a text column (portable to both backends).
pub fn decode_credentials(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_default()
}

fn encode_credentials(credentials: &[String]) -> String {
    serde_json::to_string(credentials).unwrap_or_else(|_| "[]".to_owned())
}

fn search_text(input: &SpeakerInput) -> String {
    let mut text = input.full_name.to_lowercase();
    for part in input.credentials.iter().chain(input.title.iter()) {
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
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
}

impl From<SpeakerRow> for Speaker {
    fn from(row: SpeakerRow) -> Self {
        let credentials = decode_credentials(&row.credentials);
        Speaker {
            id: row.id,
            display_name: display_name(&row.full_name, &credentials),
            full_name: row.full_name,
            credentials,
            title: row.title,
            email: Some(row.email),
            department_id: row.department_id,
            bio: row.bio,
            created_by: row.created_by,
            updated_by: row.updated_by,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

/// Filters of the speaker list.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpeakerFilter {
    /// Text in the name, credentials or job title, ignoring case.
    #[param(max_length = 200, pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$")]
    pub q: Option<String>,
    /// Only speakers of this department.
    #[param(minimum = 1, maximum = 2147483647)]
    pub department_id: Option<i32>,
}

impl SpeakerFilter {
    pub fn read(query: &mut QueryReader) -> SpeakerFilter {
        SpeakerFilter {
            q: query.text("q", 200),
            department_id: query.id("department_id"),
        }
    }
}

// ---- persistence -------------------------------------------------------------------------

fn filtered(filter: &SpeakerFilter) -> speakers::BoxedQuery<'static, crate::db::MultiBackend> {
    let mut query = speakers::table.into_boxed();
    if let Some(q) = &filter.q {
        query = query.filter(
            speakers::search_text
                .like(db::contains_pattern(&q.to_lowercase()))
                .escape('\\'),
        );
    }
    if let Some(department_id) = filter.department_id {
        query = query.filter(speakers::department_id.eq(department_id));
    }
    query
}

pub fn list(
    conn: &mut DbConnection,
    filter: &SpeakerFilter,
    paging: Paging,
) -> Result<Page<Speaker>, ApiError> {
    let total = filtered(filter).count().get_result::<i64>(conn)?;
    let rows = filtered(filter)
        .order((speakers::search_text, speakers::id))
        .limit(paging.limit)
        .offset(paging.offset)
        .select(SpeakerRow::as_select())
        .load(conn)?;
    Ok(paging.page(rows.into_iter().map(Speaker::from).collect(), total))
}

pub fn find(conn: &mut DbConnection, id: i32) -> Result<Speaker, ApiError> {
    crate::on_backend!(conn, |c| speakers::table
        .find(id)
        .select(SpeakerRow::as_select())
        .first(c)
        .optional())?
    .map(Speaker::from)
    .ok_or_else(|| ApiError::not_found("speaker", id))
}

/// The speaker with this exact name, if any (the demo loader reuses people across rounds).
pub fn find_by_name(conn: &mut DbConnection, full_name: &str) -> Result<Option<Speaker>, ApiError> {
    Ok(speakers::table
        .filter(speakers::full_name.eq(full_name))
        .order(speakers::id)
        .select(SpeakerRow::as_select())
        .first(conn)
        .optional()?
        .map(Speaker::from))
}

pub fn insert(
    conn: &mut DbConnection,
    input: SpeakerInput,
    actor: Option<&str>,
) -> Result<Speaker, ApiError> {
    let now = db::now();
    let id = diesel::insert_into(speakers::table)
        .values((
            speakers::full_name.eq(&input.full_name),
            speakers::credentials.eq(encode_credentials(&input.credentials)),
            speakers::title.eq(&input.title),
            speakers::email.eq(&input.email),
            speakers::department_id.eq(input.department_id),
            speakers::bio.eq(&input.bio),
            speakers::search_text.eq(search_text(&input)),
            speakers::created_at.eq(now),
            speakers::updated_at.eq(now),
            speakers::created_by.eq(actor),
            speakers::updated_by.eq(actor),
        ))
        .returning(speakers::id)
        .get_result::<i32>(conn)?;
    find(conn, id)
}

pub fn update(
    conn: &mut DbConnection,
    id: i32,
    input: SpeakerInput,
    actor: Option<&str>,
) -> Result<Speaker, ApiError> {
    let changed = diesel::update(speakers::table.find(id))
        .set((
            speakers::full_name.eq(&input.full_name),
            speakers::credentials.eq(encode_credentials(&input.credentials)),
            speakers::title.eq(&input.title),
            speakers::email.eq(&input.email),
            speakers::department_id.eq(input.department_id),
            speakers::bio.eq(&input.bio),
            speakers::search_text.eq(search_text(&input)),
            speakers::updated_at.eq(db::now()),
            speakers::updated_by.eq(actor),
        ))
        .execute(conn)?;
    if changed == 0 {
        return Err(ApiError::not_found("speaker", id));
    }
    find(conn, id)
}

pub fn delete(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    find(conn, id)?;
    let rounds = round_speakers::table
        .filter(round_speakers::speaker_id.eq(id))
        .count()
        .get_result::<i64>(conn)?;
    if rounds > 0 {
        return Err(ApiError::Conflict(format!(
            "speaker {id} is still on {}; take them off first",
            db::describe_counts(&[(rounds, "round")])
        )));
    }
    diesel::delete(speakers::table.find(id)).execute(conn)?;
    Ok(())
}

// ---- handlers ----------------------------------------------------------------------------

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_speakers)
        .service(create_speaker)
        .service(get_speaker)
        .service(replace_speaker)
        .service(patch_speaker)
        .service(delete_speaker)
        .service(list_speaker_rounds);
}

/// List speakers, by name
#[utoipa::path(
    tag = "speakers",
    security((), ("bearer" = [])),
    params(SpeakerFilter, Paging),
    responses((status = 200, description = "A page of speakers", body = Page<Speaker>), ReadErrors)
)]
#[get("/speakers")]
pub async fn list_speakers(
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader()?;
    let mut query = QueryReader::new(req.query_string())?;
    let filter = SpeakerFilter::read(&mut query);
    let paging = Paging::read(&mut query);
    query.finish()?;
    let key = Key::new(&req, &caller);
    cache
        .answer(&db, key, move |conn| {
            Rendered::json(&list(conn, &filter, paging)?.visible_to(&caller))
        })
        .await
}

/// Create a speaker
#[utoipa::path(
    tag = "speakers",
    security(("bearer" = ["organizer", "admin"])),
    request_body = SpeakerInput,
    responses(
        (status = 201, description = "Created", body = Speaker,
            headers(("Location" = String, description = "URL of the new speaker"))),
        WriteErrors
    )
)]
#[post("/speakers")]
pub async fn create_speaker(
    db: web::Data<Database>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let input = SpeakerInput::read(body.into_inner());
    let actor = caller.subject.clone();
    let created = db
        .write(move |conn| {
            let input = input.verify(conn)?;
            insert(conn, input, actor.as_deref())
        })
        .await?;
    Ok(crate::created(
        "speakers",
        created.id,
        &created.visible_to(&caller),
    ))
}

/// Get a speaker
#[utoipa::path(
    tag = "speakers",
    security((), ("bearer" = [])),
    params(("id" = i32, Path, minimum = 1, description = "Speaker id")),
    responses((status = 200, description = "The speaker", body = Speaker), ReadErrors)
)]
#[get("/speakers/{id}")]
pub async fn get_speaker(
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    caller: Caller,
    id: web::Path<i32>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader()?;
    let id = id.into_inner();
    let key = Key::new(&req, &caller);
    cache
        .answer(&db, key, move |conn| {
            Rendered::json(&find(conn, id)?.visible_to(&caller))
        })
        .await
}

/// Replace a speaker
#[utoipa::path(
    tag = "speakers",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Speaker id")),
    request_body = SpeakerInput,
    responses((status = 200, description = "The speaker as replaced", body = Speaker), WriteErrors)
)]
#[put("/speakers/{id}")]
pub async fn replace_speaker(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    let input = SpeakerInput::read(body.into_inner());
    let actor = caller.subject.clone();
    let speaker = db
        .write(move |conn| {
            find(conn, id)?;
            let input = input.verify(conn)?;
            update(conn, id, input, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(speaker.visible_to(&caller)))
}

/// Change some fields of a speaker (JSON merge patch)
#[utoipa::path(
    tag = "speakers",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Speaker id")),
    request_body(content = SpeakerPatch, content_type = "application/merge-patch+json",
        description = "Fields to change; `null` clears an optional field"),
    responses((status = 200, description = "The speaker as changed", body = Speaker), WriteErrors)
)]
#[patch("/speakers/{id}")]
pub async fn patch_speaker(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    let patch = body.into_inner();
    let actor = caller.subject.clone();
    let speaker = db
        .write(move |conn| {
            let mut doc = serde_json::to_value(SpeakerInput::from(find(conn, id)?))?;
            merge_patch(&mut doc, &patch);
            let input = SpeakerInput::read(doc).verify(conn)?;
            update(conn, id, input, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(speaker.visible_to(&caller)))
}

/// Delete a speaker who is on no round
#[utoipa::path(
    tag = "speakers",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Speaker id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/speakers/{id}")]
pub async fn delete_speaker(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Organizer)?;
    let id = id.into_inner();
    db.write(move |conn| delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List the rounds a speaker is on
#[utoipa::path(
    tag = "speakers",
    security((), ("bearer" = [])),
    params(("id" = i32, Path, minimum = 1, description = "Speaker id"), RoundFilter, Paging),
    responses((status = 200, description = "A page of rounds", body = Page<Round>), ReadErrors)
)]
#[get("/speakers/{id}/rounds")]
pub async fn list_speaker_rounds(
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    caller: Caller,
    id: web::Path<i32>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader()?;
    let id = id.into_inner();
    let mut query = QueryReader::new(req.query_string())?;
    let mut filter = RoundFilter::read(&mut query);
    let paging = Paging::read(&mut query);
    query.finish()?;
    let key = Key::new(&req, &caller);
    cache
        .answer(&db, key, move |conn| {
            find(conn, id)?;
            filter.speaker_id = Some(id);
            rounds::render_list(conn, &filter, paging, &caller)
        })
        .await
}

/// A merge patch of a speaker: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the PATCH body; the body is read by `SpeakerInput::read`
pub struct SpeakerPatch {
    /// Required field: may be changed, not cleared.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    full_name: Option<String>,
    #[schema(max_items = 10, value_type = Option<BTreeSet<Credential>>)]
    credentials: Option<Vec<String>>,
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    title: Option<String>,
    #[schema(format = "email", max_length = 254)]
    email: Option<String>,
    #[schema(minimum = 1, maximum = 2147483647)]
    department_id: Option<i32>,
    #[schema(
        max_length = 10000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    bio: Option<String>,
}

impl Visible for Speaker {
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            self.email = None;
            self.created_by = None;
            self.updated_by = None;
        }
        self
    }
}

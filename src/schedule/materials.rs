//! The materials of a round: its slides, recording, handouts, articles and links, each a link
//! (`url`) or an uploaded file, shown to the public, to staff (any signed-in person) or to
//! organizers only. A material the caller may not see does not exist for them: 404, never 403,
//! and it is left out of lists and of the change feed.
//!
//! Files go to the file store ([`Files`]), streamed (`PUT .../file`), never whole in memory, at
//! most `LHS_MATERIAL_MAX_MB`; what a file is comes from its bytes (PDF, PPTX, DOCX, PNG, JPEG,
//! MP4 or plain text; anything else is 415). They are served as attachments, with a strong
//! `ETag` (their SHA-256) and `Range` (a recording is seeked).
//!
//! The database is the record of which files exist. A file is written before the row that names
//! it, and deleted after the commit of the write that let go of it (a material or its round
//! deleted, a file replaced): a crash in between leaves a file no row names, which
//! `lhs-rounds check` reports and `check --repair` removes, never a row naming no file.

use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::http::StatusCode;
use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::platform::auth::{Caller, Role, Visible};
use crate::platform::cache::Rendered;
use crate::platform::db::{self, DbConnection, MultiBackend};
use crate::platform::error::{ApiError, FieldError, ReadErrors, WriteErrors};
use crate::platform::fields::{Id, Int, Line, Name, Timestamp};
use crate::platform::files::{self, Files, Stored, UploadError};
use crate::platform::http::{self, JsonBody, TagList};
use crate::platform::idempotency::StoredAnswer;
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{
    self, Access, Allowed, Audit, Author, Ctx, Granted, HeaderText, New, Resource, Update,
    API_PREFIX,
};
use crate::platform::schema::materials;
use crate::platform::validate::{Doc, Input, Query};
use crate::schedule::rounds::{self, Rounds};

pub type MaterialTitle = Name<300>;
/// A link: `https://`, or `http://` on a host `LHS_MATERIAL_HTTP_HOSTS` lists.
pub type MaterialUrl = Line<2048>;
/// Where a material comes among its round's (lower first, then the oldest).
pub type Position = Int<0, 1000>;
/// A file's size in bytes.
pub type FileSize = Int<0, 109951162777600>;
/// The media type sniffed from a file's bytes.
pub type MediaType = Line<100>;
/// A SHA-256, in hex.
pub type Sha256Hex = Line<64>;

crate::text_enum! {
    /// What a material is.
    pub enum MaterialKind {
        Slides = "slides",
        Recording = "recording",
        Handout = "handout",
        Article = "article",
        Link = "link",
    }
}

crate::text_enum! {
    /// Who may see a material: anyone who may read the schedule, any signed-in person (a token
    /// with a role), or organizers only.
    #[derive(Default)]
    pub enum Visibility {
        Public = "public",
        Staff = "staff",
        #[default]
        Organizers = "organizers",
    }
}

impl Visibility {
    /// Whether `caller` sees a material of this visibility (given they may read the schedule).
    pub fn shows_to(self, caller: &Caller) -> bool {
        match self {
            Visibility::Public => true,
            // "Signed in" as everywhere in the service: a token with a role (one whose roles
            // are all unknown grants nothing).
            Visibility::Staff => caller.can(Role::Viewer),
            Visibility::Organizers => caller.can(Role::Organizer),
        }
    }

    /// The visibilities `caller` sees.
    pub fn seen_by(caller: &Caller) -> Vec<Visibility> {
        Visibility::ALL
            .iter()
            .copied()
            .filter(|v| v.shows_to(caller))
            .collect()
    }
}

/// The media types a file may have, sniffed from its bytes, and the extension its download
/// gets.
pub const ACCEPTED_TYPES: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("video/mp4", "mp4"),
    (TEXT_PLAIN, "txt"),
];
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// What a file is, from its first bytes (up to [`files::HEAD_BYTES`], or all of a smaller
/// file): one of [`ACCEPTED_TYPES`], or why not. Plain text is UTF-8 without control characters
/// (but tab, line breaks and form feed) that no other kind claims.
pub fn sniff(head: &[u8]) -> Result<String, String> {
    let refused = |what: &str| {
        format!(
            "the file is {what}: a material's file may be PDF, PPTX, DOCX, PNG, JPEG, MP4 or \
             plain text (UTF-8)"
        )
    };
    if head.is_empty() {
        return Err(refused("empty"));
    }
    if let Some(kind) = infer::get(head) {
        let mime = kind.mime_type();
        return match ACCEPTED_TYPES
            .iter()
            .find(|(accepted, _)| *accepted == mime)
        {
            Some((accepted, _)) => Ok((*accepted).to_owned()),
            None => Err(refused(mime)),
        };
    }
    // A text file cut at the end of the head may end inside a character.
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        Err(e) if e.error_len().is_none() && head.len() >= files::HEAD_BYTES => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default()
        }
        Err(_) => return Err(refused("of a kind not recognised")),
    };
    let control = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}');
    if text.is_empty() || text.chars().any(control) {
        return Err(refused("of a kind not recognised"));
    }
    Ok(TEXT_PLAIN.to_owned())
}

/// The extension of a download of `content_type`.
fn extension(content_type: &str) -> &'static str {
    ACCEPTED_TYPES
        .iter()
        .find(|(accepted, _)| *accepted == content_type)
        .map_or("bin", |(_, ext)| ext)
}

/// A material's uploaded file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MaterialFile {
    /// What the file is, from its bytes.
    #[schema(example = "application/pdf")]
    pub content_type: MediaType,
    pub size: FileSize,
    /// SHA-256 of the file, in hex: its download's strong `ETag` is this, quoted.
    pub sha256: Sha256Hex,
    pub uploaded_at: Timestamp,
    /// Where to download it (`GET`, with `Range` if need be).
    pub download_url: HeaderText,
}

/// A material of a round, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 4, "round_id": 3, "kind": "slides", "title": "Patient comments: the slides",
    "url": null, "visibility": "public", "position": 0,
    "file": {"content_type": "application/pdf", "size": 1843200,
        "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "uploaded_at": "2019-04-26T14:00:00Z",
        "download_url": "/api/v1/rounds/3/materials/4/file"},
    "created_at": "2019-04-26T13:58:00Z", "updated_at": "2019-04-26T14:00:00Z"
}))]
pub struct Material {
    pub id: Id,
    pub round_id: Id,
    pub kind: MaterialKind,
    pub title: MaterialTitle,
    /// The link, for a material that is one; `null` for a file (or one still to come).
    pub url: Option<MaterialUrl>,
    pub visibility: Visibility,
    pub position: Position,
    /// The uploaded file; `null` for a link, or until a file is uploaded.
    pub file: Option<MaterialFile>,
    #[serde(flatten)]
    pub audit: Audit,
    /// The file's key in the store.
    #[serde(skip)]
    #[schema(ignore)]
    pub file_key: Option<String>,
}

crate::record!(Material);

fn default_visibility() -> Visibility {
    Visibility::default()
}

/// A material, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "kind": "article", "title": "Borsky et al., 2019: the LHS process",
    "url": "https://effectivehealthcare.ahrq.gov/", "visibility": "public"
}))]
pub struct MaterialInput {
    pub kind: MaterialKind,
    pub title: MaterialTitle,
    /// A link, `https://` (or `http://` on a host the service allows). Leave it out for a
    /// material whose file is uploaded next (`PUT .../file`); a `link` must have one.
    pub url: Option<MaterialUrl>,
    /// Defaults to `organizers`: nothing is shown wider than an organizer says.
    #[serde(default = "default_visibility")]
    pub visibility: Visibility,
    /// Defaults to 0; equal positions keep the order they were added in.
    #[serde(default)]
    pub position: Position,
    /// The round in the path.
    #[serde(skip)]
    #[schema(ignore)]
    pub round_id: i32,
}

impl Input for MaterialInput {
    /// A link is an absolute `http(s)` URL with a host and no user or password; a `link` has one.
    fn rules(doc: &Doc<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        // A blank link is no link, as a blank optional text is absent everywhere.
        let url = doc.get::<String>("url").filter(|u| !u.trim().is_empty());
        if let Some(url) = &url {
            if let Err(why) = check_url(url, &[]) {
                if !why.starts_with(HTTP_REFUSED) {
                    errors.push(FieldError::new("url", why));
                }
            }
        }
        if doc.get::<MaterialKind>("kind") == Some(MaterialKind::Link)
            && url.as_deref().is_none_or(|u| u.trim().is_empty())
        {
            errors.push(FieldError::new(
                "url",
                "is required for a material of kind link",
            ));
        }
        errors
    }
}

const HTTP_REFUSED: &str = "must be https://";

/// Whether `text` is a link a material may have, with `http_hosts` the hosts allowed plain
/// `http://`.
pub fn check_url(text: &str, http_hosts: &[String]) -> Result<(), String> {
    let url = url::Url::parse(text.trim())
        .map_err(|e| format!("is not an absolute URL such as https://example.org/slides ({e})"))?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if host.is_empty() {
        return Err("must name a host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".to_owned());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if http_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) => Ok(()),
        "http" => Err(format!(
            "{HTTP_REFUSED} (plain http:// only on the hosts LHS_MATERIAL_HTTP_HOSTS lists, and \
             {host} is not one)"
        )),
        other => Err(format!("{HTTP_REFUSED}, not {other}:")),
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = materials)]
struct MaterialRow {
    id: i32,
    round_id: i32,
    kind: MaterialKind,
    title: String,
    url: Option<String>,
    visibility: Visibility,
    position: i32,
    file_key: Option<String>,
    file_content_type: Option<String>,
    file_size: Option<i64>,
    file_sha256: Option<String>,
    file_uploaded_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

/// Where a material's file is downloaded.
pub fn download_path(round_id: i32, id: i32) -> String {
    format!("{API_PREFIX}/rounds/{round_id}/materials/{id}/file")
}

impl From<MaterialRow> for Material {
    fn from(row: MaterialRow) -> Self {
        let file = match (
            &row.file_key,
            row.file_content_type,
            row.file_size,
            row.file_sha256,
            row.file_uploaded_at,
        ) {
            (Some(_), Some(content_type), Some(size), Some(sha256), Some(at)) => {
                Some(MaterialFile {
                    content_type: Line::stored(content_type),
                    size: FileSize::clamped(size),
                    sha256: Line::stored(sha256),
                    uploaded_at: Timestamp::from_naive(at),
                    download_url: Line::stored(download_path(row.round_id, row.id)),
                })
            }
            _ => None,
        };
        Material {
            id: Id(row.id),
            round_id: Id(row.round_id),
            kind: row.kind,
            title: Name::stored(row.title),
            url: row.url.map(Line::stored),
            visibility: row.visibility,
            position: Position::clamped(i64::from(row.position)),
            file,
            file_key: row.file_key,
            audit: crate::audit!(row),
        }
    }
}

/// The materials of one round that a caller sees.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MaterialFilter {
    pub round_id: i32,
    pub visible: Vec<Visibility>,
}

fn filtered(filter: &MaterialFilter) -> materials::BoxedQuery<'static, MultiBackend> {
    materials::table
        .filter(materials::round_id.eq(filter.round_id))
        .filter(materials::visibility.eq_any(filter.visible.clone()))
        .into_boxed()
}

/// The columns a body writes, for `INSERT` and `UPDATE` alike.
macro_rules! written_columns {
    ($input:expr) => {
        (
            materials::kind.eq($input.kind),
            materials::title.eq($input.title.as_str()),
            materials::url.eq($input
                .url
                .as_ref()
                .map(|u| u.as_str().trim())
                .filter(|u| !u.is_empty())),
            materials::visibility.eq($input.visibility),
            materials::position.eq($input.position.get() as i32),
        )
    };
}

// ---- persistence -------------------------------------------------------------------------

/// Materials: what [`resource`] needs to serve them.
pub struct Materials;

impl Resource for Materials {
    crate::table_resource! {
        name "material" in "materials", schedule false, write Allowed::Role(Role::Organizer);
        Material from MaterialRow in materials, input MaterialInput, change MaterialInput;
        list MaterialFilter, by filtered, (materials::position, materials::id);
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Material, ApiError> {
        let values = (
            written_columns!(new.input),
            materials::round_id.eq(new.input.round_id),
            crate::created_columns!(materials, new.actor),
        );
        Ok(crate::insert_row!(conn, materials, MaterialRow, values)?.into())
    }

    fn change_of(record: &Material) -> MaterialInput {
        MaterialInput {
            kind: record.kind,
            title: record.title.clone(),
            url: record.url.clone(),
            visibility: record.visibility,
            position: record.position,
            round_id: record.round_id.0,
        }
    }

    /// A material with a file does not become a link: its file goes first.
    fn update(conn: &mut DbConnection, update: Update<Self>) -> Result<Option<Material>, ApiError> {
        let (current, input) = (&update.current, &update.change);
        let linked = input
            .url
            .as_ref()
            .is_some_and(|u| !u.as_str().trim().is_empty());
        if linked && current.file.is_some() {
            return Err(ApiError::Conflict(format!(
                "material {} has an uploaded file: delete it first (DELETE {}) to make the \
                 material a link",
                current.id.0,
                download_path(current.round_id.0, current.id.0)
            )));
        }
        let changes = (
            written_columns!(input),
            crate::updated_columns!(materials, update.actor),
        );
        let id = current.id.0;
        let row = crate::update_row!(conn, materials, MaterialRow, id, update.expected, changes)?;
        Ok(row.map(Material::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        Ok(crate::delete_row!(conn, materials, id, expected)? == 1)
    }
}

/// The material `id` of round `round_id` if `caller` may see it; 404 otherwise (one that
/// exists but is not theirs to see included).
fn find_visible(
    conn: &mut DbConnection,
    round_id: i32,
    id: i32,
    caller: &Caller,
) -> Result<Material, ApiError> {
    match Materials::find(conn, id)? {
        Some(m) if m.round_id.0 == round_id && m.visibility.shows_to(caller) => Ok(m),
        _ => Err(ApiError::NotFound(format!(
            "no material {id} on round {round_id}"
        ))),
    }
}

fn round_exists(conn: &mut DbConnection, round_id: i32) -> Result<(), ApiError> {
    match rounds::exists(conn, round_id)? {
        true => Ok(()),
        false => Err(ApiError::not_found(Rounds::NAME, round_id)),
    }
}

/// The public materials of `round_ids`, by round, in their order (for calendars).
pub fn public_of_rounds(
    conn: &mut DbConnection,
    round_ids: &[i32],
) -> Result<Vec<Material>, ApiError> {
    seen_of_rounds(conn, round_ids, &[Visibility::Public])
}

/// The materials of `round_ids` of the visibilities `seen`, by round, in their order.
pub fn seen_of_rounds(
    conn: &mut DbConnection,
    round_ids: &[i32],
    seen: &[Visibility],
) -> Result<Vec<Material>, ApiError> {
    if round_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(materials::table
        .filter(materials::round_id.eq_any(round_ids))
        .filter(materials::visibility.eq_any(seen))
        .order((materials::round_id, materials::position, materials::id))
        .select(MaterialRow::as_select())
        .load::<MaterialRow>(conn)?
        .into_iter()
        .map(Material::from)
        .collect())
}

/// Whether `caller` sees material `id` now (`None`: it does not exist), for the change feed.
pub fn shown_to(
    conn: &mut DbConnection,
    id: i32,
    caller: &Caller,
) -> Result<Option<Material>, ApiError> {
    Ok(Materials::find(conn, id)?
        .filter(|m| m.visibility.shows_to(caller))
        .map(|m| m.visible_to(caller)))
}

/// Deletes the materials of round `round_id` (recording each), returning their files' keys,
/// to be deleted once the transaction has committed.
pub fn delete_of_round(
    conn: &mut DbConnection,
    author: Author<'_>,
    round_id: i32,
) -> Result<Vec<String>, ApiError> {
    let rows = materials::table
        .filter(materials::round_id.eq(round_id))
        .order(materials::id)
        .select(MaterialRow::as_select())
        .load::<MaterialRow>(conn)?;
    let mut keys = Vec::new();
    for material in rows.into_iter().map(Material::from) {
        diesel::delete(materials::table.find(material.id.0)).execute(conn)?;
        author.record(conn, Materials::NAME, material.id.0, Some(&material), None)?;
        keys.extend(material.file_key);
    }
    Ok(keys)
}

/// Every file key the materials name (for `check`).
pub fn file_keys(conn: &mut DbConnection) -> Result<Vec<String>, ApiError> {
    Ok(materials::table
        .filter(materials::file_key.is_not_null())
        .select(materials::file_key.assume_not_null())
        .load::<String>(conn)?)
}

/// Where every material's file key starts in the store.
pub const KEY_PREFIX: &str = "materials";

// ---- settings ----------------------------------------------------------------------------

/// The file store, and the hosts material links may reach over plain `http://`.
#[derive(Debug, Clone)]
pub struct MaterialSettings {
    pub files: Files,
    pub http_hosts: Vec<String>,
}

impl MaterialSettings {
    /// `LHS_MATERIAL_HTTP_HOSTS`: host names, comma-separated.
    pub fn new(files: Files, http_hosts: &str) -> MaterialSettings {
        MaterialSettings {
            files,
            http_hosts: http_hosts
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
        }
    }

    /// 422 naming `url` when the body links over `http://` to a host not allowed.
    fn check_body_url(&self, body: &Value) -> Result<(), ApiError> {
        let url = body.get("url").and_then(Value::as_str);
        if let Some(url) = url.filter(|u| !u.trim().is_empty()) {
            if let Err(why) = check_url(url, &self.http_hosts) {
                if why.starts_with(HTTP_REFUSED) {
                    return Err(ApiError::validation("url", why));
                }
            }
        }
        Ok(())
    }
}

// ---- handlers ----------------------------------------------------------------------------

/// The answer to the `POST` that created `material` (kept under its `Idempotency-Key`).
fn created(material: &Material, caller: &Caller) -> Result<StoredAnswer, ApiError> {
    Ok(StoredAnswer {
        status: StatusCode::CREATED.as_u16(),
        location: Some(format!(
            "{API_PREFIX}/rounds/{}/materials/{}",
            material.round_id.0, material.id.0
        )),
        etag: Some(http::record_etag(
            material.audit.version,
            caller.sees_private_fields(),
        )),
        body: serde_json::to_string(&material.clone().visible_to(caller))?,
    })
}

/// List a round's materials (those the caller may see)
///
/// Public ones for anyone who may read the schedule, `staff` ones for any signed-in person,
/// `organizers` ones for organizers; by position, then as added.
#[utoipa::path(
    tag = "materials",
    security((), ("bearer" = [])),
    params(("id" = Id, Path, description = "Round id"), Paging),
    responses((status = 200, description = "A page of materials", body = Page<Material>), ReadErrors)
)]
#[get("/rounds/{id}/materials")]
pub async fn list_materials(
    ctx: Ctx,
    id: web::Path<i32>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Read)?;
    let round_id = id.into_inner();
    let query = query.values()?;
    let filter = MaterialFilter {
        round_id,
        visible: Visibility::seen_by(&ctx.caller),
    };
    // Not kept by the read cache, whose answers are per organizer-or-not: staff see more than
    // the public.
    resource::list_filtered::<Materials>(ctx, granted, &query, filter, move |conn| {
        round_exists(conn, round_id)
    })
    .await
}

/// Add a material to a round: a link, or a file to upload next
#[utoipa::path(
    tag = "materials",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "Round id")),
    request_body = MaterialInput,
    responses(
        (status = 201, description = "Created", body = Material,
            headers(("Location" = HeaderText, description = "URL of the new material"))),
        WriteErrors
    )
)]
#[post("/rounds/{id}/materials")]
pub async fn create_material(
    ctx: Ctx,
    id: web::Path<i32>,
    body: JsonBody,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Create)?;
    let round_id = id.into_inner();
    let body = body.value()?;
    let request = serde_json::to_vec(&body)?;
    settings.check_body_url(&body)?;
    let mut input = ctx.validators.body::<MaterialInput>(body).into_result()?;
    input.round_id = round_id;
    let caller = ctx.caller.clone();
    resource::write_idempotent(&ctx, granted, &request, move |conn, author| {
        round_exists(conn, round_id)?;
        let material = Materials::insert(
            conn,
            New {
                input: input.clone(),
                actor: author.actor,
            },
        )?;
        author.record(conn, Materials::NAME, material.id.0, None, Some(&material))?;
        created(&material, &caller)
    })
    .await
}

/// Get a material of a round
#[utoipa::path(
    tag = "materials",
    security((), ("bearer" = [])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("material_id" = Id, Path, description = "Material id")
    ),
    responses((status = 200, description = "The material", body = Material), ReadErrors)
)]
#[get("/rounds/{id}/materials/{material_id}")]
pub async fn get_material(ctx: Ctx, path: web::Path<(i32, i32)>) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Read)?;
    let (round_id, id) = path.into_inner();
    let caller = ctx.caller.clone();
    ctx.read(granted, false, false, None, move |conn| {
        let material = find_visible(conn, round_id, id, &caller)?;
        let etag = http::record_etag(material.audit.version, caller.sees_private_fields());
        Ok(Rendered::json(&material.visible_to(&caller))?.with_etag(etag))
    })
    .await
}

/// 404 unless material `id` is round `round_id`'s (organizers see every material).
async fn precheck(ctx: &Ctx, round_id: i32, id: i32) -> Result<(), ApiError> {
    let caller = ctx.caller.clone();
    ctx.db
        .call(move |conn| find_visible(conn, round_id, id, &caller).map(drop))
        .await
}

/// Replace a material of a round
#[utoipa::path(
    tag = "materials",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("material_id" = Id, Path, description = "Material id")
    ),
    request_body = MaterialInput,
    responses((status = 200, description = "The material as replaced", body = Material), WriteErrors)
)]
#[put("/rounds/{id}/materials/{material_id}")]
pub async fn replace_material(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    body: JsonBody,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Change)?;
    let (round_id, id) = path.into_inner();
    let body = body.value()?;
    settings.check_body_url(&body)?;
    // A material never moves to another round, so this holds for the write that follows.
    precheck(&ctx, round_id, id).await?;
    resource::replace_granted::<Materials>(ctx, granted, id, body).await
}

/// Change some fields of a material (JSON merge patch)
#[utoipa::path(
    tag = "materials",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("material_id" = Id, Path, description = "Material id")
    ),
    request_body(content = MaterialInput, content_type = "application/merge-patch+json",
        description = "Fields to change; `null` clears an optional field"),
    responses((status = 200, description = "The material as changed", body = Material), WriteErrors)
)]
#[patch("/rounds/{id}/materials/{material_id}")]
pub async fn patch_material(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    body: JsonBody,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Change)?;
    let (round_id, id) = path.into_inner();
    let body = body.value()?;
    settings.check_body_url(&body)?;
    precheck(&ctx, round_id, id).await?;
    resource::patch_granted::<Materials>(ctx, granted, id, body).await
}

/// The version `If-Match` names for `material` (412 when it names another; `None` without it).
fn matched_version(
    ctx_if_match: Option<&TagList>,
    material: &Material,
) -> Result<Option<i64>, ApiError> {
    match ctx_if_match {
        None | Some(TagList::Any) => Ok(None),
        Some(tags) => {
            let etag = http::record_etag(material.audit.version, true);
            if tags.matches_strongly(&etag) {
                Ok(Some(material.audit.version))
            } else {
                Err(ApiError::PreconditionFailed {
                    current: Some(etag),
                })
            }
        }
    }
}

/// Delete a material (and its file)
#[utoipa::path(
    tag = "materials",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("material_id" = Id, Path, description = "Material id")
    ),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/rounds/{id}/materials/{material_id}")]
pub async fn delete_material(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Delete)?;
    let (round_id, id) = path.into_inner();
    let write = move |conn: &mut DbConnection, author: Author<'_>, material: Material, expected| {
        if !Materials::delete(conn, id, expected)? {
            return Err(ApiError::PreconditionFailed { current: None });
        }
        author.record(conn, Materials::NAME, id, Some(&material), None)?;
        Ok(material.file_key)
    };
    drop_files(ctx, granted, (round_id, id), &settings, write).await
}

/// A write to one material that `If-Match` must name, after which the file it gives up (if
/// any) is deleted once the write has committed: 204. Both ways of dropping a file (deleting
/// the material, or only its file) go through it.
async fn drop_files<F>(
    ctx: Ctx,
    granted: Granted,
    (round_id, id): (i32, i32),
    settings: &MaterialSettings,
    write: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce(
            &mut DbConnection,
            Author<'_>,
            Material,
            Option<i64>,
        ) -> Result<Option<String>, ApiError>
        + Send
        + 'static,
{
    ctx.require_if_match()?;
    let (caller, if_match) = (ctx.caller.clone(), ctx.conditions.if_match.clone());
    let key = ctx
        .write(granted, move |conn, author| {
            let material = find_visible(conn, round_id, id, &caller)?;
            let expected = matched_version(if_match.as_ref(), &material)?;
            write(conn, author, material, expected)
        })
        .await?;
    settings.files.delete_after_commit(key.as_slice()).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete a round that has no feedback, with its materials and their files
///
/// Its materials go with it (their files once the deletion has committed).
#[utoipa::path(
    tag = "rounds",
    security(("bearer" = ["organizer", "admin"])),
    params(("id" = Id, Path, description = "The round's id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/rounds/{id}")]
pub async fn delete_round(
    ctx: Ctx,
    id: web::Path<i32>,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Rounds>(Access::Delete)?;
    let id = id.into_inner();
    let keys = resource::delete_with::<Rounds, _>(ctx, granted, id, move |conn, author| {
        delete_of_round(conn, author, id)
    })
    .await?;
    settings.files.delete_after_commit(&keys).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The media type and size limit, as the upload's problem tells them.
fn upload_error(error: UploadError) -> ApiError {
    match error {
        UploadError::TooLarge { limit } => ApiError::PayloadTooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        },
        UploadError::Refused(why) => ApiError::UnsupportedMediaType(why),
        UploadError::Body(why) => ApiError::BadRequest(format!("the upload was cut short: {why}")),
        UploadError::Store(why) => ApiError::Unavailable(format!("the file store: {why}")),
    }
}

/// The material a file may be uploaded to: round `round_id`'s, not a link.
fn uploadable(
    conn: &mut DbConnection,
    caller: &Caller,
    round_id: i32,
    id: i32,
) -> Result<Material, ApiError> {
    let material = find_visible(conn, round_id, id, caller)?;
    if material.url.is_some() {
        return Err(ApiError::Conflict(format!(
            "material {id} is a link: clear its url first to give it a file"
        )));
    }
    Ok(material)
}

/// Upload a material's file (streamed; replaces any earlier file)
///
/// The body is the file's bytes, whatever its `Content-Type`: what the file is comes from the
/// bytes (PDF, PPTX, DOCX, PNG, JPEG, MP4 or plain UTF-8 text; anything else is 415). At most
/// `LHS_MATERIAL_MAX_MB` (100 MiB unless configured; 413 past it, and nothing is kept). 409 for
/// a material that is a link, or where no file store is configured.
#[utoipa::path(
    tag = "materials",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("material_id" = Id, Path, description = "Material id")
    ),
    request_body(content = UploadBody, content_type = "application/octet-stream",
        description = "The file's bytes"),
    responses(
        (status = 200, description = "The material with its file", body = Material),
        WriteErrors,
        (status = 413, description = "The file is larger than `LHS_MATERIAL_MAX_MB` (nothing is kept)",
            content_type = "application/problem+json", body = crate::platform::error::Problem),
        (status = 415, description = "The file is not PDF, PPTX, DOCX, PNG, JPEG, MP4 or plain text (nothing is kept)",
            content_type = "application/problem+json", body = crate::platform::error::Problem)
    )
)]
#[put("/rounds/{id}/materials/{material_id}/file")]
pub async fn upload_file(
    ctx: Ctx,
    req: HttpRequest,
    path: web::Path<(i32, i32)>,
    payload: web::Payload,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Change)?;
    ctx.require_if_match()?;
    let (round_id, id) = path.into_inner();
    let files = settings.files.clone();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > files.max_bytes) {
        return Err(upload_error(UploadError::TooLarge {
            limit: files.max_bytes,
        }));
    }
    if !files.is_configured() {
        return Err(ApiError::Conflict(
            "no file store is configured: set LHS_MATERIALS_URL to a directory every replica \
             shares, or to s3://bucket/prefix"
                .to_owned(),
        ));
    }
    let (caller, if_match) = (ctx.caller.clone(), ctx.conditions.if_match.clone());
    // The version `If-Match` names, checked before the bytes are read and again by the write.
    let expected = ctx
        .db
        .call(move |conn| {
            let material = uploadable(conn, &caller, round_id, id)?;
            matched_version(if_match.as_ref(), &material)
        })
        .await?;
    let key = files::new_key(&format!("{KEY_PREFIX}/{id}")).map_err(ApiError::Internal)?;
    let stored = files
        .put_stream(&key, payload, sniff)
        .await
        .map_err(upload_error)?;
    let (caller, written_key) = (ctx.caller.clone(), key.clone());
    let written = ctx
        .write(granted, move |conn, author| {
            attach(
                conn,
                author,
                &caller,
                (round_id, id),
                expected,
                &written_key,
                &stored,
            )
        })
        .await;
    match written {
        Ok((material, replaced)) => {
            files
                .delete_after_commit(&replaced.into_iter().collect::<Vec<_>>())
                .await;
            let etag = http::record_etag(material.audit.version, ctx.caller.sees_private_fields());
            Ok(HttpResponse::Ok()
                .insert_header((header::ETAG, etag))
                .json(material.visible_to(&ctx.caller)))
        }
        Err(error) => {
            // The row was not written: the file it would have named goes.
            files.delete_after_commit(&[key]).await;
            Err(error)
        }
    }
}

/// Names the stored file on material `id` (the earlier file's key is returned, to delete once
/// this commits).
fn attach(
    conn: &mut DbConnection,
    author: Author<'_>,
    caller: &Caller,
    (round_id, id): (i32, i32),
    expected: Option<i64>,
    key: &str,
    stored: &Stored,
) -> Result<(Material, Option<String>), ApiError> {
    let before = uploadable(conn, caller, round_id, id)?;
    if expected.is_some_and(|version| version != before.audit.version) {
        return Err(ApiError::PreconditionFailed {
            current: Some(http::record_etag(before.audit.version, true)),
        });
    }
    let changes = (
        materials::file_key.eq(key),
        materials::file_content_type.eq(stored.content_type.as_str()),
        materials::file_size.eq(i64::try_from(stored.size).unwrap_or(i64::MAX)),
        materials::file_sha256.eq(stored.sha256.as_str()),
        materials::file_uploaded_at.eq(db::now()),
        crate::updated_columns!(materials, author.actor),
    );
    let row = crate::on_backend!(conn, |c| diesel::update(materials::table.find(id))
        .set(changes)
        .returning(MaterialRow::as_returning())
        .get_result::<MaterialRow>(c))?;
    let after = Material::from(row);
    author.record(conn, Materials::NAME, id, Some(&before), Some(&after))?;
    Ok((after, before.file_key))
}

/// Delete a material's file (the material stays, awaiting another file or a link)
#[utoipa::path(
    tag = "materials",
    security(("bearer" = ["organizer", "admin"])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("material_id" = Id, Path, description = "Material id")
    ),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/rounds/{id}/materials/{material_id}/file")]
pub async fn delete_file(
    ctx: Ctx,
    path: web::Path<(i32, i32)>,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Change)?;
    let (round_id, id) = path.into_inner();
    let write = move |conn: &mut DbConnection, author: Author<'_>, before: Material, _| {
        let Some(key) = before.file_key.clone() else {
            return Err(ApiError::NotFound(format!("material {id} has no file")));
        };
        let changes = (
            materials::file_key.eq(None::<String>),
            materials::file_content_type.eq(None::<String>),
            materials::file_size.eq(None::<i64>),
            materials::file_sha256.eq(None::<String>),
            materials::file_uploaded_at.eq(None::<NaiveDateTime>),
            crate::updated_columns!(materials, author.actor),
        );
        let row = crate::on_backend!(conn, |c| diesel::update(materials::table.find(id))
            .set(changes.clone())
            .returning(MaterialRow::as_returning())
            .get_result::<MaterialRow>(c))?;
        let after = Material::from(row);
        author.record(conn, Materials::NAME, id, Some(&before), Some(&after))?;
        Ok(Some(key))
    };
    drop_files(ctx, granted, (round_id, id), &settings, write).await
}

/// `Range` on a file of `size` bytes: `Ok(None)` to send it whole (no range, one this service
/// ignores, or `If-Range` naming another version), the one range asked for, or 416.
fn asked_range(
    req: &HttpRequest,
    size: u64,
    etag: &str,
) -> Result<Option<std::ops::Range<u64>>, ()> {
    let Some(range) = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    // If-Range with the current strong ETag (a date is not strong enough): otherwise the
    // whole, new file.
    if let Some(if_range) = req.headers().get(header::IF_RANGE) {
        if if_range.to_str().ok() != Some(etag) {
            return Ok(None);
        }
    }
    let Ok(parsed) = http_range_header::parse_range_header(range) else {
        // Not a range this service reads: RFC 9110 lets it send the whole file.
        return Ok(None);
    };
    match parsed.validate(size) {
        Ok(ranges) if ranges.len() == 1 => Ok(ranges
            .first()
            .map(|r| *r.start()..r.end().saturating_add(1))),
        // Several ranges would be a multipart answer: the whole file serves them all.
        Ok(_) => Ok(None),
        Err(_) => Err(()),
    }
}

/// A file name for the download: the material's title, in characters any disk takes, with the
/// extension of what the file is.
fn file_name(material: &Material, content_type: &str) -> String {
    let stem: String = material
        .title
        .as_str()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | '(' | ')') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let stem = stem.trim().trim_matches('.');
    let stem = if stem.is_empty() { "material" } else { stem };
    format!("{stem}.{}", extension(content_type))
}

/// Download a material's file
///
/// As an attachment, with `X-Content-Type-Options: nosniff` and a strong `ETag` (the file's
/// SHA-256): `If-None-Match` answers 304, `Range` (one range) 206 with `Content-Range`, and a
/// range past the end 416. 404 for a material the caller may not see, or one without a file.
#[utoipa::path(
    tag = "materials",
    security((), ("bearer" = [])),
    params(
        ("id" = Id, Path, description = "Round id"),
        ("material_id" = Id, Path, description = "Material id")
    ),
    responses(
        (status = 200, description = "The file, as the type its bytes were found to be", content(
            (UploadBody = "application/pdf"),
            (UploadBody = "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
            (UploadBody = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (UploadBody = "image/png"),
            (UploadBody = "image/jpeg"),
            (UploadBody = "video/mp4"),
            (UploadBody = "text/plain")
        )),
        (status = 206, description = "The range of the file asked for", content(
            (UploadBody = "application/pdf"),
            (UploadBody = "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
            (UploadBody = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (UploadBody = "image/png"),
            (UploadBody = "image/jpeg"),
            (UploadBody = "video/mp4"),
            (UploadBody = "text/plain")
        )),
        (status = 304, description = "Not modified: `If-None-Match` names the file's ETag"),
        (status = 416, description = "The range is past the end of the file",
            content_type = "application/problem+json", body = crate::platform::error::Problem),
        ReadErrors
    )
)]
#[get("/rounds/{id}/materials/{material_id}/file")]
pub async fn download_file(
    ctx: Ctx,
    req: HttpRequest,
    path: web::Path<(i32, i32)>,
    settings: web::Data<MaterialSettings>,
) -> Result<HttpResponse, ApiError> {
    let (round_id, id) = path.into_inner();
    send_file(ctx, &req, round_id, id, &settings).await
}

/// The file of material `id` of round `round_id`, as `ctx`'s caller may see it: whole, or the
/// range asked for (what the API's download and the pages' answer alike).
pub async fn send_file(
    ctx: Ctx,
    req: &HttpRequest,
    round_id: i32,
    id: i32,
    settings: &MaterialSettings,
) -> Result<HttpResponse, ApiError> {
    let granted = ctx.authorize::<Materials>(Access::Read)?;
    let caller = ctx.caller.clone();
    let _ = granted;
    let material = ctx
        .db
        .call(move |conn| find_visible(conn, round_id, id, &caller))
        .await?;
    let (Some(file), Some(key)) = (material.file.clone(), material.file_key.clone()) else {
        return Err(ApiError::NotFound(format!("material {id} has no file")));
    };
    let size = u64::try_from(file.size.get()).unwrap_or(0);
    let etag = format!("\"{}\"", file.sha256.as_str());
    let mut response = HttpResponse::build(StatusCode::OK);
    http::cache_headers(&mut response, ctx.private);
    response.insert_header((header::ETAG, etag.clone()));
    response.insert_header((header::ACCEPT_RANGES, "bytes"));
    response.insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    if ctx
        .conditions
        .if_none_match
        .as_ref()
        .is_some_and(|tags| tags.matches_weakly(&etag))
    {
        return Ok(response.status(StatusCode::NOT_MODIFIED).finish());
    }
    let range = match asked_range(req, size, &etag) {
        Ok(range) => range,
        Err(()) => {
            let mut refused =
                actix_web::ResponseError::error_response(&ApiError::RangeNotSatisfiable(format!(
                    "the range is past the end of the file, which has {size} bytes"
                )));
            if let Ok(value) = header::HeaderValue::from_str(&format!("bytes */{size}")) {
                refused.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(refused);
        }
    };
    let download = settings
        .files
        .get(&key, range.clone())
        .await
        .map_err(ApiError::Unavailable)?;
    let served = download.range.clone();
    if range.is_some() {
        response.status(StatusCode::PARTIAL_CONTENT);
        response.insert_header((
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{size}",
                served.start,
                served.end.saturating_sub(1)
            ),
        ));
    }
    response.insert_header((header::CONTENT_TYPE, file.content_type.as_str()));
    response.insert_header(ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(file_name(
            &material,
            file.content_type.as_str(),
        ))],
    });
    let length = served.end - served.start;
    Ok(response.body(actix_web::body::SizedStream::new(length, download.bytes)))
}

/// A file's bytes, as uploaded and downloaded.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary, max_length = 109951162777600_usize)]
pub struct UploadBody(#[allow(dead_code)] Vec<u8>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_what_their_bytes_say() {
        assert_eq!(sniff(b"%PDF-1.7\n...").as_deref(), Ok("application/pdf"));
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").as_deref(),
            Ok("image/png")
        );
        assert_eq!(
            sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0").as_deref(),
            Ok("image/jpeg")
        );
        assert_eq!(
            sniff(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom").as_deref(),
            Ok("video/mp4")
        );
        assert_eq!(
            sniff("Notes from the round: café, naïve\n".as_bytes()).as_deref(),
            Ok(TEXT_PLAIN)
        );
        for refused in [
            &b"GIF89a\x01\0\x01\0"[..],
            b"MZ\x90\0\x03\0\0\0",
            b"<!DOCTYPE html><html><script>",
            b"binary\0with\0nulls",
            b"",
        ] {
            assert!(sniff(refused).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn a_text_head_may_end_inside_a_character() {
        // The head is read chunk by chunk until it holds HEAD_BYTES: it may hold more.
        let mut head = "é".repeat(files::HEAD_BYTES / 2).into_bytes();
        head.push(0xc3);
        assert_eq!(sniff(&head).as_deref(), Ok(TEXT_PLAIN));
        assert!(sniff(&head[..101]).is_err(), "a short file is whole");
    }

    #[test]
    fn links_are_https_or_http_on_an_allowed_host() {
        let hosts = vec!["intranet.example.org".to_owned()];
        assert!(check_url("https://example.org/slides.pdf", &[]).is_ok());
        assert!(check_url("http://intranet.example.org/x", &hosts).is_ok());
        assert!(check_url("http://INTRANET.example.org/x", &hosts).is_ok());
        assert!(
            check_url("http://example.org/x", &hosts).is_err_and(|e| e.starts_with(HTTP_REFUSED))
        );
        assert!(check_url("ftp://example.org/x", &hosts).is_err());
        assert!(check_url("javascript:alert(1)", &hosts).is_err());
        assert!(check_url("https://user:secret@example.org/", &hosts).is_err());
        assert!(check_url("/relative", &hosts).is_err());
    }

    #[test]
    fn visibility_follows_the_caller() {
        assert_eq!(Visibility::default(), Visibility::Organizers);
        assert_eq!(Visibility::ALL.len(), 3);
    }
}

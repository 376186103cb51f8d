//! Departments: the hospital units that organise rounds and that speakers belong to.

use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Caller, Role, Visible};
use crate::cache::{Key, ReadCache, Rendered};
use crate::db::{self, Database, DbConnection};
use crate::error::ApiError;
use crate::input::{merge_patch, Checked, ObjectReader, QueryReader};
use crate::openapi::{ReadErrors, WriteErrors};
use crate::pagination::{Page, Paging};
use crate::schema::{departments, round_departments, speakers};

pub const NAME_MAX: usize = 200;
pub const ABBREVIATION_MAX: usize = 20;
pub const DESCRIPTION_MAX: usize = 5000;

/// A department, as answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "name": "Division of Healthcare Quality", "abbreviation": "DHQ",
    "description": null, "created_at": "2019-01-02T15:00:00Z", "updated_at": "2019-01-02T15:00:00Z"
}))]
pub struct Department {
    pub id: i32,
    pub name: String,
    pub abbreviation: Option<String>,
    pub description: Option<String>,
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

/// A department, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Institute for Healthcare Delivery and Population Science", "abbreviation": "IHDPS"
}))]
pub struct DepartmentInput {
    /// Unique, ignoring case.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[schema(
        max_length = 20,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub abbreviation: Option<String>,
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    pub description: Option<String>,
}

impl DepartmentInput {
    pub fn read(body: Value) -> Checked<DepartmentInput> {
        let mut r = ObjectReader::new(body);
        let input = DepartmentInput {
            name: r.required_text("name", NAME_MAX),
            abbreviation: r.text("abbreviation", ABBREVIATION_MAX),
            description: r.text("description", DESCRIPTION_MAX),
        };
        r.finish(input)
    }
}

impl From<Department> for DepartmentInput {
    fn from(d: Department) -> Self {
        DepartmentInput {
            name: d.name,
            abbreviation: d.abbreviation,
            description: d.description,
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = departments)]
struct DepartmentRow {
    id: i32,
    name: String,
    abbreviation: Option<String>,
    description: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
}

impl From<DepartmentRow> for Department {
    fn from(row: DepartmentRow) -> Self {
        Department {
            id: row.id,
            name: row.name,
            abbreviation: row.abbreviation,
            description: row.description,
            created_by: row.created_by,
            updated_by: row.updated_by,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

/// Uniqueness ignores case in every script, which SQLite's `lower()` cannot do.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

// ---- persistence -------------------------------------------------------------------------

pub fn list(conn: &mut DbConnection, paging: Paging) -> Result<Page<Department>, ApiError> {
    let total = departments::table.count().get_result::<i64>(conn)?;
    let rows = departments::table
        .order((departments::name_key, departments::id))
        .limit(paging.limit)
        .offset(paging.offset)
        .select(DepartmentRow::as_select())
        .load(conn)?;
    Ok(paging.page(rows.into_iter().map(Department::from).collect(), total))
}

pub fn find(conn: &mut DbConnection, id: i32) -> Result<Department, ApiError> {
    crate::on_backend!(conn, |c| departments::table
        .find(id)
        .select(DepartmentRow::as_select())
        .first(c)
        .optional())?
    .map(Department::from)
    .ok_or_else(|| ApiError::not_found("department", id))
}

fn ensure_name_is_free(
    conn: &mut DbConnection,
    name: &str,
    except: Option<i32>,
) -> Result<(), ApiError> {
    let holder = departments::table
        .filter(departments::name_key.eq(name_key(name)))
        .select(departments::id)
        .first::<i32>(conn)
        .optional()?;
    match holder {
        Some(id) if Some(id) != except => Err(ApiError::Conflict(format!(
            "department {id} is already named \"{name}\" (names are unique, ignoring case)"
        ))),
        _ => Ok(()),
    }
}

pub fn insert(
    conn: &mut DbConnection,
    input: DepartmentInput,
    actor: Option<&str>,
) -> Result<Department, ApiError> {
    ensure_name_is_free(conn, &input.name, None)?;
    let now = db::now();
    let id = diesel::insert_into(departments::table)
        .values((
            departments::name_key.eq(name_key(&input.name)),
            departments::name.eq(&input.name),
            departments::abbreviation.eq(&input.abbreviation),
            departments::description.eq(&input.description),
            departments::created_at.eq(now),
            departments::updated_at.eq(now),
            departments::created_by.eq(actor),
            departments::updated_by.eq(actor),
        ))
        .returning(departments::id)
        .get_result::<i32>(conn)?;
    find(conn, id)
}

pub fn update(
    conn: &mut DbConnection,
    id: i32,
    input: DepartmentInput,
    actor: Option<&str>,
) -> Result<Department, ApiError> {
    find(conn, id)?;
    ensure_name_is_free(conn, &input.name, Some(id))?;
    diesel::update(departments::table.find(id))
        .set((
            departments::name_key.eq(name_key(&input.name)),
            departments::name.eq(&input.name),
            departments::abbreviation.eq(&input.abbreviation),
            departments::description.eq(&input.description),
            departments::updated_at.eq(db::now()),
            departments::updated_by.eq(actor),
        ))
        .execute(conn)?;
    find(conn, id)
}

pub fn delete(conn: &mut DbConnection, id: i32) -> Result<(), ApiError> {
    find(conn, id)?;
    let speakers = speakers::table
        .filter(speakers::department_id.eq(id))
        .count()
        .get_result::<i64>(conn)?;
    let rounds = round_departments::table
        .filter(round_departments::department_id.eq(id))
        .count()
        .get_result::<i64>(conn)?;
    if speakers > 0 || rounds > 0 {
        return Err(ApiError::Conflict(format!(
            "department {id} is still used by {}; change or delete them first",
            db::describe_counts(&[(speakers, "speaker"), (rounds, "round")])
        )));
    }
    diesel::delete(departments::table.find(id)).execute(conn)?;
    Ok(())
}

// ---- handlers ----------------------------------------------------------------------------

pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list_departments)
        .service(create_department)
        .service(get_department)
        .service(replace_department)
        .service(patch_department)
        .service(delete_department);
}

/// List departments, by name
#[utoipa::path(
    tag = "departments",
    security((), ("bearer" = [])),
    params(Paging),
    responses((status = 200, description = "A page of departments", body = Page<Department>), ReadErrors)
)]
#[get("/departments")]
pub async fn list_departments(
    db: web::Data<Database>,
    cache: web::Data<ReadCache>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require_reader()?;
    let mut query = QueryReader::new(req.query_string())?;
    let paging = Paging::read(&mut query);
    query.finish()?;
    let key = Key::new(&req, &caller);
    cache
        .answer(&db, key, move |conn| {
            Rendered::json(&list(conn, paging)?.visible_to(&caller))
        })
        .await
}

/// Create a department
#[utoipa::path(
    tag = "departments",
    security(("bearer" = ["admin"])),
    request_body = DepartmentInput,
    responses(
        (status = 201, description = "Created", body = Department,
            headers(("Location" = String, description = "URL of the new department"))),
        WriteErrors
    )
)]
#[post("/departments")]
pub async fn create_department(
    db: web::Data<Database>,
    caller: Caller,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let input = DepartmentInput::read(body.into_inner());
    let actor = caller.subject.clone();
    let created = db
        .write(move |conn| {
            let input = input.verify(conn)?;
            insert(conn, input, actor.as_deref())
        })
        .await?;
    Ok(crate::created(
        "departments",
        created.id,
        &created.visible_to(&caller),
    ))
}

/// Get a department
#[utoipa::path(
    tag = "departments",
    security((), ("bearer" = [])),
    params(("id" = i32, Path, minimum = 1, description = "Department id")),
    responses((status = 200, description = "The department", body = Department), ReadErrors)
)]
#[get("/departments/{id}")]
pub async fn get_department(
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

/// Replace a department
#[utoipa::path(
    tag = "departments",
    security(("bearer" = ["admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Department id")),
    request_body = DepartmentInput,
    responses((status = 200, description = "The department as replaced", body = Department), WriteErrors)
)]
#[put("/departments/{id}")]
pub async fn replace_department(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    let input = DepartmentInput::read(body.into_inner());
    let actor = caller.subject.clone();
    let department = db
        .write(move |conn| {
            find(conn, id)?;
            let input = input.verify(conn)?;
            update(conn, id, input, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(department.visible_to(&caller)))
}

/// Change some fields of a department (JSON merge patch)
#[utoipa::path(
    tag = "departments",
    security(("bearer" = ["admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Department id")),
    request_body(content = DepartmentPatch, content_type = "application/merge-patch+json",
        description = "Fields to change; `null` clears an optional field"),
    responses((status = 200, description = "The department as changed", body = Department), WriteErrors)
)]
#[patch("/departments/{id}")]
pub async fn patch_department(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
    body: web::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    let patch = body.into_inner();
    let actor = caller.subject.clone();
    let department = db
        .write(move |conn| {
            let mut doc = serde_json::to_value(DepartmentInput::from(find(conn, id)?))?;
            merge_patch(&mut doc, &patch);
            let input = DepartmentInput::read(doc).verify(conn)?;
            update(conn, id, input, actor.as_deref())
        })
        .await?;
    Ok(HttpResponse::Ok().json(department.visible_to(&caller)))
}

/// Delete a department that nothing refers to
#[utoipa::path(
    tag = "departments",
    security(("bearer" = ["admin"])),
    params(("id" = i32, Path, minimum = 1, description = "Department id")),
    responses((status = 204, description = "Deleted"), WriteErrors)
)]
#[delete("/departments/{id}")]
pub async fn delete_department(
    db: web::Data<Database>,
    caller: Caller,
    id: web::Path<i32>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    db.write(move |conn| delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A merge patch of a department: every field optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents the PATCH body; the body is read by `DepartmentInput::read`
pub struct DepartmentPatch {
    /// Required field: may be changed, not cleared.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    name: Option<String>,
    #[schema(
        max_length = 20,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    abbreviation: Option<String>,
    #[schema(
        max_length = 5000,
        pattern = r"^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]*$"
    )]
    description: Option<String>,
}

impl Visible for Department {
    fn visible_to(mut self, caller: &Caller) -> Self {
        if !caller.sees_private_fields() {
            self.created_by = None;
            self.updated_by = None;
        }
        self
    }
}

//! Departments: the hospital units that organise rounds and that speakers belong to.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::auth::{Caller, Role, Subject, Visible};
use crate::platform::db::{self, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::fields::{Id, Name, Text, Timestamp};
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{found, Access, Listing, NoFilter, Resource};
use crate::platform::schema::{departments, round_departments, speakers};
use crate::platform::validate::{ExistingIds, Input};

pub type DepartmentName = Name<200>;
pub type Abbreviation = Text<20>;
pub type Description = Text<5000>;

/// A department, as answered.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "name": "Division of Healthcare Quality", "abbreviation": "DHQ",
    "description": null, "created_at": "2019-01-02T15:00:00Z", "updated_at": "2019-01-02T15:00:00Z"
}))]
pub struct Department {
    pub id: Id,
    pub name: DepartmentName,
    pub abbreviation: Option<Abbreviation>,
    pub description: Option<Description>,
    /// The token subject that created it; shown to organizers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub created_by: Option<Subject>,
    /// The token subject that last changed it; shown to organizers and admins only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub updated_by: Option<Subject>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every write; the ETag is made from it.
    #[serde(skip)]
    #[schema(ignore)]
    pub version: i64,
}

/// A department, as written by POST and PUT (and patched by PATCH).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Institute for Healthcare Delivery and Population Science", "abbreviation": "IHDPS"
}))]
pub struct DepartmentInput {
    /// Unique, ignoring case.
    pub name: DepartmentName,
    pub abbreviation: Option<Abbreviation>,
    pub description: Option<Description>,
}

impl Input for DepartmentInput {}

#[derive(Queryable, Selectable)]
#[diesel(table_name = departments)]
struct DepartmentRow {
    id: i32,
    name: String,
    abbreviation: Option<String>,
    description: Option<String>,
    created_at: chrono::NaiveDateTime,
    updated_at: chrono::NaiveDateTime,
    created_by: Option<String>,
    updated_by: Option<String>,
    version: i64,
}

impl From<DepartmentRow> for Department {
    fn from(row: DepartmentRow) -> Self {
        Department {
            id: Id(row.id),
            name: Name::stored(row.name),
            abbreviation: row.abbreviation.map(Text::stored),
            description: row.description.map(Text::stored),
            created_by: row.created_by.map(Text::stored),
            updated_by: row.updated_by.map(Text::stored),
            created_at: Timestamp::from_naive(row.created_at),
            updated_at: Timestamp::from_naive(row.updated_at),
            version: row.version,
        }
    }
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

/// Uniqueness ignores case in every script, which SQLite's `lower()` cannot do.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

// ---- persistence -------------------------------------------------------------------------

/// Departments: what [`resource`] needs to serve them.
pub struct Departments;

impl Resource for Departments {
    const NAME: &'static str = "department";
    const COLLECTION: &'static str = "departments";
    const SCHEDULE: bool = true;
    type Record = Department;
    type Input = DepartmentInput;
    type Change = DepartmentInput;
    type Filter = NoFilter;

    fn authorize(caller: &Caller, access: Access) -> Result<(), ApiError> {
        match access {
            Access::Read => caller.require_reader(),
            Access::Create | Access::Change | Access::Delete => caller.require(Role::Admin),
        }
    }

    fn id(record: &Department) -> i32 {
        record.id.0
    }

    fn version(record: &Department) -> i64 {
        record.version
    }

    fn find(conn: &mut DbConnection, id: i32) -> Result<Option<Department>, ApiError> {
        Ok(crate::on_backend!(conn, |c| departments::table
            .find(id)
            .select(DepartmentRow::as_select())
            .first(c)
            .optional())?
        .map(Department::from))
    }

    fn list(
        conn: &mut DbConnection,
        _filter: &NoFilter,
        paging: Paging,
    ) -> Result<Listing<Department>, ApiError> {
        let total = departments::table.count().get_result::<i64>(conn)?;
        let rows = departments::table
            .order((departments::name_key, departments::id))
            .limit(paging.limit())
            .offset(paging.offset())
            .select(DepartmentRow::as_select())
            .load(conn)?;
        Ok(paging
            .page(rows.into_iter().map(Department::from).collect(), total)
            .into())
    }

    fn insert(
        conn: &mut DbConnection,
        input: DepartmentInput,
        actor: Option<&str>,
    ) -> Result<Department, ApiError> {
        ensure_name_is_free(conn, input.name.as_str(), None)?;
        let now = db::now();
        let row = crate::on_backend!(conn, |c| diesel::insert_into(departments::table)
            .values((
                departments::name_key.eq(name_key(input.name.as_str())),
                departments::name.eq(input.name.as_str()),
                departments::abbreviation.eq(Text::non_blank(input.abbreviation.as_ref())),
                departments::description.eq(Text::non_blank(input.description.as_ref())),
                departments::created_at.eq(now),
                departments::updated_at.eq(now),
                departments::created_by.eq(actor),
                departments::updated_by.eq(actor),
            ))
            .returning(DepartmentRow::as_returning())
            .get_result(c))?;
        Ok(row.into())
    }

    fn change_of(record: &Department) -> DepartmentInput {
        DepartmentInput {
            name: record.name.clone(),
            abbreviation: record.abbreviation.clone(),
            description: record.description.clone(),
        }
    }

    fn update(
        conn: &mut DbConnection,
        current: Department,
        input: DepartmentInput,
        actor: Option<&str>,
        expected: i64,
    ) -> Result<Option<Department>, ApiError> {
        let id = current.id.0;
        ensure_name_is_free(conn, input.name.as_str(), Some(id))?;
        let target = departments::table
            .find(id)
            .filter(departments::version.eq(expected));
        let row = crate::on_backend!(conn, |c| diesel::update(target)
            .set((
                departments::name_key.eq(name_key(input.name.as_str())),
                departments::name.eq(input.name.as_str()),
                departments::abbreviation.eq(Text::non_blank(input.abbreviation.as_ref())),
                departments::description.eq(Text::non_blank(input.description.as_ref())),
                departments::updated_at.eq(db::now()),
                departments::updated_by.eq(actor),
                departments::version.eq(departments::version + 1),
            ))
            .returning(DepartmentRow::as_returning())
            .get_result(c)
            .optional())?;
        Ok(row.map(Department::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        found(Departments::find(conn, id)?, Departments::NAME, id)?;
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
        let deleted = match expected {
            Some(version) => diesel::delete(
                departments::table
                    .find(id)
                    .filter(departments::version.eq(version)),
            )
            .execute(conn)?,
            None => diesel::delete(departments::table.find(id)).execute(conn)?,
        };
        Ok(deleted == 1)
    }
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

/// The department with this name, ignoring case (the demo loader reuses departments).
pub fn find_by_name(conn: &mut DbConnection, name: &str) -> Result<Option<i32>, ApiError> {
    Ok(departments::table
        .filter(departments::name_key.eq(name_key(name)))
        .select(departments::id)
        .first::<i32>(conn)
        .optional()?)
}

// ---- handlers ----------------------------------------------------------------------------

crate::resource_handlers! {
    Departments, one = "department", many = "departments", tag = "departments",
    record = Department, input = DepartmentInput, change = DepartmentInput,
    read = [(), ("bearer" = [])], write = [("bearer" = ["admin"])];
    list list_departments "/departments" "List departments, by name" [Paging];
    create create_department "/departments" "Create a department";
    get get_department "/departments/{id}" "Get a department";
    replace replace_department "/departments/{id}" "Replace a department";
    patch patch_department "/departments/{id}" "Change some fields of a department (JSON merge patch)";
    delete delete_department "/departments/{id}" "Delete a department that nothing refers to";
}

/// Which of the ids name a department.
pub const EXISTING: ExistingIds = crate::existing_ids!(departments);

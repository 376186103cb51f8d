//! Departments: the hospital units that organise rounds and that speakers belong to.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::platform::auth::Role;
use crate::platform::db::{self, DbConnection};
use crate::platform::error::ApiError;
use crate::platform::fields::{Id, Name, Text};
use crate::platform::pagination::{Page, Paging};
use crate::platform::resource::{found, Allowed, Audit, New, NoFilter, Resource, Update};
use crate::platform::schema::departments;
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
    #[serde(flatten)]
    pub audit: Audit,
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
            audit: crate::audit!(row),
        }
    }
}

/// Uniqueness ignores case in every script, which SQLite's `lower()` cannot do.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

crate::record!(Department);

// ---- persistence -------------------------------------------------------------------------

/// Departments: what [`resource`] needs to serve them.
pub struct Departments;

/// The columns a body writes, for `INSERT` and `UPDATE` alike.
macro_rules! written_columns {
    ($input:expr) => {
        (
            departments::name_key.eq(name_key($input.name.as_str())),
            departments::name.eq($input.name.as_str()),
            departments::abbreviation.eq(Text::non_blank($input.abbreviation.as_ref())),
            departments::description.eq(Text::non_blank($input.description.as_ref())),
        )
    };
}

impl Resource for Departments {
    crate::table_resource! {
        name "department" in "departments", schedule true, write Allowed::Role(Role::Admin);
        Department from DepartmentRow in departments, input DepartmentInput, change DepartmentInput;
        list NoFilter, by |_: &NoFilter| departments::table.into_boxed(), (departments::name_key, departments::id);
    }

    fn insert(conn: &mut DbConnection, new: New<Self>) -> Result<Department, ApiError> {
        ensure_name_is_free(conn, new.input.name.as_str(), None)?;
        let values = (
            written_columns!(new.input),
            crate::created_columns!(departments, new.actor),
        );
        Ok(crate::insert_row!(conn, departments, DepartmentRow, values)?.into())
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
        update: Update<Self>,
    ) -> Result<Option<Department>, ApiError> {
        let (id, input) = (update.current.id.0, &update.change);
        ensure_name_is_free(conn, input.name.as_str(), Some(id))?;
        let changes = (
            written_columns!(input),
            crate::updated_columns!(departments, update.actor),
        );
        let row = crate::update_row!(
            conn,
            departments,
            DepartmentRow,
            id,
            update.expected,
            changes
        )?;
        Ok(row.map(Department::from))
    }

    fn delete(conn: &mut DbConnection, id: i32, expected: Option<i64>) -> Result<bool, ApiError> {
        found(Departments::find(conn, id)?, Departments::NAME, id)?;
        let speakers = crate::count_rows!(conn, speakers, department_id, id)?;
        let rounds = crate::count_rows!(conn, round_departments, department_id, id)?;
        let initiatives = crate::count_rows!(conn, initiative_departments, department_id, id)?;
        db::refuse_while_used(
            &format!("department {id} is still used by"),
            &[
                (speakers, "speaker"),
                (rounds, "round"),
                (initiatives, "initiative"),
            ],
            "change or delete them first",
        )?;
        Ok(crate::delete_row!(conn, departments, id, expected)? == 1)
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

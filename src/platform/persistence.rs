//! What every resource stored in one table writes alike, said once: its `find` and `list`
//! (`table_resource!`), its rows inserted, updated and deleted by id and version, the audit
//! columns of a write, the rows that still refer to a record, and the ids a body may refer to.
//! Macros, because diesel's tables are types of their own: a function over any table would be
//! all bounds and no body.

/// A function, `fn(&mut DbConnection, &[i32]) -> Result<Vec<i32>, ApiError>`, that answers
/// which of the ids name a row of `$table` (the references a body makes are looked up with it:
/// see `validate::ExistingIds`).
#[macro_export]
macro_rules! existing_ids {
    ($table:ident) => {
        |conn: &mut $crate::platform::db::DbConnection,
         ids: &[i32]|
         -> Result<Vec<i32>, $crate::platform::error::ApiError> {
            use diesel::prelude::*;
            Ok($crate::platform::schema::$table::table
                .filter($crate::platform::schema::$table::id.eq_any(ids))
                .select($crate::platform::schema::$table::id)
                .load::<i32>(conn)?)
        }
    };
}

/// The audit columns of a new row of `$table`: created and updated now, by `$actor`.
#[macro_export]
macro_rules! created_columns {
    ($table:ident, $actor:expr) => {{
        let now = $crate::platform::db::now();
        (
            $crate::platform::schema::$table::created_at.eq(now),
            $crate::platform::schema::$table::updated_at.eq(now),
            $crate::platform::schema::$table::created_by.eq($actor),
            $crate::platform::schema::$table::updated_by.eq($actor),
        )
    }};
}

/// The audit columns of a change to a row of `$table`: updated now, by `$actor`, one version on.
#[macro_export]
macro_rules! updated_columns {
    ($table:ident, $actor:expr) => {
        (
            $crate::platform::schema::$table::updated_at.eq($crate::platform::db::now()),
            $crate::platform::schema::$table::updated_by.eq($actor),
            $crate::platform::schema::$table::version
                .eq($crate::platform::schema::$table::version + 1),
        )
    };
}

/// `INSERT INTO $table ... RETURNING` the new row as `$row`.
#[macro_export]
macro_rules! insert_row {
    ($conn:expr, $table:ident, $row:ty, $values:expr) => {{
        let values = $values;
        $crate::on_backend!($conn, |c| diesel::insert_into(
            $crate::platform::schema::$table::table
        )
        .values(values.clone())
        .returning(<$row>::as_returning())
        .get_result::<$row>(c))
    }};
}

/// `UPDATE $table SET ... WHERE id = $id AND version = $expected RETURNING` the row as `$row`:
/// `None` when the row is not at that version (or not there).
#[macro_export]
macro_rules! update_row {
    ($conn:expr, $table:ident, $row:ty, $id:expr, $expected:expr, $changes:expr) => {{
        use $crate::platform::schema::$table;
        let (target, changes) = (
            $table::table
                .find($id)
                .filter($table::version.eq($expected)),
            $changes,
        );
        $crate::on_backend!($conn, |c| diesel::update(target)
            .set(changes.clone())
            .returning(<$row>::as_returning())
            .get_result::<$row>(c)
            .optional())
    }};
}

/// `INSERT INTO $table` the ordered links of one owner, in one statement: a row
/// `($owner = $owner_id, $item, position)` for each `(item, position)` of `$links`; none when
/// `$links` is empty. The link tables of rounds and initiatives share this shape.
#[macro_export]
macro_rules! insert_ordered {
    ($conn:expr, $table:ident, $owner:ident = $owner_id:expr, $item:ident, $links:expr) => {{
        use $crate::platform::schema::$table;
        let owner: i32 = $owner_id;
        let rows: Vec<_> = $links
            .into_iter()
            .map(|(item, position): (i32, i32)| {
                (
                    $table::$owner.eq(owner),
                    $table::$item.eq(item),
                    $table::position.eq(position),
                )
            })
            .collect();
        if rows.is_empty() {
            Ok(0)
        } else {
            $crate::on_backend!($conn, |c| diesel::insert_into($table::table)
                .values(&rows)
                .execute(c))
        }
    }};
}

/// How many rows of `$table` have `$column` equal to `$value`.
#[macro_export]
macro_rules! count_rows {
    ($conn:expr, $table:ident, $column:ident, $value:expr) => {{
        use $crate::platform::schema::$table;
        $table::table
            .filter($table::$column.eq($value))
            .count()
            .get_result::<i64>($conn)
    }};
}

/// The part of a [`Resource`] impl that every resource stored in one table writes alike: its
/// names and rules, its types, and `find` and `list` from its row type and its list's query.
///
/// ```text
/// impl Resource for Departments {
///     crate::table_resource! {
///         name "department" in "departments", schedule true, write Allowed::Role(Role::Admin);
///         Department from DepartmentRow in departments, input DepartmentInput, change DepartmentInput;
///         list NoFilter, by |_: &NoFilter| departments::table.into_boxed(), (departments::name_key, departments::id);
///     }
///     ...
/// ```
#[macro_export]
macro_rules! table_resource {
    (
        name $name:literal in $collection:literal, schedule $schedule:literal,
        $(read $read:expr,)? $(create $create:expr,)? write $write:expr $(, delete $delete:expr)?;
        $record:ident from $row:ident in $table:ident, input $input:ty, change $change:ty;
        list $filter:ty, by $query:expr, $order:expr;
    ) => {
        const NAME: &'static str = $name;
        const COLLECTION: &'static str = $collection;
        const SCHEDULE: bool = $schedule;
        $(const READ: $crate::platform::resource::Allowed = $read;)?
        $(const CREATE: $crate::platform::resource::Allowed = $create;)?
        const WRITE: $crate::platform::resource::Allowed = $write;
        $(const DELETE: $crate::platform::resource::Allowed = $delete;)?
        type Record = $record;
        type Input = $input;
        type Change = $change;
        type Filter = $filter;

        fn find(
            conn: &mut $crate::platform::db::DbConnection,
            id: i32,
        ) -> Result<Option<$record>, $crate::platform::error::ApiError> {
            use diesel::prelude::*;
            Ok($crate::on_backend!(conn, |c| $crate::platform::schema::$table::table
                .find(id)
                .select($row::as_select())
                .first::<$row>(c)
                .optional())?
            .map($record::from))
        }

        fn list(
            conn: &mut $crate::platform::db::DbConnection,
            filter: &$filter,
            paging: $crate::platform::pagination::Paging,
        ) -> Result<$crate::platform::resource::Listing<$record>, $crate::platform::error::ApiError> {
            use diesel::prelude::*;
            let query = $query;
            let total = query(filter).count().get_result::<i64>(conn)?;
            let rows = query(filter)
                .order($order)
                .limit(paging.limit())
                .offset(paging.offset())
                .select($row::as_select())
                .load::<$row>(conn)?;
            Ok(paging
                .page(rows.into_iter().map($record::from).collect(), total)
                .into())
        }
    };
}

/// Deletes the row `id` of `$table`, only at version `$expected` when it is `Some`: how many
/// rows went (0 or 1).
#[macro_export]
macro_rules! delete_row {
    ($conn:expr, $table:ident, $id:expr, $expected:expr) => {{
        use diesel::prelude::*;
        use $crate::platform::schema::$table;
        match $expected {
            Some(version) => {
                diesel::delete($table::table.find($id).filter($table::version.eq(version)))
                    .execute($conn)
            }
            None => diesel::delete($table::table.find($id)).execute($conn),
        }
    }};
}

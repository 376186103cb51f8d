//! Pages of lists: `{"items": [...], "total": N, "limit": L, "offset": O}`.

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::input::QueryReader;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many items match, over all pages.
    #[schema(minimum = 0, example = 10)]
    pub total: i64,
    #[schema(minimum = 1, maximum = 100, example = 20)]
    pub limit: i64,
    #[schema(minimum = 0, example = 0)]
    pub offset: i64,
}

/// Which page of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100, default = 20)]
    pub limit: i64,
    /// Items to skip.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 2147483647, default = 0)]
    pub offset: i64,
}

impl Paging {
    pub const DEFAULT_LIMIT: i64 = 20;
    pub const MAX_LIMIT: i64 = 100;

    pub fn read(query: &mut QueryReader) -> Paging {
        Paging {
            limit: query
                .integer("limit", 1, Self::MAX_LIMIT)
                .unwrap_or(Self::DEFAULT_LIMIT),
            offset: query.integer("offset", 0, i64::from(i32::MAX)).unwrap_or(0),
        }
    }

    pub fn page<T>(self, items: Vec<T>, total: i64) -> Page<T> {
        Page {
            items,
            total,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

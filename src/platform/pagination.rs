//! Pages of lists: `{"items": [...], "total": N, "limit": L, "offset": O}`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::platform::fields::Int;

/// Items per page: 1 to 100.
pub type Limit = Int<1, 100>;
/// Items to skip.
pub type Offset = Int<0, 2147483647>;
/// A count of records.
pub type Count = Int<0, 2147483647>;

/// One page of a list. Its `items` hold at most `limit` records (the document says so, from
/// `limit`'s maximum).
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// How many items match, over all pages.
    #[schema(example = 10)]
    pub total: Count,
    #[schema(example = 20)]
    pub limit: Limit,
    #[schema(example = 0)]
    pub offset: Offset,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            limit: self.limit,
            offset: self.offset,
        }
    }
}

/// Which page of a list to return.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Items per page.
    #[param(inline, default = 20)]
    limit: Option<Limit>,
    /// Items to skip.
    #[param(inline, default = 0)]
    offset: Option<Offset>,
}

impl Paging {
    pub const DEFAULT_LIMIT: i64 = 20;

    pub fn new(limit: i64, offset: i64) -> Paging {
        Paging {
            limit: Limit::new(limit),
            offset: Offset::new(offset),
        }
    }

    pub fn limit(&self) -> i64 {
        self.limit.map_or(Self::DEFAULT_LIMIT, Limit::get)
    }

    pub fn offset(&self) -> i64 {
        self.offset.map_or(0, Offset::get)
    }

    pub fn page<T>(self, items: Vec<T>, total: i64) -> Page<T> {
        Page {
            items,
            total: Count::clamped(total),
            limit: Limit::clamped(self.limit()),
            offset: Offset::clamped(self.offset()),
        }
    }
}

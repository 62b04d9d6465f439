//! Relay connections with `totalCount`.
use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, SimpleObject};

use crate::store::page::{Cursor, PageRequest};

/// Extra connection field: how many items the whole list holds.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// Number of items in the list, all pages together.
    pub total_count: u64,
}

pub type Page<N> = Connection<Cursor, N, TotalCount>;

/// Turn a fetched page into a connection.
pub fn page<M, N: OutputType>(
    rows: Vec<M>,
    has_next: bool,
    request: &PageRequest,
    total_count: u64,
    cursor: impl Fn(&M) -> Cursor,
    node: impl Fn(M) -> N,
) -> Page<N> {
    let mut connection = Connection::with_additional_fields(
        request.after.is_some(),
        has_next,
        TotalCount { total_count },
    );
    connection.edges.extend(
        rows.into_iter()
            .map(|row| Edge::new(cursor(&row), node(row))),
    );
    connection
}

/// Whether the client selected `totalCount` (counting is skipped otherwise).
pub fn wants_total(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

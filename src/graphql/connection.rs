//! Relay connections with `totalCount`: the GraphQL face of the store's
//! keyset pages (cursor text, `SortDirection`, the `first`/`after` checks).
use async_graphql::connection::{Connection, CursorType, Edge};
use async_graphql::{Enum, InputValueError, OutputType, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::AppError;
use crate::store::page::{self, Cursor, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest};

/// A store cursor as a Relay cursor.
pub struct PageCursor(pub Cursor);

impl CursorType for PageCursor {
    type Error = AppError;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        Cursor::decode(s)
            .map(Self)
            .ok_or_else(|| AppError::bad_input("after", "is not a cursor returned by this API"))
    }

    fn encode_cursor(&self) -> String {
        self.0.encode()
    }
}

/// Sort direction of a list.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "crate::store::page::SortDirection")]
pub enum SortDirection {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// The check of every list's `first` argument, which async-graphql runs
/// before the guard and the resolver (`validator(custom = "page_size")`):
/// 0 to [`MAX_PAGE_SIZE`], worded as its own `minimum`/`maximum` word it.
pub fn page_size(first: &i32) -> Result<(), InputValueError<i32>> {
    async_graphql::validators::maximum(first, MAX_PAGE_SIZE as i64)?;
    async_graphql::validators::minimum(first, 0i64)
}

/// The page `first`, `after` and `direction` ask for, checked.
pub fn page_request(
    first: Option<i32>,
    after: Option<String>,
    direction: Option<page::SortDirection>,
) -> Result<PageRequest, AppError> {
    let first = match first {
        None => DEFAULT_PAGE_SIZE,
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| *n <= MAX_PAGE_SIZE)
            .ok_or_else(|| {
                AppError::bad_input("first", format!("must be between 0 and {MAX_PAGE_SIZE}"))
            })?,
    };
    let after = after
        .as_deref()
        .map(PageCursor::decode_cursor)
        .transpose()?
        .map(|c| c.0);
    Ok(PageRequest {
        first,
        after,
        direction: direction.unwrap_or_default(),
    })
}

/// Extra connection field: how many items the whole list holds.
#[derive(SimpleObject)]
pub struct TotalCount {
    /// Number of items in the list, all pages together.
    pub total_count: u64,
}

pub type Page<N> = Connection<PageCursor, N, TotalCount>;

/// The cursor of a row in a list ordered by its time (ties broken by id):
/// its creation, or what stands for it (a lead's reception, a read's time).
pub fn time_cursor(created_at: DateTime<Utc>, id: Uuid) -> Cursor {
    Cursor {
        created_at,
        id,
        ..Default::default()
    }
}

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
            .map(|row| Edge::new(PageCursor(cursor(&row)), node(row))),
    );
    connection
}

/// A fetched page (`rows`, and whether more follow) as a connection, with
/// `totalCount` from `count`, which runs only when the query selects it.
pub async fn counted_page<M, N: OutputType>(
    ctx: &async_graphql::Context<'_>,
    (rows, has_next): (Vec<M>, bool),
    request: &PageRequest,
    count: impl Future<Output = Result<u64, AppError>>,
    cursor: impl Fn(&M) -> Cursor,
    node: impl Fn(M) -> N,
) -> async_graphql::Result<Page<N>> {
    let total = total_if_selected(ctx, count).await?;
    Ok(page(rows, has_next, request, total, cursor, node))
}

/// Whether the client selected `totalCount` (counting is skipped otherwise).
pub fn wants_total(ctx: &async_graphql::Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

/// `totalCount`: `count` runs only when the query selects it (0 otherwise).
pub async fn total_if_selected(
    ctx: &async_graphql::Context<'_>,
    count: impl Future<Output = Result<u64, AppError>>,
) -> Result<u64, AppError> {
    if wants_total(ctx) { count.await } else { Ok(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_cursor_is_bad_input() {
        assert!(matches!(
            PageCursor::decode_cursor("zz"),
            Err(AppError::BadUserInput { .. })
        ));
    }

    #[test]
    fn page_size_is_capped() {
        assert!(page_request(Some(101), None, None).is_err());
        assert!(page_request(Some(-1), None, None).is_err());
        assert_eq!(
            page_request(None, None, None).unwrap().first,
            DEFAULT_PAGE_SIZE
        );
    }
}

//! Keyset pagination over (created_at, id): stable under inserts, and served
//! by the (created_at, id) indexes.
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, IntoColumnRef, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, IdenStatic, Order, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Select,
};
use uuid::Uuid;

use crate::error::AppError;

/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;
/// Page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: u64 = 20;

/// Opaque position in a list: the row's time in the list's order (its
/// creation time unless `key` says otherwise) and id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
    /// Which time `created_at` holds, so that a cursor of one order is not
    /// taken for a position in another.
    pub key: SortKey,
}

/// The time a list is sorted by.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum SortKey {
    #[default]
    CreatedAt,
    UpdatedAt,
}

impl Cursor {
    /// The cursor as handed to clients: opaque hex text.
    pub fn encode(&self) -> String {
        let at = self.created_at.timestamp_micros();
        hex::encode(match self.key {
            SortKey::CreatedAt => format!("{at}/{}", self.id),
            SortKey::UpdatedAt => format!("{at}/{}/u", self.id),
        })
    }

    /// The cursor `encode` wrote, or `None` for any other text.
    pub fn decode(s: &str) -> Option<Self> {
        let text = String::from_utf8(hex::decode(s).ok()?).ok()?;
        let mut parts = text.split('/');
        let (micros, id) = (parts.next()?, parts.next()?);
        let key = match parts.next() {
            None => SortKey::CreatedAt,
            Some("u") => SortKey::UpdatedAt,
            Some(_) => return None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: id.parse().ok()?,
            key,
        })
    }
}

/// Sort direction of a list (stored by saved views as `ASC`/`DESC`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SortDirection {
    /// Oldest first.
    Asc,
    /// Newest first.
    #[default]
    Desc,
}

/// A page request, validated (at most [`MAX_PAGE_SIZE`] rows).
#[derive(Clone, Debug)]
pub struct PageRequest {
    pub first: u64,
    pub after: Option<Cursor>,
    pub direction: SortDirection,
}

/// Fetch one page of `select`, ordered by (`created_at`, `id`). Returns the
/// rows and whether more follow.
pub async fn fetch<E, C>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    created_at: C,
    id: C,
    page: &PageRequest,
) -> Result<(Vec<E::Model>, bool), AppError>
where
    E: EntityTrait,
    C: ColumnTrait + IntoColumnRef + Copy,
{
    let mut select = select;
    if let Some(past) = after_cursor(created_at, id, page) {
        select = select.filter(past);
    }
    let order = match page.direction {
        SortDirection::Asc => Order::Asc,
        SortDirection::Desc => Order::Desc,
    };
    let mut rows = select
        .order_by(Expr::col(created_at), order.clone())
        .order_by(Expr::col(id), order)
        .limit(page.first + 1)
        .all(db)
        .await?;
    let has_next = rows.len() as u64 > page.first;
    rows.truncate(page.first as usize);
    Ok((rows, has_next))
}

/// Rows past the page's cursor, in its direction.
fn after_cursor<C: ColumnTrait>(created_at: C, id: C, page: &PageRequest) -> Option<Condition> {
    let after = page.after.as_ref()?;
    let (ts, id_val) = (after.created_at, after.id);
    Some(match page.direction {
        SortDirection::Asc => Condition::any()
            .add(created_at.gt(ts))
            .add(Condition::all().add(created_at.eq(ts)).add(id.gt(id_val))),
        SortDirection::Desc => Condition::any()
            .add(created_at.lt(ts))
            .add(Condition::all().add(created_at.eq(ts)).add(id.lt(id_val))),
    })
}

/// The same page of children for each of several parents, in one statement:
/// `ROW_NUMBER()` over each parent's rows keeps `first + 1` of them, so a
/// parent with thousands of children costs no more than the page.
pub async fn fetch_per_parent<E>(
    db: &impl ConnectionTrait,
    parents: Vec<Uuid>,
    page: &PageRequest,
) -> Result<HashMap<Uuid, (Vec<E::Model>, bool)>, AppError>
where
    E: Child,
    E::Column: IntoColumnRef + Copy,
{
    fetch_per_parent_where::<E>(db, parents, page, Condition::all()).await
}

/// [`fetch_per_parent`] over the children that also meet `condition`.
pub async fn fetch_per_parent_where<E>(
    db: &impl ConnectionTrait,
    parents: Vec<Uuid>,
    page: &PageRequest,
    condition: impl sea_orm::sea_query::IntoCondition,
) -> Result<HashMap<Uuid, (Vec<E::Model>, bool)>, AppError>
where
    E: Child,
    E::Column: IntoColumnRef + Copy,
{
    let (parent, created_at, id) = (E::PARENT, E::LISTED_AT, E::ID);
    let direction = match page.direction {
        SortDirection::Asc => "ASC",
        SortDirection::Desc => "DESC",
    };
    let rank = Expr::cust(format!(
        "ROW_NUMBER() OVER (PARTITION BY \"{p}\" ORDER BY \"{c}\" {direction}, \"{i}\" {direction})",
        p = parent.as_str(),
        c = created_at.as_str(),
        i = id.as_str(),
    ));
    let mut inner = E::find()
        .filter(parent.is_in(parents))
        .filter(condition)
        .column_as(rank, "page_rank");
    if let Some(past) = after_cursor(created_at, id, page) {
        inner = inner.filter(past);
    }
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner.into_query(), "ranked")
        .and_where(Expr::col("page_rank").lte(page.first + 1))
        .order_by("page_rank", Order::Asc)
        .to_owned();
    let statement = db.get_database_backend().build(&outer);
    let rows = E::find().from_raw_sql(statement).all(db).await?;
    let mut pages: HashMap<Uuid, (Vec<E::Model>, bool)> = HashMap::new();
    for row in rows {
        let (rows, has_next) = pages.entry(E::parent_of(&row)).or_default();
        if rows.len() as u64 == page.first {
            *has_next = true;
        } else {
            rows.push(row);
        }
    }
    Ok(pages)
}

/// How many children each parent has.
pub async fn count_per_parent<E>(
    db: &impl ConnectionTrait,
    parents: Vec<Uuid>,
) -> Result<HashMap<Uuid, u64>, AppError>
where
    E: Child,
    E::Column: IntoColumnRef + Copy,
{
    let parent = E::PARENT;
    let rows: Vec<(Uuid, i64)> = E::find()
        .select_only()
        .column(parent)
        .column_as(Expr::col(parent).count(), "n")
        .filter(parent.is_in(parents))
        .group_by(parent)
        .into_tuple()
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(id, n)| {
            u64::try_from(n)
                .map(|n| (id, n))
                .map_err(|_| AppError::Internal(format!("count {n} read for {id}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cursor_round_trips_with_the_time_it_holds() {
        for key in [SortKey::CreatedAt, SortKey::UpdatedAt] {
            let cursor = Cursor {
                created_at: DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap(),
                id: Uuid::now_v7(),
                key,
            };
            assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        }
    }

    #[test]
    fn a_creation_cursor_keeps_the_text_clients_already_hold() {
        let id = Uuid::nil();
        let old = hex::encode(format!("1780000000123456/{id}"));
        let cursor = Cursor::decode(&old).unwrap();
        assert_eq!(cursor.key, SortKey::CreatedAt);
        assert_eq!(cursor.encode(), old);
        assert_eq!(Cursor::decode(&hex::encode(format!("1/{id}/x"))), None);
    }

    use super::*;

    #[test]
    fn a_forged_cursor_is_not_a_cursor() {
        assert_eq!(Cursor::decode("zz"), None);
        assert_eq!(Cursor::decode(&hex::encode("12/not-a-uuid")), None);
    }
}

/// An entity listed by (time, id): `LISTED_AT` is the time column it is
/// listed by (`created_at`; a lead's `received_at`, an access's `at`).
pub trait Listed: EntityTrait {
    const LISTED_AT: Self::Column;
    const ID: Self::Column;
}

/// An entity whose rows are listed under a parent row: a lead under its
/// opportunity, a client's files under the client.
pub trait Child: Listed {
    /// The column naming the parent.
    const PARENT: Self::Column;
    fn parent_of(model: &Self::Model) -> Uuid;
}

/// A list's filter: the rows of its entity it keeps.
pub trait ListFilter {
    type Entity: Listed;
    fn apply(&self, select: Select<Self::Entity>) -> Select<Self::Entity>;
}

/// One page of `select`, in its entity's list order ([`Listed`]).
pub async fn fetch_listed<E>(
    db: &impl ConnectionTrait,
    select: Select<E>,
    page: &PageRequest,
) -> Result<(Vec<E::Model>, bool), AppError>
where
    E: Listed,
    E::Column: IntoColumnRef + Copy,
{
    fetch(db, select, E::LISTED_AT, E::ID, page).await
}

/// One page of the rows meeting every filter given (a saved view's and the
/// caller's), in the page's direction.
pub async fn list<F: ListFilter>(
    db: &impl ConnectionTrait,
    filters: &[&F],
    page: &PageRequest,
) -> Result<(Vec<<F::Entity as EntityTrait>::Model>, bool), AppError>
where
    <F::Entity as EntityTrait>::Column: IntoColumnRef + Copy,
{
    fetch_listed(db, filtered(filters), page).await
}

/// How many rows meet every filter given.
pub async fn count<F: ListFilter>(
    db: &impl ConnectionTrait,
    filters: &[&F],
) -> Result<u64, AppError>
where
    <F::Entity as EntityTrait>::Model: Send + Sync,
{
    Ok(filtered(filters).count(db).await?)
}

fn filtered<F: ListFilter>(filters: &[&F]) -> Select<F::Entity> {
    filters
        .iter()
        .fold(F::Entity::find(), |select, f| f.apply(select))
}

/// The newest `cap` children meeting `condition` of each of several
/// parents, in one statement.
pub async fn newest_per_parent<E>(
    db: &impl ConnectionTrait,
    parents: Vec<Uuid>,
    cap: u64,
    condition: impl sea_orm::sea_query::IntoCondition,
) -> Result<HashMap<Uuid, Vec<E::Model>>, AppError>
where
    E: Child,
    E::Column: IntoColumnRef + Copy,
{
    let newest = PageRequest {
        first: cap,
        after: None,
        direction: SortDirection::Desc,
    };
    let pages = fetch_per_parent_where::<E>(db, parents, &newest, condition).await?;
    Ok(pages.into_iter().map(|(k, (rows, _))| (k, rows)).collect())
}

/// `Listed` by the `$time` column, then `Id`.
macro_rules! listed {
    ($($entity:ident by $time:ident),* $(,)?) => {$(
        impl Listed for entity::$entity::Entity {
            const LISTED_AT: Self::Column = Self::Column::$time;
            const ID: Self::Column = Self::Column::Id;
        }
    )*};
}

listed!(
    client by CreatedAt,
    credit_request by CreatedAt,
    credit_request_access by At,
    lead by ReceivedAt,
    opportunity by CreatedAt,
    service_case by CreatedAt,
);

/// `Child` of the row its `$column` (model field `$field`) names.
macro_rules! child {
    ($($entity:ident under $column:ident = $field:ident),* $(,)?) => {$(
        impl Child for entity::$entity::Entity {
            const PARENT: Self::Column = Self::Column::$column;

            fn parent_of(model: &Self::Model) -> Uuid {
                model.$field
            }
        }
    )*};
}

// A client's files under the client; leads under their opportunity.
child!(
    credit_request under ClientId = client_id,
    lead under OpportunityId = opportunity_id,
    opportunity under ClientId = client_id,
    service_case under ClientId = client_id,
);

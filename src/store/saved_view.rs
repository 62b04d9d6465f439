//! Saved views ("filtres"): one row per view; a change touches that row only.
use chrono::{DateTime, Utc};
use entity::saved_view::{self, ViewModule, ViewVisibility};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use crate::domain::status::OpportunityStatus;
use crate::error::AppError;
use crate::store::opportunity::OpportunityFilter;

/// The stored filter of an opportunity view (GraphQL names).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredOpportunityFilter {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    /// Admin-only: a view holding it exists for admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiree: Option<bool>,
}

impl StoredOpportunityFilter {
    pub fn to_filter(&self) -> Result<OpportunityFilter, AppError> {
        Ok(OpportunityFilter {
            statuses: self
                .status
                .iter()
                .map(|s| s.parse::<OpportunityStatus>())
                .collect::<Result<_, _>>()
                .map_err(|e| AppError::Internal(format!("saved view filter: {e}")))?,
            client_id: self.client_id,
            expiree: self.expiree,
        })
    }
}

/// Both filters at once; `None` when no row can meet both.
pub fn both(a: &OpportunityFilter, b: &OpportunityFilter) -> Option<OpportunityFilter> {
    let statuses = match (a.statuses.is_empty(), b.statuses.is_empty()) {
        (true, _) => b.statuses.clone(),
        (_, true) => a.statuses.clone(),
        _ => {
            let common: Vec<_> = a
                .statuses
                .iter()
                .filter(|s| b.statuses.contains(s))
                .copied()
                .collect();
            if common.is_empty() {
                return None;
            }
            common
        }
    };
    fn same<T: PartialEq + Copy>(a: Option<T>, b: Option<T>) -> Option<Option<T>> {
        match (a, b) {
            (Some(x), Some(y)) if x != y => None,
            (x, y) => Some(x.or(y)),
        }
    }
    Some(OpportunityFilter {
        statuses,
        client_id: same(a.client_id, b.client_id)?,
        expiree: same(a.expiree, b.expiree)?,
    })
}

/// A new view.
pub struct NewView {
    pub module: ViewModule,
    pub name: String,
    pub visibility: ViewVisibility,
    pub owner: String,
    pub admin_only: bool,
    pub filter: serde_json::Value,
    pub sort_order: Option<serde_json::Value>,
}

/// Changes to one view; `None` leaves a field as it is.
#[derive(Default)]
pub struct ViewChanges {
    pub name: Option<String>,
    pub visibility: Option<ViewVisibility>,
    /// The new filter and whether it names an admin-only field.
    pub filter: Option<(serde_json::Value, bool)>,
    pub sort_order: Option<Option<serde_json::Value>>,
}

/// Whether `owner` (admin or not) may see `view`.
pub fn visible_to(view: &saved_view::Model, owner: &str, is_admin: bool) -> bool {
    (view.owner == owner || view.visibility == ViewVisibility::Shared)
        && (is_admin || !view.admin_only)
}

/// The caller's own views of `module` and the shared ones, oldest first.
pub async fn visible(
    db: &impl ConnectionTrait,
    module: ViewModule,
    owner: &str,
    is_admin: bool,
) -> Result<Vec<saved_view::Model>, AppError> {
    let mut select = saved_view::Entity::find()
        .filter(saved_view::Column::Module.eq(module))
        .filter(
            Condition::any()
                .add(saved_view::Column::Owner.eq(owner))
                .add(saved_view::Column::Visibility.eq(ViewVisibility::Shared)),
        );
    if !is_admin {
        select = select.filter(saved_view::Column::AdminOnly.eq(false));
    }
    Ok(select
        .order_by_asc(saved_view::Column::CreatedAt)
        .order_by_asc(saved_view::Column::Id)
        .all(db)
        .await?)
}

pub async fn create(
    db: &impl ConnectionTrait,
    new: NewView,
    now: DateTime<Utc>,
) -> Result<saved_view::Model, AppError> {
    let id = Uuid::now_v7();
    saved_view::Entity::insert(saved_view::ActiveModel {
        id: Set(id),
        module: Set(new.module),
        name: Set(new.name),
        visibility: Set(new.visibility),
        owner: Set(new.owner),
        admin_only: Set(new.admin_only),
        filter: Set(new.filter),
        sort_order: Set(new.sort_order),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    super::find::<saved_view::Entity>(db, id)
        .await?
        .ok_or_else(|| AppError::Internal("saved view vanished after insert".into()))
}

/// Change one view (by its id alone: no other row is touched).
pub async fn update(
    db: &impl ConnectionTrait,
    current: saved_view::Model,
    changes: ViewChanges,
    now: DateTime<Utc>,
) -> Result<saved_view::Model, AppError> {
    let id = current.id;
    let mut active: saved_view::ActiveModel = current.into();
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(visibility) = changes.visibility {
        active.visibility = Set(visibility);
    }
    if let Some((filter, admin_only)) = changes.filter {
        active.filter = Set(filter);
        active.admin_only = Set(admin_only);
    }
    if let Some(order) = changes.sort_order {
        active.sort_order = Set(order);
    }
    active.updated_at = Set(now);
    // By primary key: this row and no other.
    saved_view::Entity::update(active).exec(db).await?;
    super::find::<saved_view::Entity>(db, id)
        .await?
        .ok_or(AppError::NotFound("saved view"))
}

pub async fn delete(db: &impl ConnectionTrait, id: Uuid) -> Result<(), AppError> {
    saved_view::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

//! Leads: stored forever, read back by opportunity, client or submitter.
use entity::{lead, opportunity};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::page;
use super::write_batch::WriteBatch;
use crate::domain::lead_intake::VehicleOfInterest;
use crate::error::AppError;

/// The lead's vehicle of interest, decoded from its columns; `None` when
/// the lead named none.
pub fn vehicle_of(m: &lead::Model) -> Result<Option<VehicleOfInterest>, AppError> {
    let condition = m.vehicle_condition;
    let vehicle = VehicleOfInterest {
        year: m.vehicle_year,
        make: m.vehicle_make.clone(),
        model: m.vehicle_model.clone(),
        trim: m.vehicle_trim.clone(),
        vin: m.vehicle_vin.clone(),
        stock_number: m.vehicle_stock_number.clone(),
        condition,
    };
    Ok((vehicle != VehicleOfInterest::default()).then_some(vehicle))
}

/// The leads `ids` that exist, each with the opportunity it belongs to, in
/// one statement.
pub async fn with_opportunities(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<(lead::Model, Option<opportunity::Model>)>, AppError> {
    let belongs_to = lead::Entity::belongs_to(opportunity::Entity)
        .from(lead::Column::OpportunityId)
        .to(opportunity::Column::Id)
        .into();
    Ok(lead::Entity::find()
        .filter(super::one_of(
            db.get_database_backend(),
            lead::Column::Id,
            ids,
        ))
        .join(JoinType::LeftJoin, belongs_to)
        .select_also(opportunity::Entity)
        .all(db)
        .await?)
}

/// Store a lead as received (written when `batch` runs).
pub fn insert_into(batch: &mut WriteBatch, lead: &lead::Model) {
    batch.insert(lead::Entity::insert(lead::ActiveModel::from(lead.clone())).into_query());
}

/// The lead a principal already sent with this idempotency key.
pub async fn by_idempotency_key(
    db: &impl ConnectionTrait,
    submitted_by: &str,
    key: &str,
) -> Result<Option<lead::Model>, AppError> {
    Ok(lead::Entity::find()
        .filter(lead::Column::SubmittedBy.eq(submitted_by))
        .filter(lead::Column::IdempotencyKey.eq(key))
        .one(db)
        .await?)
}

/// The lead list (listed with [`page::list`]): every lead, or only those
/// one principal submitted.
pub struct SubmittedBy<'a>(pub Option<&'a str>);

impl page::ListFilter for SubmittedBy<'_> {
    type Entity = lead::Entity;

    fn apply(&self, select: sea_orm::Select<lead::Entity>) -> sea_orm::Select<lead::Entity> {
        select.apply_if(self.0, |select, sub| {
            select.filter(lead::Column::SubmittedBy.eq(sub))
        })
    }
}

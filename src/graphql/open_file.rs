//! Departments and `Client.openFiles` (SPEC 6): before handling a lead, an
//! agent checks the client's open files in every department. Closed by
//! status only; an expired opportunity is open like any other (SPEC 3).
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{Context, Enum, Result, Union};
use entity::{credit_request, opportunity, service_case};
use uuid::Uuid;

use super::credit_request::CreditRequest;
use super::loaders::StoreLoader;
use super::opportunity::Opportunity;
use super::service_case::ServiceCase;
use crate::error::AppError;
use crate::store;

/// Most open files listed for one client (the newest): the weight the
/// request limits give a plain list, so its cost is counted honestly.
pub const OPEN_FILES_CAP: u64 = super::limits::LIST_WEIGHT;

/// Département d'un dossier / The department a file belongs to.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::open_files::Department")]
pub enum Department {
    /// Ventes : les opportunités. / Sales: opportunities.
    Ventes,
    /// Service : les dossiers du service à la clientèle. / After-sales service cases.
    Service,
    /// Financement : les demandes de crédit. / Financing: credit requests.
    Financement,
}

/// Un dossier ouvert, de n'importe quel département / An open file of any department.
#[derive(Union)]
pub enum OpenFile {
    Opportunity(Opportunity),
    ServiceCase(ServiceCase),
    CreditRequest(CreditRequest),
}

/// One open file as loaded.
#[derive(Clone, Debug)]
pub enum OpenFileRow {
    Opportunity(opportunity::Model),
    ServiceCase(service_case::Model),
    CreditRequest(credit_request::Model),
}

impl OpenFileRow {
    fn sort_key(&self) -> (chrono::DateTime<chrono::Utc>, Uuid) {
        match self {
            Self::Opportunity(m) => (m.created_at, m.id),
            Self::ServiceCase(m) => (m.created_at, m.id),
            Self::CreditRequest(m) => (m.created_at, m.id),
        }
    }
}

/// The open files of a client (batched: three statements for any number of clients).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenFilesOf(pub Uuid);

impl Loader<OpenFilesOf> for StoreLoader {
    type Value = Vec<OpenFileRow>;
    type Error = Arc<AppError>;

    async fn load(
        &self,
        keys: &[OpenFilesOf],
    ) -> Result<HashMap<OpenFilesOf, Self::Value>, Self::Error> {
        let clients: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let db = self.db();
        let opportunities =
            store::open_files::opportunities_of_clients(db, clients.clone(), OPEN_FILES_CAP)
                .await?;
        let cases =
            store::service_case::open_of_clients(db, clients.clone(), OPEN_FILES_CAP).await?;
        let requests = store::credit_request::open_of_clients(db, clients, OPEN_FILES_CAP).await?;
        let mut files: HashMap<OpenFilesOf, Vec<OpenFileRow>> = HashMap::new();
        for (client, rows) in opportunities {
            files
                .entry(OpenFilesOf(client))
                .or_default()
                .extend(rows.into_iter().map(OpenFileRow::Opportunity));
        }
        for (client, rows) in cases {
            files
                .entry(OpenFilesOf(client))
                .or_default()
                .extend(rows.into_iter().map(OpenFileRow::ServiceCase));
        }
        for (client, rows) in requests {
            files
                .entry(OpenFilesOf(client))
                .or_default()
                .extend(rows.into_iter().map(OpenFileRow::CreditRequest));
        }
        for rows in files.values_mut() {
            // Newest first, every department together; the newest
            // `OPEN_FILES_CAP` of all (each kind was fetched up to the cap).
            rows.sort_by_key(|r| std::cmp::Reverse(r.sort_key()));
            rows.truncate(OPEN_FILES_CAP as usize);
        }
        Ok(files)
    }
}

/// `Client.openFiles`.
pub async fn open_files_of(ctx: &Context<'_>, client: Uuid) -> Result<Vec<OpenFile>> {
    let loader = ctx.data::<DataLoader<StoreLoader>>()?;
    let rows = loader
        .load_one(OpenFilesOf(client))
        .await?
        .unwrap_or_default();
    let credit_requests: Vec<Uuid> = rows
        .iter()
        .filter_map(|row| match row {
            OpenFileRow::CreditRequest(m) => Some(m.id),
            _ => None,
        })
        .collect();
    super::access_log::record_reads(
        ctx,
        &credit_requests,
        crate::store::access_log::ReadVia::OpenFiles,
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| match row {
            OpenFileRow::Opportunity(m) => OpenFile::Opportunity(Opportunity(m)),
            OpenFileRow::ServiceCase(m) => OpenFile::ServiceCase(ServiceCase(m)),
            OpenFileRow::CreditRequest(m) => OpenFile::CreditRequest(CreditRequest(m)),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_statuses_exclude_delivered_and_lost() {
        assert!(!crate::domain::open_files::open_opportunity_statuses().contains(&"PERDU"));
    }
}

//! The `…StatusChange` objects: one change of a record's status (from, to,
//! who, when). Each kind of record has its own type, told apart by its status
//! enum and by what a null `from` means for it. And the change of a file
//! (service case, credit request) by its `update…` mutation.
use async_graphql::Context;
use uuid::Uuid;

use super::viewer::api_and_caller;
use crate::error::AppError;
use crate::store::status_history::{self, FileStatus, StatusFile};

/// The caller changes the file `id`, now: to `status` (recorded in its
/// history) and the fields `changes` sets (see [`status_history::update`]).
pub(super) async fn update_file<F: StatusFile>(
    ctx: &Context<'_>,
    id: Uuid,
    status: Option<FileStatus<F>>,
    changes: F::ActiveModel,
) -> Result<F::Model, AppError> {
    let (api, who) = api_and_caller(ctx)?;
    let now = api.clock.now();
    status_history::update::<F>(&api.db, id, status, changes, &who.sub, now).await
}

/// Declares `$name`, the object of one status change of a record whose
/// status is stored as `$stored` and shown as `$status`; `$from_doc`
/// describes `from`.
macro_rules! status_change_object {
    ($name:ident($stored:ty) => $status:ty, from: $from_doc:literal $(,)?) => {
        pub struct $name(pub $crate::store::status_history::StatusChange<$stored>);

        #[::async_graphql::Object]
        impl $name {
            #[doc = $from_doc]
            async fn from(&self) -> Option<$status> {
                self.0.from.map(Into::into)
            }

            async fn to(&self) -> $status {
                self.0.to.into()
            }

            /// Who made the change (token subject).
            async fn changed_by(&self) -> &str {
                &self.0.by
            }

            async fn changed_at(&self) -> ::chrono::DateTime<::chrono::Utc> {
                self.0.at
            }
        }
    };
}

pub(super) use status_change_object;

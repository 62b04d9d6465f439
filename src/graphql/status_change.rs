//! The `…StatusChange` objects: one change of a record's status (from, to,
//! who, when). Each kind of record has its own type, told apart by its status
//! enum and by what a null `from` means for it.

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

//! The `…StatusChange` objects: one change of a record's status (from, to,
//! who, when). Each kind of record has its own type, told apart by its status
//! enum and by what a null `from` means for it.

/// Declares `$name`, the object of one status change held in a `$row` whose
/// fields `$from`, `$to`, `$by` and `$at` are the previous status, the new
/// one, who made the change and when; the statuses are shown as `$status`,
/// and `$from_doc` describes `from`.
macro_rules! status_change_object {
    (
        $name:ident($row:ty { $from:ident, $to:ident, $by:ident, $at:ident }) => $status:ty,
        from: $from_doc:literal $(,)?
    ) => {
        pub struct $name(pub $row);

        #[::async_graphql::Object]
        impl $name {
            #[doc = $from_doc]
            async fn from(&self) -> Option<$status> {
                self.0.$from.map(Into::into)
            }

            async fn to(&self) -> $status {
                self.0.$to.into()
            }

            /// Who made the change (token subject).
            async fn changed_by(&self) -> &str {
                &self.0.$by
            }

            async fn changed_at(&self) -> ::chrono::DateTime<::chrono::Utc> {
                self.0.$at
            }
        }
    };
}

pub(super) use status_change_object;

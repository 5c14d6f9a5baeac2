use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// What can go wrong in the persistence layer, classified for the caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The change would break a uniqueness or state rule; the message is safe to show.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached right now; retrying later may succeed.
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    #[error("database error")]
    Database(#[source] DbErr),
    /// A stored row does not decode into its Rust type (a status that names no variant, an
    /// unreadable snapshot, a NULL where none belongs): the data is wrong, not the request.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("object store unavailable")]
    Objects(#[from] object_store::Error),
}

impl StoreError {
    /// A row that does not decode, described for the logs.
    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }

    /// A unique-constraint violation becomes a conflict with the given explanation.
    pub fn conflict_on_unique(err: DbErr, message: &str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => StoreError::Conflict(message.to_string()),
            _ => err.into(),
        }
    }
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else if matches!(err, DbErr::RecordNotFound(_) | DbErr::RecordNotUpdated) {
            // RecordNotUpdated: an update by primary key matched no row, i.e. another
            // request deleted it after it was read.
            StoreError::NotFound
        } else if let DbErr::Type(what) | DbErr::Json(what) = err {
            // What sea-orm (and the enums' column mapping) report for a value that does not
            // decode.
            StoreError::Corrupt(what)
        } else {
            StoreError::Database(err)
        }
    }
}

/// Connection-level failures (pool exhausted, server gone), as opposed to bad queries.
fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                Sqlx::Io(_)
                    | Sqlx::PoolTimedOut
                    | Sqlx::PoolClosed
                    | Sqlx::WorkerCrashed
                    | Sqlx::Tls(_)
            ) || matches!(e.as_ref(), Sqlx::Database(db) if db.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08")))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_gone_between_read_and_update_is_not_found() {
        assert!(matches!(
            StoreError::from(DbErr::RecordNotUpdated),
            StoreError::NotFound
        ));
        assert!(matches!(
            StoreError::conflict_on_unique(DbErr::RecordNotUpdated, "taken"),
            StoreError::NotFound
        ));
    }
}

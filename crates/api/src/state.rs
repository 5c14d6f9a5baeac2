use broker::Publisher;
use sea_orm::DatabaseConnection;
use store::objects::Objects;

use crate::auth::KeyCache;

/// What every handler can reach.
pub struct AppState {
    pub db: DatabaseConnection,
    pub publisher: Publisher,
    pub objects: Objects,
    pub keys: KeyCache,
}

//! What the api's `/readyz` checks: its PostgreSQL pool, its publisher's RabbitMQ connection
//! and its shutdown flag (the handlers are [`http_support::health`]'s).

use http_support::{
    Shutdown,
    health::{Check, Dependencies},
};

use crate::state::AppState;

impl Dependencies for AppState {
    fn database(&self) -> Check<'_> {
        Box::pin(store::ping(&self.db))
    }

    fn broker(&self) -> Check<'_> {
        Box::pin(self.publisher.ready())
    }

    fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }
}

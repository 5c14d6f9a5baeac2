//! What each test owns: a database, a broker prefix and a storage directory, removed when the
//! test ends (even on panic).

use std::{path::PathBuf, time::Duration};

use migration::MigratorTrait;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use settings::Settings;
use uuid::Uuid;

/// Server holding the per-test databases; override with `TEST_DATABASE_SERVER`.
pub fn database_server() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Broker for tests; override with `TEST_AMQP_URL`.
pub fn amqp_url() -> String {
    std::env::var("TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// Per-test resources: a database, a broker prefix and a storage directory.
pub struct TestResources {
    pub database_name: String,
    pub prefix: String,
    pub storage_dir: PathBuf,
}

impl TestResources {
    pub fn new() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        Self {
            database_name: format!("test_{id}"),
            prefix: format!("test-{id}"),
            storage_dir: std::env::temp_dir().join(format!("pipelines-test-{id}")),
        }
    }

    pub fn database_url(&self) -> String {
        format!("{}/{}", database_server(), self.database_name)
    }

    /// Settings pointing at this test's resources, on a free port.
    pub fn settings(&self) -> Settings {
        let mut settings = Settings::default();
        settings.http.port = 0;
        settings.http.workers = 2;
        settings.database.url = SecretString::from(self.database_url());
        settings.database.max_connections = 8;
        settings.database.min_connections = 0;
        settings.amqp.url = SecretString::from(amqp_url());
        settings.amqp.prefix = self.prefix.clone();
        settings.storage.local_path = self.storage_dir.clone();
        // Short delay queues, so retries through them finish within a test.
        settings.retry.delays_seconds = vec![1, 2];
        settings.worker.health_port = 0;
        settings.scheduler.health_port = 0;
        // Tests wait on the scheduler's passes: keep them close together.
        settings.scheduler.tick_millis = 50;
        settings
    }

    /// Creates the database and applies every migration.
    pub async fn create_database(&self) -> anyhow::Result<DatabaseConnection> {
        let server = Database::connect(format!("{}/postgres", database_server())).await?;
        server
            .execute_unprepared(&format!("CREATE DATABASE \"{}\"", self.database_name))
            .await?;
        server.close().await?;
        let db = Database::connect(self.database_url()).await?;
        migration::Migrator::up(&db, None).await?;
        Ok(db)
    }

    async fn cleanup(&self) -> anyhow::Result<()> {
        let server = Database::connect(format!("{}/postgres", database_server())).await?;
        server
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.database_name
            ))
            .await?;
        let connection =
            broker::connect(&amqp_url(), "test-cleanup", Duration::from_secs(5)).await?;
        let channel = connection.create_channel().await?;
        broker::Topology::from_settings(&self.settings())
            .delete(&channel)
            .await?;
        let _ = std::fs::remove_dir_all(&self.storage_dir);
        Ok(())
    }
}

impl Default for TestResources {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestResources {
    fn drop(&mut self) {
        // Async clean-up from a synchronous Drop: a short-lived runtime on its own thread.
        let resources = TestResources {
            database_name: self.database_name.clone(),
            prefix: self.prefix.clone(),
            storage_dir: self.storage_dir.clone(),
        };
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime
                && let Err(e) = runtime.block_on(resources.cleanup())
            {
                eprintln!("test clean-up failed: {e:#}");
            }
            // Prevent the inner value's Drop from recursing.
            std::mem::forget(resources);
        });
        let _ = handle.join();
    }
}

//! Image bytes live in an object store: a local directory by default, any S3-compatible
//! store by configuration. Keys are `<tenant>/<library>/<image>` so a library's objects
//! can be removed by prefix.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::{
    ObjectStore, ObjectStoreExt, PutPayload, aws::AmazonS3Builder, local::LocalFileSystem,
    path::Path,
};
use secrecy::ExposeSecret;
use settings::{StorageBackend, StorageSettings};
use uuid::Uuid;

use crate::TenantId;

/// Shared handle to the configured object store.
#[derive(Clone, Debug)]
pub struct Objects {
    inner: Arc<dyn ObjectStore>,
}

impl Objects {
    /// Builds the store from settings, creating the local directory when needed.
    pub fn from_settings(settings: &StorageSettings) -> Result<Self, object_store::Error> {
        let inner: Arc<dyn ObjectStore> = match settings.backend {
            StorageBackend::Local => {
                std::fs::create_dir_all(&settings.local_path).map_err(|e| {
                    object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    }
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(&settings.local_path)?)
            }
            StorageBackend::S3 => {
                let s3 = &settings.s3;
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(&s3.bucket)
                    .with_allow_http(s3.allow_http);
                if !s3.region.is_empty() {
                    builder = builder.with_region(&s3.region);
                }
                if !s3.endpoint.is_empty() {
                    builder = builder.with_endpoint(&s3.endpoint);
                }
                if let Some(key) = &s3.access_key_id {
                    builder = builder.with_access_key_id(key.expose_secret());
                }
                if let Some(secret) = &s3.secret_access_key {
                    builder = builder.with_secret_access_key(secret.expose_secret());
                }
                Arc::new(builder.build()?)
            }
        };
        Ok(Self { inner })
    }

    /// The key an uploaded image is stored under.
    pub fn image_key(tenant: TenantId, library_id: Uuid, image_id: Uuid) -> String {
        format!("{}/{}/{}", tenant.0, library_id, image_id)
    }

    /// The prefix an image's thumbnails are stored under, inside its library's prefix (so
    /// deleting the library removes them too).
    pub fn thumbnail_prefix(tenant: TenantId, library_id: Uuid, image_id: Uuid) -> String {
        format!("{}/{}/thumbnails/{}", tenant.0, library_id, image_id)
    }

    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), object_store::Error> {
        self.inner
            .put(&Path::from(key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, object_store::Error> {
        self.inner.get(&Path::from(key)).await?.bytes().await
    }

    /// Deletes one object; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), object_store::Error> {
        match self.inner.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes every object under `prefix` (e.g. a library's images).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<(), object_store::Error> {
        let prefix = Path::from(prefix);
        let mut listing = self.inner.list(Some(&prefix));
        while let Some(meta) = listing.next().await {
            self.delete(meta?.location.as_ref()).await?;
        }
        Ok(())
    }
}

//! Images in a library: uploaded bytes (kept in the object store) or registered https URLs.

use bytes::Bytes;
use chrono::Utc;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait, TransactionTrait,
    sea_query::{JoinType, LockType},
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError, TenantId,
    entities::{images, job_items, jobs},
    libraries,
    objects::Objects,
};

/// An upload whose type and size the caller has already checked.
pub struct NewUpload {
    pub filename: String,
    pub media_type: String,
    pub bytes: Bytes,
}

/// Stores the bytes, then the row; if the row cannot be written the bytes are removed again.
pub async fn add_upload<C: ConnectionTrait>(
    db: &C,
    objects: &Objects,
    tenant: TenantId,
    library_id: Uuid,
    upload: NewUpload,
) -> Result<images::Model, StoreError> {
    libraries::find(db, tenant, library_id).await?;
    let id = Uuid::now_v7();
    let key = Objects::image_key(tenant, library_id, id);
    let size = upload.bytes.len() as i64;
    let hash = hex::encode(Sha256::digest(&upload.bytes));
    objects.put(&key, upload.bytes).await?;
    let inserted = images::Entity::insert(images::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        library_id: Set(library_id),
        filename: Set(upload.filename),
        source: Set("upload".into()),
        object_key: Set(Some(key.clone())),
        url: Set(None),
        media_type: Set(Some(upload.media_type)),
        width: Set(None),
        height: Set(None),
        size_bytes: Set(Some(size)),
        content_hash: Set(Some(hash)),
        created_at: Set(Utc::now().into()),
    })
    .exec_with_returning(db)
    .await;
    match inserted {
        Ok(model) => Ok(model),
        Err(err) => {
            if let Err(error) = objects.delete(&key).await {
                tracing::warn!(%error, %key, "could not remove the bytes of an image whose row failed");
            }
            Err(err.into())
        }
    }
}

/// Registers an image by its https URL; the worker fetches it when it runs.
pub async fn add_url<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    library_id: Uuid,
    url: &str,
    filename: &str,
    media_type: Option<&str>,
) -> Result<images::Model, StoreError> {
    libraries::find(db, tenant, library_id).await?;
    Ok(images::Entity::insert(images::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        library_id: Set(library_id),
        filename: Set(filename.to_string()),
        source: Set("url".into()),
        object_key: Set(None),
        url: Set(Some(url.to_string())),
        media_type: Set(media_type.map(str::to_string)),
        size_bytes: Set(None),
        content_hash: Set(None),
        created_at: Set(Utc::now().into()),
        width: Set(None),
        height: Set(None),
    })
    .exec_with_returning(db)
    .await?)
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    library_id: Uuid,
    image_id: Uuid,
) -> Result<images::Model, StoreError> {
    images::Entity::find_by_id(image_id)
        .filter(images::Column::TenantId.eq(tenant.0))
        .filter(images::Column::LibraryId.eq(library_id))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// A library's images, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    library_id: Uuid,
    page: PageRequest,
) -> Result<Page<images::Model>, StoreError> {
    libraries::find(db, tenant, library_id).await?;
    let query = images::Entity::find()
        .filter(images::Column::TenantId.eq(tenant.0))
        .filter(images::Column::LibraryId.eq(library_id));
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_desc(images::Column::CreatedAt)
        .order_by_desc(images::Column::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(db)
        .await?;
    Ok(Page { items, total })
}

/// The bytes of an uploaded image (`None` for a URL image).
pub async fn content(
    objects: &Objects,
    image: &images::Model,
) -> Result<Option<Bytes>, StoreError> {
    match &image.object_key {
        Some(key) => Ok(Some(objects.get(key).await?)),
        None => Ok(None),
    }
}

/// Deletes an image; refused while an unfinished item of a queued or running job needs it.
pub async fn delete(
    db: &DatabaseConnection,
    objects: &Objects,
    tenant: TenantId,
    library_id: Uuid,
    image_id: Uuid,
) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    let image = find(&txn, tenant, library_id, image_id).await?;
    // Lock the library like job submission does, so no job can pick the image up meanwhile.
    libraries::lock(&txn, tenant, library_id, LockType::Update).await?;
    let in_use = job_items::Entity::find()
        .join(JoinType::InnerJoin, job_items::Relation::Job.def())
        .filter(job_items::Column::ImageId.eq(image_id))
        .filter(jobs::Column::Status.is_in(["queued", "running"]))
        .filter(job_items::Column::Status.is_in(["pending", "running"]))
        .count(&txn)
        .await?;
    if in_use > 0 {
        return Err(StoreError::Conflict(
            "the image is still to be analysed by a queued or running job; cancel it or wait until it finishes".into(),
        ));
    }
    images::Entity::delete_by_id(image_id).exec(&txn).await?;
    txn.commit().await?;
    if let Some(key) = image.object_key
        && let Err(error) = objects.delete(&key).await
    {
        tracing::warn!(%error, %key, "could not delete an image's bytes");
    }
    let thumbnails = Objects::thumbnail_prefix(tenant, library_id, image_id);
    if let Err(error) = objects.delete_prefix(&thumbnails).await {
        tracing::warn!(%error, key = %thumbnails, "could not delete an image's thumbnails");
    }
    Ok(())
}

//! Images in a library: uploaded bytes (kept in the object store) or registered https URLs.

use bytes::Bytes;
use chrono::Utc;
use chrono::{DateTime, FixedOffset};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait, sea_query::LockType,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError, TenantId, entities::images, libraries, objects::Objects,
    work::stmt,
};

/// An upload whose type and size the caller has already checked.
pub struct NewUpload {
    pub filename: String,
    pub media_type: String,
    pub bytes: Bytes,
    /// Width and height in pixels, as the image's header declares them (`None`: unreadable).
    pub size: Option<(u32, u32)>,
}

/// An image registered by URL.
pub struct NewUrl<'a> {
    pub url: &'a str,
    pub filename: &'a str,
    pub media_type: Option<&'a str>,
    /// Width and height in pixels, when the client knows them (estimates use them).
    pub size: Option<(u32, u32)>,
}

/// Stores the bytes, then the row; if the row cannot be written the bytes are removed again.
pub async fn add_upload(
    db: &DatabaseConnection,
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
    let row = images::Model {
        id,
        tenant_id: tenant.0,
        library_id,
        filename: upload.filename,
        source: "upload".into(),
        object_key: Some(key.clone()),
        url: None,
        media_type: Some(upload.media_type),
        size_bytes: Some(size),
        content_hash: Some(hash),
        created_at: Utc::now().into(),
        width: upload.size.map(|(width, _)| pixels(width)),
        height: upload.size.map(|(_, height)| pixels(height)),
    };
    match insert(db, tenant, row).await {
        Ok(model) => Ok(model),
        Err(err) => {
            if let Err(error) = objects.delete(&key).await {
                tracing::warn!(%error, %key, "could not remove the bytes of an image whose row failed");
            }
            Err(err)
        }
    }
}

/// Registers an image by its https URL; the worker fetches it when it runs.
pub async fn add_url(
    db: &DatabaseConnection,
    tenant: TenantId,
    library_id: Uuid,
    new: NewUrl<'_>,
) -> Result<images::Model, StoreError> {
    let row = images::Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        library_id,
        filename: new.filename.to_string(),
        source: "url".into(),
        object_key: None,
        url: Some(new.url.to_string()),
        media_type: new.media_type.map(str::to_string),
        size_bytes: None,
        content_hash: None,
        created_at: Utc::now().into(),
        width: new.size.map(|(width, _)| pixels(width)),
        height: new.size.map(|(_, height)| pixels(height)),
    };
    insert(db, tenant, row).await
}

/// A side in pixels as stored (the column is an `integer`; no image is that large).
fn pixels(side: u32) -> i32 {
    i32::try_from(side.max(1)).unwrap_or(i32::MAX)
}

/// Writes an image row under the library's `KEY SHARE` lock, stamped with the database's
/// clock read after the lock: a job submission holds the library `FOR UPDATE` and takes the
/// images created up to then, so an image written after it waits for it and is stamped
/// later, and one it did not count never looks older than the job. (`created_at` of `row` is
/// replaced.)
async fn insert(
    db: &DatabaseConnection,
    tenant: TenantId,
    row: images::Model,
) -> Result<images::Model, StoreError> {
    let txn = db.begin().await?;
    libraries::lock(&txn, tenant, row.library_id, LockType::KeyShare).await?;
    let now: DateTime<FixedOffset> = txn
        .query_one_raw(stmt("SELECT clock_timestamp() AS now", vec![]))
        .await?
        .ok_or_else(|| StoreError::corrupt("the database has no clock"))?
        .try_get("", "now")?;
    let mut model = images::ActiveModel::from(row);
    model.created_at = Set(now);
    let inserted = images::Entity::insert(model)
        .exec_with_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(inserted)
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

/// Whether a queued or running job still needs an image (`$1` tenant, `$2` library, `$3`
/// image, `$4` its `created_at`): its item is pending or running, or the job's selection
/// holds the image (named in `image_ids`, or a whole-library job as of a time not before the
/// image) and its item is not written yet, or is written and unfinished. Jobs are found by the
/// `jobs_unfinished` index, items by `(job_id, image_id)`.
const IN_USE: &str = r#"
SELECT EXISTS (
    SELECT 1 FROM jobs j
    WHERE j.tenant_id = $1 AND j.library_id = $2 AND j.status IN ('queued', 'running')
      AND ((j.image_ids IS NULL AND j.images_as_of >= $4) OR $3 = ANY(j.image_ids))
      AND NOT EXISTS (
          SELECT 1 FROM job_items i
          WHERE i.job_id = j.id AND i.image_id = $3 AND i.status NOT IN ('pending', 'running'))
) OR EXISTS (
    SELECT 1 FROM job_items i JOIN jobs j ON j.id = i.job_id
    WHERE i.image_id = $3 AND i.status IN ('pending', 'running')
      AND j.status IN ('queued', 'running')
) AS in_use
"#;

/// Deletes an image; refused while a queued or running job still needs it (its item is
/// unfinished, or not written yet).
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
    let in_use = txn
        .query_one_raw(stmt(
            IN_USE,
            vec![
                tenant.0.into(),
                library_id.into(),
                image_id.into(),
                image.created_at.into(),
            ],
        ))
        .await?
        .map(|row| row.try_get::<bool>("", "in_use"))
        .transpose()?
        .unwrap_or(false);
    if in_use {
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

//! Libraries: a tenant's named collections of images.

use std::collections::HashMap;

use chrono::Utc;
use domain::validation::Name;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait, sea_query::LockType,
};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError, TenantId,
    entities::{images, jobs, libraries},
    objects::Objects,
};

const NAME_TAKEN: &str = "a library with this name already exists";

/// A library with the number of images it holds.
#[derive(Debug, Clone)]
pub struct LibraryView {
    pub library: libraries::Model,
    pub image_count: u64,
}

/// Finds one of the tenant's libraries; another tenant's is [`StoreError::NotFound`].
pub async fn find<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<libraries::Model, StoreError> {
    libraries::Entity::find_by_id(id)
        .filter(libraries::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Finds and row-locks a library for the rest of the transaction: `Share` while a job is
/// being accepted for it, `Update` while it or one of its images is being deleted.
pub async fn lock<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
    mode: LockType,
) -> Result<libraries::Model, StoreError> {
    libraries::Entity::find_by_id(id)
        .filter(libraries::Column::TenantId.eq(tenant.0))
        .lock(mode)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

pub async fn create<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    name: &Name,
    description: Option<&str>,
) -> Result<LibraryView, StoreError> {
    let now = Utc::now();
    let library = libraries::Entity::insert(libraries::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(tenant.0),
        name: Set(name.as_str().to_owned()),
        description: Set(description.map(str::to_string)),
        created_at: Set(now.into()),
        updated_at: Set(now.into()),
        image_count: Set(0),
        newest_image_at: Set(None),
    })
    .exec_with_returning(db)
    .await
    .map_err(|e| StoreError::conflict_on_unique(e, NAME_TAKEN))?;
    Ok(LibraryView {
        library,
        image_count: 0,
    })
}

pub async fn get<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
) -> Result<LibraryView, StoreError> {
    let library = find(db, tenant, id).await?;
    let counts = image_counts(db, &[id]).await?;
    Ok(LibraryView {
        image_count: counts.get(&id).copied().unwrap_or(0),
        library,
    })
}

/// The tenant's libraries, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    page: PageRequest,
) -> Result<Page<LibraryView>, StoreError> {
    let query = libraries::Entity::find().filter(libraries::Column::TenantId.eq(tenant.0));
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_desc(libraries::Column::CreatedAt)
        .order_by_desc(libraries::Column::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = rows.iter().map(|l| l.id).collect();
    let counts = image_counts(db, &ids).await?;
    let items = rows
        .into_iter()
        .map(|library| LibraryView {
            image_count: counts.get(&library.id).copied().unwrap_or(0),
            library,
        })
        .collect();
    Ok(Page { items, total })
}

async fn image_counts<C: ConnectionTrait>(
    db: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, u64>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, i64)> = images::Entity::find()
        .select_only()
        .column(images::Column::LibraryId)
        .column_as(images::Column::Id.count(), "n")
        .filter(images::Column::LibraryId.is_in(ids.iter().copied()))
        .group_by(images::Column::LibraryId)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, n)| (id, n.max(0) as u64))
        .collect())
}

/// Renames a library and/or changes its description (`Some(None)` clears it).
pub async fn update<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    id: Uuid,
    name: Option<&Name>,
    description: Option<Option<&str>>,
) -> Result<LibraryView, StoreError> {
    let existing = find(db, tenant, id).await?;
    let mut model: libraries::ActiveModel = existing.into();
    if let Some(name) = name {
        model.name = Set(name.as_str().to_owned());
    }
    if let Some(description) = description {
        model.description = Set(description.map(str::to_string));
    }
    model.updated_at = Set(Utc::now().into());
    libraries::Entity::update(model)
        .exec(db)
        .await
        .map_err(|e| StoreError::conflict_on_unique(e, NAME_TAKEN))?;
    get(db, tenant, id).await
}

/// Deletes a library, its images and their bytes; refused while a queued or running job uses it.
///
/// The library row is locked `FOR UPDATE`, and job submission locks it `FOR SHARE`, so a job
/// cannot be accepted for a library that is being deleted.
pub async fn delete(
    db: &DatabaseConnection,
    objects: &Objects,
    tenant: TenantId,
    id: Uuid,
) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    lock(&txn, tenant, id, LockType::Update).await?;
    let active = jobs::Entity::find()
        .filter(jobs::Column::LibraryId.eq(id))
        .filter(jobs::Column::Status.is_in(["queued", "running"]))
        .count(&txn)
        .await?;
    if active > 0 {
        return Err(StoreError::Conflict(format!(
            "the library is used by {active} queued or running job(s); cancel them or wait until they finish"
        )));
    }
    libraries::Entity::delete_by_id(id).exec(&txn).await?;
    txn.commit().await?;
    // The rows are gone; the bytes follow. A failure here leaves unreachable objects, not broken rows.
    if let Err(error) = objects.delete_prefix(&format!("{}/{}", tenant.0, id)).await {
        tracing::warn!(%error, library_id = %id, "could not delete the library's objects");
    }
    Ok(())
}

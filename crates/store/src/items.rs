//! A job's items (one per image) as a dashboard shows them: a page filtered by stage and
//! outcome (a segment of the job's funnel), one item with its results at every stage, and the
//! failed items grouped by error class. Reached only through a job of the tenant's.

use domain::{
    job::{ErrorClass, ItemStatus, StopReason},
    pipeline::PipelineSnapshot,
};
use sea_orm::{ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder};
use uuid::Uuid;

use crate::{
    Page, PageRequest, StoreError, TenantId,
    entities::{job_results, jobs},
    work::stmt,
};

/// Which items to list; both optional.
#[derive(Debug, Default, Clone, Copy)]
pub struct ItemFilter {
    /// With an outcome: the items with that outcome at this stage (`passed`/`filtered_out`:
    /// the stage's filter verdict; any other: items in that state at this stage). Alone: the
    /// items that reached this stage.
    pub stage: Option<i32>,
    /// Without a stage: the items in this state.
    pub outcome: Option<ItemStatus>,
}

/// One item with its image's name.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ItemRow {
    pub id: Uuid,
    pub image_id: Uuid,
    /// `None` when the image has since been deleted.
    pub image_name: Option<String>,
    pub status: ItemStatus,
    pub current_stage: i32,
    pub attempts: i32,
    pub error_class: Option<ErrorClass>,
    pub last_error: Option<String>,
    /// Why it was skipped, when it was.
    pub skip_reason: Option<StopReason>,
    pub updated_at: sea_orm::prelude::DateTimeWithTimeZone,
}

/// One item with what its job ran and what each stage answered.
#[derive(Debug, Clone)]
pub struct ItemDetail {
    pub item: ItemRow,
    pub snapshot: PipelineSnapshot,
    /// In stage order.
    pub results: Vec<job_results::Model>,
}

/// The failed items of one error class.
#[derive(Debug, Clone, FromQueryResult)]
pub struct ErrorGroup {
    /// `None` for failures recorded without a class.
    pub error_class: Option<ErrorClass>,
    pub count: i64,
    /// The message of the most recently failed item of the class, and that item.
    pub sample_message: Option<String>,
    pub sample_item_id: Uuid,
}

/// `NotFound` unless the job is the tenant's.
async fn job_of_tenant<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    job_id: Uuid,
) -> Result<jobs::Model, StoreError> {
    jobs::Entity::find_by_id(job_id)
        .filter(sea_orm::ColumnTrait::eq(&jobs::Column::TenantId, tenant.0))
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)
}

const ITEM_COLUMNS: &str = r#"i.id, i.image_id, img.filename AS image_name, i.status,
    i.current_stage, i.attempts, i.error_class, i.last_error, i.skip_reason, i.updated_at"#;

/// A page of a job's items, in the order they were created (the library's order).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    job_id: Uuid,
    filter: ItemFilter,
    page: PageRequest,
) -> Result<Page<ItemRow>, StoreError> {
    job_of_tenant(db, tenant, job_id).await?;
    // $2: stage, $3: outcome. A stage's verdicts are its results; other outcomes are states.
    let condition = r#"i.job_id = $1
        AND CASE
            WHEN $2::int IS NULL THEN $3::text IS NULL OR i.status = $3
            WHEN $3::text IN ('passed', 'filtered_out') THEN EXISTS (
                SELECT 1 FROM job_results r
                WHERE r.item_id = i.id AND r.stage_index = $2
                  AND r.passed = ($3 = 'passed'))
            WHEN $3::text IS NULL THEN i.current_stage >= $2
            ELSE i.status = $3 AND i.current_stage = $2
        END"#;
    let values = || -> Vec<sea_orm::Value> {
        vec![job_id.into(), filter.stage.into(), filter.outcome.into()]
    };
    let total: i64 = db
        .query_one_raw(stmt(
            &format!("SELECT count(*) AS total FROM job_items i WHERE {condition}"),
            values(),
        ))
        .await?
        .ok_or(StoreError::NotFound)?
        .try_get("", "total")?;
    let mut values = values();
    values.push((page.limit as i64).into());
    values.push((page.offset as i64).into());
    let rows = db
        .query_all_raw(stmt(
            &format!(
                "SELECT {ITEM_COLUMNS} FROM job_items i LEFT JOIN images img ON img.id = i.image_id
                 WHERE {condition} ORDER BY i.position, i.id LIMIT $4 OFFSET $5"
            ),
            values,
        ))
        .await?;
    let items = rows
        .iter()
        .map(|row| ItemRow::from_query_result(row, ""))
        .collect::<Result<_, _>>()?;
    Ok(Page {
        items,
        total: total as u64,
    })
}

/// One item of the job, with the job's pipeline snapshot and the item's results.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    job_id: Uuid,
    item_id: Uuid,
) -> Result<ItemDetail, StoreError> {
    let job = job_of_tenant(db, tenant, job_id).await?;
    let row = db
        .query_one_raw(stmt(
            &format!(
                "SELECT {ITEM_COLUMNS} FROM job_items i LEFT JOIN images img ON img.id = i.image_id
                 WHERE i.job_id = $1 AND i.id = $2"
            ),
            vec![job_id.into(), item_id.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    let item = ItemRow::from_query_result(&row, "")?;
    let snapshot: PipelineSnapshot =
        serde_json::from_value(job.pipeline_snapshot).map_err(|e| {
            StoreError::corrupt(format!(
                "job {job_id} has an unreadable pipeline snapshot: {e}"
            ))
        })?;
    let results = job_results::Entity::find()
        .filter(sea_orm::ColumnTrait::eq(
            &job_results::Column::ItemId,
            item_id,
        ))
        .order_by_asc(job_results::Column::StageIndex)
        .all(db)
        .await?;
    Ok(ItemDetail {
        item,
        snapshot,
        results,
    })
}

/// The job's failed items grouped by error class, largest group first.
pub async fn errors<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    job_id: Uuid,
) -> Result<Vec<ErrorGroup>, StoreError> {
    job_of_tenant(db, tenant, job_id).await?;
    let rows = db
        .query_all_raw(stmt(
            r#"SELECT error_class, count(*) AS count,
                      (array_agg(last_error ORDER BY updated_at DESC, id))[1] AS sample_message,
                      (array_agg(id ORDER BY updated_at DESC, id))[1] AS sample_item_id
               FROM job_items WHERE job_id = $1 AND status = 'failed'
               GROUP BY error_class ORDER BY count(*) DESC, error_class"#,
            vec![job_id.into()],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|row| ErrorGroup::from_query_result(row, ""))
        .collect::<Result<_, _>>()?)
}

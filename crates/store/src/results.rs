//! Job results: one row per (item, stage), listed a page at a time or read whole, in
//! chunks, for export. Both are reached only through a job of the tenant's.

use domain::job::Verdict;
use futures::stream::{self, BoxStream};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, prelude::DateTimeWithTimeZone,
    sea_query::Expr,
};
use uuid::Uuid;

use crate::{Page, PageRequest, StoreError, TenantId, entities::job_results};

/// Rows read per query when a job's results are exported.
pub const EXPORT_CHUNK_ROWS: u64 = 1000;

/// Filters of a job's results; all optional and combined with AND.
#[derive(Debug, Default, Clone)]
pub struct ResultFilter {
    pub stage_index: Option<i32>,
    pub verdict: Option<Verdict>,
    pub image_id: Option<Uuid>,
}

/// A page of a job's results, with the names of the job's stages (from its pipeline
/// snapshot, indexed by stage index) to label them.
#[derive(Debug, Clone)]
pub struct ResultPage {
    pub stage_names: Vec<String>,
    pub results: Page<job_results::Model>,
}

/// All of a job's results as a stream of chunks in (stage, time, id) order, with the
/// names of the job's stages.
pub struct ResultExport {
    pub stage_names: Vec<String>,
    pub chunks: BoxStream<'static, Result<Vec<job_results::Model>, StoreError>>,
}

/// The names of a job's stages as they were at submission, in stage order.
/// `NotFound` when the job is not the tenant's.
pub async fn stage_names<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    job_id: Uuid,
) -> Result<Vec<String>, StoreError> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            r#"SELECT ARRAY(
                   SELECT coalesce(s ->> 'name', '')
                   FROM jsonb_array_elements(j.pipeline_snapshot -> 'stages') WITH ORDINALITY AS t(s, i)
                   ORDER BY i
               ) AS stage_names
               FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2"#,
            [job_id.into(), tenant.0.into()],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(row.try_get("", "stage_names")?)
}

/// A job's results, ordered by stage, then creation time, then id.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    job_id: Uuid,
    filter: &ResultFilter,
    page: PageRequest,
) -> Result<ResultPage, StoreError> {
    let stage_names = stage_names(db, tenant, job_id).await?;
    let mut query = job_results::Entity::find().filter(job_results::Column::JobId.eq(job_id));
    if let Some(stage) = filter.stage_index {
        query = query.filter(job_results::Column::StageIndex.eq(stage));
    }
    if let Some(verdict) = filter.verdict {
        query = query.filter(job_results::Column::Passed.eq(verdict.passed()));
    }
    if let Some(image_id) = filter.image_id {
        query = query.filter(job_results::Column::ImageId.eq(image_id));
    }
    let total = query.clone().count(db).await?;
    let items = query
        .order_by_asc(job_results::Column::StageIndex)
        .order_by_asc(job_results::Column::CreatedAt)
        .order_by_asc(job_results::Column::Id)
        .limit(page.limit)
        .offset(page.offset)
        .all(db)
        .await?;
    Ok(ResultPage {
        stage_names,
        results: Page { items, total },
    })
}

/// Position of a result in export order; the next chunk starts after it.
type ExportKey = (i32, DateTimeWithTimeZone, Uuid);

/// All of a job's results, read lazily with keyset pagination, `chunk_rows` rows per query,
/// so memory stays flat however many results the job has. `NotFound` (before any row is
/// read) when the job is not the tenant's.
pub async fn export(
    db: &DatabaseConnection,
    tenant: TenantId,
    job_id: Uuid,
    chunk_rows: u64,
) -> Result<ResultExport, StoreError> {
    let stage_names = stage_names(db, tenant, job_id).await?;
    let chunk_rows = chunk_rows.max(1);
    // State: the key after which to read, or `None` once the last chunk has been read.
    let start: Option<Option<ExportKey>> = Some(None);
    let db = db.clone();
    let chunks = stream::unfold(start, move |state| {
        let db = db.clone();
        async move {
            let after = state?;
            match export_chunk(&db, job_id, after, chunk_rows).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = (rows.len() as u64 == chunk_rows)
                        .then(|| rows.last().map(|r| (r.stage_index, r.created_at, r.id)))
                        .flatten();
                    Some((Ok(rows), next.map(Some)))
                }
                Err(err) => Some((Err(err), None)),
            }
        }
    });
    Ok(ResultExport {
        stage_names,
        chunks: Box::pin(chunks),
    })
}

async fn export_chunk(
    db: &DatabaseConnection,
    job_id: Uuid,
    after: Option<ExportKey>,
    limit: u64,
) -> Result<Vec<job_results::Model>, StoreError> {
    // In scope only here: its `max`/`min` would shadow `Ord`'s on integers elsewhere.
    use sea_orm::ExprTrait as _;
    let mut query = job_results::Entity::find().filter(job_results::Column::JobId.eq(job_id));
    if let Some((stage_index, created_at, id)) = after {
        query = query.filter(
            Expr::tuple([
                Expr::col(job_results::Column::StageIndex),
                Expr::col(job_results::Column::CreatedAt),
                Expr::col(job_results::Column::Id),
            ])
            .gt(Expr::tuple([
                Expr::value(stage_index),
                Expr::value(created_at),
                Expr::value(id),
            ])),
        );
    }
    Ok(query
        .order_by_asc(job_results::Column::StageIndex)
        .order_by_asc(job_results::Column::CreatedAt)
        .order_by_asc(job_results::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

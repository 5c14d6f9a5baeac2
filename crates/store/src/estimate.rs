//! What estimates read: the sizes of the images a job would cover, and the work ahead of a
//! job in its tenant's share of the Cohere budget. The arithmetic is in `domain::estimate`.

use domain::{
    estimate::SizeCount, job::Priority, pipeline::PipelineSnapshot, selection::ImageSelection,
};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::{
    StoreError, TenantId,
    jobs::{SubmitError, check_library_images, named_images, pipeline_snapshot},
    libraries,
    work::stmt,
};

/// What a submission would run: its pipeline and its images grouped by size.
#[derive(Debug, Clone)]
pub struct Selection {
    pub pipeline: PipelineSnapshot,
    /// One entry per distinct size (`None`: unknown), with how many images have it.
    pub sizes: Vec<SizeCount>,
}

impl Selection {
    /// Images selected.
    pub fn images(&self) -> u64 {
        self.sizes.iter().map(|group| group.images).sum()
    }
}

/// The pipeline and the images a submission of `pipeline_id` over `images` of `library_id`
/// would run, refused for the same reasons [`crate::jobs::submit`] refuses (an unknown
/// pipeline or library, images not in the library, an empty or too large library). Nothing
/// is written.
///
/// The sizes come from one aggregate over the selection (`GROUP BY width, height`), so a
/// library of a million images answers a few rows.
pub async fn selection(
    db: &DatabaseConnection,
    tenant: TenantId,
    pipeline_id: Uuid,
    library_id: Uuid,
    images: &ImageSelection,
) -> Result<Selection, SubmitError> {
    let pipeline = pipeline_snapshot(db, tenant, pipeline_id).await?;
    match libraries::find(db, tenant, library_id).await {
        Err(StoreError::NotFound) => return Err(SubmitError::UnknownLibrary(library_id)),
        other => other?,
    };
    let (sql, values) = match images.ids() {
        Some(named) => (
            r#"SELECT width, height, count(*) AS images FROM images
               WHERE tenant_id = $1 AND library_id = $2 AND id = ANY($3)
               GROUP BY width, height"#,
            vec![tenant.0.into(), library_id.into(), named.to_vec().into()],
        ),
        None => (
            r#"SELECT width, height, count(*) AS images FROM images
               WHERE tenant_id = $1 AND library_id = $2
               GROUP BY width, height"#,
            vec![tenant.0.into(), library_id.into()],
        ),
    };
    let rows = db.query_all_raw(stmt(sql, values)).await?;
    let sizes = rows
        .iter()
        .map(|row| {
            let width: Option<i32> = row.try_get("", "width")?;
            let height: Option<i32> = row.try_get("", "height")?;
            let size = match (width, height) {
                (Some(width), Some(height)) => Some((width.max(1) as u32, height.max(1) as u32)),
                _ => None,
            };
            Ok(SizeCount {
                size,
                images: row.try_get::<i64>("", "images")?.max(0) as u64,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let selection = Selection { pipeline, sizes };
    match images.ids() {
        Some(named) if selection.images() != named.len() as u64 => {
            // Some are not in the library: the submission's own check names them (an image
            // added or removed meanwhile is what the estimate then missed).
            named_images(db, tenant, library_id, named).await?;
            Ok(selection)
        }
        Some(_) => Ok(selection),
        None => {
            check_library_images(selection.images())?;
            Ok(selection)
        }
    }
}

/// Where a job stands in its tenant's share of the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queue {
    /// The tenant's weight in the fair share.
    pub weight: u32,
    /// Its calls-per-minute cap, if any.
    pub calls_per_minute: Option<u32>,
    /// Weights of the tenants with unfinished jobs, this tenant's included (whether or not it
    /// has any).
    pub total_weight: u32,
    /// The most calls the tenant's unfinished jobs ahead of the job still make: remaining
    /// items (pending and running) × stages, an upper bound (filters and finished stages
    /// lower it). Jobs stopped by their budget cap release nothing more and are left out.
    pub calls_ahead: u64,
}

/// Which of the tenant's jobs are ahead.
#[derive(Debug, Clone, Copy)]
pub enum Ahead {
    /// A job about to be submitted at this priority: every unfinished job of the same or a
    /// higher priority (the scheduler releases by priority, then oldest first).
    NewJob(Priority),
    /// An existing job: the unfinished jobs of a higher priority, and the older ones of its
    /// priority.
    Job {
        id: Uuid,
        priority: Priority,
        created_at: chrono::DateTime<chrono::FixedOffset>,
    },
}

/// `$1` tenant, `$2` the priority's rank, `$3`/`$4` the job's `created_at` and id (NULL for
/// a new job). The tenants with work come from the `jobs_unfinished` index.
const QUEUE: &str = r#"
WITH active AS (
    SELECT DISTINCT tenant_id FROM jobs WHERE status IN ('queued', 'running')
)
SELECT t.share_weight AS weight, t.calls_per_minute,
    (t.share_weight + (SELECT coalesce(sum(o.share_weight), 0) FROM tenants o
                       WHERE o.id IN (SELECT tenant_id FROM active) AND o.id <> t.id))::bigint
        AS total_weight,
    (SELECT coalesce(sum((j.pending_items + j.running_items)::bigint
                         * jsonb_array_length(j.pipeline_snapshot->'stages')), 0)
     FROM jobs j
     WHERE j.tenant_id = t.id AND j.status IN ('queued', 'running') AND j.stop_reason IS NULL
       AND (CASE j.priority WHEN 'high' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END > $2
            OR (CASE j.priority WHEN 'high' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END = $2
                AND ($4::uuid IS NULL OR (j.created_at, j.id) < ($3::timestamptz, $4::uuid))))
    )::bigint AS calls_ahead
FROM tenants t WHERE t.id = $1
"#;

/// The tenant's share parameters and the work ahead of a job: one statement.
pub async fn queue<C: ConnectionTrait>(
    db: &C,
    tenant: TenantId,
    ahead: Ahead,
) -> Result<Queue, StoreError> {
    let (priority, created_at, id) = match ahead {
        Ahead::NewJob(priority) => (priority, None, None),
        Ahead::Job {
            id,
            priority,
            created_at,
        } => (priority, Some(created_at), Some(id)),
    };
    let row = db
        .query_one_raw(stmt(
            QUEUE,
            vec![
                tenant.0.into(),
                i32::from(priority.amqp_priority()).into(),
                created_at.into(),
                id.into(),
            ],
        ))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(Queue {
        weight: row.try_get::<i32>("", "weight")?.max(1) as u32,
        calls_per_minute: row
            .try_get::<Option<i32>>("", "calls_per_minute")?
            .map(|cap| cap.max(1) as u32),
        total_weight: row
            .try_get::<i64>("", "total_weight")?
            .clamp(1, i64::from(u32::MAX)) as u32,
        calls_ahead: row.try_get::<i64>("", "calls_ahead")?.max(0) as u64,
    })
}

use sea_orm_migration::prelude::*;

/// Admission of work by the scheduler, fair shares, costs and budget caps (docs/design.md,
/// "Admission"):
///
/// - `tenants.share_weight` / `calls_per_minute`: a tenant's weight in the fair share of the
///   Cohere budget and its optional cap, set with `api admin tenant-share`.
/// - `jobs.image_ids` / `images_as_of`: what defines a job's items (the ids named, in order, or
///   the library's images created up to `images_as_of`). Items are written from it in chunks
///   by the scheduler; `materialized_items` and the `materialized_through_*` keyset cursor
///   record how far.
/// - `job_items.position`: the item's place in its job (release order within a job);
///   `released_at`: when the scheduler published its first-stage message (NULL: still waiting
///   in PostgreSQL). Released items not yet finished are the tenant's window.
/// - `jobs.max_cost_usd`, `stop_reason`, `skipped_items`; items `skipped` with `skip_reason`:
///   the budget cap.
/// - `cost_usd` on results and stages: every cost is priced from billed tokens.
/// - `images.width` / `height`: what the estimate's image-token rule needs (NULL: unknown).
/// - `libraries.image_count` / `newest_image_at`, kept by triggers on `images`: a
///   whole-library submission reads them instead of counting a library of any size.
/// - `jobs.traceparent`: the submission's trace context, which the scheduler's releases
///   continue, so one trace runs from the submit request to every Cohere call.
pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261130_000009_admission"
    }
}

const UP: &str = r#"
ALTER TABLE tenants
    ADD COLUMN share_weight integer NOT NULL DEFAULT 1 CHECK (share_weight BETWEEN 1 AND 1000),
    ADD COLUMN calls_per_minute integer CHECK (calls_per_minute > 0);

ALTER TABLE jobs
    ADD COLUMN image_ids uuid[],
    ADD COLUMN images_as_of timestamptz,
    ADD COLUMN materialized_items integer NOT NULL DEFAULT 0,
    ADD COLUMN materialized_through_created timestamptz,
    ADD COLUMN materialized_through_id uuid,
    ADD COLUMN max_cost_usd double precision CHECK (max_cost_usd > 0),
    ADD COLUMN skipped_items integer NOT NULL DEFAULT 0,
    ADD COLUMN stop_reason text CHECK (stop_reason IN ('budget_exhausted')),
    ADD COLUMN traceparent text;
-- Jobs from before admission have every item written and released.
UPDATE jobs SET materialized_items = total_items;

ALTER TABLE job_items
    ADD COLUMN position integer NOT NULL DEFAULT 0,
    ADD COLUMN released_at timestamptz,
    ADD COLUMN skip_reason text CHECK (skip_reason IN ('budget_exhausted'));
ALTER TABLE job_items DROP CONSTRAINT job_items_status_check;
ALTER TABLE job_items ADD CONSTRAINT job_items_status_check
    CHECK (status IN ('pending', 'running', 'passed', 'filtered_out', 'failed', 'cancelled', 'skipped'));
UPDATE job_items SET released_at = updated_at WHERE status IN ('pending', 'running');
UPDATE job_items i SET position = p.position
FROM (SELECT id, (row_number() OVER (PARTITION BY job_id ORDER BY created_at, id))::int AS position
      FROM job_items) p
WHERE i.id = p.id;
-- What the scheduler releases next, per job, in order.
CREATE INDEX job_items_unreleased ON job_items (job_id, position)
    WHERE status = 'pending' AND released_at IS NULL;
-- Items are listed in their job's order.
CREATE INDEX job_items_job_position ON job_items (job_id, position);
-- The windows: released items not finished yet.
CREATE INDEX job_items_in_window ON job_items (job_id, released_at)
    WHERE released_at IS NOT NULL AND status IN ('pending', 'running');
-- The jobs with work, which the scheduler reads on every pass.
CREATE INDEX jobs_unfinished ON jobs (tenant_id, created_at) WHERE status IN ('queued', 'running');

ALTER TABLE job_results ADD COLUMN cost_usd double precision NOT NULL DEFAULT 0;
ALTER TABLE job_stage_stats ADD COLUMN cost_usd double precision NOT NULL DEFAULT 0;

ALTER TABLE images
    ADD COLUMN width integer CHECK (width > 0),
    ADD COLUMN height integer CHECK (height > 0);

-- What a whole-library submission needs, kept with the library so it is read, not counted:
-- the number of its images and the newest one's created_at. One statement-level trigger per
-- change keeps them, however many rows a statement writes.
ALTER TABLE libraries
    ADD COLUMN image_count bigint NOT NULL DEFAULT 0,
    ADD COLUMN newest_image_at timestamptz;
UPDATE libraries l SET image_count = c.n, newest_image_at = c.newest
FROM (SELECT library_id, count(*) AS n, max(created_at) AS newest FROM images GROUP BY library_id) c
WHERE l.id = c.library_id;

CREATE FUNCTION libraries_count_added_images() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE libraries l SET image_count = l.image_count + a.n,
        newest_image_at = greatest(l.newest_image_at, a.newest)
    FROM (SELECT library_id, count(*) AS n, max(created_at) AS newest
          FROM added GROUP BY library_id) a
    WHERE l.id = a.library_id;
    RETURN NULL;
END $$;
CREATE TRIGGER images_added AFTER INSERT ON images
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION libraries_count_added_images();

-- A delete takes its images off the count; the newest is found again only when it was the
-- one deleted (one index probe).
CREATE FUNCTION libraries_count_removed_images() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE libraries l SET image_count = l.image_count - r.n,
        newest_image_at = CASE WHEN l.newest_image_at <= r.newest
            THEN (SELECT max(created_at) FROM images i WHERE i.library_id = l.id)
            ELSE l.newest_image_at END
    FROM (SELECT library_id, count(*) AS n, max(created_at) AS newest
          FROM removed GROUP BY library_id) r
    WHERE l.id = r.library_id;
    RETURN NULL;
END $$;
CREATE TRIGGER images_removed AFTER DELETE ON images
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION libraries_count_removed_images();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS images_removed ON images;
DROP TRIGGER IF EXISTS images_added ON images;
DROP FUNCTION IF EXISTS libraries_count_removed_images();
DROP FUNCTION IF EXISTS libraries_count_added_images();
ALTER TABLE libraries DROP COLUMN IF EXISTS image_count, DROP COLUMN IF EXISTS newest_image_at;
ALTER TABLE images DROP COLUMN IF EXISTS width, DROP COLUMN IF EXISTS height;
ALTER TABLE job_stage_stats DROP COLUMN IF EXISTS cost_usd;
ALTER TABLE job_results DROP COLUMN IF EXISTS cost_usd;
DROP INDEX IF EXISTS jobs_unfinished;
DROP INDEX IF EXISTS job_items_in_window;
DROP INDEX IF EXISTS job_items_unreleased;
DROP INDEX IF EXISTS job_items_job_position;
UPDATE job_items SET status = 'cancelled' WHERE status = 'skipped';
ALTER TABLE job_items DROP CONSTRAINT job_items_status_check;
ALTER TABLE job_items ADD CONSTRAINT job_items_status_check
    CHECK (status IN ('pending', 'running', 'passed', 'filtered_out', 'failed', 'cancelled'));
ALTER TABLE job_items DROP COLUMN IF EXISTS position, DROP COLUMN IF EXISTS released_at,
    DROP COLUMN IF EXISTS skip_reason;
ALTER TABLE jobs DROP COLUMN IF EXISTS image_ids, DROP COLUMN IF EXISTS images_as_of,
    DROP COLUMN IF EXISTS materialized_items, DROP COLUMN IF EXISTS materialized_through_created,
    DROP COLUMN IF EXISTS materialized_through_id, DROP COLUMN IF EXISTS max_cost_usd,
    DROP COLUMN IF EXISTS skipped_items, DROP COLUMN IF EXISTS stop_reason,
    DROP COLUMN IF EXISTS traceparent;
ALTER TABLE tenants DROP COLUMN IF EXISTS share_weight, DROP COLUMN IF EXISTS calls_per_minute;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}

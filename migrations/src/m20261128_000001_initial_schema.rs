use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000001_initial_schema"
    }
}

const UP: &str = r#"
CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of each key is stored; `prefix` lets operators recognise a key.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    key_hash     text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    label        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE libraries (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, name)
);
CREATE INDEX libraries_tenant_created ON libraries (tenant_id, created_at DESC, id DESC);

-- An image is either uploaded bytes (object_key) or a registered https URL.
CREATE TABLE images (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    library_id    uuid NOT NULL REFERENCES libraries(id) ON DELETE CASCADE,
    filename      text NOT NULL,
    source        text NOT NULL CHECK (source IN ('upload', 'url')),
    object_key    text,
    url           text,
    media_type    text,
    size_bytes    bigint,
    content_hash  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((source = 'upload' AND object_key IS NOT NULL) OR (source = 'url' AND url IS NOT NULL))
);
CREATE INDEX images_library_created ON images (library_id, created_at DESC, id DESC);
CREATE INDEX images_tenant ON images (tenant_id);

CREATE TABLE pipelines (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name         text NOT NULL,
    description  text,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pipelines_tenant_created ON pipelines (tenant_id, created_at DESC, id DESC);

CREATE TABLE stages (
    id             uuid PRIMARY KEY,
    pipeline_id    uuid NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
    position       integer NOT NULL CHECK (position >= 0),
    name           text NOT NULL,
    model          text NOT NULL,
    system_prompt  text,
    prompt         text NOT NULL,
    json_schema    jsonb,
    filter         jsonb,
    temperature    double precision,
    max_tokens     integer,
    image_detail   text NOT NULL DEFAULT 'auto' CHECK (image_detail IN ('auto', 'low', 'high')),
    UNIQUE (pipeline_id, position)
);

-- `pipeline_snapshot` is the pipeline as it was at submission: later edits never
-- change a running job. pipeline_id/library_id survive the deletion of their rows
-- as plain references so history keeps its filters.
CREATE TABLE jobs (
    id                    uuid PRIMARY KEY,
    tenant_id             uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    pipeline_id           uuid NOT NULL,
    library_id            uuid NOT NULL,
    pipeline_snapshot     jsonb NOT NULL,
    status                text NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'completed_with_errors', 'failed', 'cancelled')),
    priority              text NOT NULL CHECK (priority IN ('low', 'normal', 'high')),
    idempotency_key       text,
    request_hash          text,
    total_items           integer NOT NULL,
    pending_items         integer NOT NULL,
    running_items         integer NOT NULL DEFAULT 0,
    passed_items          integer NOT NULL DEFAULT 0,
    filtered_out_items    integer NOT NULL DEFAULT 0,
    failed_items          integer NOT NULL DEFAULT 0,
    cancelled_items       integer NOT NULL DEFAULT 0,
    input_tokens          bigint NOT NULL DEFAULT 0,
    output_tokens         bigint NOT NULL DEFAULT 0,
    billed_input_tokens   bigint NOT NULL DEFAULT 0,
    billed_output_tokens  bigint NOT NULL DEFAULT 0,
    cost_usd              double precision NOT NULL DEFAULT 0,
    error_summary         text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    started_at            timestamptz,
    finished_at           timestamptz
);
CREATE UNIQUE INDEX jobs_tenant_idempotency ON jobs (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX jobs_tenant_created ON jobs (tenant_id, created_at DESC, id DESC);
CREATE INDEX jobs_tenant_status_created ON jobs (tenant_id, status, created_at DESC, id DESC);
CREATE INDEX jobs_tenant_pipeline_created ON jobs (tenant_id, pipeline_id, created_at DESC, id DESC);
CREATE INDEX jobs_tenant_library_created ON jobs (tenant_id, library_id, created_at DESC, id DESC);
-- Finds the active jobs that pin a library or an image.
CREATE INDEX jobs_library_active ON jobs (library_id) WHERE status IN ('queued', 'running');

-- Per-stage progress counters, updated atomically by the workers.
CREATE TABLE job_stage_stats (
    job_id         uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    stage_index    integer NOT NULL,
    name           text NOT NULL,
    processed      integer NOT NULL DEFAULT 0,
    passed         integer NOT NULL DEFAULT 0,
    filtered_out   integer NOT NULL DEFAULT 0,
    failed         integer NOT NULL DEFAULT 0,
    input_tokens   bigint NOT NULL DEFAULT 0,
    output_tokens  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, stage_index)
);

CREATE TABLE job_items (
    id             uuid PRIMARY KEY,
    job_id         uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    image_id       uuid NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'running', 'passed', 'filtered_out', 'failed', 'cancelled')),
    current_stage  integer NOT NULL DEFAULT 0,
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    error_class    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    UNIQUE (job_id, image_id)
);
CREATE INDEX job_items_job_status ON job_items (job_id, status);
CREATE INDEX job_items_image ON job_items (image_id);

-- One row per (item, stage): a redelivered stage message finds it and skips the call.
CREATE TABLE job_results (
    id                    uuid PRIMARY KEY,
    job_id                uuid NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    item_id               uuid NOT NULL REFERENCES job_items(id) ON DELETE CASCADE,
    image_id              uuid NOT NULL,
    stage_index           integer NOT NULL,
    model                 text NOT NULL,
    output_text           text NOT NULL,
    output_json           jsonb,
    passed                boolean NOT NULL,
    filter_reason         text,
    finish_reason         text,
    input_tokens          bigint NOT NULL DEFAULT 0,
    output_tokens         bigint NOT NULL DEFAULT 0,
    billed_input_tokens   bigint NOT NULL DEFAULT 0,
    billed_output_tokens  bigint NOT NULL DEFAULT 0,
    latency_ms            integer NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, stage_index)
);
CREATE INDEX job_results_job_stage ON job_results (job_id, stage_index, created_at, id);

CREATE TABLE dead_letters (
    id                uuid PRIMARY KEY,
    tenant_id         uuid REFERENCES tenants(id) ON DELETE CASCADE,
    job_id            uuid,
    item_id           uuid,
    stage_index       integer,
    error_class       text NOT NULL CHECK (error_class IN ('rate_limited', 'transient', 'systemic', 'permanent', 'poison')),
    error_message     text NOT NULL,
    attempts          integer NOT NULL DEFAULT 0,
    first_failed_at   timestamptz,
    dead_lettered_at  timestamptz NOT NULL DEFAULT now(),
    payload           bytea NOT NULL,
    headers           jsonb NOT NULL DEFAULT '{}'::jsonb,
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'redriven', 'purged')),
    redrive_count     integer NOT NULL DEFAULT 0,
    last_redriven_at  timestamptz
);
CREATE INDEX dead_letters_status_time ON dead_letters (status, dead_lettered_at DESC);
CREATE INDEX dead_letters_tenant_time ON dead_letters (tenant_id, dead_lettered_at DESC);
CREATE INDEX dead_letters_job ON dead_letters (job_id);
CREATE INDEX dead_letters_class_time ON dead_letters (error_class, dead_lettered_at DESC);

CREATE TABLE redrive_audit (
    id              uuid PRIMARY KEY,
    requested_by    text NOT NULL,
    dead_letter_id  uuid REFERENCES dead_letters(id) ON DELETE SET NULL,
    filter          jsonb NOT NULL DEFAULT '{}'::jsonb,
    dry_run         boolean NOT NULL,
    matched         integer NOT NULL,
    redriven        integer NOT NULL,
    note            text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX redrive_audit_created ON redrive_audit (created_at DESC);
"#;

const DOWN: &str = r#"
DROP TABLE IF EXISTS redrive_audit;
DROP TABLE IF EXISTS dead_letters;
DROP TABLE IF EXISTS job_results;
DROP TABLE IF EXISTS job_items;
DROP TABLE IF EXISTS job_stage_stats;
DROP TABLE IF EXISTS jobs;
DROP TABLE IF EXISTS stages;
DROP TABLE IF EXISTS pipelines;
DROP TABLE IF EXISTS images;
DROP TABLE IF EXISTS libraries;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS tenants;
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

//! `GET /api/events`: every job event of the tenant as server-sent events, one stream for a
//! whole dashboard.
//!
//! Events carry their tenant, so filtering costs nothing per event. What a stream may have
//! missed (events published before it listened, while the broker was away, or dropped
//! because it lagged) it finds in the database: every few seconds one reader per tenant and
//! replica ([`rereads`]) reads the ids and sequence numbers of the tenant's jobs changed since
//! its watermark, and each stream sends a `snapshot` of each job whose `seq` is newer than what
//! it sent. The watermark is the database's clock minus [`MARGIN`], sent as the `id:` of every
//! frame, so `Last-Event-ID` resumes a stream for all jobs at once.

pub mod rereads;

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse, get, web};
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, TimeDelta, Utc};
use domain::event::JobEvent;
use rereads::{Reread, Subscription};
use serde::Serialize;
use store::{TenantId, jobs::Changed};
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::Tenant,
    error::ApiError,
    events::SharedEvent,
    routes::{
        events::{KEEP_ALIVE, LiveFrames, event_stream, frame, json_data},
        jobs::JobSummary,
    },
    state::AppState,
};

/// How long a change may take from its `updated_at` to its commit: re-reads look back this
/// far, so a change committed late is still found.
pub(crate) const MARGIN: TimeDelta = TimeDelta::seconds(10);

/// Most snapshots one re-read sends; beyond that the stream sends `resync` instead.
pub(crate) const MAX_SNAPSHOTS: usize = 200;

/// Jobs whose last sent `seq` a stream remembers (to drop stale and duplicate events).
const MAX_TRACKED: usize = 10_000;

/// One server-sent event of the tenant-wide stream.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TenantServerSentEvent {
    /// What happened.
    #[schema(pattern = "^(job_created|progress|cancel_requested|job_finished|snapshot|resync)$")]
    event: String,
    /// The stream's position (a watermark); send it back as `Last-Event-ID` to resume.
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// JSON: a `JobSnapshot` for `snapshot`, a `Resync` for `resync`, else a `JobEvent`.
    #[schema(schema_with = tenant_event_data)]
    data: String,
}

fn tenant_event_data() -> utoipa::openapi::Object {
    json_data(
        "JSON: a `JobSnapshot` for `snapshot`, a `Resync` for `resync`, else a `JobEvent`.",
        &[
            <JobSnapshot as ToSchema>::name(),
            <Resync as ToSchema>::name(),
            <JobEvent as ToSchema>::name(),
        ],
    )
}

/// A job as it is stored now, in place of events of it the stream missed.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSnapshot {
    /// The job's event sequence number at this state.
    pub seq: i64,
    pub job: JobSummary,
}

/// Too many jobs changed while the stream was away to send each: reload what is shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resync {
    pub reason: String,
}

/// The stream position as sent in `id:`: milliseconds since the epoch, by the database's clock.
fn cursor(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

fn parse_cursor(req: &HttpRequest) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = req.headers().get("Last-Event-ID") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_millis)
        .map(Some)
        .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be an id this stream sent".into()))
}

struct TenantLive {
    state: web::Data<AppState>,
    tenant: TenantId,
    events: broadcast::Receiver<SharedEvent>,
    /// Every change before this (by `updated_at`) has been sent, or is in `sent`.
    since: DateTime<Utc>,
    /// The last `seq` sent per job.
    sent: HashMap<Uuid, i64>,
    /// The tenant's shared re-reads.
    rereads: Subscription,
}

impl TenantLive {
    fn remember(&mut self, job_id: Uuid, seq: i64) {
        if self.sent.len() >= MAX_TRACKED && !self.sent.contains_key(&job_id) {
            // Forgetting only risks sending a job's state twice; the client orders by `seq`.
            self.sent.clear();
        }
        self.sent.insert(job_id, seq);
    }

    fn is_new(&self, job_id: Uuid, seq: i64) -> bool {
        self.sent.get(&job_id).is_none_or(|&last| seq > last)
    }

    /// Snapshot frames of these jobs, written to `out`.
    async fn snapshots(&mut self, ids: &[Uuid], out: &mut BytesMut) -> Result<(), ApiError> {
        let jobs = store::jobs::by_ids(&self.state.db, self.tenant, ids).await?;
        let id = cursor(self.since);
        for job in jobs {
            let seq = job.job.event_seq;
            let job_id = job.job.id;
            if !self.is_new(job_id, seq) {
                continue;
            }
            let snapshot = JobSnapshot {
                seq,
                job: JobSummary::try_from(job)?,
            };
            out.extend_from_slice(&frame("snapshot", id, &snapshot));
            self.remember(job_id, seq);
        }
        Ok(())
    }

    /// Reads the jobs changed since this stream's watermark itself (when it opens, and when it
    /// fell behind the shared re-reads) and sends what it found, as [`TenantLive::send_changed`].
    async fn reread(&mut self) -> Result<Bytes, ApiError> {
        let changed = store::jobs::changed_since(
            &self.state.db,
            self.tenant,
            self.since,
            MAX_SNAPSHOTS as u64 + 1,
        )
        .await?;
        self.send_changed(&changed).await
    }

    /// Snapshots of the changed jobs with news for this stream (or one `resync` when too many
    /// changed), then the new watermark as an `id:`-only line (which also keeps the connection
    /// alive).
    async fn send_changed(&mut self, changed: &Changed) -> Result<Bytes, ApiError> {
        let mut out = BytesMut::new();
        if changed.jobs.len() > MAX_SNAPSHOTS {
            let resync = Resync {
                reason: "too many jobs changed to send each; reload them".into(),
            };
            out.extend_from_slice(&frame("resync", cursor(self.since), &resync));
            self.sent.clear();
        } else {
            let ids: Vec<Uuid> = changed
                .jobs
                .iter()
                .filter(|(id, seq)| self.is_new(*id, *seq))
                .map(|(id, _)| *id)
                .collect();
            if !ids.is_empty() {
                self.snapshots(&ids, &mut out).await?;
            }
        }
        self.since = self.since.max(changed.now - MARGIN);
        out.extend_from_slice(format!("id: {}\n\n", cursor(self.since)).as_bytes());
        Ok(out.freeze())
    }
}

impl LiveFrames for TenantLive {
    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                received = self.events.recv() => match received {
                    Ok(event) if event.tenant_id != self.tenant.0 => continue,
                    Ok(event) if !self.is_new(event.job_id, event.seq) => continue,
                    Ok(event) if self.sent.get(&event.job_id).is_some_and(|&last| event.seq > last + 1) => {
                        // A gap in this job's events: the job as stored says what they said.
                        let mut out = BytesMut::new();
                        match self.snapshots(&[event.job_id], &mut out).await {
                            Ok(()) if !out.is_empty() => return Some(out.freeze()),
                            Ok(()) => continue,
                            Err(error) => {
                                tracing::debug!(%error, "re-reading a job for the event stream failed");
                                continue;
                            }
                        }
                    }
                    Ok(event) => {
                        self.remember(event.job_id, event.seq);
                        return Some(frame(event.name(), cursor(self.since), &*event));
                    }
                    Err(RecvError::Lagged(_)) => match self.reread().await {
                        Ok(bytes) => return Some(bytes),
                        Err(error) => tracing::debug!(%error, "re-reading jobs for the event stream failed"),
                    },
                    Err(RecvError::Closed) => return None,
                },
                reread = self.rereads.rereads.recv() => {
                    let sent = match reread {
                        Ok(Reread::Changed(changed)) => self.send_changed(&changed).await,
                        Ok(Reread::Failed) => Ok(Bytes::from_static(KEEP_ALIVE)),
                        // Behind the shared re-reads: what they said, this stream reads itself.
                        Err(RecvError::Lagged(_)) => self.reread().await,
                        Err(RecvError::Closed) => return None,
                    };
                    return Some(sent.unwrap_or_else(|error| {
                        tracing::debug!(%error, "re-reading jobs for the event stream failed");
                        Bytes::from_static(KEEP_ALIVE)
                    }));
                }
            }
        }
    }
}

/// Follow every job of the tenant live, as server-sent events: one stream for a dashboard.
///
/// Events: `job_created` when a job is accepted, then the per-job stream's `progress`,
/// `cancel_requested` and `job_finished` (each `data:` a `JobEvent` with the job's id,
/// status, counters and `seq`). Within a job, events come in `seq` order; a job's event
/// older than one already sent is dropped. When events went missing (a gap in a job's `seq`,
/// a slow reader, or a broker outage), a `snapshot` of the job (`JobSnapshot`: its `seq` and
/// summary) takes their place; the stream also re-reads the tenant's changed jobs every 5 s.
/// If more than 200 jobs changed while events were missed, one `resync` event asks the
/// client to reload its lists instead.
///
/// `id:` is the stream's position for all jobs at once (a time, by the database's clock);
/// a reconnecting client sends the last one as `Last-Event-ID` (browsers' `EventSource` does
/// so itself) and gets a `snapshot` of every job changed since, then live events. Lines with
/// only `id:` move the position on without an event. Without `Last-Event-ID` the stream starts
/// with snapshots of the jobs changed in the last few seconds. Any api replica can serve it.
#[utoipa::path(
    tag = "jobs",
    params(("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]+$", description = "Resume after this position: the `id:` of the last event received")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = TenantServerSentEvent))
)]
#[get("/events")]
pub async fn tenant_events(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // Subscribe before the first read, so nothing falls between the two.
    let events = state.events.subscribe();
    let since = parse_cursor(&req)?.unwrap_or_else(|| Utc::now() - MARGIN);
    let changed =
        store::jobs::changed_since(&state.db, tenant, since, MAX_SNAPSHOTS as u64 + 1).await?;
    // Joined after the first read and started at its watermark: the shared re-reads cover
    // everything after what that read covered.
    let rereads = state
        .rereads
        .subscribe(tenant, since.max(changed.now - MARGIN));
    let mut live = TenantLive {
        state: state.clone(),
        tenant,
        events,
        since,
        sent: HashMap::new(),
        rereads,
    };
    let first = live.send_changed(&changed).await?;
    Ok(event_stream(&state, first, live))
}

//! `GET /api/jobs/{job_id}/events`: the job's progress as server-sent events.

use std::{fmt::Display, time::Duration};

use actix_web::{HttpResponse, get, web};
use bytes::Bytes;
use domain::event::JobEvent;
use futures::{StreamExt, stream};
use serde::Serialize;
use store::TenantId;
use tokio::sync::broadcast::{self, error::RecvError};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, OneOfBuilder, Ref, RefOr, Schema, Type},
};
use uuid::Uuid;

use crate::{
    auth::Tenant, error::ApiError, events::SharedEvent, routes::jobs::Job, state::AppState,
};

/// How often a stream re-reads the database, so a lost event delays an update, never loses it.
pub(crate) const RESYNC_EVERY: Duration = Duration::from_secs(5);

/// A comment line: keeps the connection open when there is nothing to send.
pub(crate) const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// One server-sent event as it appears on the stream.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ServerSentEvent {
    /// What happened.
    #[schema(pattern = "^(snapshot|progress|cancel_requested|job_finished)$")]
    event: String,
    /// The job's event sequence number (increasing).
    #[schema(pattern = "^[0-9]+$")]
    id: String,
    /// JSON: the job as `GET /api/jobs/{id}` shows it for `snapshot`, else a `JobEvent`.
    #[schema(schema_with = event_data)]
    data: String,
}

/// The response body: text, a sequence of [`ServerSentEvent`]s. Documented as a string so that
/// generated clients hand it over as text instead of parsing it as one JSON object.
pub struct EventStream;

impl PartialSchema for EventStream {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("Server-sent events, each a `ServerSentEvent`."))
            .content_media_type("text/event-stream")
            .content_schema(Some(Ref::from_schema_name(ServerSentEvent::name())))
            .into()
    }
}

impl ToSchema for EventStream {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((ServerSentEvent::name().into(), ServerSentEvent::schema()));
        ServerSentEvent::schemas(schemas);
    }
}

/// The `data` of an event: a string holding a `Job` or a `JobEvent` as JSON.
fn event_data() -> utoipa::openapi::Object {
    json_data(
        "JSON: the job as `GET /api/jobs/{id}` shows it for `snapshot`, else a `JobEvent`.",
        &[<Job as ToSchema>::name(), <JobEvent as ToSchema>::name()],
    )
}

/// The schema of a `data:` line: a string holding JSON, one of the named `schemas`.
pub(crate) fn json_data(
    description: &str,
    schemas: &[std::borrow::Cow<'static, str>],
) -> utoipa::openapi::Object {
    let one_of = schemas.iter().fold(OneOfBuilder::new(), |one_of, name| {
        one_of.item(Ref::from_schema_name(name.clone()))
    });
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .content_media_type("application/json")
        .content_schema(Some(one_of))
        .build()
}

/// One server-sent event: `id:`, `event:` and a JSON `data:` line.
pub(crate) fn frame(event: &str, id: impl Display, data: &impl Serialize) -> Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "{}".into());
    Bytes::from(format!("id: {id}\nevent: {event}\ndata: {data}\n\n"))
}

/// What an event stream sends after its first frame.
pub(crate) trait LiveFrames: 'static {
    /// The next bytes to send (one or more frames), or `None` when the stream is over.
    async fn next_frame(&mut self) -> Option<Bytes>;
}

/// A response streaming `first`, then each frame `live` yields until it yields `None` or the
/// server starts shutting down: then the stream ends cleanly at once (between frames), so
/// it never holds the shutdown open and its client reconnects to another replica. It counts
/// as an open stream (`api_event_streams_open`) until it ends or its client goes away.
pub(crate) fn event_stream(state: &AppState, first: Bytes, live: impl LiveFrames) -> HttpResponse {
    let open = state.metrics.event_stream_opened();
    let rest = stream::unfold(live, |mut live| async move {
        let frame = live.next_frame().await?;
        Some((Ok::<_, actix_web::Error>(frame), live))
    });
    let body = stream::once(async move { Ok::<_, actix_web::Error>(first) })
        .chain(rest)
        .take_until(state.shutdown.begun())
        .map(move |frame| {
            // The guard lives as long as the body does.
            let _open = &open;
            frame
        });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

struct Live {
    state: web::Data<AppState>,
    tenant: TenantId,
    job_id: Uuid,
    events: broadcast::Receiver<SharedEvent>,
    last_seq: i64,
    done: bool,
}

impl Live {
    /// The job as stored now, as a `snapshot` frame if it is newer than what was sent.
    async fn resync(&mut self) -> Option<Bytes> {
        let view = store::jobs::get(&self.state.db, self.tenant, self.job_id)
            .await
            .ok()?;
        let seq = view.job.event_seq;
        self.done = view.job.status.is_terminal();
        if seq <= self.last_seq && !self.done {
            return None;
        }
        let job = Job::live(&self.state, self.tenant, view).await.ok()?;
        self.last_seq = seq;
        Some(frame("snapshot", seq, &job))
    }
}

impl LiveFrames for Live {
    async fn next_frame(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut resync = tokio::time::interval(RESYNC_EVERY);
        resync.tick().await;
        loop {
            tokio::select! {
                received = self.events.recv() => match received {
                    Ok(event) if event.job_id == self.job_id && event.seq > self.last_seq + 1 => {
                        // Events between the last one sent and this one never reached this
                        // replica (published before it listened, or while the broker was
                        // away): the job as stored says what they said.
                        if let Some(frame) = self.resync().await {
                            return Some(frame);
                        }
                    }
                    Ok(event) if event.job_id == self.job_id && event.seq > self.last_seq => {
                        self.last_seq = event.seq;
                        self.done = event.is_final();
                        return Some(frame(event.name(), event.seq, &*event));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => {
                        if let Some(frame) = self.resync().await {
                            return Some(frame);
                        }
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = resync.tick() => {
                    return Some(self.resync().await.unwrap_or_else(|| Bytes::from_static(KEEP_ALIVE)));
                }
            }
        }
    }
}

/// Follow a job live as server-sent events.
///
/// The stream starts with a `snapshot` event (the job as `GET /api/jobs/{id}` shows it), then
/// sends `progress` events (the items that finished a stage, in batches), `cancel_requested`,
/// and finally `job_finished`, each with the job's counters after the change; `id:` is the
/// job's event sequence number. When events went missing (a gap in `id:`), a fresh
/// `snapshot` takes their place; so does the job re-read after 5 s without an event, if it
/// changed meanwhile.
/// It ends after the job finishes. Any api replica can serve any job.
#[utoipa::path(
    tag = "jobs",
    params(("job_id" = Uuid, Path, description = "Job id")),
    responses((status = 200, description = "An event stream", content_type = "text/event-stream", body = EventStream))
)]
#[get("/jobs/{job_id}/events")]
pub async fn job_events(
    state: web::Data<AppState>,
    Tenant(tenant): Tenant,
    path: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let job_id = *path;
    // Subscribe before reading the snapshot, so nothing falls between the two.
    let events = state.events.subscribe();
    let view = store::jobs::get(&state.db, tenant, job_id)
        .await
        .map_err(|e| ApiError::from_store(e, "job"))?;
    let seq = view.job.event_seq;
    let job = Job::live(&state, tenant, view).await?;
    let first = frame("snapshot", seq, &job);
    let live = Live {
        done: job.status.is_terminal(),
        state: state.clone(),
        tenant,
        job_id,
        events,
        last_seq: seq,
    };
    Ok(event_stream(&state, first, live))
}

"""A walk through the API with the Python client generated from openapi/openapi.json.

Run by scripts/check_clients.sh against an api, a worker and the Cohere stand-in it started:
API_BASE and API_KEY in the environment, the generated package `image_pipelines_client` on
PYTHONPATH. Every step checks what it gets back, typed; the first failure ends the run.
"""

import csv
import datetime
import io
import json
import os
import sys
import time
import uuid
from pathlib import Path

from image_pipelines_client import AuthenticatedClient
from image_pipelines_client.api.images import register_image_url, upload_images
from image_pipelines_client.api.jobs import (
    estimate_job,
    export_results,
    get_job,
    job_events,
    job_history,
    list_results,
    submit_job,
)
from image_pipelines_client.api.libraries import create_library
from image_pipelines_client.api.pipelines import create_pipeline, get_pipeline, update_pipeline
from image_pipelines_client.models import (
    CompareOp,
    CreateLibrary,
    ExportResultsFormat,
    FilterAll,
    FilterAllType,
    FilterAny,
    FilterAnyType,
    FilterField,
    FilterFieldType,
    FilterNot,
    FilterNotType,
    FilterRegex,
    FilterRegexType,
    Image,
    ImageDetail,
    ImageList,
    Job,
    JobEventCancelRequested,
    JobEventCreated,
    JobEstimate,
    JobEventProgress,
    JobResult,
    JobStatus,
    Library,
    PagedJobResult,
    PagedJobSummary,
    Pipeline,
    PipelineDefinition,
    Priority,
    Problem,
    RegisterImageUrl,
    StageSpec,
    StageSpecJsonSchemaType0,
    SubmitJob,
    UploadForm,
    Verdict,
)
from image_pipelines_client.types import File

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "images"
MODEL = "command-a-vision-07-2025"
JOB_DEADLINE_SECONDS = 120


def step(text):
    print(f"  - {text}", flush=True)


def expect(response, status, model):
    """The parsed body of `response`, which must have `status` and be a `model`."""
    assert response.status_code == status, f"{response.status_code}: {response.content[:500]!r}"
    assert isinstance(response.parsed, model), f"{type(response.parsed).__name__}, not {model.__name__}"
    return response.parsed


def animal_filter():
    """Animals (or a horse by name), but no dogs: all/any/not with field and regex checks."""
    return FilterAll(
        type_=FilterAllType.ALL,
        filters=[
            FilterAny(
                type_=FilterAnyType.ANY,
                filters=[
                    FilterField(type_=FilterFieldType.FIELD, pointer="/animal", op=CompareOp.EQ, value=True),
                    FilterRegex(type_=FilterRegexType.REGEX, pattern="(?i)\\bhorse\\b"),
                ],
            ),
            FilterNot(
                type_=FilterNotType.NOT,
                filter_=FilterField(type_=FilterFieldType.FIELD, pointer="/label", op=CompareOp.EQ, value="dog"),
            ),
        ],
    )


def definition(name, describe_prompt):
    return PipelineDefinition(
        name=name,
        description="Find the animals, then describe them",
        stages=[
            StageSpec(
                name="detect",
                model=MODEL,
                prompt="Is there an animal in this image? Answer as JSON.",
                json_schema=StageSpecJsonSchemaType0.from_dict(
                    {
                        "type": "object",
                        "properties": {"animal": {"type": "boolean"}, "label": {"type": "string"}},
                        "required": ["animal", "label"],
                    }
                ),
                image_detail=ImageDetail.AUTO,
                filter_=animal_filter(),
            ),
            StageSpec(
                name="describe",
                model=MODEL,
                prompt=describe_prompt,
                image_detail=ImageDetail.HIGH,
                max_tokens=300,
            ),
        ],
    )


# The generated models of a job event, by its `type` (the discriminator's mapping).
EVENTS = {
    "created": JobEventCreated,
    "progress": JobEventProgress,
    "cancel_requested": JobEventCancelRequested,
}


def follow(client, job_id):
    """The job's event stream, read to its end (the job's end), as typed frames: (event name, seq,
    a `Job` for a snapshot or the event's model)."""
    response = job_events.sync_detailed(job_id, client=client)
    assert response.status_code == 200, response.status_code
    assert response.headers["content-type"].startswith("text/event-stream"), response.headers
    assert isinstance(response.parsed, str)
    frames = []
    for block in response.parsed.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if not fields:
            continue
        data = json.loads(fields["data"])
        model = Job if fields["event"] == "snapshot" else EVENTS[data["type"]]
        frames.append((fields["event"], int(fields["id"]), model.from_dict(data)))
    return frames


def wait_for(client, job_id):
    deadline = time.monotonic() + JOB_DEADLINE_SECONDS
    while True:
        job = expect(get_job.sync_detailed(job_id, client=client), 200, Job)
        if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job.status} after {JOB_DEADLINE_SECONDS} s"
        time.sleep(0.2)


def main():
    client = AuthenticatedClient(base_url=os.environ["API_BASE"], token=os.environ["API_KEY"], timeout=30.0)
    run = uuid.uuid4().hex[:8]

    step("create a library")
    library = expect(
        create_library.sync_detailed(client=client, body=CreateLibrary(name=f"Client smoke {run}")), 201, Library
    )
    assert library.name == f"Client smoke {run}"

    step("upload two sample images")
    files = [
        File(payload=(SAMPLES / name).read_bytes(), file_name=name, mime_type=mime)
        for name, mime in (("chelsea.png", "image/png"), ("rocket.jpg", "image/jpeg"))
    ]
    uploaded = expect(upload_images.sync_detailed(library.id, client=client, body=UploadForm(file=files)), 201, ImageList)
    assert [image.filename for image in uploaded.items] == ["chelsea.png", "rocket.jpg"], uploaded
    cat, rocket = uploaded.items

    step("register an image URL")
    by_url = expect(
        register_image_url.sync_detailed(
            library.id, client=client, body=RegisterImageUrl(url="https://example.org/cat.jpg", width=640, height=480)
        ),
        201,
        Image,
    )
    assert by_url.url == "https://example.org/cat.jpg" and by_url.source == "url", by_url
    assert (by_url.width, by_url.height) == (640, 480), by_url
    assert (cat.width, cat.height) == (451, 300), cat

    step("create a two-stage pipeline whose filter nests all/any/not with field and regex checks")
    sent = definition(f"Animal survey {run}", "Describe the animal.")
    created = expect(create_pipeline.sync_detailed(client=client, body=sent), 201, Pipeline)
    assert created.version == 1

    step("read it back: typed, equal to what was sent")
    read = expect(get_pipeline.sync_detailed(created.id, client=client), 200, Pipeline)
    assert read.name == sent.name and read.description == sent.description
    assert read.stages == sent.stages, f"{read.stages} != {sent.stages}"
    assert isinstance(read.stages[0].filter_, FilterAll)
    assert isinstance(read.stages[0].filter_.filters[1], FilterNot)
    assert isinstance(read.stages[0].filter_.filters[1].filter_, FilterField)
    assert read.stages[0].filter_.filters[0].filters[1].pattern == "(?i)\\bhorse\\b"

    step("update it")
    changed = definition(sent.name, "Describe the animal in two sentences.")
    updated = expect(update_pipeline.sync_detailed(created.id, client=client, body=changed), 200, Pipeline)
    assert updated.version == 2 and updated.stages == changed.stages

    step("estimate the job before submitting it: calls, tokens from the images' sizes, cost range, ETA")
    submission = SubmitJob(pipeline_id=created.id, library_id=library.id, image_ids=[cat.id, rocket.id])
    estimate = expect(estimate_job.sync_detailed(client=client, body=submission), 200, JobEstimate)
    assert (estimate.images, estimate.max_calls, estimate.images_of_unknown_size) == (2, 4, 0), estimate
    assert estimate.input_tokens.low == estimate.input_tokens.high > 0, estimate.input_tokens
    assert 0 < estimate.cost_usd.low <= estimate.cost_usd.high, estimate.cost_usd
    assert estimate.prices.as_of and estimate.eta_seconds >= 0, estimate

    step("submit a job with an idempotency key (twice: the same job)")
    key = f"client-smoke-{run}"
    job = expect(submit_job.sync_detailed(client=client, body=submission, idempotency_key=key), 202, Job)
    again = expect(submit_job.sync_detailed(client=client, body=submission, idempotency_key=key), 202, Job)
    assert again.id == job.id, (again.id, job.id)
    assert job.pipeline_version == 2 and job.counts.total == 2
    second = expect(
        submit_job.sync_detailed(
            client=client,
            body=SubmitJob(pipeline_id=created.id, library_id=library.id, image_ids=[cat.id], priority=Priority.HIGH),
        ),
        202,
        Job,
    )
    assert second.id != job.id

    step("follow it live to completion: the event stream, typed (the stand-in answers, a worker runs the stages)")
    frames = follow(client, job.id)
    names = [name for name, _, _ in frames]
    assert names[0] == "snapshot" and isinstance(frames[0][2], Job), names
    assert names[-1] == "job_finished", names
    last = frames[-1][2]
    assert isinstance(last, JobEventProgress) and last.status == JobStatus.COMPLETED, last
    assert last.job_id == job.id and last.counts.total == 2
    # Progress events name the items that moved; a stream that saw a gap (events published out
    # of order by concurrent batches) sends a fresh snapshot in their place instead.
    assert any(
        (isinstance(model, JobEventProgress) and model.items) or (name == "snapshot" and isinstance(model, Job))
        for name, _, model in frames[1:-1]
    ), names
    sequence = [seq for _, seq, _ in frames]
    assert sequence == sorted(set(sequence)), f"event ids increase: {sequence}"
    finished = wait_for(client, job.id)
    assert finished.status == JobStatus.COMPLETED, (finished.status, finished.error_summary)
    assert wait_for(client, second.id).status == JobStatus.COMPLETED
    # The cat passes the filter and is described; the rocket is no animal.
    assert (finished.counts.passed, finished.counts.filtered_out, finished.counts.failed) == (1, 1, 0), finished.counts

    step("page through the history with filters")
    seen = []
    offset = 0
    while True:
        page = expect(
            job_history.sync_detailed(
                client=client,
                pipeline_id=created.id,
                status=JobStatus.COMPLETED,
                library_id=library.id,
                created_from=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1),
                limit=1,
                offset=offset,
            ),
            200,
            PagedJobSummary,
        )
        assert page.total == 2 and len(page.items) <= 1, page
        if not page.items:
            break
        seen.extend(summary.id for summary in page.items)
        offset += page.limit
    assert seen == [second.id, job.id], f"newest first: {seen}"
    none = expect(job_history.sync_detailed(client=client, status=JobStatus.CANCELLED, pipeline_id=created.id), 200, PagedJobSummary)
    assert none.total == 0 and none.items == []

    step("read the results of each stage as typed models")
    first_stage = expect(list_results.sync_detailed(job.id, client=client, stage=0), 200, PagedJobResult)
    assert first_stage.total == 2 and all(isinstance(r, JobResult) for r in first_stage.items)
    by_image = {result.image_id: result for result in first_stage.items}
    assert by_image[cat.id].verdict == Verdict.PASSED and by_image[cat.id].output_json["animal"] is True
    assert by_image[cat.id].output_json["label"] == "cat"
    assert by_image[rocket.id].verdict == Verdict.FILTERED_OUT and by_image[rocket.id].filter_reason
    filtered = expect(
        list_results.sync_detailed(job.id, client=client, stage=0, verdict=Verdict.FILTERED_OUT), 200, PagedJobResult
    )
    assert [r.image_id for r in filtered.items] == [rocket.id]
    second_stage = expect(list_results.sync_detailed(job.id, client=client, stage=1), 200, PagedJobResult)
    assert [r.image_id for r in second_stage.items] == [cat.id]
    assert second_stage.items[0].stage_name == "describe" and "cat" in second_stage.items[0].output_text
    assert second_stage.items[0].usage.output_tokens > 0

    step("export the results as CSV")
    exported = export_results.sync_detailed(job.id, client=client, format_=ExportResultsFormat.CSV)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv"), exported.headers
    rows = list(csv.DictReader(io.StringIO(exported.parsed)))
    assert len(rows) == 3, rows
    assert {row["image_id"] for row in rows} == {str(cat.id), str(rocket.id)}, rows[0].keys()

    step("see a 422 come back as the typed problem, with its field pointers")
    invalid = definition(f"Invalid {run}", " ")
    invalid.stages[0].filter_.filters[0].filters[1].pattern = "(unclosed"
    problem = expect(create_pipeline.sync_detailed(client=client, body=invalid), 422, Problem)
    assert problem.code == "validation_failed" and problem.status == 422, problem
    pointers = sorted(error.path for error in problem.errors)
    assert pointers == ["/stages/0/filter/filters/0/filters/1/pattern", "/stages/1/prompt"], pointers

    print("api smoke: every step passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"api smoke FAILED: {failure}", file=sys.stderr)
        raise

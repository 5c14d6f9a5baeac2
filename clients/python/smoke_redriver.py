"""The re-driver's admin API through the Python client generated from openapi/redriver.json.

Run by scripts/check_clients.sh after smoke_api.py, against the same api, worker and Cohere
stand-in plus a re-driver: API_BASE, API_KEY, STANDIN_URL, REDRIVER_BASE and REDRIVER_TOKEN in
the environment, the generated packages `image_pipelines_client` and `redriver_admin_client` on
PYTHONPATH. The stand-in is told to refuse one image for good, so a job over it fails its item
and dead-letters its message; the dead letter must then be listed and readable, typed.
"""

import hashlib
import json
import os
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from image_pipelines_client import AuthenticatedClient as ApiClient
from image_pipelines_client.api.images import upload_images
from image_pipelines_client.api.jobs import get_job, submit_job
from image_pipelines_client.api.libraries import create_library
from image_pipelines_client.api.pipelines import create_pipeline
from image_pipelines_client.models import (
    CreateLibrary,
    ImageList,
    Job,
    JobStatus,
    Library,
    Pipeline,
    PipelineDefinition,
    StageSpec,
    SubmitJob,
    UploadForm,
)
from image_pipelines_client.types import File
from redriver_admin_client import AuthenticatedClient as AdminClient
from redriver_admin_client.api.dead_letters import get_dead_letter, list_dead_letters
from redriver_admin_client.models import (
    DeadLetterDetail,
    DeadLetterStatus,
    DeadLetterSummary,
    ErrorClass,
    PagedDeadLetterSummary,
    Problem,
)

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "images" / "coins.png"
DEADLINE_SECONDS = 120


def step(text):
    print(f"  - {text}", flush=True)


def expect(response, status, model):
    assert response.status_code == status, f"{response.status_code}: {response.content[:500]!r}"
    assert isinstance(response.parsed, model), f"{type(response.parsed).__name__}, not {model.__name__}"
    return response.parsed


def refuse_image(image: bytes):
    """Tells the stand-in to answer this image with a permanent 400 (test set-up, not the API)."""
    body = json.dumps({"reject_images": [hashlib.sha256(image).hexdigest()]}).encode()
    request = urllib.request.Request(
        f"{os.environ['STANDIN_URL']}/admin/config",
        data=body,
        method="PATCH",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def main():
    api = ApiClient(base_url=os.environ["API_BASE"], token=os.environ["API_KEY"], timeout=30.0)
    admin = AdminClient(base_url=os.environ["REDRIVER_BASE"], token=os.environ["REDRIVER_TOKEN"], timeout=30.0)
    run = uuid.uuid4().hex[:8]
    image = SAMPLE.read_bytes()

    step("a job whose only image Cohere refuses for good")
    refuse_image(image)
    library = expect(create_library.sync_detailed(client=api, body=CreateLibrary(name=f"Dead letters {run}")), 201, Library)
    files = [File(payload=image, file_name=SAMPLE.name, mime_type="image/png")]
    uploaded = expect(upload_images.sync_detailed(library.id, client=api, body=UploadForm(file=files)), 201, ImageList)
    pipeline = expect(
        create_pipeline.sync_detailed(
            client=api,
            body=PipelineDefinition(name=f"Refused {run}", stages=[StageSpec(name="describe", prompt="Describe it.")]),
        ),
        201,
        Pipeline,
    )
    job = expect(
        submit_job.sync_detailed(client=api, body=SubmitJob(pipeline_id=pipeline.id, library_id=library.id)), 202, Job
    )
    deadline = time.monotonic() + DEADLINE_SECONDS
    while job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        assert time.monotonic() < deadline, f"job {job.id} still {job.status}"
        time.sleep(0.2)
        job = expect(get_job.sync_detailed(job.id, client=api), 200, Job)
    assert job.counts.failed == 1, job.counts

    step("list the dead letters (the re-driver drains the dead-letter queue)")
    while True:
        page = expect(
            list_dead_letters.sync_detailed(client=admin, job_id=job.id, status=DeadLetterStatus.OPEN, limit=10),
            200,
            PagedDeadLetterSummary,
        )
        if page.items:
            break
        assert time.monotonic() < deadline, "no dead letter for the job"
        time.sleep(0.2)
    assert page.total == 1 and isinstance(page.items[0], DeadLetterSummary), page
    letter = page.items[0]
    assert letter.item_id is not None and letter.stage_index == 0, letter
    assert letter.error_class == ErrorClass.PERMANENT, letter.error_class
    everything = expect(list_dead_letters.sync_detailed(client=admin, limit=50), 200, PagedDeadLetterSummary)
    assert letter.id in [item.id for item in everything.items]

    step("read one, typed")
    detail = expect(get_dead_letter.sync_detailed(letter.id, client=admin), 200, DeadLetterDetail)
    assert detail.id == letter.id and detail.job_id == job.id, detail

    step("a wrong token is the typed 401 problem")
    stranger = AdminClient(base_url=os.environ["REDRIVER_BASE"], token="not-the-token", timeout=30.0)
    problem = expect(list_dead_letters.sync_detailed(client=stranger), 401, Problem)
    assert problem.code == "unauthorized", problem

    print("re-driver smoke: every step passed")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as failure:
        print(f"re-driver smoke FAILED: {failure}", file=sys.stderr)
        raise

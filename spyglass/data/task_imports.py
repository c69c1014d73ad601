"""The tasks API's `import` task (`POST /v2/tasks`): create an image from `input.image_properties`
and fill it from the http(s) URL `input.import_from`, as Glance's legacy import task does.

The request is checked at once (the task JSON Schema, `type` and `input` present, `type` is
`import`, `import_from` an http(s) URL): a bad request is a 400 and no task. Everything after that
happens in the background and ends the task: the image is created and imported by the
web-download path (spyglass.data.imports, with the outbound address policy of spyglass.egress),
so a source that cannot be fetched, an address the policy refuses, or image properties that are
not acceptable end the task in `failure` with the reason in its `message`, and the image it
created is deleted again. A success has `result: {"image_id": ...}`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
from anyio import to_thread

from spyglass.blobs import BlobStore
from spyglass.blobs.registry import StoreSet
from spyglass.context import RequestContext
from spyglass.data import imports, tasks, web_download
from spyglass.data import task_queries as tq
from spyglass.data.task_queries import TaskRecord
from spyglass.db.engine import Database
from spyglass.errors import Invalid, SpyglassError
from spyglass.images import catalog
from spyglass.images.policy import Action, authorize
from spyglass.images.quotas import Quotas
from spyglass.images.schemas import validator
from spyglass.settings import Settings
from spyglass.timeutil import utcnow

REQUIRED_INPUT = ("import_from", "import_from_format", "image_properties")

log = logging.getLogger(__name__)
# Strong references to the running tasks (the event loop keeps only weak ones).
_running: set[asyncio.Task[None]] = set()


def create_task(db: Database, ctx: RequestContext, body: Any, request_id: str | None = None) -> TaskRecord:
    """Check a `POST /v2/tasks` body and record the task as pending (blocking)."""
    authorize(ctx, Action.TASKS_API_ACCESS)
    authorize(ctx, Action.ADD_TASK)
    _check(body)
    task_id = str(uuid.uuid4())
    with db.write() as conn:
        tasks.record(conn, ctx, task_id, tasks.IMPORT, body["input"] or {}, request_id=request_id)
        created = tq.fetch_task(conn, task_id, utcnow())
    assert created is not None
    return created


def _check(body: Any) -> None:
    if not isinstance(body, dict):
        raise Invalid("Body expected in request.")
    for name in ("type", "input"):
        if name not in body:
            raise Invalid(f"Task '{name}' is required")
    errors = sorted(validator("task").iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        raise Invalid(f"Failed validating the task: {errors[0].message}")
    if body["type"] != tasks.IMPORT:
        raise Invalid(f"Task type '{body['type']}' cannot be created through the tasks API.")
    source = (body["input"] or {}).get("import_from")
    if not isinstance(source, str) or not source:
        raise Invalid(f"Invalid location: {source}")
    if source.startswith(("file:", "filesystem:")):
        raise Invalid("File based imports are not allowed. Please use a non-local source of image data.")
    try:
        web_download.check_uri(source)
    except Invalid as exc:
        raise Invalid(f"URI for legacy import task does not pass filtering: {source}") from exc


@dataclass(frozen=True)
class Server:
    """What a running task uses of the server that runs it."""

    db: Database
    stores: StoreSet
    staging: BlobStore
    settings: Settings


def start(task: TaskRecord, ctx: RequestContext, server: Server) -> None:
    """Run the task in the background, in this server process."""
    work = asyncio.get_running_loop().create_task(_run(task, ctx, server), name=f"task-{task.id}")
    _running.add(work)
    work.add_done_callback(_running.discard)


async def _run(task: TaskRecord, ctx: RequestContext, server: Server) -> None:
    db = server.db
    failure: str | None = tasks.INTERRUPTED
    image_id: str | None = None
    try:
        await to_thread.run_sync(tasks.begin_processing, db, task.id)
        image_id, failure = await _import(task, ctx, server)
    except Exception as exc:
        log.exception("Task %s failed", task.id)
        failure = f"Error: {type(exc).__name__}: {exc}"
    finally:
        with anyio.CancelScope(shield=True):
            if failure is not None and image_id is not None:
                await to_thread.run_sync(_discard_image, db, server.stores, ctx, image_id)
            result = {"image_id": image_id} if failure is None else None
            ttl = tasks.time_to_live(server.settings)
            await to_thread.run_sync(tasks.end, db, task.id, failure, result, ttl)


async def _import(task: TaskRecord, ctx: RequestContext, server: Server) -> tuple[str | None, str | None]:
    """Create the image and import into it: (the image id if one was created, the failure or None)."""
    task_input = task.input or {}
    rules = Quotas.of(server.settings)
    for key in REQUIRED_INPUT:
        if key not in task_input:
            return None, f"Input does not contain '{key}' field"
    try:
        properties = task_input["image_properties"]
        image = await to_thread.run_sync(catalog.create_image, server.db, ctx, properties, rules)
    except SpyglassError as exc:
        return None, f"The image could not be created: {exc.message}"
    await to_thread.run_sync(tasks.attach_image, server.db, task.id, image.id)
    body = {"method": {"name": imports.WEB_DOWNLOAD, "uri": task_input["import_from"]}}
    begin = partial(imports.begin_import, request_id=task.request_id, task_id=task.id, quotas=rules)
    try:
        job = await to_thread.run_sync(begin, server.db, ctx, image.id, body, server.settings, server.stores)
    except SpyglassError as exc:
        return image.id, exc.message
    return image.id, await imports.run_import(job, server.db, server.stores, server.staging, server.settings)


def _discard_image(db: Database, stores: StoreSet, ctx: RequestContext, image_id: str) -> None:
    """A failed import task leaves no image behind (Glance deletes it too)."""
    try:
        catalog.delete_image(db, stores, ctx, image_id)
    except SpyglassError as exc:
        log.warning("Task image %s could not be deleted after the task failed: %s", image_id, exc.message)

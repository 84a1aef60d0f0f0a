"""`/jobs`: list, inspect and drive jobs, download their outputs; and the job options of requests."""

from __future__ import annotations

import os
from typing import Any

from ..errors import EmptyAnswer, ErrorCode, OrthancError
from ..jobs.engine import Job
from .app import Api
from .http import EMPTY_JSON_OBJECT, Request, Response, Router, file_stream, json_response


def register(router: Router) -> None:
    router.add("GET", "/jobs", list_jobs)
    router.add("GET", "/jobs/{id}", get_job)
    router.add("DELETE", "/jobs/{id}", delete_job)
    for action in ("cancel", "pause", "resume", "resubmit"):
        router.add("POST", f"/jobs/{{id}}/{action}", _action(action))
    router.add("GET", "/jobs/{id}/{key}", get_output)
    router.add("DELETE", "/jobs/{id}/{key}", delete_output)


async def list_jobs(api: Api, request: Request) -> Response:
    jobs = api.ctx.jobs  # with several processes (jobs.leases), also the jobs the others run
    expand = "expand" in request.query and request.flag("expand")
    if jobs.leases is None:
        return json_response(jobs.all_info() if expand else jobs.ids())
    return json_response(await api.run(jobs.all_info if expand else jobs.ids))


async def get_job(api: Api, request: Request, id: str) -> Response:
    jobs = api.ctx.jobs
    info = jobs.info(id) if jobs.leases is None else await api.run(jobs.info, id)
    if info is None:
        raise EmptyAnswer(404)
    return json_response(info)


async def delete_job(api: Api, request: Request, id: str) -> Response:
    if not await api.run(api.ctx.jobs.engine.delete, id):
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"No job found with this id: {id}")
    return Response(200, b"", b"text/plain")


def _action(name: str):  # type: ignore[no-untyped-def]
    async def handler(api: Api, request: Request, id: str) -> Response:
        engine = api.ctx.jobs.engine
        if not await api.run(getattr(engine, name), id):
            raise EmptyAnswer(400)
        return EMPTY_JSON_OBJECT
    return handler


async def get_output(api: Api, request: Request, id: str, key: str) -> Response:
    output = api.ctx.jobs.engine.output(id, key)
    if output is None or not os.path.exists(output.path):
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"Job has no such output: {key}")
    # opened before the answer starts, so that a concurrent discard cannot cut the stream
    f = await api.run(open, output.path, "rb")
    size = os.fstat(f.fileno()).st_size
    headers = [(b"content-disposition", f'filename="{output.filename}"'.encode()),
               (b"content-length", str(size).encode())]
    return Response(200, b"", output.mime.encode(), headers, stream=file_stream(api.pool, f))


async def delete_output(api: Api, request: Request, id: str, key: str) -> Response:
    """Mainline (1.12.1+): free the output of a job before the job leaves the history."""
    engine = api.ctx.jobs.engine
    if engine.output(id, key) is None:
        raise OrthancError(ErrorCode.INEXISTENT_ITEM, f"Job has no such output: {key}")
    await api.run(engine.discard_output, id)
    return Response(200, b"", b"text/plain")


# -- options shared by every route that creates a job (jobs.md §5.1) ----------------------------------
def job_options(body: Any, default_synchronous: bool = True) -> tuple[bool, int, bool]:
    """(synchronous, priority, permissive) from a JSON body; not an object -> the defaults."""
    if not isinstance(body, dict):
        return default_synchronous, 0, False
    synchronous = default_synchronous
    if "Synchronous" in body:
        synchronous = _boolean(body, "Synchronous")
    elif "Asynchronous" in body:
        synchronous = not _boolean(body, "Asynchronous")
    priority = body.get("Priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, "Integer value expected in field: Priority")
    permissive = _boolean(body, "Permissive") if "Permissive" in body else False
    return synchronous, priority, permissive


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body[name]
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BAD_FILE_FORMAT, f"Boolean value expected in field: {name}")
    return value


async def submit(api: Api, job: Job, synchronous: bool, priority: int) -> Response:
    """Orthanc's answer to a job-creating request: the Content when synchronous, else {ID, Path}."""
    jobs = api.ctx.jobs
    if synchronous:
        return json_response(await api.run(jobs.submit_and_wait, job, priority))
    job_id = jobs.submit(job, priority)
    return json_response({"ID": job_id, "Path": f"/jobs/{job_id}"})

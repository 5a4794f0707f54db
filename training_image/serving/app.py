"""The HTTP endpoints SageMaker calls (contract/serving.py), as a Starlette app.

- ``GET /ping``: 200 and the model's description (the server listens only once it is loaded);
- ``POST /invocations``: one image in, its detections out as JSON (serving/model.py);
- ``GET /execution-parameters``: batch transform's tuning, only when ``SAGEMAKER_BATCH=true``.

A request waits at most ``settings.queue_seconds`` for a turn at the model, then gets 503
naming the concurrency and how to raise it. A refused request gets
``{"error": "<what is wrong and what is allowed>"}`` with its 4xx (or 503) status; nothing a
client sends stops the server.
"""

from __future__ import annotations

import logging
import time

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from contract.serving import (
    BATCH_VARIABLE,
    CUSTOM_ATTRIBUTES_HEADER,
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    PING_PATH,
    QUEUE_SECONDS_VARIABLE,
    WORKERS_VARIABLE,
)
from serving.inputs import BadRequest, Options, read_image, read_request
from serving.model import ServedModel
from serving.settings import ServeSettings

log = logging.getLogger(__name__)

SINGLE_RECORD = "SINGLE_RECORD"  # each S3 object is one request (SplitType None)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is over ``limit`` bytes (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BadRequest(413, f"the body is {declared} bytes; allowed: at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"the body is over {limit} bytes; allowed: at most {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


async def _take_turn(slots: anyio.CapacityLimiter, settings: ServeSettings) -> None:
    """A slot at the model, or BadRequest(503) once the request has waited queue_seconds."""
    try:
        slots.acquire_nowait()  # a free slot, and nobody waiting before this request
        return
    except anyio.WouldBlock:
        pass
    with anyio.move_on_after(settings.queue_seconds):
        await slots.acquire()
        return
    raise BadRequest(
        503,
        f"all {settings.slots} slots of this server were busy for {settings.queue_seconds:g} s; "
        f"retry later, or raise the concurrency: {WORKERS_VARIABLE} (now {settings.slots}), "
        f"more instances, or a longer {QUEUE_SECONDS_VARIABLE}",
    )


def create_app(model: ServedModel, settings: ServeSettings) -> Starlette:
    """The app serving ``model``; at most ``settings.slots`` requests decode and run it at once,
    each in a worker thread of its own."""
    slots = anyio.CapacityLimiter(settings.slots)
    threads = anyio.CapacityLimiter(settings.slots)

    async def ping(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ready", "device": model.device, "model": model.describe()})

    def answer(image: bytes, options: Options) -> dict:
        return model.detect(read_image(image, options, settings.max_pixels))

    async def invocations(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            image, options = read_request(
                await _read_body(request, settings.max_payload_bytes),
                request.headers.get("content-type"),
                query=request.query_params,
                custom_attributes=request.headers.get(CUSTOM_ATTRIBUTES_HEADER),
            )
            await _take_turn(slots, settings)
            try:
                result = await anyio.to_thread.run_sync(answer, image, options, limiter=threads)
            finally:
                slots.release()
        except BadRequest as refused:
            log.warning("refused (%d): %s", refused.status, refused)
            return _error(refused.status, str(refused))
        except Exception as error:  # the model failed on this image: the server goes on
            log.exception("invocation failed")
            return _error(
                500, f"the server failed on this request: {type(error).__name__}: {error}"
            )
        log.debug(
            "%d detections in %.3f s", len(result["detections"]), time.perf_counter() - started
        )
        return JSONResponse(result)

    async def execution_parameters(_request: Request) -> JSONResponse:
        if not settings.batch:
            return _error(404, f"only in a batch transform job ({BATCH_VARIABLE}=true)")
        return JSONResponse(
            {
                "MaxConcurrentTransforms": settings.slots,
                "BatchStrategy": SINGLE_RECORD,
                "MaxPayloadInMB": settings.max_payload_mb,
            }
        )

    routes = [
        Route(PING_PATH, ping, methods=["GET"]),
        Route(INVOCATIONS_PATH, invocations, methods=["POST"]),
        Route(EXECUTION_PARAMETERS_PATH, execution_parameters, methods=["GET"]),
    ]
    return Starlette(routes=routes)

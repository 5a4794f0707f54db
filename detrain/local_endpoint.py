"""SageMaker's hosting played on this machine, as the local runner plays the training host.

- ``local_server(model)``: ``training_image/train serve`` on loopback with the model where
  SageMaker unpacks it (as ``detrain serve`` runs it), until the block ends (SIGTERM);
- ``FrontDoor``: SageMaker's runtime front door: InvokeEndpoint's REST path
  (``POST /endpoints/<name>/invocations``) forwarded to the server of that endpoint, passing
  Content-Type, Accept and the CustomAttributes header; point sagemaker-runtime at it with
  ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``. An unknown endpoint, or a server's refusal, comes
  back in the runtime's own error shapes (ValidationError, ModelError);
- ``transform_folder``: a batch transform over a folder, as SageMaker's agent runs one:
  /execution-parameters first, then each file POSTed whole (SplitType None), its answer
  written as ``<name>.out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from contract.serving import (
    CUSTOM_ATTRIBUTES_HEADER,
    EXECUTION_PARAMETERS_PATH,
    INVOCATION_SECONDS,
    INVOCATIONS_PATH,
    JSON_CONTENT_TYPE,
    PING_PATH,
    SERVE_COMMAND,
    TRANSFORM_CONTENT_TYPE,
)
from detrain.cli_error import CliError
from detrain.emulator import free_port
from detrain.local_runner import TRAIN_SCRIPT
from detrain.serve_command import LOOPBACK, place_model, server_environment

START_SECONDS = 300  # importing torch and loading the model on a busy machine
INVOKE_PATH = re.compile(r"^/endpoints/([^/?]+)/invocations$")
FORWARDED_HEADERS = ("Content-Type", "Accept", CUSTOM_ATTRIBUTES_HEADER)
OUTPUT_SUFFIX = ".out"


class LocalServingError(CliError):
    """The local server did not start, or a transform record failed."""


@dataclass(frozen=True)
class LocalServer:
    url: str
    log_file: Path


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_ready(server: subprocess.Popen, url: str, log_file: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise LocalServingError(
                f"the model server exited with {server.returncode}: "
                f"{log_file.read_text(errors='replace')[-2000:]}"
            )
        with contextlib.suppress(OSError):
            if _get(url + PING_PATH, timeout=5)[0] == 200:
                return
        time.sleep(0.5)
    raise LocalServingError(f"the model server gave no /ping 200 in {START_SECONDS} s; {log_file}")


@contextlib.contextmanager
def local_server(model: Path, work: Path, *, batch: bool = False) -> Iterator[LocalServer]:
    """``train serve`` on ``model`` (a folder or a model.tar.gz), ready, on a free loopback
    port; its log in ``work``/server[-batch].log."""
    work.mkdir(parents=True, exist_ok=True)
    log_file = work / ("server-batch.log" if batch else "server.log")
    with tempfile.TemporaryDirectory(prefix="detrain-serve-") as tree:
        base = Path(tree)
        place_model(str(model), base)
        options = argparse.Namespace(port=free_port(), host=LOOPBACK, batch=batch)
        url = f"http://{LOOPBACK}:{options.port}"
        with log_file.open("w") as log:
            server = subprocess.Popen(
                [sys.executable, str(TRAIN_SCRIPT), SERVE_COMMAND],
                env=server_environment(base, options),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(server, url, log_file)
            yield LocalServer(url, log_file)
        finally:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=INVOCATION_SECONDS)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _forward(server_url: str, path: str, body: bytes, headers: dict[str, str]):
    request = urllib.request.Request(server_url + path, data=body, method="POST")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=INVOCATION_SECONDS) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


class FrontDoor:
    """InvokeEndpoint on loopback: each endpoint name routed to its local server's URL."""

    def __init__(self) -> None:
        self.routes: dict[str, str] = {}
        door = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                door._answer(self, body)

            def log_message(self, *_args) -> None:
                pass

        self._http = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self._http.server_address[1]}"

    def route(self, endpoint: str, server_url: str) -> None:
        self.routes[endpoint] = server_url

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        match = INVOKE_PATH.match(handler.path)
        endpoint = match and urllib.parse.unquote(match.group(1))
        if not endpoint or endpoint not in self.routes:
            return _send_error(
                handler, 400, "ValidationError", f"Endpoint {endpoint or handler.path} not found."
            )
        headers = {n: handler.headers[n] for n in FORWARDED_HEADERS if handler.headers.get(n)}
        try:
            status, kind, answer = _forward(self.routes[endpoint], INVOCATIONS_PATH, body, headers)
        except OSError as error:
            return _send_error(
                handler, 424, "ModelError", f"Received no answer from primary: {error}"
            )
        if status >= 400:  # what SageMaker makes of a container's refusal
            text = answer.decode(errors="replace")
            return _send_error(
                handler,
                424,
                "ModelError",
                f"Received {'client' if status < 500 else 'server'} error ({status}) from "
                f'primary with message "{text}". See the server log for this endpoint.',
            )
        handler.send_response(200)
        handler.send_header("Content-Type", kind or JSON_CONTENT_TYPE)
        handler.send_header("x-Amzn-Invoked-Production-Variant", "AllTraffic")
        handler.send_header("Content-Length", str(len(answer)))
        handler.end_headers()
        handler.wfile.write(answer)

    def __enter__(self) -> FrontDoor:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self._http.shutdown()
        self._http.server_close()


def _send_error(handler: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
    """An error as the runtime's REST-JSON protocol sends it (botocore reads the code from
    the x-amzn-ErrorType header)."""
    payload = json.dumps({"message": message}).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/x-amz-json-1.1")
    handler.send_header("x-amzn-ErrorType", code)
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


@dataclass(frozen=True)
class TransformResult:
    outputs: list[Path]
    concurrency: int


def transform_folder(server_url: str, source: Path, destination: Path) -> TransformResult:
    """Every file under ``source`` sent whole to a batch-mode server (application/x-image), its
    answer written to ``destination``/<relative path>.out; LocalServingError naming each file
    the server refused (SageMaker fails the job then too)."""
    status, raw = _get(server_url + EXECUTION_PARAMETERS_PATH, timeout=INVOCATION_SECONDS)
    if status != 200:
        raise LocalServingError(
            f"{EXECUTION_PARAMETERS_PATH} answered {status}: is the server in batch mode?"
        )
    concurrency = int(json.loads(raw)["MaxConcurrentTransforms"])
    files = sorted(p for p in source.rglob("*") if p.is_file())
    if not files:
        raise LocalServingError(f"no files under {source} to transform")
    headers = {"Content-Type": TRANSFORM_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE}

    def one(path: Path) -> tuple[Path, int, bytes]:
        status, _, answer = _forward(server_url, INVOCATIONS_PATH, path.read_bytes(), headers)
        target = destination / f"{path.relative_to(source)}{OUTPUT_SUFFIX}"
        if status == 200:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(answer)
        return target, status, answer

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = list(pool.map(one, files))
    failed = [f"{t.name}: {s} {a.decode(errors='replace')}" for t, s, a in done if s != 200]
    if failed:
        raise LocalServingError(f"{len(failed)} of {len(files)} records failed: {failed[:3]}")
    return TransformResult([target for target, _, _ in done], concurrency)

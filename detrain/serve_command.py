"""``detrain serve MODEL``: the image's model server, on this machine, started as SageMaker
starts it.

MODEL (a model folder or a model.tar.gz) goes where SageMaker unpacks it, ``model/`` of a
temporary /opt/ml tree (``SAGEMAKER_BASE_DIR``), and ``training_image/train serve`` runs on it:
the same entry, server and endpoints as ``docker run <image> serve`` (docs/serving.md).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from contract.layout import BASE_DIR_VARIABLE, Layout
from contract.serving import (
    BATCH_VARIABLE,
    DEFAULT_PORT,
    HOST_VARIABLE,
    PORT_VARIABLE,
    SERVE_COMMAND,
)
from detrain.cli_error import CliError
from detrain.local_runner import TRAIN_SCRIPT
from detrain.model_commands import model_folder

LOOPBACK = "127.0.0.1"


def server_environment(base: Path, args: argparse.Namespace) -> dict[str, str]:
    """What the server process sees: this environment, plus the container's variables."""
    env = {
        **os.environ,
        BASE_DIR_VARIABLE: str(base),
        PORT_VARIABLE: str(args.port),
        HOST_VARIABLE: args.host,
        "PYTHONUNBUFFERED": "1",
    }
    if args.batch:
        env[BATCH_VARIABLE] = "true"
    else:
        env.pop(BATCH_VARIABLE, None)
    return env


def place_model(given: str, base: Path) -> Path:
    """MODEL at ``base``/model: a folder linked there, a model.tar.gz unpacked there."""
    path = Path(given)
    if not path.exists():
        raise CliError(f"MODEL {given!r} does not exist; allowed: a model folder or a model.tar.gz")
    target = Layout(base).model
    target.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        target.symlink_to(path.resolve(), target_is_directory=True)
    folder = model_folder(
        argparse.Namespace(model=str(target if path.is_dir() else path), out=base)
    )
    if folder != target:  # a model.tar.gz, unpacked into base/model
        raise CliError(f"{given!r} did not unpack into {target}")
    return folder


def _serve(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not allowed; allowed: 1 to 65535")
    with tempfile.TemporaryDirectory(prefix="detrain-serve-") as tree:
        base = Path(tree)
        place_model(args.model, base)
        command = [sys.executable, str(TRAIN_SCRIPT), SERVE_COMMAND]
        print(f"serving {args.model} on http://{args.host}:{args.port}/invocations (Ctrl-C stops)")
        with subprocess.Popen(command, env=server_environment(base, args)) as server:
            return _wait_stopping_on_signal(server)


def _wait_stopping_on_signal(server: subprocess.Popen) -> int:
    """The server's exit code; Ctrl-C or a SIGTERM to this process stops it gracefully."""

    def stop(*_signal) -> None:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            try:
                return server.wait()
            except KeyboardInterrupt:  # in a terminal the server got the SIGINT too
                stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(subcommands: argparse._SubParsersAction) -> None:
    cmd = subcommands.add_parser(
        "serve",
        help="serve a model over HTTP on this machine, as a SageMaker endpoint does",
        description="Run the training image's model server (training_image/train serve) on "
        "MODEL: GET /ping, POST /invocations with an image (image/jpeg, image/png, "
        'application/x-image, or application/json {"image": "<base64>"}), answered with its '
        "detections as JSON. See docs/serving.md. Needs torch and torchvision.",
    )
    cmd.add_argument("model", help="a model folder or a model.tar.gz")
    cmd.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    cmd.add_argument(
        "--host", default=LOOPBACK, help=f"address to listen on (default {LOOPBACK}: this machine)"
    )
    cmd.add_argument(
        "--batch",
        action="store_true",
        help=f"as in a batch transform job ({BATCH_VARIABLE}=true: /execution-parameters answers)",
    )
    cmd.set_defaults(func=_serve)

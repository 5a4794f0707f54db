"""The model server as the image runs it: ``training_image/train serve`` in a child process,
its /opt/ml tree under tmp_path, on a free loopback port, with a real trained model.

``trained_model`` (tests/conftest.py): one tiny trained model for the session.
``start_server(**environment)``: a started server (its base URL, process and log), stopped at
the test's end.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from contract.layout import BASE_DIR_VARIABLE, Layout
from contract.serving import HOST_VARIABLE, PING_PATH, PORT_VARIABLE

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN = REPO_ROOT / "training_image" / "train"
START_SECONDS = 180  # importing torch on a busy CI host


def child_environment(base: Path, **extra: str) -> dict[str, str]:
    """This environment with the container's variables (the venv's python first on PATH)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAGEMAKER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env[BASE_DIR_VARIABLE] = str(base)
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen
    log_file: Path

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def wait_until_ready(server: RunningServer, seconds: float = START_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(
                f"the server exited with {server.process.returncode}:\n{server.log}"
            )
        try:
            if requests.get(server.url + PING_PATH, timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no /ping 200 in {seconds} s:\n{server.log}")


def launch(base: Path, log_file: Path, **environment: str) -> RunningServer:
    """`train serve` on the tree at ``base`` (not waiting for it)."""
    port = int(environment.pop(PORT_VARIABLE, free_port()))
    env = child_environment(base, **{PORT_VARIABLE: str(port), HOST_VARIABLE: "127.0.0.1"})
    process = subprocess.Popen(
        [str(TRAIN), "serve"],
        env={**env, **environment},
        stdout=log_file.open("w"),
        stderr=subprocess.STDOUT,
    )
    return RunningServer(f"http://127.0.0.1:{port}", process, log_file)


@pytest.fixture(scope="module")
def opt_ml_with_model(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A serving host's /opt/ml: the trained model unpacked in model/."""
    base = tmp_path_factory.mktemp("serving") / "opt-ml"
    shutil.copytree(trained_model, Layout(base).model)
    return base


@pytest.fixture(scope="module")
def server(opt_ml_with_model: Path) -> Iterator[RunningServer]:
    """One running server for a module's requests."""
    running = launch(opt_ml_with_model, opt_ml_with_model.parent / "server.log")
    try:
        wait_until_ready(running)
        yield running
    finally:
        running.stop()


@pytest.fixture
def start_server(opt_ml_with_model: Path, tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """start_server(ready=True, base=the tree with the model, **environment) -> a server of its
    own, stopped after the test."""
    started: list[RunningServer] = []

    def start(ready: bool = True, base: Path | None = None, **environment: str) -> RunningServer:
        log_file = tmp_path / f"server-{len(started)}.log"
        running = launch(base or opt_ml_with_model, log_file, **environment)
        started.append(running)
        if ready:
            wait_until_ready(running)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()

"""`detrain serve MODEL`: the CLI as a child process runs the image's server on this machine."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from detrain import serve_command
from detrain.cli import build_parser
from detrain.cli_error import CliError


def _model_archive(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as tar:
        for path in folder.iterdir():
            tar.add(path, arcname=path.name)
    return target


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (90, 70), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_ping(url: str, cli: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and cli.poll() is None:
        try:
            if requests.get(url + "/ping", timeout=5).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.5)


def _signals_as_in_a_terminal() -> None:
    """Ctrl-C at its default, as a terminal's foreground job has it: a shell starts its
    background jobs with SIGINT ignored, and this suite may run in one (a child would inherit
    that, and never see the Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_a_model_archive_until_stopped(trained_model, tmp_path, clean_env, stop):
    archive = _model_archive(trained_model, tmp_path / "model.tar.gz")
    port = _free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "detrain", "serve", str(archive), "--port", str(port)]
    url = f"http://127.0.0.1:{port}"

    with subprocess.Popen(
        command,
        env=clean_env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        preexec_fn=_signals_as_in_a_terminal,
        start_new_session=True,  # the CLI and its server, killed together if the test fails
    ) as cli:
        try:
            _wait_for_ping(url, cli)
            answer = requests.post(
                url + "/invocations",
                data=_png(),
                headers={"Content-Type": "image/png"},
                params={"threshold": "0", "max_detections": "5"},
                timeout=60,
            )
            batch_only = requests.get(url + "/execution-parameters", timeout=10)
            cli.send_signal(stop)  # to the CLI alone: it stops the server it started
            code = cli.wait(timeout=60)
        finally:
            if cli.poll() is None:
                os.killpg(cli.pid, signal.SIGKILL)

    assert answer.status_code == 200, log.read_text()
    assert len(answer.json()["detections"]) == 5
    assert batch_only.status_code == 404
    assert code == 0, log.read_text()
    assert f"on 127.0.0.1:{port}" in log.read_text()
    assert "Stopped" in log.read_text()


def test_a_model_folder_is_linked_where_sagemaker_unpacks_it(tmp_path):
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "detector.py").write_text("")

    folder = serve_command.place_model(str(model), tmp_path / "opt-ml")

    assert folder == tmp_path / "opt-ml" / "model"
    assert folder.resolve() == model.resolve()


def test_a_missing_model_or_a_folder_without_one_is_named(tmp_path):
    (tmp_path / "empty").mkdir()

    with pytest.raises(CliError, match="MODEL 'nowhere' does not exist; allowed: a model folder"):
        serve_command.place_model("nowhere", tmp_path)
    with pytest.raises(CliError, match=r"is not a detrain model: it has no config\.json"):
        serve_command.place_model(str(tmp_path / "empty"), tmp_path / "opt-ml")


def test_help_names_the_endpoints(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])

    assert "POST /invocations" in capsys.readouterr().out.replace("\n", " ")

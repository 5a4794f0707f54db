"""`<image> serve` over real HTTP: the server started as SageMaker starts it (training_image/train
serve, the model in $SAGEMAKER_BASE_DIR/model), asked as SageMaker and its callers ask."""

from __future__ import annotations

import base64
import importlib.util
import io
import signal
import socket
import struct
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from contract.serving import CUSTOM_ATTRIBUTES_HEADER, MAX_IMAGE_PIXELS, MAX_PAYLOAD_MB

pytestmark = pytest.mark.slow

INVOCATIONS = "/invocations"
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # where the server puts the model


def _bytes(image: Image.Image, kind: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **save)
    return buffer.getvalue()


def _scene(width: int = 160, height: int = 120) -> Image.Image:
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    pixels[20:80, 30:100] = (255, 0, 0)
    return Image.fromarray(pixels)


def _sixteen_bit_png() -> bytes:
    ramp = np.linspace(0, 65535, 96 * 80, dtype=np.uint16).reshape(80, 96)
    image = Image.fromarray(ramp)
    assert image.mode.startswith("I;16")
    return _bytes(image, "PNG")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header says width x height, with one row of pixels (Pillow opens it lazily)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\0" * (width + 1))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def detector(trained_model: Path):
    """The model folder's own detector.py, loaded in this process: what the server must match."""
    spec = importlib.util.spec_from_file_location(
        "test_served_detector", trained_model / "detector.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Detector.load(trained_model, device=DEVICE)


def _invoke(server, body: bytes, content_type: str, **kwargs) -> requests.Response:
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    return requests.post(server.url + INVOCATIONS, data=body, headers=headers, timeout=60, **kwargs)


def _same_detections(served: list[dict], expected: list[dict]) -> None:
    assert [d["label"] for d in served] == [d["label"] for d in expected]
    assert [d["score"] for d in served] == pytest.approx([d["score"] for d in expected], abs=1e-4)
    for got, want in zip(served, expected, strict=True):
        assert got["box"] == pytest.approx(want["box"], abs=0.2)


def test_ping_says_ready_with_the_model(server, trained_model):
    answer = requests.get(server.url + "/ping", timeout=10)

    assert answer.status_code == 200
    assert answer.json()["model"]["family"] == "efficientdet"
    assert answer.json()["model"]["classes"] == ["square", "circle", "triangle"]
    assert answer.json()["device"] == DEVICE


@pytest.mark.parametrize("content_type", ["image/png", "image/jpeg", "application/x-image"])
def test_an_image_gets_what_the_model_folder_detector_finds(server, detector, content_type):
    kind = "PNG" if content_type == "image/png" else "JPEG"
    body = _bytes(_scene(), kind)

    answer = _invoke(server, body, content_type, params={"threshold": "0"})

    assert answer.status_code == 200, answer.text
    result = answer.json()
    [expected] = detector.predict([Image.open(io.BytesIO(body))], threshold=0.0)
    expected = sorted(expected, key=lambda d: d["score"], reverse=True)[:100]
    _same_detections(result["detections"], expected)
    assert len(result["detections"]) > 0
    assert result["image"] == {"width": 160, "height": 120}
    assert result["model"] == {"family": "efficientdet", "backbone": "tf_lite0", "epoch": 1}
    for found in result["detections"]:
        assert detector.classes[found["class_id"]] == found["label"]
        x1, y1, x2, y2 = found["box"]
        assert 0 <= x1 <= x2 <= 160 and 0 <= y1 <= y2 <= 120


def test_a_json_body_names_the_image_in_base64_with_its_options(server, detector):
    body = _bytes(_scene(), "PNG")
    document = {"image": base64.b64encode(body).decode(), "threshold": 0.01, "max_detections": 3}

    answer = requests.post(server.url + INVOCATIONS, json=document, timeout=60)

    assert answer.status_code == 200, answer.text
    [expected] = detector.predict([Image.open(io.BytesIO(body))], threshold=0.01)
    expected = sorted(expected, key=lambda d: d["score"], reverse=True)[:3]
    _same_detections(answer.json()["detections"], expected)
    assert answer.json()["threshold"] == 0.01 and answer.json()["max_detections"] == 3


def test_a_16_bit_png_is_scaled_as_in_training(server, detector):
    body = _sixteen_bit_png()

    answer = _invoke(server, body, "image/png", params={"threshold": "0"})

    assert answer.status_code == 200, answer.text
    [expected] = detector.predict([Image.open(io.BytesIO(body))], threshold=0.0)
    _same_detections(answer.json()["detections"], sorted(expected, key=lambda d: -d["score"]))


def test_threshold_and_max_detections_per_request(server):
    body = _bytes(_scene(), "PNG")

    everything = _invoke(server, body, "image/png", params={"threshold": "0"}).json()
    three = _invoke(server, body, "image/png", params={"threshold": "0", "max_detections": "3"})
    by_header = _invoke(
        server,
        body,
        "image/png",
        headers={CUSTOM_ATTRIBUTES_HEADER: "trace=abc, threshold=0, max_detections=2"},
    )
    strict = _invoke(server, body, "image/png", params={"threshold": "1"}).json()

    scores = [d["score"] for d in everything["detections"]]
    assert len(scores) > 3 and scores == sorted(scores, reverse=True)
    assert three.json()["detections"] == everything["detections"][:3]
    assert by_header.json()["detections"] == everything["detections"][:2]
    assert strict["detections"] == []


def _bad_requests() -> dict[str, tuple[dict, int, str]]:
    png = _bytes(_scene(), "PNG")
    return {
        "truncated": (
            {"data": png[: len(png) // 2], "content_type": "image/png"},
            400,
            "truncated",
        ),
        "not an image": (
            {"data": b"%PDF-1.7 hello", "content_type": "image/jpeg"},
            400,
            "not an image",
        ),
        "empty": ({"data": b"", "content_type": "image/png"}, 400, "empty"),
        "unknown type": ({"data": png, "content_type": "text/csv"}, 415, "text/csv"),
        "no type": ({"data": png, "content_type": ""}, 415, "allowed: image/jpeg"),
        "too many pixels": (
            {"data": _png_header_only(8000, 7000), "content_type": "image/png"},
            413,
            f"at most {MAX_IMAGE_PIXELS}",
        ),
        "too many bytes": (
            {"data": b"\xff" * (MAX_PAYLOAD_MB * 2**20 + 1), "content_type": "image/jpeg"},
            413,
            "bytes",
        ),
        "bad json": ({"data": b'{"image": ', "content_type": "application/json"}, 400, "JSON"),
        "json without image": (
            {"data": b'{"threshold": 0.2}', "content_type": "application/json"},
            400,
            '"image"',
        ),
        "json not base64": (
            {"data": b'{"image": "***"}', "content_type": "application/json"},
            400,
            "base64",
        ),
        "threshold out of range": (
            {"data": png, "content_type": "image/png", "params": {"threshold": "1.5"}},
            400,
            "threshold = '1.5'",
        ),
        "max detections not a number": (
            {"data": png, "content_type": "image/png", "params": {"max_detections": "lots"}},
            400,
            "max_detections = 'lots'",
        ),
        "unknown option": (
            {"data": png, "content_type": "image/png", "params": {"limit": "3"}},
            400,
            "'limit'",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_requests()))
def test_bad_input_gets_a_4xx_naming_the_problem_and_the_server_keeps_serving(server, case):
    request, status, says = _bad_requests()[case]
    request = dict(request)

    answer = _invoke(server, request.pop("data"), request.pop("content_type"), **request)

    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert requests.get(server.url + "/ping", timeout=10).status_code == 200
    good = _invoke(server, _bytes(_scene(), "JPEG"), "image/jpeg")
    assert good.status_code == 200


def test_execution_parameters_answer_only_in_batch_transform(server, start_server):
    batch = start_server(SAGEMAKER_BATCH="true", SAGEMAKER_MODEL_SERVER_WORKERS="3")

    outside = requests.get(server.url + "/execution-parameters", timeout=10)
    inside = requests.get(batch.url + "/execution-parameters", timeout=10)

    assert outside.status_code == 404 and "SAGEMAKER_BATCH=true" in outside.json()["error"]
    assert inside.status_code == 200
    parameters = inside.json()
    assert parameters["BatchStrategy"] == "SINGLE_RECORD"
    assert parameters["MaxPayloadInMB"] == MAX_PAYLOAD_MB
    assert parameters["MaxConcurrentTransforms"] == 3  # SAGEMAKER_MODEL_SERVER_WORKERS
    assert "3 at once" in batch.log


def test_a_request_that_waits_too_long_for_a_slot_gets_503_naming_the_concurrency(start_server):
    running = start_server(SAGEMAKER_MODEL_SERVER_WORKERS="1", DETRAIN_MAX_QUEUE_SECONDS="0")
    body = _bytes(_scene(1600, 1200), "JPEG")
    start = threading.Barrier(12)

    def invoke(_number: int) -> requests.Response:
        start.wait()
        return _invoke(running, body, "image/jpeg")

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(invoke, range(12)))

    statuses = [answer.status_code for answer in answers]
    assert set(statuses) == {200, 503}, statuses
    refused = next(answer for answer in answers if answer.status_code == 503).json()["error"]
    assert refused.startswith("all 1 slots of this server were busy for 0 s")
    assert "SAGEMAKER_MODEL_SERVER_WORKERS (now 1)" in refused
    assert requests.get(running.url + "/ping", timeout=10).status_code == 200


def test_sigterm_finishes_the_request_in_flight_then_exits_0(start_server):
    running = start_server()
    body = _bytes(_scene(), "PNG")
    host, port = running.url.removeprefix("http://").split(":")
    head = (
        f"POST {INVOCATIONS} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    with socket.create_connection((host, int(port)), timeout=60) as client:
        client.sendall(head + body[:100])  # the request has begun
        time.sleep(1)
        running.process.send_signal(signal.SIGTERM)
        time.sleep(1)
        client.sendall(body[100:])
        reply = client.makefile("rb").read()

    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]
    assert b'"detections"' in reply
    assert running.process.wait(timeout=60) == 0, running.log
    assert "Stopped" in running.log


def test_a_folder_without_a_model_fails_before_the_port_opens(tmp_path, start_server):
    empty = tmp_path / "opt-ml"
    (empty / "model").mkdir(parents=True)

    running = start_server(ready=False, base=empty)

    assert running.process.wait(timeout=180) == 1
    assert "holds no detrain model: it has no config.json or detector.py" in running.log
    assert "Serving" not in running.log

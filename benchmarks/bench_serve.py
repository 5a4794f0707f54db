"""The model server under bounded load on loopback, against ``Detector.predict`` in this process.

    .venv/bin/python benchmarks/bench_serve.py [--requests N] [--clients 4 16] [--image-size S]
                                               [--datasets DIR]

The server is started as the image starts it (``training_image/train serve``, the model in
``$SAGEMAKER_BASE_DIR/model``, its default concurrency for this host). The model is an
EfficientDet-Lite0 at the default 512 px, saved by the trainer (untrained: the same work per
image). The images are real photos (the shared COCO and fridge samples beside the repository,
when present) and the sample dataset's generated shapes, as JPEG and PNG bodies.

- "in-process" (the baseline): the same bodies, decoded by Pillow and passed to the model
  folder's own ``detector.py`` in this process, threaded as the server is (its slots as worker
  threads, its torch thread count), after the same warm-up;
- "server, N clients": N threads each with a keep-alive connection POST the bodies to
  /invocations. Every tenth request is a bad input (truncated, not an image, empty, an unknown
  content type, too many pixels): each must get its 4xx, and /ping must answer after the load.

The baseline runs before and after the server (the better of the two counts: on a shared
machine the load changes). Throughput is per core (both use the same cores). Last line:
``ratio <server/in-process>`` for the lowest of the client counts (goal >= 0.8), and
``errors <n>`` before it (goal 0).
"""

from __future__ import annotations

import argparse
import http.client
import io
import itertools
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "training_image"))
sys.path.insert(0, str(ROOT))

from contract.layout import BASE_DIR_VARIABLE, Layout  # noqa: E402
from contract.outputs import load_detector_module  # noqa: E402
from contract.serving import HOST_VARIABLE, PORT_VARIABLE  # noqa: E402
from serving.settings import ServeSettings, available_cores, from_environ  # noqa: E402
from trainer import sample_data  # noqa: E402

SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
PHOTO_FOLDERS = ("coco-sample/images", "fridge-voc/images")
BAD_EVERY = 10


SAVE_MODEL = """
import sys
from pathlib import Path
from contract.hyperparameters import Hyperparameters
from trainer import artifacts, icevision_patches, sample_data
from trainer import model as models
icevision_patches.apply()
hp = Hyperparameters(model="efficientdet", pretrained=False, image_size=int(sys.argv[2]))
artifacts.save_model(Path(sys.argv[1]), models.create(hp, sample_data.CLASSES), summary={})
"""


def save_model(folder: Path, image_size: int) -> None:
    """The trainer's model folder, written by a child process: this process imports no
    trainer (IceVision, OpenCV), only what detector.py needs, as a user's program would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "training_image")}
    command = [sys.executable, "-c", SAVE_MODEL, str(folder), str(image_size)]
    subprocess.run(command, env=env, check=True, capture_output=True)


def request_bodies(datasets: Path, work: Path) -> list[tuple[bytes, str, str]]:
    """(body, content type, name) of each good image: photos as JPEG, shapes as PNG."""
    bodies = []
    for folder in (datasets / name for name in PHOTO_FOLDERS):
        for path in sorted(folder.glob("*.jpg")) if folder.is_dir() else []:
            bodies.append((path.read_bytes(), "image/jpeg", path.name))
    sample = sample_data.generate(work / "sample", images=8, image_size=256)
    for path in sorted((sample.folder / "images").glob("*.png")):
        bodies.append((path.read_bytes(), "image/png", path.name))
    return bodies


def bad_bodies(good: bytes) -> list[tuple[bytes, str, int]]:
    """(body, content type, the status it must get)."""
    huge = io.BytesIO()
    Image.new("L", (8000, 7000)).save(huge, "PNG")
    return [
        (good[: len(good) // 2], "image/jpeg", 400),
        (b"%PDF-1.7 not an image", "image/jpeg", 400),
        (b"", "image/png", 400),
        (good, "text/csv", 415),
        (huge.getvalue(), "image/png", 413),
    ]


WARM_UP = 8  # requests before each timed run, on the first two bodies, for both sides


def in_process(
    model_dir: Path, bodies: list[tuple[bytes, str, str]], count: int, settings: ServeSettings
) -> dict:
    """``detector.predict`` in this process, threaded as the server threads it: ``slots``
    worker threads, torch on ``torch_threads`` intra-op threads (the server's own settings)."""
    import torch

    torch.set_num_threads(settings.torch_threads)
    detector = load_detector_module(model_dir).Detector.load(model_dir)

    def one(body: bytes) -> float:
        begin = time.perf_counter()
        image = Image.open(io.BytesIO(body))
        image.load()
        detector.predict([image], threshold=0.5)
        return time.perf_counter() - begin

    with ThreadPoolExecutor(max_workers=settings.slots) as pool:
        warm_up = itertools.islice(itertools.cycle(bodies[:2]), WARM_UP)
        list(pool.map(one, [body for body, _, _ in warm_up]))
        started = time.perf_counter()
        plan = [b for b, _, _ in itertools.islice(itertools.cycle(bodies), count)]
        latencies = list(pool.map(one, plan))
    return {"seconds": time.perf_counter() - started, "latencies": latencies, "errors": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(base: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, BASE_DIR_VARIABLE: str(base), PORT_VARIABLE: str(port)}
    env[HOST_VARIABLE] = "127.0.0.1"
    log = (base.parent / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "training_image" / "train"), "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        if ping(port) == 200:
            return server
        time.sleep(0.5)
    raise SystemExit(f"the server did not start: {(base.parent / 'server.log').read_text()}")


def ping(port: int) -> int | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/ping")
        status = connection.getresponse().status
        connection.close()
        return status
    except OSError:
        return None


def load(port: int, clients: int, bodies: list, bad: list, count: int) -> dict:
    """``count`` requests from ``clients`` threads; every BAD_EVERY-th one a bad input."""
    plan = []
    for index, (body, kind, _) in enumerate(itertools.islice(itertools.cycle(bodies), count)):
        plan.append((body, kind, 200))
        if index % BAD_EVERY == BAD_EVERY - 1:
            plan.append(bad[(index // BAD_EVERY) % len(bad)])
    work = iter(plan)
    lock = threading.Lock()
    latencies: list[float] = []
    problems: list[str] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                item = next(work, None)
            if item is None:
                break
            body, kind, expected = item
            begin = time.perf_counter()
            try:
                connection.request(
                    "POST", "/invocations", body=body, headers={"Content-Type": kind}
                )
                answer = connection.getresponse()
                answer.read()
                status = answer.status
            except OSError as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = f"{type(error).__name__}: {error}"
            if status != expected:
                problems.append(f"{kind} ({len(body)} bytes): {status}, expected {expected}")
            elif expected == 200:
                latencies.append(time.perf_counter() - begin)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "latencies": latencies,
        "errors": len(problems),
        "problems": problems,
    }


def row(name: str, result: dict, cores: int) -> float:
    latencies = sorted(result["latencies"])
    rate = len(latencies) / result["seconds"]
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"{name:<22} {len(latencies):>5} images {rate:7.2f}/s {rate / cores:7.2f}/s/core "
        f"p50 {p50:7.1f} ms p99 {p99:7.1f} ms errors {result['errors']}"
    )
    return rate / cores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="good requests per load")
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument(
        "--datasets", type=Path, default=SHARED_DATASETS, help="the shared datasets (photos)"
    )
    args = parser.parse_args()
    cores = available_cores()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        base = Path(tmp) / "opt-ml"
        save_model(Layout(base).model, args.image_size)
        bodies = request_bodies(args.datasets, Path(tmp))
        bad = bad_bodies(bodies[0][0])
        photos = sum(kind == "image/jpeg" for _, kind, _ in bodies)
        print(
            f"{cores} cores; {photos} photos + {len(bodies) - photos} generated images; "
            f"{args.requests} good requests per run, 1 bad input in {BAD_EVERY + 1}"
        )
        model_dir = Layout(base).model
        # The server's settings for this host (it logs the same): the baseline threads as it does.
        settings = from_environ(os.environ, cores=cores, gpus=0)
        print(f"both sides: {settings.slots} at once x {settings.torch_threads} torch threads")
        baseline = row("in-process", in_process(model_dir, bodies, args.requests, settings), cores)
        port = free_port()
        server = start_server(base, port)
        try:
            load(port, 2, bodies[:2], [], WARM_UP)  # the same warm-up as in_process
            ratios, errors = [], 0
            for clients in args.clients:
                result = load(port, clients, bodies, bad, args.requests)
                ratios.append(row(f"server, {clients} clients", result, cores) / baseline)
                errors += result["errors"]
                for problem in result["problems"][:5]:
                    print("  ", problem)
            alive = ping(port)
            print(f"/ping after the load: {alive}")
            errors += alive != 200
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
        # Again, now that the server is gone: the better of the two baselines counts.
        again = row(
            "in-process, again", in_process(model_dir, bodies, args.requests, settings), cores
        )
        ratios = [r * baseline / max(baseline, again) for r in ratios]
        print(f"the server's own settings: {settings_line(base)}")
    print(" ".join(f"{c} clients {r:.2f}" for c, r in zip(args.clients, ratios, strict=True)))
    print(f"errors {errors}")
    print(f"ratio {min(ratios):.2f}")
    return 0


def settings_line(base: Path) -> str:
    text = (base.parent / "server.log").read_text()
    return next((line.split(": ", 1)[-1] for line in text.splitlines() if "at once" in line), "?")


if __name__ == "__main__":
    sys.exit(main())

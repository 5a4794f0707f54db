"""Run a SageMaker training job on this machine, the way SageMaker runs it.

For each host: lay out the /opt/ml tree (detrain/opt_ml.py), download the channels and any
earlier checkpoints, then run ``training_image/train train`` with ``SAGEMAKER_BASE_DIR``
pointing at the tree (or ``docker run -v <tree>:/opt/ml IMAGE train``). Its output is
streamed; SIGTERM and Ctrl-C are forwarded as SIGTERM (SageMaker's stop signal), and the
container gets the same 120 s to checkpoint and exit before SIGKILL. Afterwards
/opt/ml/model becomes ``<S3OutputPath>/<job>/output/model.tar.gz``, /opt/ml/output/data
becomes ``output.tar.gz`` beside it, checkpoints are synced to CheckpointConfig.S3Uri (also
every 30 s while the job runs) and
the first 1,024 characters of /opt/ml/output/failure become the failure reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from contract import metrics
from contract.layout import BASE_DIR_VARIABLE, CONTAINER_ROOT, Layout
from contract.names import MASTER_ADDR_VARIABLE, MASTER_PORT_VARIABLE
from contract.outputs import MODEL_ARCHIVE, OUTPUT_ARCHIVE
from contract.sagemaker import FAILURE_REASON_CHARS, STOP_GRACE_SECONDS
from detrain import opt_ml
from detrain.storage import Storage
from detrain.training_job import JobSpecError, TrainingJob

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = REPO_ROOT / "training_image" / "train"
CHECKPOINT_SYNC_SECONDS = 30  # SageMaker syncs checkpoints to S3 while the job runs


@dataclass
class JobResult:
    job_name: str
    status: str  # Completed | Failed | Stopped, as DescribeTrainingJob would say
    exit_code: int
    failure_reason: str | None
    duration_seconds: float
    metrics: dict[str, float]  # the last metrics line
    run_folder: Path
    model_dir: Path
    output_data_dir: Path
    model_uri: str | None
    output_uri: str
    metrics_history: list[dict[str, float]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == "Completed"


def train_command() -> list[str]:
    return [str(TRAIN_SCRIPT), "train"]


def docker_command(
    job: TrainingJob, layout: Layout, host: str, image: str, gpus: str | None = None
) -> list[str]:
    """``docker run`` as SageMaker starts the container: the tree on /opt/ml, argument ``train``."""
    command = ["docker", "run", "--rm", "--name", f"{job.name}-{host}", "--hostname", host]
    command += ["-v", f"{layout.base}:{CONTAINER_ROOT}", "--shm-size", "2g"]
    for key, value in platform_environment(job).items():
        command += ["-e", f"{key}={value}"]
    if job.network_isolation:
        command += ["--network", "none"]
    if gpus:
        command += ["--gpus", gpus]
    return [*command, image, "train"]


def platform_environment(job: TrainingJob) -> dict[str, str]:
    """What SageMaker sets in the container: the job's Environment, its name and ARN."""
    return {**job.environment, "TRAINING_JOB_NAME": job.name, "TRAINING_JOB_ARN": job.arn}


def loopback_cluster_environment(job: TrainingJob) -> dict[str, str]:
    """For several hosts on this machine: where the master host listens (algo-1 does not resolve).

    The variables are the trainer's local-run overrides (training_image/trainer/agent.py).
    """
    if job.instance_count == 1:
        return {}
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return {MASTER_ADDR_VARIABLE: "127.0.0.1", MASTER_PORT_VARIABLE: str(port)}


def process_environment(
    job: TrainingJob, layout: Layout, cluster: dict[str, str] | None = None
) -> dict[str, str]:
    env = {**os.environ, **platform_environment(job), **(cluster or {})}
    env[BASE_DIR_VARIABLE] = str(layout.base)
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def read_failure(layout: Layout) -> str | None:
    if not layout.failure.is_file():
        return None
    text = layout.failure.read_text(errors="replace")[:FAILURE_REASON_CHARS]
    return text.strip() or None


def pack(folder: Path, archive: Path) -> Path:
    """A .tar.gz of the folder's contents (paths relative to it, as SageMaker packs them)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    partial.replace(archive)
    return archive


class _Children:
    """The hosts' processes: output streamed line by line, stop signals forwarded."""

    def __init__(self, out: TextIO, grace_seconds: float):
        self.out = out
        self.grace_seconds = grace_seconds
        self.processes: list[subprocess.Popen] = []
        self.threads: list[threading.Thread] = []
        self.history: list[dict[str, float]] = []
        self.stop_reason: str | None = None
        self._kill_at: float | None = None
        self._lock = threading.Lock()

    def start(self, command: list[str], env: dict[str, str] | None, log_file: Path, prefix: str):
        # A new session: the terminal's Ctrl-C reaches the runner only, which forwards SIGTERM.
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        collect = not self.threads  # the first host's metrics are the job's
        thread = threading.Thread(
            target=self._stream, args=(process, log_file, prefix, collect), daemon=True
        )
        thread.start()
        self.threads.append(thread)

    def _stream(self, process: subprocess.Popen, log_file: Path, prefix: str, collect: bool):
        with log_file.open("w") as log_out:
            for raw in iter(process.stdout.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                log_out.write(line + "\n")
                log_out.flush()
                with self._lock:
                    self.out.write(f"{prefix}{line}\n")
                    self.out.flush()
                values = metrics.parse_line(line) if collect else None
                if values:
                    self.history.append(values)

    def stop(self, reason: str) -> None:
        """Send SIGTERM once; a second request kills at once."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self._kill_at = time.monotonic() + self.grace_seconds
            log.warning(
                "%s: sending SIGTERM to the training container; it has %d s to checkpoint and exit",
                reason,
                self.grace_seconds,
            )
            self._signal_all(signal.SIGTERM)
        else:
            log.warning("%s again: killing the training container now", reason)
            self._kill_at = time.monotonic()

    def _signal_all(self, signum: int) -> None:
        """SIGTERM to each host's main process (SageMaker's PID 1); SIGKILL to its whole group."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    if signum == signal.SIGKILL:
                        os.killpg(process.pid, signum)
                    else:
                        process.send_signal(signum)

    def wait(self, deadline: float, tick: Callable[[], None], every: float) -> list[int]:
        """Until every host exits: MaxRuntime, the SIGKILL deadline, ``tick`` every few seconds."""
        next_tick = time.monotonic() + every
        while any(p.poll() is None for p in self.processes):
            now = time.monotonic()
            if now >= next_tick:
                tick()
                next_tick = now + every
            if self.stop_reason is None and now >= deadline:
                self.stop("MaxRuntimeInSeconds reached")
            if self._kill_at is not None and now >= self._kill_at:
                self._signal_all(signal.SIGKILL)
            time.sleep(0.1)
        for thread in self.threads:
            thread.join()
        return [p.returncode for p in self.processes]


class _ForwardSignals:
    """While active, SIGTERM and SIGINT ask the children to stop instead of ending the runner."""

    def __init__(self, on_signal: Callable[[str], None]):
        self.on_signal = on_signal
        self.previous: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, _frame):
        self.on_signal(f"received {signal.Signals(signum).name}")

    def __exit__(self, *_exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


class LocalRunner:
    """Runs jobs under ``workdir/<job>/``: one /opt/ml tree per host, logs, packed artifacts."""

    def __init__(
        self,
        workdir: Path,
        *,
        storage: Storage | None = None,
        docker_image: str | None = None,
        gpus: str | None = None,
        command: list[str] | None = None,
        grace_seconds: float = STOP_GRACE_SECONDS,
        sync_seconds: float = CHECKPOINT_SYNC_SECONDS,
        out: TextIO | None = None,
    ):
        self.workdir = Path(workdir).resolve()
        self.storage = storage or Storage()
        self.docker_image = docker_image
        self.gpus = gpus
        self.command = command
        self.grace_seconds = grace_seconds
        self.sync_seconds = sync_seconds
        self.out = out or sys.stdout
        self.children: _Children | None = None

    def layout(self, job: TrainingJob, host: str) -> Layout:
        return Layout(self.workdir / job.name / host)

    def prepare(self, job: TrainingJob, host: str) -> Layout:
        """One host's /opt/ml: config files, channel data, earlier checkpoints."""
        layout = self.layout(job, host)
        if layout.base.exists():
            shutil.rmtree(layout.base)
        interface = opt_ml.CONTAINER_INTERFACE if self.docker_image else opt_ml.LOCAL_INTERFACE
        opt_ml.write_config(job, layout, host=host, interface=interface)
        for channel in job.channels:
            names = opt_ml.shard(
                self.storage.list(channel.uri), host, job.hosts, channel.distribution
            )
            log.info(
                "%s: downloading channel %r: %d files from %s",
                host,
                channel.name,
                len(names),
                channel.uri,
            )
            layout.channel(channel.name).mkdir(parents=True, exist_ok=True)
            self.storage.download(channel.uri, names, layout.channel(channel.name))
        if job.checkpoint_uri:
            names = self.storage.list(job.checkpoint_uri)
            if names:
                log.info(
                    "%s: restoring %d checkpoint files from %s",
                    host,
                    len(names),
                    job.checkpoint_uri,
                )
            local = opt_ml.checkpoint_path(job, layout)
            self.storage.download(job.checkpoint_uri, names, local)
        return layout

    def _command(self, job: TrainingJob, layout: Layout, host: str, cluster: dict[str, str]):
        if self.docker_image:
            return docker_command(job, layout, host, self.docker_image, self.gpus), None
        command = self.command or train_command()
        if not self.command and not TRAIN_SCRIPT.is_file():
            raise FileNotFoundError(f"the trainer's entry point {TRAIN_SCRIPT} is missing")
        return command, process_environment(job, layout, cluster)

    def run(self, job: TrainingJob) -> JobResult:
        if self.docker_image and job.instance_count > 1:
            raise JobSpecError(
                f"instance count {job.instance_count} with Docker is not supported locally; "
                "allowed: 1 (several hosts run as local processes without --docker)"
            )
        run_folder = self.workdir / job.name
        run_folder.mkdir(parents=True, exist_ok=True)
        layouts = {host: self.prepare(job, host) for host in job.hosts}
        cluster = loopback_cluster_environment(job)
        self.children = children = _Children(self.out, self.grace_seconds)
        started = time.monotonic()
        log.info(
            "%s: starting the training container (%d host%s)",
            job.name,
            len(layouts),
            "s" * (len(layouts) > 1),
        )
        with _ForwardSignals(children.stop):
            for host, layout in layouts.items():
                command, env = self._command(job, layout, host, cluster)
                prefix = f"[{host}] " if len(layouts) > 1 else ""
                children.start(command, env, run_folder / f"{host}.log", prefix)
            codes = children.wait(
                deadline=started + job.max_runtime_seconds,
                tick=lambda: self._sync_checkpoints(job, layouts[job.hosts[0]]),
                every=self.sync_seconds,
            )
        duration = time.monotonic() - started
        return self._finish(job, layouts, codes, duration, children)

    def _sync_checkpoints(self, job: TrainingJob, layout: Layout) -> int | None:
        """Mirror the first host's checkpoint folder to CheckpointConfig.S3Uri (rank 0 writes)."""
        if not job.checkpoint_uri:
            return None
        return self.storage.sync_up(opt_ml.checkpoint_path(job, layout), job.checkpoint_uri)

    def _finish(self, job, layouts, codes, duration, children) -> JobResult:
        first = layouts[job.hosts[0]]
        exit_code = next((c for c in codes if c != 0), 0)
        failure = next((r for r in map(read_failure, layouts.values()) if r), None)
        if children.stop_reason:
            status = "Stopped"
        elif exit_code == 0:
            status = "Completed"
        else:
            status = "Failed"
            failure = (
                failure or f"AlgorithmError: the training container exited with code {exit_code}"
            )
        artifacts = self.workdir / job.name / "artifacts"
        output_uri = job.artifact_uri(OUTPUT_ARCHIVE)
        self.storage.upload(pack(first.output_data, artifacts / OUTPUT_ARCHIVE), output_uri)
        model_uri = None
        if status != "Failed" and any(first.model.iterdir()):
            model_uri = job.artifact_uri(MODEL_ARCHIVE)
            self.storage.upload(pack(first.model, artifacts / MODEL_ARCHIVE), model_uri)
        count = self._sync_checkpoints(job, first)
        if count is not None:
            log.info("%s: synced %d checkpoint files to %s", job.name, count, job.checkpoint_uri)
        result = JobResult(
            job_name=job.name,
            status=status,
            exit_code=exit_code,
            failure_reason=failure if status != "Completed" else None,
            duration_seconds=round(duration, 1),
            metrics=children.history[-1] if children.history else {},
            run_folder=self.workdir / job.name,
            model_dir=first.model,
            output_data_dir=first.output_data,
            model_uri=model_uri,
            output_uri=output_uri,
            metrics_history=children.history,
        )
        summary = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(result).items()}
        (result.run_folder / "job.json").write_text(json.dumps(summary, indent=2) + "\n")
        return result

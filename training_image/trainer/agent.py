"""The per-host agent: what torchrun does, plus a "first failure wins" record across hosts.

SageMaker starts one container per instance and describes the cluster in
``resourceconfig.json`` (``hosts``, ``current_host``, ``network_interface_name``;
https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-training-algo-running-container.html).
The program SageMaker starts stays PID 1 and becomes this host's agent: it spawns one
worker per GPU (one on a CPU host) with ``torch.multiprocessing``, forwards SIGTERM to
them and exits with the first failing worker's code. The first host in ``hosts`` is the
master: its agent serves the rendezvous ``TCPStore`` that every process joins; global
rank = host index x processes per host + local rank. NCCL on GPU, gloo on CPU.

Failures: a failing worker records its reason in the store (first one wins) before it
exits, so every host's agent reports the job's first failure, not a peer's "connection
closed"; the text and exit code follow trainer/errors.py. Timeouts
(``DETRAIN_INIT_TIMEOUT_SECONDS`` for the hosts to meet, ``DETRAIN_COLLECTIVE_TIMEOUT_SECONDS``
for any collective) turn a dead or stuck rank into a failed job instead of one that hangs
until MaxRuntime.

Inside ``train()``, trainer/collectives.py holds what changes when data-parallel, and
trainer/sharding.py how the data is split among the ranks.

Environment overrides: ``DETRAIN_MASTER_ADDR`` / ``DETRAIN_MASTER_PORT`` (local runs only:
``algo-N`` does not resolve on a laptop), ``DETRAIN_PROCESSES_PER_HOST`` (default: the GPU
count, or 1), ``DETRAIN_DISTRIBUTED=1`` (use DDP even for a single process).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessContext, ProcessException

from contract.names import MASTER_ADDR_VARIABLE, MASTER_PORT_VARIABLE
from contract.sagemaker import EXIT_STOPPED
from trainer import environment, errors
from trainer.environment import TrainingEnvironment
from trainer.errors import EXIT_BUG, ClusterFailed, ConfigError, TrainingStopped, UserError

log = logging.getLogger(__name__)

PROCESSES_VARIABLE = "DETRAIN_PROCESSES_PER_HOST"
FORCE_VARIABLE = "DETRAIN_DISTRIBUTED"
INIT_TIMEOUT_VARIABLE = "DETRAIN_INIT_TIMEOUT_SECONDS"
COLLECTIVE_TIMEOUT_VARIABLE = "DETRAIN_COLLECTIVE_TIMEOUT_SECONDS"
DEFAULT_PORT = 29500
DEFAULT_INIT_TIMEOUT = 900
DEFAULT_COLLECTIVE_TIMEOUT = 1800
POLL_SECONDS = 1.0
GRACE_SECONDS = 10.0  # after a failure: time for the other workers to fail on their own
SETTLE_SECONDS = 3.0
EXIT_LOST = EXIT_BUG  # a process or host lost
_FAILURE_KEY = "detrain/failure"


@dataclass(frozen=True)
class Cluster:
    """Where this host sits in the job, from resourceconfig.json and the GPUs it sees."""

    hosts: tuple[str, ...]
    current_host: str
    processes_per_host: int
    master_addr: str
    master_port: int
    backend: str
    network_interface: str
    init_timeout: timedelta
    collective_timeout: timedelta
    forced: bool = False

    @property
    def node_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def world_size(self) -> int:
        return len(self.hosts) * self.processes_per_host

    @property
    def spawns_workers(self) -> bool:
        return self.forced or self.world_size > 1

    def rank(self, local_rank: int) -> int:
        return self.node_rank * self.processes_per_host + local_rank


def _positive(environ: Mapping[str, str], name: str, default: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise ConfigError(
            f"environment variable {name} = {raw!r} is not allowed; allowed: 1 to {high}"
        )
    return int(raw)


def plan(env: TrainingEnvironment, environ: Mapping[str, str] = os.environ) -> Cluster:
    """This host's part in the job; raises ConfigError naming a bad override."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    processes = _positive(environ, PROCESSES_VARIABLE, max(gpus, 1), max(gpus, 1) if gpus else 64)
    forced = environ.get(FORCE_VARIABLE, "").strip().lower()
    if forced not in ("", "0", "1", "true", "false"):
        raise ConfigError(
            f"environment variable {FORCE_VARIABLE} = {forced!r} is not allowed; allowed: 1 or 0"
        )
    return Cluster(
        hosts=env.hosts,
        current_host=env.current_host,
        processes_per_host=processes,
        master_addr=environ.get(MASTER_ADDR_VARIABLE, "").strip() or env.hosts[0],
        master_port=_positive(environ, MASTER_PORT_VARIABLE, DEFAULT_PORT, 65535),
        backend="nccl" if gpus else "gloo",
        network_interface=env.network_interface,
        init_timeout=timedelta(
            seconds=_positive(environ, INIT_TIMEOUT_VARIABLE, DEFAULT_INIT_TIMEOUT, 86400)
        ),
        collective_timeout=timedelta(
            seconds=_positive(
                environ, COLLECTIVE_TIMEOUT_VARIABLE, DEFAULT_COLLECTIVE_TIMEOUT, 86400
            )
        ),
        forced=forced in ("1", "true"),
    )


def run(train: Callable[[], None]) -> None:
    """``train()`` in this process, or in one DDP worker per GPU when the job needs more."""
    cluster = plan(environment.load())
    if not cluster.spawns_workers:
        train()
        return
    _interface_variables(cluster.network_interface)
    log.info(
        "data-parallel: host %s (%d of %d), %d processes per host, world size %d, %s, master %s:%d",
        cluster.current_host,
        cluster.node_rank + 1,
        len(cluster.hosts),
        cluster.processes_per_host,
        cluster.world_size,
        cluster.backend,
        cluster.master_addr,
        cluster.master_port,
    )
    store = _meet(cluster)
    records = Path(tempfile.mkdtemp(prefix="detrain-ranks-"))
    context = mp.start_processes(
        _worker,
        args=(cluster, train, str(records)),
        nprocs=cluster.processes_per_host,
        join=False,
        start_method="spawn",
    )
    _supervise(context, cluster, store, records)
    _leave(cluster, store)
    log.info(
        "all %d processes of host %s finished", cluster.processes_per_host, cluster.current_host
    )


def _interface_variables(interface: str) -> None:
    """Gloo and NCCL talk over the interface resourceconfig.json names (when this host has it)."""
    present = {name for _, name in socket.if_nameindex()}
    if interface and interface in present:
        for variable in ("GLOO_SOCKET_IFNAME", "NCCL_SOCKET_IFNAME"):
            os.environ.setdefault(variable, interface)


def _meet(cluster: Cluster) -> dist.TCPStore:
    """The master serves the store; every host checks in and waits for the others."""
    timeout = cluster.init_timeout
    where = f"{cluster.master_addr}:{cluster.master_port}"
    try:
        store = dist.TCPStore(
            cluster.master_addr,
            cluster.master_port,
            None,
            cluster.node_rank == 0,
            timeout,
            wait_for_workers=False,
        )
    except (RuntimeError, dist.DistError) as error:
        raise ClusterFailed(
            f"host {cluster.current_host} could not reach the master host {cluster.hosts[0]} "
            f"at {where} within {timeout.total_seconds():.0f} s ({INIT_TIMEOUT_VARIABLE}): {error}",
            EXIT_LOST,
        ) from None
    store.set(f"detrain/host/{cluster.current_host}", "1")
    deadline = time.monotonic() + timeout.total_seconds()
    keys = [f"detrain/host/{h}" for h in cluster.hosts]
    while not store.check(keys):
        if time.monotonic() > deadline:
            missing = [h for h, k in zip(cluster.hosts, keys, strict=True) if not store.check([k])]
            raise ClusterFailed(
                f"hosts {', '.join(missing)} did not join the job at {where} within "
                f"{timeout.total_seconds():.0f} s ({INIT_TIMEOUT_VARIABLE})",
                EXIT_LOST,
            )
        time.sleep(0.2)
    return store


def _supervise(
    context: ProcessContext, cluster: Cluster, store: dist.TCPStore, records: Path
) -> None:
    """Wait for the workers; forward SIGTERM; stop them when another host's rank failed."""

    def forward(signum: int, _frame: object) -> None:
        log.warning("received %s: forwarding it to the workers", signal.Signals(signum).name)
        for process in context.processes:
            if process.is_alive():
                os.kill(process.pid, signum)

    previous = signal.signal(signal.SIGTERM, forward)
    peer_failed_at = None
    try:
        while True:
            try:
                if context.join(timeout=POLL_SECONDS, grace_period=GRACE_SECONDS):
                    return
            except ProcessException as error:
                raise _failure(cluster, store, records, error) from None
            if peer_failed_at is None and _recorded_failure(store):
                peer_failed_at = time.monotonic()
            elif peer_failed_at and time.monotonic() - peer_failed_at > GRACE_SECONDS:
                for process in context.processes:
                    if process.is_alive():
                        process.kill()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _leave(cluster: Cluster, store: dist.TCPStore) -> None:
    """The master's store outlives the job: it waits (a while) for every host to finish."""
    store.set(f"detrain/done/{cluster.current_host}", "1")
    if cluster.node_rank == 0:
        keys = [f"detrain/done/{h}" for h in cluster.hosts]
        deadline = time.monotonic() + 6 * GRACE_SECONDS
        while not store.check(keys) and time.monotonic() < deadline:
            time.sleep(0.2)


def _recorded_failure(store: dist.TCPStore) -> dict[str, Any] | None:
    try:
        if store.check([_FAILURE_KEY]):
            return json.loads(store.get(_FAILURE_KEY))
    except (RuntimeError, dist.DistError, ValueError):
        pass  # the master host is gone: the workers' own timeouts take over
    return None


def _failure(
    cluster: Cluster, store: dist.TCPStore, records: Path, error: ProcessException
) -> ClusterFailed:
    """The job's first failure (from any host); a worker that died without a word counts too."""
    local = sorted(records.glob("rank-*.json"))
    if local:
        record = json.loads(local[0].read_text())
    else:
        signal_name = getattr(error, "signal_name", None)
        if signal_name == "SIGTERM":  # before the worker's own handler was in place
            code, text = EXIT_STOPPED, "stopped by SIGTERM before training began; nothing to save"
        else:
            how = f"was killed by {signal_name}" if signal_name else str(error)
            code, text = EXIT_LOST, f"the process {how}; out of memory is the usual reason"
        record = _record(cluster, error.error_index, code, f"{text} (see the log)")
        _publish(store, record)
    first = _recorded_failure(store) or record
    where = _where(first["rank"], cluster.world_size, first["host"], first["local_rank"])
    return ClusterFailed(f"{where} failed: {first['text']}", int(first["exit_code"]))


def _record(cluster: Cluster, local_rank: int, exit_code: int, text: str) -> dict[str, Any]:
    """A worker's failure, as the failure file will name it."""
    return {
        "rank": cluster.rank(local_rank),
        "host": cluster.current_host,
        "local_rank": local_rank,
        "exit_code": exit_code,
        "text": text,
    }


def _publish(store: dist.TCPStore | None, record: dict[str, Any]) -> None:
    """Record a failure for every host to report; the first one recorded wins."""
    if store is not None:
        with contextlib.suppress(RuntimeError, dist.DistError):
            store.compare_set(_FAILURE_KEY, "", json.dumps(record))


def _where(rank: int, world_size: int, host: str, local_rank: int) -> str:
    return f"rank {rank} of {world_size} ({host}, local rank {local_rank})"


# ---- the workers


def _worker(
    local_rank: int,
    cluster: Cluster,
    train: Callable[[], None],
    records: str,
) -> None:
    rank = cluster.rank(local_rank)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(cluster.world_size),
        LOCAL_WORLD_SIZE=str(cluster.processes_per_host),
        GROUP_RANK=str(cluster.node_rank),
        MASTER_ADDR=cluster.master_addr,
        MASTER_PORT=str(cluster.master_port),
    )
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        stream=sys.stdout,
        force=True,
        format=f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s",
    )
    store = None
    try:
        store = dist.TCPStore(
            cluster.master_addr, cluster.master_port, None, False, cluster.init_timeout
        )
        if cluster.backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(
            cluster.backend,
            store=dist.PrefixStore("pg", store),
            rank=rank,
            world_size=cluster.world_size,
            timeout=cluster.collective_timeout,
            # Binds NCCL's communicator to this rank's GPU (and silences barrier()'s warning).
            device_id=torch.device("cuda", local_rank) if cluster.backend == "nccl" else None,
        )
        train()
        dist.barrier()
        dist.destroy_process_group()
    except Exception as error:
        code = errors.exit_code(error)
        record = _record(cluster, local_rank, code, errors.failure_text(error))
        logging.getLogger("trainer").error("rank %d failed: %s", rank, record["text"][:4096])
        Path(records, f"rank-{rank:05d}.json").write_text(json.dumps(record))
        if not isinstance(error, (UserError, TrainingStopped)):
            time.sleep(SETTLE_SECONDS)  # often a peer's loss: let its own reason be recorded first
        _publish(store, record)
        sys.stdout.flush()
        os._exit(code)  # not sys.exit: a broken NCCL communicator can block the interpreter's exit

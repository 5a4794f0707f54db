"""Data-parallel training: two hosts on loopback, each a `train train` process with its own
/opt/ml tree (gloo on CPU), as SageMaker runs a 2-instance job.

learning_rate=auto across ranks (one pick, the same steps on every rank) is proven by
test_recipes.py's two-rank range test, and its log line and plot by its single-host run.
"""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.opt_ml import TINY, TRAIN, OptMl, train_env
from tests.support.synthetic import write_coco
from trainer import agent, collectives, sharding
from trainer.engine import World
from trainer.environment import load

HOSTS = ("algo-1", "algo-2")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cluster(tmp_path: Path, hyperparameters: dict, distribution="FullyReplicated") -> list[OptMl]:
    trees = []
    for host in HOSTS:
        tree = OptMl(tmp_path / host)
        write_coco(tree.channel("training"), 12)
        tree.write_config(
            "inputdataconfig.json",
            {"training": {"TrainingInputMode": "File", "S3DistributionType": distribution}},
        )
        tree.write_config(
            "resourceconfig.json",
            {"current_host": host, "hosts": list(HOSTS), "network_interface_name": "lo"},
        )
        tree.hyperparameters({**TINY, **hyperparameters})
        trees.append(tree)
    return trees


def _start(trees: list[OptMl], tmp_path: Path) -> list[subprocess.Popen]:
    port = str(_free_port())
    processes = []
    for host, tree in zip(HOSTS, trees, strict=True):
        env = train_env(tree) | {
            agent.MASTER_ADDR_VARIABLE: "127.0.0.1",
            agent.MASTER_PORT_VARIABLE: port,
            agent.INIT_TIMEOUT_VARIABLE: "60",
            agent.COLLECTIVE_TIMEOUT_VARIABLE: "60",
        }
        log = (tmp_path / f"{host}.log").open("w")
        processes.append(
            subprocess.Popen([str(TRAIN), "train"], env=env, stdout=log, stderr=subprocess.STDOUT)
        )
    return processes


def _metric_lines(text: str) -> list[str]:
    return re.findall(r"^\[metrics\] .*$", text, flags=re.MULTILINE)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_two_hosts_train_one_model_and_one_metrics_stream(tmp_path):
    # Loader workers inside a spawned rank (num_workers > 0): caught on a GPU once, when
    # they tried to pickle IceVision's collate closure.
    trees = _cluster(tmp_path, {"batch_size": "2", "num_workers": "1", "learning_rate": "0.01"})

    codes = [p.wait(timeout=500) for p in _start(trees, tmp_path)]

    logs = [(tmp_path / f"{h}.log").read_text() for h in HOSTS]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "world size 2, gloo, master 127.0.0.1" in logs[0]
    assert "effective batch size 4 (batch_size 2 x 2 processes); learning rate 0.02" in logs[0]
    assert "Start training: epochs 1 to 1, 3 steps each" in logs[0]  # 10 images / 2 ranks / 2
    assert len(_metric_lines(logs[0])) == 1 and _metric_lines(logs[1]) == []
    first, second = trees
    assert (first.model_dir / "config.json").is_file() and (first.model_dir / "model.pt").is_file()
    assert list(second.model_dir.glob("*")) == []
    assert json.loads((first.output_data / "metrics.json").read_text())[0]["epoch"] == 1
    assert not (second.output_data / "metrics.json").exists()
    assert sorted(p.name for p in (first.base / "checkpoints").iterdir()) == [
        "best-model.pt",  # the best epoch's weights, kept for the model (trainer/selection.py)
        "checkpoint-e0001-s000000.pt",
    ]
    assert not (second.base / "checkpoints").exists()
    assert not first.failure.exists() and not second.failure.exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_failing_rank_fails_every_host_with_its_reason(tmp_path):
    trees = _cluster(tmp_path, {})
    (trees[1].channel("training") / "annotations.json").write_text("{not json")

    codes = [p.wait(timeout=240) for p in _start(trees, tmp_path)]

    assert codes == [1, 1]
    for tree in trees:
        reason = tree.failure.read_text()
        assert reason.startswith(
            "rank 1 of 2 (algo-2, local rank 0) failed: DataError: annotations.json is not readable"
        ), reason
        assert list(tree.model_dir.glob("*")) == []


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_rank_fails_the_job_instead_of_hanging(tmp_path):
    trees = _cluster(tmp_path, {"epochs": "5", "batch_size": "2"})
    processes = _start(trees, tmp_path)
    deadline = time.monotonic() + 240
    while "Start training" not in (tmp_path / "algo-1.log").read_text():
        assert time.monotonic() < deadline and processes[0].poll() is None
        time.sleep(0.5)

    _kill_worker(processes[1].pid)
    codes = [p.wait(timeout=200) for p in processes]

    assert codes == [2, 2]
    for tree in trees:
        assert tree.failure.read_text().startswith(
            "rank 1 of 2 (algo-2, local rank 0) failed: the process was killed by SIGKILL"
        )
    assert list(trees[0].model_dir.glob("*")) == []


def _kill_worker(agent_pid: int) -> None:
    """SIGKILL the agent's DDP worker (torch.multiprocessing's spawn child), as an OOM would."""
    children = Path(f"/proc/{agent_pid}/task/{agent_pid}/children").read_text().split()
    for pid in map(int, children):
        if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
            return
    raise AssertionError(f"no worker process under {agent_pid}: {children}")


# ---- the pure parts


def _environment(opt_ml, distribution: str, hosts=HOSTS, validation=False):
    write_coco(opt_ml.channel("training"), 4)
    declared = {"training": {"S3DistributionType": distribution}}
    if validation:
        write_coco(opt_ml.channel("validation"), 2)
        declared["validation"] = {"S3DistributionType": "FullyReplicated"}
    opt_ml.write_config("inputdataconfig.json", declared)
    opt_ml.write_config(
        "resourceconfig.json",
        {"current_host": hosts[-1], "hosts": list(hosts), "network_interface_name": "eth0"},
    )
    return load(opt_ml.base)


def test_plan_ranks_hosts_in_resourceconfig_order(opt_ml):
    env = _environment(opt_ml, "FullyReplicated")
    cluster = agent.plan(env, {agent.PROCESSES_VARIABLE: "4"})
    assert (cluster.node_rank, cluster.world_size, cluster.rank(1)) == (1, 8, 5)
    assert (cluster.master_addr, cluster.master_port) == ("algo-1", agent.DEFAULT_PORT)
    assert cluster.network_interface == "eth0" and cluster.spawns_workers
    local = agent.plan(env, {"DETRAIN_MASTER_ADDR": "127.0.0.1", "DETRAIN_MASTER_PORT": "2"})
    assert (local.master_addr, local.master_port, local.processes_per_host) == ("127.0.0.1", 2, 1)


def test_one_process_on_one_host_runs_in_place_unless_forced(opt_ml):
    env = _environment(opt_ml, "FullyReplicated", hosts=("algo-1",))
    assert not agent.plan(env, {}).spawns_workers
    assert agent.plan(env, {agent.FORCE_VARIABLE: "1"}).spawns_workers


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("DETRAIN_MASTER_PORT", "http", "allowed: 1 to 65535"),
        ("DETRAIN_PROCESSES_PER_HOST", "0", "allowed: 1 to 64"),
        ("DETRAIN_COLLECTIVE_TIMEOUT_SECONDS", "-5", "allowed: 1 to 86400"),
        ("DETRAIN_DISTRIBUTED", "yes", "allowed: 1 or 0"),
    ],
)
def test_bad_overrides_name_the_variable_and_what_is_allowed(opt_ml, variable, value, allowed):
    env = _environment(opt_ml, "FullyReplicated")
    with pytest.raises(agent.ConfigError, match=f"{variable} = '{value}'.*{allowed}"):
        agent.plan(env, {variable: value})


def test_fully_replicated_splits_across_all_ranks(opt_ml, monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    env = _environment(opt_ml, "FullyReplicated")
    world = World(rank=3, size=4, local_rank=1)
    assert sharding.shares(env, world) == (world, world)
    assert sharding.rows(world, 10) == [3, 7]


def test_sharded_data_splits_across_this_hosts_processes_only(opt_ml, monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    world = World(rank=3, size=4, local_rank=1)
    on_host = World(rank=1, size=2, local_rank=1)
    env = _environment(opt_ml, "ShardedByS3Key")
    assert sharding.shares(env, world) == (on_host, on_host)  # validation split off the shard
    with_validation = _environment(opt_ml, "ShardedByS3Key", validation=True)
    assert sharding.shares(with_validation, world) == (on_host, world)


def test_one_process_helpers_are_identities():
    assert sharding.agreed_steps(10, 4, World()) == 3
    assert collectives.mean(2.5) == 2.5 and collectives.broadcast({"a": 1}) == {"a": 1}
    assert collectives.gather([1, 2]) == [1, 2] and not collectives.SharedStop(_Set()).is_set()


class _Set:
    @staticmethod
    def is_set() -> bool:
        return False


@pytest.mark.parametrize(
    ("signal_name", "exit_code", "reason"),
    [
        ("SIGTERM", 143, "stopped by SIGTERM before training began"),
        ("SIGKILL", 2, "the process was killed by SIGKILL; out of memory is the usual reason"),
    ],
)
def test_a_worker_killed_by_a_signal_is_reported_for_what_it_was(
    opt_ml, tmp_path, signal_name, exit_code, reason
):
    from torch.distributed import TCPStore
    from torch.multiprocessing import ProcessExitedException

    cluster = agent.plan(_environment(opt_ml, "FullyReplicated"), {})
    store = TCPStore("127.0.0.1", 0, None, True)
    died = ProcessExitedException(
        "worker died", error_index=0, error_pid=1, exit_code=-9, signal_name=signal_name
    )

    failure = agent._failure(cluster, store, tmp_path, died)

    assert failure.exit_code == exit_code
    assert reason in failure.text

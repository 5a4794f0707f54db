"""The gate's pytest on this machine's cores: serially, with pytest-xdist's workers at torch's
default threads, and with the workers at one thread each (what `make pytest` runs).

Each configuration runs the suite (or the share --marker selects) as a child process, one after
another, on the same checkout. Printed for each: wall seconds, CPU seconds (the child and every
process it waited for: workers, trainers, servers), the tests passed, and the wall ratio against
the serial run of the same command. A run that fails stops the benchmark: a fast red suite
measures nothing. Tests never assert timings; this is where the gate's time is measured
(docs/performance.md, "The gate's time").
Run: .venv/bin/python benchmarks/bench_gate.py [--marker "not slow"] [--configs serial one-thread]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
WORKERS = ["--numprocesses", "auto", "--maxprocesses", "4"]  # as the Makefile's PYTEST
CONFIGS = {  # name -> (pytest options, environment)
    "serial": (["--numprocesses", "0"], {}),
    "workers": (WORKERS, {}),
    "one-thread": (WORKERS, {"OMP_NUM_THREADS": "1"}),
}
DESCRIPTIONS = {
    "serial": "one process, torch's default threads",
    "workers": "a worker per core, torch's default threads",
    "one-thread": "a worker per core, one torch thread each (make pytest)",
}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(name: str, marker: str | None) -> tuple[float, float, str]:
    """One configuration's wall and CPU seconds and its summary line."""
    options, environment = CONFIGS[name]
    command = [*PYTEST, *options, *(["-m", marker] if marker else [])]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    cpu, started = children_cpu(), time.monotonic()
    done = subprocess.run(
        command, cwd=ROOT, env={**env, **environment}, capture_output=True, text=True
    )
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    if done.returncode != 0:
        sys.exit(f"{name}: pytest exited {done.returncode}\n{done.stdout[-3000:]}")
    summary = re.findall(r"\d+ passed[^\n=]*", done.stdout)
    return wall, cpu, summary[-1].strip() if summary else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--marker", help='a pytest -m expression, e.g. "not slow"')
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; suite: {args.marker or 'all tests'}", flush=True)
    baseline = None
    for name in args.configs:
        wall, cpu, summary = run(name, args.marker)
        baseline = baseline or (wall if name == "serial" else None)
        ratio = f"{wall / baseline:.2f}x serial" if baseline else "(no serial run)"
        print(
            f"{name:>10}: {wall:6.0f} s wall, {cpu:6.0f} s CPU, {ratio}; {summary}"
            f" [{DESCRIPTIONS[name]}]",
            flush=True,
        )


if __name__ == "__main__":
    main()

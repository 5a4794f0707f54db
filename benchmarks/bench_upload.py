"""Upload: `detrain upload` against `aws s3 sync` (the AWS CLI v1), on 3,000 small files and on
20 files of 50 MiB, into a moto server on loopback.

Both run as child processes against the same server, which runs in this process; each run
starts from an empty account, so every file is uploaded. The best of --repeats runs counts;
the ratio is detrain / aws-cli in wall time (at most 1.0: detrain is at least as fast). CPU
seconds are printed too: the client's (the child) and the server's (this process), which
load on a shared machine disturbs less than wall time. The AWS CLI is
installed on first use into its own venv, .bench-deps/awscli, from
benchmarks/requirements-awscli.txt (it pins its own botocore).
Run: .venv/bin/python benchmarks/bench_upload.py [--repeats 2] [--cases small large]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT / "training_image"), str(ROOT)]
import boto3  # noqa: E402

from detrain import emulator  # noqa: E402

AWS_CLI_VENV = ROOT / ".bench-deps" / "awscli"
AWS_CLI_REQUIREMENTS = ROOT / "benchmarks" / "requirements-awscli.txt"
BUCKET = "bench-data"
MIB = 1024 * 1024
CASES = {  # name -> (files, bytes of each: a range for small files)
    "small": (3000, (8 * 1024, 64 * 1024)),  # thumbnails to small JPEGs, ≈ 105 MiB in all
    "large": (20, (50 * MIB, 50 * MIB)),  # 1,000 MiB in all, in 8 MiB parts
}


def aws_cli() -> Path:
    executable = AWS_CLI_VENV / "bin" / "aws"
    if not executable.exists():
        print(f"installing the AWS CLI into {AWS_CLI_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(AWS_CLI_VENV)], check=True)
        pip = [str(AWS_CLI_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "-r", str(AWS_CLI_REQUIREMENTS)], check=True)
    return executable


def make_files(folder: Path, count: int, sizes: tuple[int, int]) -> int:
    rng = random.Random(0)
    total = 0
    for index in range(count):
        size = rng.randint(*sizes)
        path = folder / f"{index // 1000:02d}" / f"image-{index:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        total += size
    return total


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, the client's CPU seconds, and the server's (this process's) CPU seconds."""
    children, server = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time()
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    noise = [line for line in done.stderr.splitlines() if "Connection pool is full" in line]
    if noise:
        print(f"  {Path(command[0]).name}: {len(noise)} 'Connection pool is full' warnings")
    return seconds, client_cpu, time.process_time() - server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    args = parser.parse_args()
    aws = str(aws_cli())
    with emulator.emulated_aws("us-east-1", "bench") as endpoint:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path[:3])}
        commands = {
            "detrain": lambda folder, name: [
                *(sys.executable, "-m", "detrain", "upload", name, str(folder)),
                *("--bucket", BUCKET, "--no-trigger", "--no-progress"),
            ],
            "aws-cli": lambda folder, name: [
                *(aws, "s3", "sync", str(folder), f"s3://{BUCKET}/datasets/{name}/"),
                "--only-show-errors",
            ],
        }
        for case in args.cases:
            count, sizes = CASES[case]
            with tempfile.TemporaryDirectory(prefix=f"bench-upload-{case}-") as tmp:
                total = make_files(Path(tmp), count, sizes)
                runs: dict[str, list[tuple[float, float, float]]] = {t: [] for t in commands}
                for _ in range(args.repeats):
                    for tool, command in commands.items():  # alternate, so load hits both
                        emulator.reset(endpoint)
                        boto3.client("s3").create_bucket(Bucket=BUCKET)
                        runs[tool].append(timed(command(Path(tmp), case), env))
            best = {tool: min(measured) for tool, measured in runs.items()}  # by wall time
            line = ", ".join(
                f"{tool} {wall:.1f} s ({total / MIB / wall:.0f} MiB/s; CPU client {client:.1f} s, "
                f"server {server:.1f} s)"
                for tool, (wall, client, server) in best.items()
            )
            ratio = best["detrain"][0] / best["aws-cli"][0]
            print(f"{case}: {count} files, {total / MIB:.0f} MiB: {line}", flush=True)
            print(f"{case}: ratio detrain/aws-cli {ratio:.2f} (best of {args.repeats})", flush=True)


if __name__ == "__main__":
    main()

"""The few lines printed after a local run: what ran, how it ended, where its files are."""

from __future__ import annotations

import os
from pathlib import Path

from detrain.local_runner import JobResult

PLOT_SUFFIX = ".png"
REPORT_FILE = "report.html"


def _where(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _plot(result: JobResult) -> Path | None:
    plots = sorted(result.output_data_dir.rglob(f"*{PLOT_SUFFIX}"))
    return plots[0] if plots else None


def format_summary(result: JobResult) -> str:
    lines = [
        f"job       {result.job_name}",
        f"status    {result.status} (exit code {result.exit_code})",
        f"duration  {result.duration_seconds:.1f} s",
    ]
    if result.metrics:
        shown = ("epoch", "train_loss", "valid_loss", "valid_map", "valid_map_50")
        values = "  ".join(
            f"{k}={int(result.metrics[k]) if k == 'epoch' else format(result.metrics[k], '.4g')}"
            for k in shown
            if k in result.metrics
        )
        lines.append(f"final     {values}")
    if result.failure_reason:
        reason = result.failure_reason.strip().splitlines()
        lines.append(f"reason    {reason[0]}")
        lines.extend(f"          {line}" for line in reason[1:12])
    if result.model_uri:
        lines.append(f"model     {_where(result.model_dir)}/ ({result.model_uri})")
    plot = _plot(result)
    if plot:
        lines.append(f"plot      {_where(plot)}")
    report = result.output_data_dir / REPORT_FILE
    if report.is_file():
        lines.append(f"report    {_where(report)}")
    lines.append(f"metrics   {_where(result.output_data_dir)}/ ({result.output_uri})")
    lines.append(f"logs      {_where(result.run_folder)}/")
    return "\n".join(lines)

"""The few lines printed after a local run: what ran, how it ended, where its files are."""

from __future__ import annotations

import os
from pathlib import Path

from contract.outputs import METRICS_PLOT_FILE, REPORT_FILE
from detrain.local_runner import JobResult


def _where(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


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
    plot, report = result.output_data_dir / METRICS_PLOT_FILE, result.output_data_dir / REPORT_FILE
    if plot.is_file():
        lines.append(f"plot      {_where(plot)}")
    if report.is_file():
        lines.append(f"report    {_where(report)}")
    lines.append(f"metrics   {_where(result.output_data_dir)}/ ({result.output_uri})")
    lines.append(f"logs      {_where(result.run_folder)}/")
    return "\n".join(lines)

"""A tuning job's summary page: each trial's objective against its hyperparameters (pure).

``summary_html`` takes the tuning job as DescribeHyperParameterTuningJob answers and its trials
as ListTrainingJobsForHyperParameterTuningJob does (the local rehearsal builds both in the same
shapes), and writes one self-contained page, like the job report: one small plot per tuned
hyperparameter (log x axis for a Logarithmic range; a strip plot for categorical values), the
best trial marked, then a table of every trial. Pictures are inline PNGs; no script, no URL.
``link_back`` adds to a trial's report.html a line pointing to its tuning job's summary.
"""

from __future__ import annotations

import base64
import html
import io
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

SUMMARY_FILE = "tuning-summary.html"
_BANNER_CLASS = "detrain-tuning-trial"
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1180px;padding:0 16px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:4px}
h2{font-size:1.2em;margin-top:28px;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0}.facts{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.fact{background:#f4f6f8;border-radius:6px;padding:8px 14px}.fact b{display:block;font-size:1.2em}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots img{border:1px solid #eee;width:360px}
table{border-collapse:collapse;font-size:.9em;margin:8px 0}
td,th{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:right}
td:nth-child(2),th:nth-child(2){text-align:left}th{background:#f4f6f8}
tr.best td{background:#fff4d6;font-weight:600}.note{color:#555;font-size:.9em}
"""
_BEST_COLOUR, _TRIAL_COLOUR = "#e8a200", "#2979ff"


def objective_of(trial: Mapping[str, Any]) -> float | None:
    metric = trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    value = metric.get("Value")
    return float(value) if value is not None and math.isfinite(value) else None


def ranges_of(job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Tuned hyperparameter -> its range (with "Kind": Continuous, Integer or Categorical)."""
    ranges = job.get("HyperParameterTuningJobConfig", {}).get("ParameterRanges", {})
    found: dict[str, Mapping[str, Any]] = {}
    for key, entries in ranges.items():
        for entry in entries:
            found[entry["Name"]] = {**entry, "Kind": key.removesuffix("ParameterRanges")}
    return found


def summary_html(
    job: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    *,
    report_links: Mapping[str, str] | None = None,
    note: str | None = None,
) -> str:
    """The page; ``report_links``: trial name -> a relative link to its report.html."""
    e = html.escape
    config = job.get("HyperParameterTuningJobConfig", {})
    objective = config.get("HyperParameterTuningJobObjective", {})
    metric, goal = objective.get("MetricName", "objective"), objective.get("Type", "Maximize")
    best_name = (job.get("BestTrainingJob") or {}).get("TrainingJobName")
    ranges = ranges_of(job)
    names = list(ranges) or sorted({k for t in trials for k in t.get("TunedHyperParameters", {})})
    ordered = sorted(trials, key=lambda t: _rank_key(t, goal, best_name))
    best = next((t for t in trials if t["TrainingJobName"] == best_name), None)
    scored = [t for t in trials if objective_of(t) is not None]
    best_value = objective_of(best) if best else None
    better = "higher" if goal == "Maximize" else "lower"
    facts = [
        ("status", job.get("HyperParameterTuningJobStatus", "?")),
        ("objective", f"{goal} {metric}"),
        ("strategy", config.get("Strategy", "?")),
        ("trials with an objective", f"{len(scored)} of {len(trials)}"),
        (
            "best " + metric,
            f"{best_value:.4g}" if best_value is not None else "-",
        ),
    ]
    plots = [_figure(name, ranges.get(name, {}), trials, best_name, metric, goal) for name in names]
    links = report_links or {}
    header = ["#", "trial", "status", metric, *names, "report"]
    rows = []
    for rank, trial in enumerate(ordered, 1):
        value = objective_of(trial)
        tuned = trial.get("TunedHyperParameters", {})
        link = links.get(trial["TrainingJobName"])
        is_best = trial["TrainingJobName"] == best_name
        cells = [
            str(rank),
            e(trial["TrainingJobName"]) + (" &#9733; best" if is_best else ""),
            e(trial.get("TrainingJobStatus", "?")),
            f"{value:.4g}" if value is not None else "-",
            *(e(short(tuned.get(name, "-"))) for name in names),
            f'<a href="{e(link)}">report.html</a>' if link else "-",
        ]
        css = ' class="best"' if is_best else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    title = job.get("HyperParameterTuningJobName", "tuning job")
    best_line = (
        f"best trial: <b>{e(best_name)}</b>, {e(metric)} {best_value:.4g}"
        if best_value is not None
        else "no trial has an objective value yet"
    )
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>detrain tuning summary: {e(title)}</title><style>{_STYLE}</style></head><body>",
        f'<h1>{e(title)}</h1><p class="sub">{best_line}</p>',
        '<div class="facts">',
        *(f'<div class="fact">{e(k)}<b>{e(v)}</b></div>' for k, v in facts),
        "</div>",
    ]
    if note:
        parts.append(f'<p class="note">{e(note)}</p>')
    parts += [
        f"<h2>{e(metric)} against each tuned hyperparameter</h2>",
        f'<p class="note">One point per trial with an objective ({better} is better); the star '
        "is the best trial.</p>",
        '<div class="plots">',
        *(_img(png, f"{metric} against {name}") for name, png in zip(names, plots, strict=True)),
        "</div>",
        "<h2>Trials, best first</h2>",
        "<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>",
        *rows,
        "</table>",
    ]
    failed = [t for t in ordered if t.get("FailureReason")]
    if failed:
        parts.append('<p class="note">Why trials failed:</p><ul class="note">')
        parts += [
            f"<li>{e(t['TrainingJobName'])}: {e(t['FailureReason'][:300])}</li>" for t in failed
        ]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def link_back(report: str, tuning_job: str, summary_href: str, detail: str) -> str:
    """A trial's report.html with a first line naming its tuning job and linking its summary
    (once: a report that has the line already is returned as it is)."""
    if _BANNER_CLASS in report:
        return report
    e = html.escape
    banner = (
        f'<p class="{_BANNER_CLASS}" style="background:#fff4d6;padding:8px 14px;border-radius:6px">'
        f"A trial of tuning job <b>{e(tuning_job)}</b> ({e(detail)}): "
        f'<a href="{e(summary_href)}">every trial of the tuning job</a>.</p>'
    )
    head, body, rest = report.partition("<body>")
    return f"{head}{body}{banner}{rest}" if body else banner + report


# ---- the plots


def _rank_key(trial: Mapping[str, Any], goal: str, best_name: str | None):
    value = objective_of(trial)
    first = 0 if trial["TrainingJobName"] == best_name else 1
    if value is None:
        return (first, 1, 0.0, trial["TrainingJobName"])
    return (first, 0, -value if goal == "Maximize" else value, trial["TrainingJobName"])


def short(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() and "." not in value else f"{number:.4g}"


def _figure(
    name: str,
    spec: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    best_name: str | None,
    metric: str,
    goal: str,
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    points = [
        (t.get("TunedHyperParameters", {}).get(name), objective_of(t), t["TrainingJobName"])
        for t in trials
    ]
    points = [(x, y, n) for x, y, n in points if x is not None and y is not None]
    categorical = spec.get("Kind") == "Categorical" or not all(_is_number(x) for x, _, _ in points)
    fig, ax = plt.subplots(figsize=(3.6, 2.7), dpi=100)
    if categorical:
        labels = list(spec.get("Values") or sorted({x for x, _, _ in points}))
        jitter = {n: (zlib.crc32(n.encode()) % 11 - 5) * 0.02 for _, _, n in points}
        xs = [labels.index(x) + jitter[n] if x in labels else len(labels) for x, _, n in points]
        ax.set_xticks(range(len(labels)), [short(v) for v in labels])
        ax.set_xlim(-0.5, len(labels) - 0.5)
    else:
        xs = [float(x) for x, _, _ in points]
        if spec.get("ScalingType") == "Logarithmic":
            ax.set_xscale("log")
        if "MinValue" in spec:
            low, high = float(spec["MinValue"]), float(spec["MaxValue"])
            pad = (high / low) ** 0.05 if spec.get("ScalingType") == "Logarithmic" else None
            ax.set_xlim(*((low / pad, high * pad) if pad else _padded(low, high)))
    for x, (_, y, n) in zip(xs, points, strict=True):
        if n == best_name:
            ax.scatter([x], [y], s=160, marker="*", color=_BEST_COLOUR, edgecolor="#333", zorder=3)
        else:
            ax.scatter([x], [y], s=28, color=_TRIAL_COLOUR, alpha=0.8, zorder=2)
    ax.set_xlabel(name + (" (log scale)" if spec.get("ScalingType") == "Logarithmic" else ""))
    ax.set_ylabel(f"{metric} ({'higher' if goal == 'Maximize' else 'lower'} is better)", fontsize=8)
    ax.margins(y=0.15)  # room for the star
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    if not points:
        ax.text(0.5, 0.5, "no trial has an objective yet", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _padded(low: float, high: float) -> tuple[float, float]:
    margin = (high - low) * 0.05
    return low - margin, high + margin


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'

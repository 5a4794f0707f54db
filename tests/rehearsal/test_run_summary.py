"""The summary printed after a local run names the job report when the run wrote one."""

import dataclasses

from contract.outputs import METRICS_PLOT_FILE
from detrain import local_commands
from detrain.local_runner import JobResult
from detrain.run_summary import format_summary


def _result(tmp_path) -> JobResult:
    data = tmp_path / "output" / "data"
    data.mkdir(parents=True)
    return JobResult(
        job_name="detrain-x",
        status="Completed",
        exit_code=0,
        failure_reason=None,
        duration_seconds=1.0,
        metrics={"epoch": 2, "valid_map": 0.5},
        run_folder=tmp_path,
        model_dir=tmp_path / "model",
        output_data_dir=data,
        model_uri="s3://b/model.tar.gz",
        output_uri="s3://b/output.tar.gz",
    )


def test_the_summary_names_the_report(tmp_path):
    result = _result(tmp_path)
    assert "report " not in format_summary(result)

    (result.output_data_dir / "report.html").write_text("<html></html>")

    [line] = [x for x in format_summary(result).splitlines() if x.startswith("report ")]
    assert line.endswith("output/data/report.html")


def test_the_summary_shows_the_metrics_plot_not_another_picture(tmp_path):
    result = _result(tmp_path)
    for name in ("lr_find.png", METRICS_PLOT_FILE, "report_curves.png"):
        (result.output_data_dir / name).write_bytes(b"png")

    [line] = [x for x in format_summary(result).splitlines() if x.startswith("plot ")]
    assert line.endswith(f"output/data/{METRICS_PLOT_FILE}")


def test_a_failed_run_shows_its_reason_no_model_and_exits_1(tmp_path, capsys):
    """What `detrain rehearse` / `local-train` print when the trainer wrote a failure file."""
    result = dataclasses.replace(
        _result(tmp_path),
        status="Failed",
        exit_code=1,
        failure_reason="DataError: 1 of 4 images named in annotations.json are missing\nmore",
        model_uri=None,
    )

    assert local_commands._report(result) == 1

    printed = capsys.readouterr().out
    assert "status    Failed (exit code 1)" in printed
    assert "reason    DataError: 1 of 4 images named in annotations.json are missing" in printed
    assert "          more" in printed
    assert "model     " not in printed

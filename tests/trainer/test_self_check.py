"""The image's self-check: the whole run from the venv, and each way a check must fail."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from contract.families import FAMILIES
from contract.layout import Layout
from trainer import baked_weights, self_check, self_check_jobs, self_check_matrix
from trainer.self_check import CheckFailed
from trainer.self_check_jobs import compare, judge_bad_dataset, judge_training

TRAIN = self_check_jobs.TRAIN


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != baked_weights.MANIFEST_VARIABLE}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


# `train self-check`, as the build runs it, but with the suite's share of the model matrix: each
# family's first backbone (the build's run takes every backbone: 23 s of matrix on 2 idle cores).
FIRST_BACKBONES_ONLY = """
import sys
from contract.families import family
from trainer import self_check, self_check_matrix
self_check_matrix.backbones = lambda name: family(name).backbones[:1]
sys.exit(self_check.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_the_self_check_passes_from_the_venv():
    """What the build runs in the image (`train self-check`), with this checkout's interpreter;
    each family's first backbone through the preflight with 1 and 20 classes is the suite's
    proof of it (tests/trainer/test_preflight.py builds none of its own)."""
    result = subprocess.run(
        [sys.executable, "-c", FIRST_BACKBONES_ONLY],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line[:2] in ("✓ ", "✗ ")]
    names = [
        "every module imports",
        "forward-compat decision",
        "baked weights load",
        *(
            f"{name} {what}"
            for name in FAMILIES
            for what in (
                "trains 2 steps and validates",
                "reloads through detector.py",
                "preflights every backbone",
            )
        ),
        "a bad dataset fails",
    ]
    assert [line.split(" (")[0] for line in lines] == [f"✓ {name}" for name in names]
    assert "no NVIDIA driver on this host" in lines[1]
    assert "no weights baked" in lines[2]
    assert "lie outside their image" in lines[-1]
    for name in FAMILIES:  # one backbone each, 1 and 20 classes
        [line] = [x for x in lines if x.startswith(f"✓ {name} preflights every backbone")]
        backbone = FAMILIES[name].backbones[0]
        assert re.search(rf" px, 1 and 20 classes, on cpu: {backbone} [0-9.]+ s$", line), line
    assert (
        result.stdout.rstrip()
        .splitlines()[-1]
        .startswith(f"self-check passed: {len(names)} checks in ")
    )


def test_the_entry_dispatches_before_the_trainer():
    """`train self-check extra` is the self-check's refusal, not the trainer's ConfigError."""
    result = subprocess.run(
        [sys.executable, str(TRAIN), "self-check", "--fast"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "✗ unexpected arguments ['--fast']; allowed: nothing after 'self-check'" in (
        result.stdout
    )
    assert "ConfigError" not in result.stdout + result.stderr


def test_a_failed_check_fails_the_run_and_is_named(monkeypatch, capsys):
    def broken():
        raise CheckFailed("the model left no config.json")

    monkeypatch.setattr(self_check, "check_imports", lambda: "fine")
    monkeypatch.setattr(
        self_check, "checks", lambda workdir: [("fine one", lambda: "ok"), ("bad one", broken)]
    )

    assert self_check.main([]) == 1

    out = capsys.readouterr().out
    assert "✓ fine one (" in out and "✗ bad one: the model left no config.json" in out
    assert out.rstrip().splitlines()[-1].startswith("self-check FAILED: 1 of 3 checks (bad one)")


def test_every_module_is_found_by_walking_the_packages():
    names = self_check.module_names("trainer") + self_check.module_names("contract")
    assert {"trainer.families.efficientdet", "trainer.self_check_jobs", "contract.layout"} <= set(
        names
    )
    assert "trainer.__main__" not in names


def test_a_module_that_does_not_import_is_named(tmp_path, monkeypatch):
    package = tmp_path / "brokenpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text("")
    (package / "wheel.py").write_text("import not_installed_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(self_check, "CHECKED_PACKAGES", ("brokenpkg",))

    with pytest.raises(CheckFailed, match=r"1 of 3 modules do not import: brokenpkg\.wheel "):
        self_check.check_imports()


# ---- the baked weights


def _manifest(tmp_path, monkeypatch, files, models=()):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"format": 1, "models": list(models), "files": files}))
    monkeypatch.setenv(baked_weights.MANIFEST_VARIABLE, str(path))
    return path


def test_no_manifest_outside_the_image_means_no_weights_baked(monkeypatch):
    monkeypatch.delenv(baked_weights.MANIFEST_VARIABLE, raising=False)
    assert self_check.check_baked_weights().startswith("no weights baked")


def test_an_image_built_with_none_bakes_nothing(tmp_path, monkeypatch):
    _manifest(tmp_path, monkeypatch, [])
    assert self_check.check_baked_weights() == "no weights baked (PRETRAINED_WEIGHTS=none)"


def test_a_missing_baked_file_is_named(tmp_path, monkeypatch):
    kept = tmp_path / "kept.pth"
    kept.write_bytes(b"12345")
    gone = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    files = [{"path": str(kept), "bytes": 5}, {"path": str(gone), "bytes": 46830571}]
    _manifest(tmp_path, monkeypatch, files, ["faster_rcnn/resnet18_fpn"])

    outcome = self_check.run_check("baked weights load", self_check.check_baked_weights)

    assert not outcome.passed
    assert outcome.line() == f"✗ baked weights load: baked weight file {gone} is missing"


def test_a_cut_short_file_and_a_missing_manifest_are_named(tmp_path, monkeypatch):
    cut = tmp_path / "tf_efficientdet_lite0.pth"
    cut.write_bytes(b"123")
    _manifest(tmp_path, monkeypatch, [{"path": str(cut), "bytes": 10}], ["efficientdet/tf_lite0"])
    with pytest.raises(CheckFailed, match=re.escape(f"{cut} has 3 bytes; the build baked 10")):
        self_check.check_baked_weights()

    monkeypatch.setenv(baked_weights.MANIFEST_VARIABLE, str(tmp_path / "absent.json"))
    with pytest.raises(CheckFailed, match=r"the weights manifest .*absent\.json is missing"):
        self_check.check_baked_weights()


def test_a_listed_model_whose_weights_do_not_load_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    _manifest(tmp_path, monkeypatch, [], ["faster_rcnn/resnet18_fpn"])
    with pytest.raises(CheckFailed, match="pretrained weights for faster_rcnn/resnet18_fpn"):
        self_check.check_baked_weights()


def test_the_manifest_lists_the_cached_files(tmp_path):
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "torch" / "hub" / "checkpoints" / "a.pth").write_bytes(b"abc")
    roots = [tmp_path / "torch", tmp_path / "not-there"]

    written = baked_weights.write_manifest(tmp_path / "m.json", [("retinanet", "x")], roots)

    assert written == baked_weights.read_manifest(tmp_path / "m.json")
    assert written["models"] == ["retinanet/x"]
    assert written["files"] == [
        {"path": str(tmp_path / "torch" / "hub" / "checkpoints" / "a.pth"), "bytes": 3}
    ]


# ---- the judges of the training jobs


def test_the_bad_dataset_judge_catches_a_trainer_that_accepts_it():
    with pytest.raises(CheckFailed, match=r"accepted a dataset with a box outside .*\(exit 0\)"):
        judge_bad_dataset(0, None, model_left=True)
    with pytest.raises(CheckFailed, match="exited 2 on a bad dataset; expected 1"):
        judge_bad_dataset(2, "ZeroDivisionError: ...\n\nTraceback", model_left=False)
    with pytest.raises(CheckFailed, match="wrote no failure file"):
        judge_bad_dataset(1, None, model_left=False)
    with pytest.raises(CheckFailed, match="does not name the box"):
        judge_bad_dataset(1, "DataError: something else", model_left=False)
    with pytest.raises(CheckFailed, match="left a model"):
        judge_bad_dataset(1, "DataError: 1 of 7 boxes ... lie outside their image", True)
    assert judge_bad_dataset(1, "DataError: 1 of 7 boxes lie outside their image", False)


def test_the_training_judge_wants_exit_0_metrics_and_a_model(tmp_path):
    layout = Layout(tmp_path)
    layout.failure.parent.mkdir(parents=True)
    layout.failure.write_text("DataError: channel 'training' is empty")
    with pytest.raises(CheckFailed, match="train exited 1: DataError: channel 'training'"):
        judge_training(layout, 1, "log line\n")
    with pytest.raises(CheckFailed, match="no metrics after the epoch"):
        judge_training(layout, 0, "")
    layout.output_data.mkdir(parents=True)
    (layout.output_data / "metrics.json").write_text(
        json.dumps([{"epoch": 1, "train_loss": 1.0, "valid_loss": 0.5}])
    )
    with pytest.raises(CheckFailed, match="no finished model"):
        judge_training(layout, 0, "")


def test_detections_compare_within_tolerance_only():
    box = np.array([10.0, 12.0, 40.0, 44.0])
    trainer = [("square", 0.61, box), ("circle", 0.2, box + 5)]
    same = [("circle", 0.2000001, box + 5.04), ("square", 0.61, box - 0.04)]
    assert compare(trainer, same) is None
    assert "detects 2 objects, detector.py 1" in compare(trainer, same[:1])
    moved = [("circle", 0.2, box + 5), ("square", 0.61, box + 2)]
    assert "trainer's detection square 0.61 at [10.0, 12.0, 40.0, 44.0] has no match" in (
        compare(trainer, moved)
    )
    relabelled = [("circle", 0.2, box + 5), ("circle", 0.61, box)]
    assert "has no match" in compare(trainer, relabelled)


def test_the_matrix_tries_every_backbone_with_1_and_20_classes_and_names_a_failure(
    tmp_path, monkeypatch
):
    tried = []

    def preflight_once(hp, table, device):
        tried.append((hp.backbone, len(table.class_names), hp.image_size, hp.pretrained))
        if (hp.backbone, len(table.class_names)) == ("resnet34_fpn", 20):
            raise RuntimeError("shape mismatch")

    monkeypatch.setattr(self_check_matrix, "preflight_once", preflight_once)

    with pytest.raises(
        CheckFailed,
        match=r"^faster_rcnn/resnet34_fpn with 20 classes at 64 px: RuntimeError: shape mismatch$",
    ):
        self_check_matrix.every_backbone("faster_rcnn", tmp_path)

    assert tried == [
        ("resnet18_fpn", 1, 64, False),
        ("resnet18_fpn", 20, 64, False),
        ("resnet34_fpn", 1, 64, False),
        ("resnet34_fpn", 20, 64, False),
    ]

"""`detrain predict` and `detrain report`: the CLI as a child process, AWS in the moto server."""

import io
import json
import tarfile
from pathlib import Path

import boto3
import pytest

from detrain import model_commands
from tests.support.cli_world import BUCKET, launched_job, model_archive

CLASSES = ("cup", "bottle")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """A model folder as the trainer writes it (an EfficientDet-Lite0 at 128 px, not trained)."""
    from contract.hyperparameters import Hyperparameters
    from trainer import artifacts, icevision_patches
    from trainer import model as models

    icevision_patches.apply()
    hp = Hyperparameters(model="efficientdet", pretrained=False, image_size=128)
    folder = tmp_path_factory.mktemp("model")
    artifacts.save_model(folder, models.create(hp, CLASSES), summary={})
    return folder


def _tar(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in folder.iterdir():
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def _photos(shared_datasets: Path, count: int) -> list[Path]:
    images = sorted((shared_datasets / "coco-sample" / "images").glob("*.jpg"))
    if not images:
        pytest.skip("no photos in the shared coco-sample")
    return images[:count]


def test_predict_draws_real_photos_and_writes_json_lines(
    stack, model_folder, shared_datasets, tmp_path
):
    photos = _photos(shared_datasets, 3)
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(_tar(model_folder))

    from_folder = stack.detrain(
        "predict", str(model_folder), *map(str, photos), "--out", str(tmp_path / "a"),
        "--threshold", "0",
    )  # fmt: skip
    from_archive = stack.detrain(
        "predict", str(archive), str(photos[0]), "--out", str(tmp_path / "b"), "--no-progress"
    )

    assert from_folder.returncode == 0, from_folder.stderr
    assert "predict: 100%" in from_folder.stderr  # the progress bar
    lines = [json.loads(x) for x in (tmp_path / "a" / "detections.jsonl").read_text().splitlines()]
    assert [line["image"] for line in lines] == [str(p) for p in photos]
    assert all(line["detections"] for line in lines)  # threshold 0: the top boxes
    assert {d["label"] for line in lines for d in line["detections"]} <= set(CLASSES)
    for line in lines:
        drawn = tmp_path / "a" / line["drawn"]
        assert drawn.read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert from_archive.returncode == 0, from_archive.stderr
    assert (tmp_path / "b" / "model" / "detector.py").is_file()
    assert len((tmp_path / "b" / "detections.jsonl").read_text().splitlines()) == 1


def test_predict_uses_the_detector_the_model_ships(model_folder):
    module = model_commands.load_detector_module(model_folder)

    assert Path(module.__file__) == model_folder / "detector.py"
    assert module.Detector.load(model_folder).classes == ["background", *CLASSES]


def test_predict_fetches_a_job_model(
    stack, dataset_folder, launcher_env, model_folder, shared_datasets, tmp_path
):
    job = launched_job(stack, dataset_folder, launcher_env)
    boto3.client("s3").put_object(
        Bucket=BUCKET, Key=f"models/{job}/output/model.tar.gz", Body=_tar(model_folder)
    )
    photo = _photos(shared_datasets, 1)[0]

    done = stack.detrain(
        "predict", job, str(photo), "--out", str(tmp_path / "out"),
        "--models", str(tmp_path / "models"), "--no-progress",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "models" / job / "model" / "model.pt").is_file()
    assert "1 images" in done.stdout


def test_predict_names_what_is_wrong(stack, tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    (tmp_path / "a.jpg").write_bytes(b"x")

    not_a_model = stack.detrain("predict", str(tmp_path / "weights.bin"), str(tmp_path / "a.jpg"),
                                "--out", str(tmp_path / "out"))  # fmt: skip
    no_image = stack.detrain("predict", str(tmp_path), str(tmp_path / "missing.jpg"),
                             "--out", str(tmp_path / "out"))  # fmt: skip
    not_a_folder = stack.detrain("predict", str(tmp_path), str(tmp_path / "a.jpg"),
                                 "--out", str(tmp_path / "out"))  # fmt: skip

    assert not_a_model.returncode == 2
    assert "is a file but not a model.tar.gz" in not_a_model.stderr
    assert no_image.returncode == 2 and "missing.jpg' does not exist" in no_image.stderr
    assert not_a_folder.returncode == 2
    assert "is not a detrain model: it has no config.json or detector.py" in not_a_folder.stderr


def test_report_downloads_the_output_and_prints_the_report(
    stack, dataset_folder, launcher_env, tmp_path
):
    job = launched_job(stack, dataset_folder, launcher_env)
    page = b"<!DOCTYPE html><title>report</title>"
    boto3.client("s3").put_object(
        Bucket=BUCKET,
        Key=f"models/{job}/output/output.tar.gz",
        Body=model_archive({"report.html": page, "metrics.csv": b"epoch\n1\n"}),
    )

    done = stack.detrain("report", job, "--output", str(tmp_path))

    assert done.returncode == 0, done.stderr
    shown = Path(done.stdout.strip())
    assert shown == (tmp_path / job / "output" / "report.html").resolve()
    assert shown.read_bytes() == page


def test_report_names_a_missing_output(stack, dataset_folder, launcher_env, tmp_path):
    job = launched_job(stack, dataset_folder, launcher_env)

    done = stack.detrain("report", job, "--output", str(tmp_path))

    assert done.returncode == 2
    assert f"has no output at s3://{BUCKET}/models/{job}/output/output.tar.gz" in done.stderr


@pytest.mark.parametrize("command", ["predict", "report"])
def test_help(command, capsys):
    from detrain import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])

    assert exit_.value.code == 0
    assert "usage: detrain " + command in capsys.readouterr().out

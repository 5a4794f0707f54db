"""Look at what a job learned: ``detrain predict`` (boxes on your images) and ``detrain report``.

``predict`` loads the model with the ``detector.py`` the model folder ships (imported from
that folder, nothing of the trainer), so a run of it proves the artifact works on its own.
MODEL is a model folder, a model.tar.gz, or a training job's name (fetched as ``detrain fetch``
does). ``report`` downloads a job's output.tar.gz and shows where its report.html is; for a
tuning job, the tuning summary (detrain/tuning_reports.py).
"""

from __future__ import annotations

import argparse
import json
import tarfile
import webbrowser
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError
from PIL import Image, ImageDraw, ImageFont, ImageOps
from tqdm import tqdm

from contract.outputs import (
    MODEL_ARCHIVE,
    MODEL_CLASS_MAP_FILE,
    MODEL_CONFIG_FILE,
    MODEL_LOADER_FILE,
    MODEL_WEIGHTS_FILE,
    OUTPUT_ARCHIVE,
    REPORT_FILE,
    job_output_key,
    load_detector_module,
)
from detrain import deployment
from detrain.cli_error import CliError
from detrain.job_commands import fetch_model

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DETECTIONS_FILE = "detections.jsonl"
COLOURS = ("#ff4081", "#2979ff", "#ff9100", "#aa00ff", "#00b8d4", "#ffd600", "#d50000", "#64dd17")


# ---- the model


def _unpack(archive: Path, target: Path) -> Path:
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise CliError(f"cannot unpack {archive}: {error}") from None
    return target


def _job_model(args: argparse.Namespace, job: str) -> Path:
    aws = deployment.session(region=args.region, profile=args.profile)
    described = aws.client("sagemaker").describe_training_job(TrainingJobName=job)
    uri = described.get("ModelArtifacts", {}).get("S3ModelArtifacts")
    if not uri:
        raise CliError(f"job {job!r} is {described['TrainingJobStatus']} and has no model")
    target = args.models / job
    if not (target / "model" / MODEL_CONFIG_FILE).is_file():
        fetch_model(aws.client("s3"), uri, target, progress=not args.no_progress)
    return target / "model"


def model_folder(args: argparse.Namespace) -> Path:
    """MODEL as a folder holding the model's config and its detector.py."""
    given = Path(args.model)
    if given.is_dir():
        folder = given
    elif given.is_file() and given.name.endswith((".tar.gz", ".tgz")):
        folder = _unpack(given, args.out / "model")
    elif given.exists():
        raise CliError(
            f"MODEL {args.model!r} is a file but not a {MODEL_ARCHIVE}; "
            f"allowed: a model folder, a {MODEL_ARCHIVE} or a training job name"
        )
    else:
        folder = _job_model(args, args.model)
    needed = (MODEL_CONFIG_FILE, MODEL_LOADER_FILE)
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        files = (MODEL_CONFIG_FILE, MODEL_CLASS_MAP_FILE, MODEL_WEIGHTS_FILE, MODEL_LOADER_FILE)
        raise CliError(
            f"{folder} is not a detrain model: it has no {' or '.join(missing)} "
            f"(a model folder holds {', '.join(files[:-1])} and {files[-1]})"
        )
    return folder


# ---- images


def image_files(paths: list[Path]) -> list[Path]:
    found = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(f"image {str(path)!r} does not exist")
    if not found:
        raise CliError(f"no images in {', '.join(map(str, paths))}; allowed: {IMAGE_SUFFIXES}")
    return found


def draw(image: Image.Image, detections: list[dict], classes: list[str]) -> Image.Image:
    """The image with each detection's box and ``label score``."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    pen = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 300))
    font = ImageFont.load_default(size=max(12, round(max(image.size) / 50)))
    for found in sorted(detections, key=lambda d: d["score"]):
        colour = (
            COLOURS[classes.index(found["label"]) % len(COLOURS)]
            if found["label"] in classes
            else COLOURS[0]
        )
        x1, y1, x2, y2 = found["box"]
        pen.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        text = f"{found['label']} {found['score']:.2f}"
        left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
        tag_h = bottom - top + 6
        y = y1 - tag_h if y1 - tag_h >= 0 else y1
        pen.rectangle([x1, y, x1 + right - left + 8, y + tag_h], fill=colour)
        pen.text((x1 + 4, y + 3 - top), text, fill="white", font=font)
    return image


def write_detections(
    images: list[Path],
    out: Path,
    detect: Callable[[Path, Image.Image], list[dict]],
    classes: list[str],
    *,
    progress: bool,
    desc: str,
) -> int:
    """Each image drawn with what ``detect(path, image)`` found, into ``out``, and one line of
    DETECTIONS_FILE per image; the number of detections. ``predict`` detects in this process,
    ``invoke`` through an endpoint."""
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with (out / DETECTIONS_FILE).open("w", encoding="utf-8") as lines:
        for index, path in enumerate(tqdm(images, desc=desc, unit="image", disable=not progress)):
            try:
                with Image.open(path) as opened:
                    image = opened.copy()
            except OSError as error:
                raise CliError(f"image {str(path)!r} is not readable ({error})") from None
            found = detect(path, image)
            target = out / f"{index:05d}-{path.stem}.jpg"
            draw(image, found, classes).save(target, quality=90)
            lines.write(
                json.dumps({"image": str(path), "drawn": target.name, "detections": found}) + "\n"
            )
            written += len(found)
    return written


def _predict(args: argparse.Namespace) -> int:
    if not 0.0 <= args.threshold <= 1.0:
        raise CliError(f"--threshold {args.threshold} is not allowed; allowed: 0 to 1")
    images = image_files(args.images)
    args.out.mkdir(parents=True, exist_ok=True)
    folder = model_folder(args)
    detector = load_detector_module(folder).Detector.load(folder, device=args.device)

    def detect(_path: Path, image: Image.Image) -> list[dict]:
        [found] = detector.predict([image], threshold=args.threshold)
        return found

    written = write_detections(
        images,
        args.out,
        detect,
        list(detector.classes),
        progress=not args.no_progress,
        desc="predict",
    )
    print(f"{len(images)} images, {written} detections: {args.out}/ ({DETECTIONS_FILE})")
    return 0


# ---- the report


def output_uri(described: dict) -> str:
    """Where SageMaker put a job's output archive (S3OutputPath/JOB/output/OUTPUT_ARCHIVE)."""
    base = described["OutputDataConfig"]["S3OutputPath"].rstrip("/") + "/"
    return job_output_key(base, described["TrainingJobName"], OUTPUT_ARCHIVE)


def fetch_report(aws, described: dict, output: Path) -> Path:
    """Download a job's output archive into OUTPUT/JOB/, unpack it; its report.html."""
    job, uri = described["TrainingJobName"], output_uri(described)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    target = output / job
    target.mkdir(parents=True, exist_ok=True)
    archive = target / OUTPUT_ARCHIVE
    try:
        aws.client("s3").download_file(bucket, key, str(archive))
    except ClientError as error:
        code = error.response["Error"]["Code"]
        raise CliError(
            f"job {job!r} ({described['TrainingJobStatus']}) has no output at {uri} ({code})"
        ) from None
    _unpack(archive, target / "output")
    report = target / "output" / REPORT_FILE
    if not report.is_file():
        raise CliError(
            f"{uri} has no {REPORT_FILE} (a job trained before reports, or one whose report "
            "failed: its log says why)"
        )
    return report


def _report(args: argparse.Namespace) -> int:
    from detrain import tuning_reports

    aws = deployment.session(region=args.region, profile=args.profile)
    sagemaker = aws.client("sagemaker")
    try:
        described = sagemaker.describe_training_job(TrainingJobName=args.job)
    except ClientError as error:
        if not tuning_reports.may_be_tuning_job(error, args.job):
            raise
        page = tuning_reports.tuning_report(aws, args.job, args.output, fetch_report)
    else:
        page = fetch_report(aws, described, args.output)
        if described.get("TuningJobArn"):
            tuning_reports.link_trial(aws, described, page, args.output)
    print(page.resolve())
    if args.open:
        webbrowser.open(page.resolve().as_uri())
    return 0


def register(subcommands: argparse._SubParsersAction) -> None:
    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument("--region", help="AWS region (default: your AWS configuration)")
    aws.add_argument("--profile", help="AWS profile (default: your AWS configuration)")
    aws.add_argument("--no-progress", action="store_true", help="no progress bar")

    cmd = subcommands.add_parser(
        "predict",
        parents=[aws],
        help="detect objects in images with a trained model; draw them and write JSON lines",
        description=f"Load MODEL with the {MODEL_LOADER_FILE} it ships and write each image "
        f"with its boxes drawn, plus {DETECTIONS_FILE}, into --out. Needs torch and torchvision "
        "(and effdet for EfficientDet models).",
    )
    cmd.add_argument("model", help=f"a model folder, a {MODEL_ARCHIVE}, or a training job name")
    cmd.add_argument("images", nargs="+", type=Path, help="image files or folders of images")
    cmd.add_argument("--out", type=Path, required=True, help="folder for the results")
    cmd.add_argument(
        "--threshold", type=float, default=0.5, help="lowest score shown (default 0.5)"
    )
    cmd.add_argument("--device", default="cpu", help="torch device (default cpu; e.g. cuda)")
    cmd.add_argument(
        "--models", type=Path, default=Path("models"), help="where job models go (./models/)"
    )
    cmd.set_defaults(func=_predict)

    cmd = subcommands.add_parser(
        "report",
        parents=[aws],
        help=f"download a job's output and show its {REPORT_FILE}, or a tuning job's summary",
        description=f"Download JOB's {OUTPUT_ARCHIVE}, unpack it and print the path of "
        f"{REPORT_FILE} (--open: open it in the web browser). For a tuning job: a summary page "
        "of its trials (each one's objective against its hyperparameters), beside its best "
        "trial's report; a trial's report gets a line back to that summary.",
    )
    cmd.add_argument("job", help="training job or tuning job name")
    cmd.add_argument("--output", type=Path, default=Path("reports"), help="default ./reports/")
    cmd.add_argument("--open", action="store_true", help="open the report in the web browser")
    cmd.set_defaults(func=_report)

"""The request reader's and the settings' rules, without a server (the HTTP tests run both)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from contract.serving import DEFAULT_HOST, DEFAULT_PORT, MAX_PAYLOAD_MB
from serving import inputs, settings


def _png(size=(40, 30), exif_orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, (10, 200, 30))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[inputs.EXIF_ORIENTATION] = exif_orientation
    image.save(buffer, "PNG", exif=exif)
    return buffer.getvalue()


def _read(body: bytes, content_type: str = "image/png", **kwargs) -> inputs.Invocation:
    image, options = inputs.read_request(
        body, content_type, query=kwargs.get("query", {}), custom_attributes=None
    )
    return inputs.read_image(image, options, kwargs.get("max_pixels", 10_000))


def test_media_type_ignores_parameters_and_case():
    assert inputs.media_type("Image/PNG; charset=binary") == "image/png"
    assert inputs.media_type(None) == ""


def test_custom_attributes_keep_only_our_options():
    header = "trace-id=7, threshold=0.25;max_detections=4,free text"

    assert inputs.parse_custom_attributes(header) == {"threshold": "0.25", "max_detections": "4"}


def test_later_sources_win_and_defaults_fill_in():
    options = inputs.read_options({"threshold": "0.1", "max_detections": "9"}, {"threshold": 0.7})

    assert options == inputs.Options(threshold=0.7, max_detections=9)
    assert inputs.read_options() == inputs.Options()


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"threshold": "-0.1"}, "threshold = '-0.1' is not allowed; allowed: a number from 0 to 1"),
        ({"threshold": True}, "threshold = True"),
        ({"max_detections": 2.5}, "max_detections = 2.5 is not allowed; allowed: a whole number"),
        ({"max_detections": "0"}, "from 1 to 1000"),
        ({"max_detections": "1001"}, "from 1 to 1000"),
    ],
)
def test_an_option_out_of_range_is_refused_by_name(given, says):
    with pytest.raises(inputs.BadRequest) as refused:
        inputs.read_options(given)

    assert refused.value.status == 400
    assert says in str(refused.value)


def test_a_rotated_photo_reports_its_upright_size():
    assert (_read(_png(exif_orientation=6)).width, _read(_png(exif_orientation=6)).height) == (
        30,
        40,
    )
    assert (_read(_png()).width, _read(_png()).height) == (40, 30)


def test_the_pixel_limit_is_checked_before_decoding():
    with pytest.raises(inputs.BadRequest) as refused:
        _read(_png((200, 100)), max_pixels=19_999)

    assert refused.value.status == 413
    assert "200 x 100 = 20000 pixels; allowed: at most 19999" in str(refused.value)


def test_the_content_type_is_checked_before_the_body():
    with pytest.raises(inputs.BadRequest) as refused:
        _read(b"", "image/tiff")

    assert refused.value.status == 415


def test_the_json_body_must_be_an_object_of_known_fields():
    with pytest.raises(inputs.BadRequest, match="the JSON body is a list"):
        _read(b"[1]", "application/json")
    with pytest.raises(inputs.BadRequest, match="unknown JSON field 'url'"):
        _read(b'{"image": "AA==", "url": "s3://b/k"}', "application/json")


def test_defaults_are_the_containers():
    found = settings.from_environ({}, cores=8, gpus=0)

    assert (found.host, found.port, found.batch) == (DEFAULT_HOST, DEFAULT_PORT, False)
    assert found.max_payload_mb == MAX_PAYLOAD_MB


@pytest.mark.parametrize(
    ("cores", "gpus", "slots", "threads"),
    [(1, 0, 1, 1), (2, 0, 1, 2), (8, 0, 4, 2), (16, 0, 8, 2), (3, 0, 1, 3), (8, 1, 2, 4)],
)
def test_concurrency_comes_from_the_cores_and_the_gpu(cores, gpus, slots, threads):
    found = settings.from_environ({}, cores=cores, gpus=gpus)

    assert (found.slots, found.torch_threads) == (slots, threads)


def test_the_environment_sets_port_batch_and_workers():
    environ = {
        "SAGEMAKER_BIND_TO_PORT": "9001",
        "SAGEMAKER_BATCH": "True",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "6",
    }

    found = settings.from_environ(environ, cores=12, gpus=0)

    assert (found.port, found.batch, found.slots, found.torch_threads) == (9001, True, 6, 2)


def test_a_request_waits_for_a_slot_at_most_45_s_unless_told():
    assert settings.from_environ({}, cores=2, gpus=0).queue_seconds == 45
    told = settings.from_environ({"DETRAIN_MAX_QUEUE_SECONDS": "2.5"}, cores=2, gpus=0)
    assert told.queue_seconds == 2.5


@pytest.mark.parametrize(
    ("name", "value"),
    [("SAGEMAKER_BIND_TO_PORT", "http"), ("SAGEMAKER_BIND_TO_PORT", "70000"),
     ("SAGEMAKER_MODEL_SERVER_WORKERS", "0"), ("DETRAIN_MAX_QUEUE_SECONDS", "61"),
     ("DETRAIN_MAX_QUEUE_SECONDS", "soon")],
)  # fmt: skip
def test_an_unusable_variable_is_named(name, value):
    with pytest.raises(settings.SettingsError, match=f"{name}='{value}' is not allowed; allowed"):
        settings.from_environ({name: value}, cores=4, gpus=0)

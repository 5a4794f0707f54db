"""One /invocations request: its body and options, read into a decoded image or refused.

Every refusal is a ``BadRequest`` whose status and message go back to the client as they are:
400 for a body that is not a readable image or an option out of range, 413 for an image over
the byte or pixel limit, 415 for a content type the server does not read.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from contract.serving import (
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_THRESHOLD,
    IMAGE_CONTENT_TYPES,
    JSON_CONTENT_TYPE,
    MAX_DETECTIONS_OPTION,
    THRESHOLD_OPTION,
)

OPTIONS = (THRESHOLD_OPTION, MAX_DETECTIONS_OPTION)
JSON_IMAGE_FIELD = "image"
MAX_DETECTIONS_LIMIT = 1000
ALLOWED_CONTENT_TYPES = (*IMAGE_CONTENT_TYPES, JSON_CONTENT_TYPE)
ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height
EXIF_ORIENTATION = 0x0112


class BadRequest(Exception):
    """A request the server refuses; ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Options:
    threshold: float = DEFAULT_THRESHOLD
    max_detections: int = DEFAULT_MAX_DETECTIONS


@dataclass(frozen=True)
class Invocation:
    image: Image.Image  # decoded, as the file stores it (detector.py applies EXIF orientation)
    width: int  # the image's size once upright: the frame the boxes are in
    height: int
    options: Options


def media_type(content_type: str | None) -> str:
    """``image/PNG; charset=x`` -> ``image/png``; a missing header -> ``""``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def parse_custom_attributes(header: str | None) -> dict[str, str]:
    """The options in SageMaker's CustomAttributes header (``threshold=0.3,max_detections=5``).

    The header is the caller's free text: pairs of other names, and text without ``=``, are
    not ours and are left alone.
    """
    found = {}
    for part in (header or "").replace(";", ",").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() in OPTIONS:
            found[key.strip()] = value.strip()
    return found


def _number(name: str, value: object, kind: type, low: float, high: float) -> float | int:
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float)):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        kind_name = "a number" if kind is float else "a whole number"
        raise BadRequest(
            400, f"{name} = {value!r} is not allowed; allowed: {kind_name} from {low:g} to {high:g}"
        )
    return number


def read_options(*sources: Mapping[str, object]) -> Options:
    """The options from each source in turn, a later source winning (custom attributes, then
    the query string, then the JSON body's fields)."""
    merged: dict[str, object] = {}
    for source in sources:
        merged.update(source)
    threshold = merged.get(THRESHOLD_OPTION, DEFAULT_THRESHOLD)
    most = merged.get(MAX_DETECTIONS_OPTION, DEFAULT_MAX_DETECTIONS)
    return Options(
        threshold=_number(THRESHOLD_OPTION, threshold, float, 0.0, 1.0),
        max_detections=_number(MAX_DETECTIONS_OPTION, most, int, 1, MAX_DETECTIONS_LIMIT),
    )


def check_query(query: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(query) - set(OPTIONS))
    if unknown:
        raise BadRequest(400, f"unknown query parameter {unknown[0]!r}; allowed: {OPTIONS}")
    return dict(query)


def _json_body(body: bytes) -> tuple[bytes, dict]:
    """The image bytes and the options of ``{"image": "<base64>", "threshold": ...}``."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest(400, f"the body is not valid JSON ({error})") from None
    allowed = (JSON_IMAGE_FIELD, *OPTIONS)
    if not isinstance(document, dict):
        raise BadRequest(
            400,
            f"the JSON body is a {type(document).__name__}; allowed: an "
            f'object such as {{"image": "<base64 of a JPEG or PNG file>"}}',
        )
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        raise BadRequest(400, f"unknown JSON field {unknown[0]!r}; allowed: {allowed}")
    encoded = document.get(JSON_IMAGE_FIELD)
    if not isinstance(encoded, str) or not encoded:
        raise BadRequest(
            400,
            f'the JSON body has no "{JSON_IMAGE_FIELD}" string; allowed: '
            f'{{"image": "<base64 of a JPEG or PNG file>"}}',
        )
    try:
        image = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequest(400, f'"{JSON_IMAGE_FIELD}" is not base64 ({error})') from None
    return image, {k: v for k, v in document.items() if k in OPTIONS}


def _upright_size(image: Image.Image) -> tuple[int, int]:
    width, height = image.size
    if image.getexif().get(EXIF_ORIENTATION) in ROTATED_ORIENTATIONS:
        return height, width
    return width, height


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """The image in ``data``, fully decoded; refused when it is not one, is truncated, or has
    more than ``max_pixels`` pixels (checked from the header, before decoding)."""
    if not data:
        raise BadRequest(400, "the image is empty (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise BadRequest(413, f"the image is too large ({error})") from None
    except UnidentifiedImageError:
        raise BadRequest(
            400,
            f"the body ({len(data)} bytes) is not an image Pillow reads; "
            "allowed: JPEG, PNG and the other formats Pillow opens",
        ) from None
    width, height = image.size
    if width * height > max_pixels:
        raise BadRequest(
            413,
            f"the image is {width} x {height} = {width * height} pixels; "
            f"allowed: at most {max_pixels}",
        )
    try:
        image.load()
    except (OSError, ValueError, SyntaxError) as error:
        raise BadRequest(400, f"the {image.format} image cannot be decoded ({error})") from None
    return image


def read_request(
    body: bytes,
    content_type: str | None,
    *,
    query: Mapping[str, str],
    custom_attributes: str | None,
) -> tuple[bytes, Options]:
    """The image file's bytes and the options of one request (the body within the byte limit):
    the cheap checks, made before the request waits for a turn at the model."""
    kind = media_type(content_type)
    if kind not in ALLOWED_CONTENT_TYPES:
        raise BadRequest(
            415,
            f"Content-Type {kind or '(none)'!r} is not supported; "
            f"allowed: {', '.join(ALLOWED_CONTENT_TYPES)}",
        )
    if not body:
        raise BadRequest(400, f"the request body is empty; send an image ({kind})")
    sources = [parse_custom_attributes(custom_attributes), check_query(query)]
    if kind == JSON_CONTENT_TYPE:
        body, fields = _json_body(body)
        sources.append(fields)
    return body, read_options(*sources)


def read_image(data: bytes, options: Options, max_pixels: int) -> Invocation:
    """The decoded image, its upright size and the options: what the model is asked."""
    image = decode_image(data, max_pixels)
    width, height = _upright_size(image)
    return Invocation(image, width, height, options)

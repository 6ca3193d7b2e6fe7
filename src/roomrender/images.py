"""Checking input images by content, and fetching remote ones safely."""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass
from urllib.parse import urljoin

import httpx
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from roomrender.canonical.errors import (
    FetchFailed,
    ImageTooLarge,
    InvalidImage,
    InvalidRequest,
)
from roomrender.netsafety import check_url_form
from roomrender.safehttp import deadline, pinned_client

EIGHT_BIT_MODES = ("RGB", "RGBA", "L")
ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_REDIRECTS = 3


def megabytes(size: int) -> str:
    """A size as people read it in a message: MB with one decimal (20 MB, 0.5 MB)."""
    return f"{size / 1_000_000:.1f}".rstrip("0").rstrip(".") + " MB"


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class CheckedImage:
    """An accepted input, normalised: EXIF orientation applied, re-encoded losslessly as PNG."""

    data: bytes
    content_type: str
    width: int
    height: int


def check_image(data: bytes, limits: ImageLimits, *, what: str = "image") -> CheckedImage:
    if not data:
        raise InvalidImage(f"the {what} is empty")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the {what} is {megabytes(len(data))}; at most {megabytes(limits.max_bytes)} is accepted"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            image_format = image.format
            width, height = image.size
            if width * height > limits.max_pixels:
                raise ImageTooLarge(
                    f"the {what} is {width}x{height} pixels; at most {limits.max_pixels} pixels "
                    "are accepted"
                )
            if image_format not in ACCEPTED_FORMATS:
                raise InvalidImage(
                    f"the {what} is {image_format or 'an unknown format'}; JPEG, PNG or WebP is accepted"
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as bomb:
        raise ImageTooLarge(f"the {what} has too many pixels: {bomb}") from bomb
    except UnidentifiedImageError as unknown:
        raise InvalidImage(f"the {what} is not an image (JPEG, PNG or WebP expected)") from unknown
    except (OSError, SyntaxError, ValueError) as broken:
        raise InvalidImage(f"the {what} could not be decoded: {broken}") from broken
    rotated = image.getexif().get(0x0112, 1) != 1
    if not rotated and image.mode in EIGHT_BIT_MODES:
        return CheckedImage(data, ACCEPTED_FORMATS[image_format], width, height)
    if rotated:
        image = ImageOps.exif_transpose(image)
    image = to_eight_bit(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return CheckedImage(buffer.getvalue(), "image/png", image.width, image.height)


def to_eight_bit(image: Image.Image) -> Image.Image:
    """`image` in L, RGB or RGBA, its tones kept: 16- and 32-bit greyscale scaled down (a plain
    convert() clips everything above 255 to white), palettes and CMYK converted."""
    mode = image.mode
    if mode in EIGHT_BIT_MODES:
        return image
    if mode.startswith("I;16") or mode == "I":
        levels = np.asarray(image).astype(np.int64)
        if mode.startswith("I;16") or levels.max(initial=0) > 255:
            levels = np.clip(levels, 0, 65535) * 255 // 65535
        return Image.fromarray(np.clip(levels, 0, 255).astype(np.uint8), "L")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size and finite.max() <= 1.0:
            values = values * 255.0
        return Image.fromarray(np.clip(np.nan_to_num(values), 0, 255).round().astype(np.uint8), "L")
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.convert("RGBA" if "A" in image.getbands() or mode in ("La", "RGBa", "PA")
                         else "RGB")


def decode_data_uri(uri: str, limits: ImageLimits) -> bytes:
    header, _, payload = uri.partition(",")
    if not header.startswith("data:") or not payload:
        raise InvalidRequest("a data URI must look like data:image/png;base64,<data>")
    if len(payload) > limits.max_bytes * 4 // 3 + 8:
        raise ImageTooLarge(f"the data URI holds more than {megabytes(limits.max_bytes)}")
    if not header.endswith(";base64"):
        raise InvalidRequest("only base64 data URIs are accepted")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as bad:
        raise InvalidRequest("the data URI is not valid base64") from bad


def fetch(url: str, limits: ImageLimits, *, timeout: float, allow_private: bool,
          ca_file: str | None = None) -> bytes:
    """GET `url` within `timeout` seconds in all (connecting, redirects and every byte) and
    `limits.max_bytes`; every connection, redirect hops included, goes to an address checked
    public at that moment (`roomrender.safehttp`)."""
    current = url
    # identity: a compressed body could inflate far past the size cap between two checks.
    headers = {"User-Agent": "roomrender/0.1", "Accept-Encoding": "identity"}
    with pinned_client(allow_private=allow_private, timeout=timeout, ca_file=ca_file,
                       max_connections=2, headers=headers) as client, deadline(timeout):
        for _ in range(MAX_REDIRECTS + 1):
            check_url_form(current)
            try:
                with client.stream("GET", current) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise FetchFailed(
                            f"fetching {url} answered HTTP {response.status_code}"
                        )
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                        raise ImageTooLarge(
                            f"{url} is {megabytes(int(declared))}; at most {megabytes(limits.max_bytes)} is accepted"
                        )
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) > limits.max_bytes:
                            raise ImageTooLarge(
                                f"{url} is larger than {megabytes(limits.max_bytes)}"
                            )
                    return bytes(body)
            except httpx.TimeoutException as slow:
                raise FetchFailed(f"fetching {url} took longer than {timeout:g} s") from slow
            except (httpx.HTTPError, httpx.InvalidURL) as failed:
                raise FetchFailed(f"fetching {url} failed: {failed}") from failed
    raise FetchFailed(f"fetching {url} was redirected more than {MAX_REDIRECTS} times")

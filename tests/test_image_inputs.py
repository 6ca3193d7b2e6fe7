"""Inputs are checked by content, size and address before a job is queued."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from PIL import Image

from roomrender.canonical.errors import ImageTooLarge, InvalidImage, UrlRefused
from roomrender.images import ImageLimits, check_image
from roomrender.netsafety import check_url
from tests.conftest import data_uri, make_room_photo

LIMITS = ImageLimits(max_bytes=2_000_000, max_pixels=1_000_000)


def post_job(client, auth, image):
    return client.post("/v1/jobs", headers=auth, json={"task": "restyle", "image": image})


def test_a_non_image_is_refused_with_a_400(client, auth):
    response = post_job(client, auth, data_uri(b"%PDF-1.4 this is not a picture", "image/png"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_image"
    assert "not an image" in response.json()["error"]["message"]


def test_an_image_renamed_is_judged_by_content(client, auth):
    gif = io.BytesIO()
    Image.new("RGB", (20, 20)).save(gif, format="GIF")
    response = client.post("/v1/uploads", headers=auth, files={"file": ("room.jpg", gif.getvalue())})
    assert response.status_code == 400
    assert "GIF" in response.json()["error"]["message"]


def test_an_oversized_image_is_refused(client, auth, services):
    services.jobs.limits = ImageLimits(max_bytes=10_000, max_pixels=40_000_000)
    response = post_job(client, auth, data_uri(make_room_photo(640, 480, fmt="PNG"), "image/png"))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "image_too_large"


def test_too_many_pixels_are_refused_before_decoding():
    bomb = io.BytesIO()
    Image.new("L", (2000, 2000)).save(bomb, format="PNG")  # tiny file, 4 megapixels
    with pytest.raises(ImageTooLarge, match="2000x2000"):
        check_image(bomb.getvalue(), LIMITS)


def test_exif_orientation_is_applied():
    photo = Image.new("RGB", (40, 20), "white")
    exif = photo.getexif()
    exif[0x0112] = 6  # rotated 90° clockwise
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", exif=exif.tobytes())
    checked = check_image(buffer.getvalue(), LIMITS)
    assert (checked.width, checked.height) == (20, 40)
    assert Image.open(io.BytesIO(checked.data)).size == (20, 40)


def test_a_truncated_image_is_refused():
    with pytest.raises(InvalidImage):
        check_image(make_room_photo(fmt="PNG")[:300], LIMITS)


def test_a_loopback_url_is_refused_unless_allowed(client, auth):
    response = post_job(client, auth, "http://127.0.0.1:9/room.jpg")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "url_refused"
    assert "ROOMRENDER_ALLOW_PRIVATE_URLS" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["http://10.0.0.1/a.jpg", "http://169.254.169.254/latest/",
                                 "http://[::1]/a.jpg", "http://192.168.1.2/a.jpg",
                                 "http://localhost/a.jpg", "file:///etc/passwd"])
def test_private_addresses_and_other_schemes_are_refused(url):
    with pytest.raises(UrlRefused):
        check_url(url, allow_private=False)


class _PhotoServer(BaseHTTPRequestHandler):
    photo = make_room_photo()

    def do_GET(self):
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/room.jpg")
            self.end_headers()
            return
        if self.path != "/room.jpg":
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.photo)))
        self.end_headers()
        self.wfile.write(self.photo)

    def log_message(self, *args):
        pass


@pytest.fixture
def photo_server():
    server = HTTPServer(("127.0.0.1", 0), _PhotoServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_urls_are_fetched_when_private_addresses_are_allowed(client, auth, services, photo_server):
    services.jobs.settings = services.settings.model_copy(update={"allow_private_urls": True})
    assert post_job(client, auth, f"{photo_server}/room.jpg").status_code == 202
    assert post_job(client, auth, f"{photo_server}/redirect").status_code == 202
    missing = post_job(client, auth, f"{photo_server}/nothing.jpg")
    assert missing.status_code == 400
    assert "HTTP 404" in missing.json()["error"]["message"]


def test_an_unreachable_url_is_a_clear_400(client, auth, services):
    services.jobs.settings = services.settings.model_copy(update={"allow_private_urls": True})
    response = post_job(client, auth, "http://127.0.0.1:9/room.jpg")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "fetch_failed"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_16_bit_greyscale_png_keeps_its_tones():
    import numpy as np

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    source = Image.fromarray(ramp)
    assert Image.open(io.BytesIO(_png(source))).mode == "I;16"
    checked = Image.open(io.BytesIO(check_image(_png(source), LIMITS).data))
    assert checked.mode in ("L", "RGB")
    pixels = np.asarray(checked.convert("L"), dtype=np.int64)
    expected = ramp.astype(np.int64) * 255 // 65535
    assert np.abs(pixels - expected).max() <= 1
    assert pixels.min() == 0 and 250 <= pixels.max() <= 255 and 100 < pixels.mean() < 155


@pytest.mark.parametrize("mode", ["1", "P", "PA", "LA", "CMYK", "RGBa", "La"])
def test_every_mode_pillow_opens_becomes_8_bit_with_its_tones(mode):
    base = Image.new("RGB", (32, 16), (90, 140, 200))
    image = base.convert(mode) if mode not in ("I", "F") else base.convert("L").convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    if mode in ("RGBa", "La", "PA"):
        image = base.convert({"RGBa": "RGBA", "La": "LA", "PA": "RGBA"}[mode])
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    checked = Image.open(io.BytesIO(check_image(buffer.getvalue(), LIMITS).data))
    assert checked.mode in ("L", "RGB", "RGBA")
    grey = checked.convert("L").getpixel((5, 5))
    expected = base.convert("L").getpixel((5, 5))
    tolerance = {"1": 130, "P": 30}.get(mode, 12)  # 1-bit and web-palette quantizing
    assert abs(grey - expected) <= tolerance, (mode, grey, expected)


def test_a_16_bit_png_job_renders_its_tones_not_white(client, auth, services):
    import numpy as np

    from tests.conftest import drain

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    created = post_job(client, auth, data_uri(_png(Image.fromarray(ramp)), "image/png"))
    assert created.status_code == 202, created.text
    drain(services)
    job = client.get(f"/v1/jobs/{created.json()['id']}", headers=auth).json()
    assert job["status"] == "succeeded", job
    output = client.get(job["outputs"][0]["url"])
    result = np.asarray(Image.open(io.BytesIO(output.content)).convert("L"), dtype=np.float64)
    assert result.mean() < 200, "the 16-bit input rendered (nearly) white"

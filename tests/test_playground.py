"""The playground at `/`, used as a person uses it: Debian's Chromium, driven by Playwright,
against a real uvicorn on 127.0.0.1. Enter a key, upload a photo, restyle with live progress,
drag the before/after slider, paint a mask for `edit`, cut out a subject onto a checkerboard, drag
the boxes of `place` (mouse, keyboard, finger), cancel a queued job, see a failed job's message
and a refused key's; and the page asks nothing of any host but the server.

ROOMRENDER_SCREENSHOTS=<folder> also saves the desktop and phone screenshots the README shows."""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from playwright.sync_api import (
    Browser,
    FilePayload,
    Page,
    Playwright,
    ViewportSize,
    sync_playwright,
)

from roomrender.app import create_app
from roomrender.canonical.boxes import Box, default_area
from roomrender.canonical.models import Task
from roomrender.config import Settings
from roomrender.engines.base import Engine
from roomrender.engines.preview.engine import PreviewEngine
from roomrender.samples import room_photo
from roomrender.services import Services, build_services
from tests.servers import free_port, run_uvicorn
from tests.slow_engine import FailingEngine, SlowPreviewEngine

DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000


def find_chromium() -> str | None:
    """Debian's Chromium (package `chromium`) or ROOMRENDER_CHROMIUM; never a downloaded one."""
    for candidate in (os.environ.get("ROOMRENDER_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found at /usr/bin/chromium (apt-get install chromium) "
                    "or ROOMRENDER_CHROMIUM")
    launched = playwright.chromium.launch(executable_path=chromium, timeout=TIMEOUT_MS)
    yield launched
    launched.close()


@dataclass
class Live:
    base: str
    key: str
    services: Services


Starter = Callable[..., AbstractContextManager[Live]]


@pytest.fixture
def live(settings: Settings) -> Starter:
    """Starts the app under uvicorn on a free port: `with live(engine, workers=1) as server:`."""

    @contextmanager
    def start(engine: Engine | None = None, workers: int = 1) -> Iterator[Live]:
        port = free_port()
        configured = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
        services = build_services(configured, engine=engine)
        key = services.keys.create("playground")[1]
        app = create_app(configured, services=services, workers=workers, janitor=False,
                         webhooks=False)
        try:
            with run_uvicorn(app, port) as base:
                yield Live(base, key, services)
        finally:
            services.db.dispose()

    return start


@dataclass
class Visit:
    """A browser tab on the server that records every URL the page asks for."""

    page: Page
    base: str
    requested: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        host = urlsplit(self.base).netloc
        return [url for url in self.requested
                if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != host]


Visitor = Callable[..., Visit]


@pytest.fixture
def visit(browser: Browser) -> Iterator[Visitor]:
    contexts = []
    visits: list[Visit] = []

    def open_page(base: str, viewport: ViewportSize = DESKTOP, path: str = "/",
                  touch: bool = False) -> Visit:
        context = browser.new_context(viewport=viewport, has_touch=touch)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        seen = Visit(page, base)
        context.on("request", lambda request: seen.requested.append(request.url))
        page.on("pageerror", lambda error: seen.errors.append(str(error)))
        # Each progress value the bar shows, in order.
        page.add_init_script("""
            window.progressSeen = [];
            new MutationObserver(() => {
              const bar = document.querySelector('[role=progressbar]');
              const value = bar && Number(bar.getAttribute('aria-valuenow'));
              if (bar && window.progressSeen.at(-1) !== value) window.progressSeen.push(value);
            }).observe(document, {subtree: true, childList: true, attributes: true});
        """)
        page.goto(base + path)
        visits.append(seen)
        return seen

    yield open_page
    for context in contexts:
        context.close()
    for seen in visits:
        assert seen.requested, "the page made no request at all"
        assert seen.foreign() == [], f"requests to other hosts: {seen.foreign()}"
        assert seen.errors == [], f"errors in the page: {seen.errors}"


def connect(page: Page, key: str) -> None:
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Save key").click()
    page.get_by_role("button", name="Change key").wait_for()


def upload_photo(page: Page, width: int = 640, height: int = 420) -> None:
    photo: FilePayload = {"name": "room.jpg", "mimeType": "image/jpeg",
                          "buffer": room_photo(width, height)}
    page.set_input_files("#photo-file", files=[photo])
    page.get_by_text(f"{width} × {height}", exact=True).first.wait_for()


def upload_png(page: Page, selector: str, image: Image.Image, name: str) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    payload: FilePayload = {"name": name, "mimeType": "image/png", "buffer": buffer.getvalue()}
    page.set_input_files(selector, files=[payload])
    page.get_by_text(f"{image.width} × {image.height}", exact=True).first.wait_for()


def shape_on_backdrop(width: int, height: int, colour: tuple[int, int, int]) -> Image.Image:
    """A product shot: one coloured shape on a plain light backdrop."""
    image = Image.new("RGB", (width, height), (238, 238, 236))
    ImageDraw.Draw(image).ellipse((width * 0.2, height * 0.15, width * 0.8, height * 0.9), fill=colour)
    return image


def shown_box(page: Page, which: str) -> Box:
    """A box as the page shows it under the photo: "x 224, y 210, 192 × 168 px"."""
    text = page.locator(f"#{which}-box").inner_text()
    found = re.fullmatch(r"x (\d+), y (\d+), (\d+) × (\d+) px", text)
    assert found, text
    x, y, w, h = map(int, found.groups())
    return Box(x=x, y=y, w=w, h=h)


def fetch_image(url: str) -> Image.Image:
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return Image.open(io.BytesIO(response.content))


def pick(page: Page, label: str) -> None:
    """Clicks a task, style or option by its visible name (the radios themselves are hidden)."""
    page.locator("label", has_text=label).first.click()


def result_status(page: Page) -> str:
    return page.locator(".strip .badge").inner_text()


def screenshot(page: Page, name: str, *, top: bool = True) -> None:
    folder = os.environ.get("ROOMRENDER_SCREENSHOTS")
    if folder:
        page.locator(".panel").evaluate("panel => panel.scrollTo(0, 0)")
        if top:
            page.evaluate("window.scrollTo(0, 0)")
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


@pytest.mark.slow
@pytest.mark.browser
def test_restyle_with_live_progress_slider_history_and_reuse(live: Starter, visit: Visitor) -> None:
    with live(SlowPreviewEngine(steps=8, step_seconds=0.15)) as server:
        page = visit(server.base).page
        connect(page, server.key)
        upload_photo(page, 960, 640)
        pick(page, "Restyle")
        pick(page, "Coastal")
        page.get_by_label("Strength").fill("0.8")
        page.get_by_label("Images").fill("2")
        page.get_by_label("Seed", exact=True).fill("7")
        page.get_by_role("button", name="Generate 2 images").click()

        bar = page.get_by_role("progressbar")
        page.locator(".strip .badge", has_text="Done").wait_for()
        assert bar.get_attribute("aria-valuenow") == "100"
        seen = page.evaluate("window.progressSeen")
        assert seen == sorted(seen) and seen[-1] == 100
        assert any(0 < value < 100 for value in seen), seen  # live progress, not only the end

        after = page.locator("img-comparison-slider img[slot=second]")
        page.wait_for_function("() => document.querySelector("
                               "'img-comparison-slider img[slot=second]')?.naturalWidth > 0")
        assert after.evaluate("img => img.naturalWidth") == 960
        assert page.locator("img-comparison-slider img[slot=first]").evaluate(
            "img => img.naturalWidth") == 960
        page.get_by_role("button", name="Result 2").click()
        download = page.get_by_role("link", name="Download")
        assert (download.get_attribute("href") or "").startswith(server.base + "/files/")

        slider = page.locator("img-comparison-slider")
        assert float(slider.evaluate("s => s.value")) == 50
        box = slider.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        assert float(slider.evaluate("s => s.value")) < 30
        slider.focus()
        before_keys = float(slider.evaluate("s => s.value"))
        page.keyboard.down("ArrowRight")  # the slider moves while the key is held
        page.wait_for_timeout(300)
        page.keyboard.up("ArrowRight")
        page.wait_for_function("least => document.querySelector('img-comparison-slider').value > least",
                               arg=before_keys)
        screenshot(page, "playground-desktop.png")

        history = page.locator(".history-item")
        history.first.wait_for()
        assert "Restyle" in history.first.inner_text() and "Done" in history.first.inner_text()

        page.get_by_role("button", name="Use as input").click()
        page.get_by_text("Result of restyle").wait_for()
        assert page.get_by_role("tab", name="Photo").get_attribute("aria-selected") == "true"

        # Another tab, phone-wide: the key is remembered, the history reopens the job with the
        # photo it was made from.
        again = page.context.new_page()
        again.set_default_timeout(TIMEOUT_MS)
        again.set_viewport_size(PHONE)
        again.goto(server.base + "/")
        again.get_by_role("button", name="Change key").wait_for()
        again.locator(".history-item").first.click()
        again.wait_for_function("() => document.querySelector("
                                "'img-comparison-slider img[slot=first]')?.naturalWidth > 0")
        # On a phone the page scrolls down to the viewer when a job opens.
        again.wait_for_function("() => document.getElementById('viewer')"
                                ".getBoundingClientRect().bottom <= innerHeight")
        again.wait_for_timeout(600)  # the smooth scroll's end
        screenshot(again, "playground-phone.png", top=False)


@pytest.mark.slow
@pytest.mark.browser
def test_paint_a_mask_and_run_edit(live: Starter, visit: Visitor) -> None:
    with live() as server:
        page = visit(server.base).page
        connect(page, server.key)
        upload_photo(page)
        pick(page, "Edit an area")
        page.get_by_role("button", name="Generate").click()
        page.get_by_role("alert").filter(has_text="Paint the area").wait_for()

        canvas = page.get_by_label("Mask: paint over the area to change")
        box = canvas.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.6)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.7, steps=10)
        page.mouse.up()
        page.get_by_text("Painted.").wait_for()
        page.get_by_role("button", name="Generate").click()
        page.locator(".strip .badge", has_text="Done").wait_for()
        page.wait_for_function("() => document.querySelector("
                               "'img-comparison-slider img[slot=second]')?.naturalWidth > 0")

    jobs = server.services.jobs.list(server.services.keys.list()[0], limit=5).jobs
    assert [job.task.value for job in jobs] == ["edit"]
    assert jobs[0].request.remove and jobs[0].request.mask


@pytest.mark.slow
@pytest.mark.browser
def test_cutout_shows_its_transparency_on_a_checkerboard(live: Starter, visit: Visitor) -> None:
    with live() as server:
        page = visit(server.base).page
        connect(page, server.key)
        upload_png(page, "#photo-file", shape_on_backdrop(480, 360, (40, 90, 200)), "vase.png")
        pick(page, "Cut out")
        page.get_by_text("Nothing to set for this task.").wait_for()
        page.get_by_role("button", name="Generate").click()
        page.locator(".strip .badge", has_text="Done").wait_for()
        page.wait_for_function("() => document.querySelector("
                               "'img-comparison-slider img[slot=second]')?.naturalWidth > 0")
        after = page.locator("img-comparison-slider img[slot=second]")
        # The transparent pixels show the checkerboard behind the result, also in the slider.
        assert "conic-gradient" in after.evaluate("img => getComputedStyle(img).backgroundImage")
        assert page.locator("img-comparison-slider img[slot=first]").evaluate(
            "img => img.naturalWidth") == 480
        src = after.get_attribute("src")
        assert src is not None
        result = fetch_image(src)

    assert result.mode == "RGBA" and result.size == (480, 360)
    assert result.getpixel((0, 0))[3] == 0 and result.getpixel((479, 359))[3] == 0
    red, green, blue, alpha = result.getpixel((240, 190))
    assert alpha == 255 and blue > 150 > red


@pytest.mark.slow
@pytest.mark.browser
def test_place_a_product_in_the_boxes_dragged_by_mouse_and_keyboard(live: Starter,
                                                                     visit: Visitor) -> None:
    with live() as server:
        page = visit(server.base).page
        connect(page, server.key)
        upload_photo(page, 640, 420)
        pick(page, "Place a product")
        page.get_by_role("button", name="Generate").click()
        page.get_by_role("alert").filter(has_text="Choose a product photo first.").wait_for()
        upload_png(page, "#product-file", shape_on_backdrop(240, 300, (200, 30, 40)), "chair.png")

        # The area starts as the server's default around the product, and is not sent as such.
        start = shown_box(page, "placement")
        assert shown_box(page, "area") == default_area(start, 640, 420)
        assert page.locator(".box-bar").get_by_text("(default)").is_visible()

        # The mouse drags the product box up and to the left.
        photo = page.get_by_role("img", name="Your photo").bounding_box()
        product = page.get_by_role("group", name="Product", exact=True).bounding_box()
        assert photo is not None and product is not None
        scale = 640 / photo["width"]
        x, y = product["x"] + product["width"] / 2, product["y"] + product["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x - 150, y - 60, steps=10)
        page.mouse.up()
        placement = shown_box(page, "placement")
        assert abs(placement.x - (start.x - 150 * scale)) <= 1
        assert abs(placement.y - (start.y - 60 * scale)) <= 1
        assert (placement.w, placement.h) == (start.w, start.h)

        # The keyboard moves the area right two steps (1% of the photo's width each) and makes it
        # one step (1% of its height) taller.
        moved = default_area(placement, 640, 420)
        page.get_by_role("group", name="May change").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Shift+ArrowDown")
        area = shown_box(page, "area")
        assert area == Box(x=moved.x + 12, y=moved.y, w=moved.w, h=moved.h + 4)
        assert area.contains(placement)
        page.get_by_role("button", name="Reset").wait_for()
        # The preview engine's composite is the same for any seed: it offers none.
        assert page.get_by_label("Seed", exact=True).count() == 0

        page.get_by_role("button", name="Generate").click()
        page.locator(".strip .badge", has_text="Done").wait_for()
        page.wait_for_function("() => document.querySelector("
                               "'img-comparison-slider img[slot=second]')?.naturalWidth > 0")
        src = page.locator("img-comparison-slider img[slot=second]").get_attribute("src")
        assert src is not None
        result = fetch_image(src).convert("RGB")

    job = server.services.jobs.list(server.services.keys.list()[0], limit=5).jobs[0]
    assert job.task.value == "place" and job.request.seed is None
    assert job.request.placement == placement and job.request.area == area
    room = Image.open(io.BytesIO(room_photo(640, 420))).convert("RGB")
    # The product stands on the placement's bottom edge; outside the area nothing changed.
    red, green, blue = result.getpixel((placement.x + placement.w // 2, placement.bottom - 10))
    assert red > 150 and green < 90 and blue < 90
    for outside in [(area.x - 5, area.y - 5), (area.right + 5, area.bottom - 1), (630, 10)]:
        assert result.getpixel(outside) == room.getpixel(outside)


@pytest.mark.slow
@pytest.mark.browser
def test_place_boxes_follow_a_finger_on_a_phone(live: Starter, visit: Visitor) -> None:
    with live(workers=0) as server:
        page = visit(server.base, viewport=PHONE, touch=True).page
        connect(page, server.key)
        upload_photo(page, 640, 420)
        pick(page, "Place a product")
        start = shown_box(page, "placement")
        page.get_by_role("group", name="Product", exact=True).scroll_into_view_if_needed()
        handle = page.locator(".box-placement .box-handle.se").bounding_box()
        photo = page.get_by_role("img", name="Your photo").bounding_box()
        assert handle is not None and photo is not None
        scale = 640 / photo["width"]
        x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
        scrolled = page.evaluate("scrollY")
        # A finger on the bottom-right corner, pulled left and up: the box gets smaller and the
        # page does not scroll.
        touch = page.context.new_cdp_session(page)
        touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for step in range(1, 9):
            touch.send("Input.dispatchTouchEvent", {
                "type": "touchMove", "touchPoints": [{"x": x - 5 * step, "y": y - 3 * step}]})
        touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        resized = shown_box(page, "placement")
        assert (resized.x, resized.y) == (start.x, start.y)
        assert abs(resized.w - (start.w - 40 * scale)) <= 1
        assert abs(resized.h - (start.h - 24 * scale)) <= 1
        assert page.evaluate("scrollY") == scrolled
        assert shown_box(page, "area") == default_area(resized, 640, 420)


@pytest.mark.slow
@pytest.mark.browser
def test_cancel_a_queued_job(live: Starter, visit: Visitor) -> None:
    with live(workers=0) as server:  # no worker: the job stays queued
        page = visit(server.base).page
        connect(page, server.key)
        upload_photo(page)
        # By keyboard: arrows move through the tasks, Ctrl+Enter generates, Enter cancels.
        page.get_by_role("radio", name="Restyle").focus()
        for _ in range(3):
            page.keyboard.press("ArrowDown")
        assert page.get_by_role("radio", name="Upscale").is_checked()
        page.keyboard.press("Control+Enter")
        page.get_by_text("#1 in the queue").wait_for()
        assert result_status(page) == "Queued"
        page.get_by_role("button", name="Cancel job").focus()
        page.keyboard.press("Enter")
        page.get_by_role("alert").filter(has_text="The job was canceled").wait_for()
        assert result_status(page) == "Canceled"
        page.locator(".history-item", has_text="Canceled").wait_for()


@pytest.mark.slow
@pytest.mark.browser
def test_failed_job_and_rejected_request_show_the_api_message(live: Starter,
                                                              visit: Visitor) -> None:
    with live(FailingEngine()) as server:
        metered = server.services.keys.create("metered", credits=2)[1]
        page = visit(server.base).page
        connect(page, metered)
        upload_photo(page)
        pick(page, "Restyle")
        page.get_by_role("button", name="Generate").click()
        notice = page.get_by_role("alert").filter(has_text="The job failed")
        notice.wait_for()
        assert "the model exploded" in notice.inner_text()

        # The failed job gave its credit back: 2 left, and 3 images cost 3.
        page.get_by_label("Images").fill("3")
        page.get_by_role("button", name="Generate 3 images").click()
        page.get_by_role("alert").filter(has_text="not enough credits").wait_for()
        assert "this job costs 3 and the key has 2 left" in page.get_by_role("alert").filter(
            has_text="not enough credits").inner_text()


class TwoTaskEngine(PreviewEngine):
    """The preview engine under another name (no task definition names it, so it is taken to
    honour every option), running restyle and cutout only."""

    name = "two_tasks"

    def supported_tasks(self) -> frozenset[Task]:
        return frozenset({Task.restyle, Task.cutout})


def pick_task(page: Page, name: str) -> None:
    page.locator(f"label:has(input[name=task][value={name}])").click()


@pytest.mark.slow
@pytest.mark.browser
def test_the_task_list_comes_from_v1_tasks(live: Starter, visit: Visitor) -> None:
    with live(TwoTaskEngine(), workers=0) as server:
        seen = visit(server.base)
        page = seen.page
        connect(page, server.key)
        catalog = httpx.get(server.base + "/v1/tasks").json()
        tiles = page.locator("input[name=task]")
        tiles.first.wait_for()
        assert sorted(tiles.evaluate_all("inputs => inputs.map(i => i.value)")) == ["cutout", "restyle"]
        summary = next(t["summary"] for t in catalog["tasks"] if t["name"] == "cutout")
        assert page.locator("label", has_text="Cut out").locator(".task-blurb").inner_text() == summary
        greyed = page.locator("input[name=unavailable-task]")
        assert greyed.count() == len(Task) - 2
        assert all(greyed.nth(i).is_disabled() for i in range(greyed.count()))
        # The chosen task's options come right after its tiles, the greyed tasks below them.
        options = page.locator("#step-options").bounding_box()
        unavailable = page.locator("#step-unavailable").bounding_box()
        assert options is not None and unavailable is not None and options["y"] < unavailable["y"]

        # Options the playground has no control of its own for get one from their JSON schema.
        upload_photo(page)
        pick_task(page, "restyle")
        page.get_by_text("More options").click()
        page.get_by_label("Steps").fill("12")
        page.get_by_label("Negative prompt").fill("clutter")
        page.get_by_label("Keep structure").check()
        page.get_by_label("Speed").select_option("fast")
        page.get_by_role("button", name="Generate").click()
        page.get_by_text("#1 in the queue").wait_for()
    job = server.services.jobs.list(server.services.keys.list()[0], limit=1).jobs[0]
    assert (job.request.steps, job.request.negative_prompt) == (12, "clutter")
    assert job.request.keep_structure and job.request.speed == "fast" and job.request.width is None
    assert any(url.endswith("/v1/tasks") for url in seen.requested)


@pytest.mark.slow
@pytest.mark.browser
def test_the_preview_playground_offers_no_option_it_would_ignore(live: Starter, visit: Visitor) -> None:
    with live(workers=0) as server:
        page = visit(server.base).page
        connect(page, server.key)
        catalog = httpx.get(server.base + "/v1/tasks").json()
        runs = [task for task in catalog["tasks"] if task["runs_here"]]
        assert {task["name"] for task in runs} == {t.value for t in PreviewEngine().supported_tasks()}
        for task in runs:
            pick_task(page, task["name"])
            page.locator(f"input[name=task][value={task['name']}]:checked").wait_for()
            shown = set(page.locator(".controls [data-option]").evaluate_all(
                "nodes => nodes.map(n => n.dataset.option)"))
            takes = {i["name"] for i in task["inputs"]} | set(task["options"])
            assert shown <= takes - set(task["ignored_options"]), (task["name"], shown)
        # Restyle there is a regrade by style: no prompt, no room type to fill in.
        pick_task(page, "restyle")
        page.get_by_text("Coastal").first.wait_for()
        assert page.locator("#prompt").count() == 0 and page.locator("#room-type").count() == 0
        # Edit there can only erase: removing is not a choice, nothing asks what to put there.
        pick_task(page, "edit")
        remove = page.get_by_label("Remove what I paint")
        assert remove.is_checked() and remove.is_disabled()
        assert page.get_by_label("What to put there").count() == 0


@pytest.mark.slow
@pytest.mark.browser
def test_an_oversized_or_wrong_photo_is_refused_before_upload(live: Starter, visit: Visitor,
                                                              tmp_path: Path) -> None:
    huge = tmp_path / "huge.jpg"  # a photo of 30 MB (a file: the browser reads it from disk)
    huge.write_bytes(room_photo(64, 48) + bytes(30 * 1024 * 1024))
    with live(workers=0) as server:
        seen = visit(server.base)
        page = seen.page
        connect(page, server.key)
        page.set_input_files("#photo-file", files=[huge])
        page.get_by_role("alert").filter(
            has_text="huge.jpg is 30 MB; the server takes at most 20 MB.").wait_for()
        notes: FilePayload = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"a room"}
        page.set_input_files("#photo-file", files=[notes])
        page.get_by_role("alert").filter(has_text="notes.txt is not a JPEG, PNG or WebP image.").wait_for()
        page.get_by_role("button", name="Generate").click()
        page.locator(".generate [role=alert]", has_text="not a JPEG, PNG or WebP").wait_for()
        # A URL the browser cannot read as an image says so at once.
        page.get_by_label("Image URL of a room photo").fill(server.base + "/healthz")
        page.get_by_role("button", name="Use").click()
        page.get_by_role("alert").filter(has_text="This image URL could not be loaded").wait_for()
    assert not any("/v1/uploads" in url for url in seen.requested)
    assert not any(url.endswith("/v1/jobs") for url in seen.requested)


@pytest.mark.slow
@pytest.mark.browser
def test_a_bad_key_is_refused_with_a_clear_message(live: Starter, visit: Visitor) -> None:
    with live(workers=0) as server:
        page = visit(server.base).page
        page.get_by_label("API key", exact=True).fill("rr_not-a-real-key")
        page.get_by_role("button", name="Save key").click()
        message = page.locator("#key-error")
        message.filter(has_text="This key was not accepted").wait_for()
        assert "not valid or was revoked" in message.inner_text()
        assert page.get_by_role("button", name="Change key").count() == 0
        # A saved key that stops working sends the page back to the key form.
        connect(page, server.key)
        server.services.keys.revoke(server.services.keys.list()[0].id)
        page.reload()
        page.locator("#key-error").filter(has_text="This key was not accepted").wait_for()


@pytest.mark.slow
@pytest.mark.browser
def test_api_docs_load_with_no_cdn(live: Starter, visit: Visitor) -> None:
    with live(workers=0) as server:
        docs = visit(server.base, path="/docs").page
        docs.locator(".swagger-ui .info .title", has_text="roomrender").wait_for()
        docs.locator(".opblock-summary-path", has_text="/v1/jobs").first.wait_for()


def test_page_files_ship_in_the_package_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self' blob: data:" in policy
    assert "script-src 'self' 'sha256-" in policy  # the import map, by hash; nothing else inline
    static = Path(__file__).parents[1] / "src" / "roomrender" / "web" / "static"
    for path in sorted(static.rglob("*")):
        if path.is_file() and path.suffix in (".js", ".mjs", ".css", ".svg", ".html"):
            served = client.get("/playground/" + path.relative_to(static).as_posix())
            assert served.status_code == 200, path
    for own in [static / "index.html", static / "style.css", *(static / "js").glob("*.js")]:
        text = own.read_text("utf-8")
        assert "http://" not in text and "https://" not in text, f"{own.name} names another host"
    assert client.get("/playground/../app.py").status_code == 404
    assert "/" not in client.get("/openapi.json").json()["paths"]
    assert client.get("/redoc").status_code == 404  # ReDoc would load its logo from a CDN


@pytest.mark.slow
@pytest.mark.browser
def test_a_room_tour_plays_in_the_page_with_its_poster_and_a_download(live: Starter,
                                                                       visit: Visitor) -> None:
    with live() as server:
        page = visit(server.base).page
        connect(page, server.key)
        upload_photo(page, 320, 240)
        pick_task(page, "video")
        page.get_by_text("More options").click()
        page.get_by_label("Camera", exact=True).select_option("pan_right")
        page.get_by_label("Duration", exact=True).fill("2")
        page.get_by_label("Fps", exact=True).fill("10")
        page.get_by_label("Resolution", exact=True).select_option("480p")
        page.get_by_role("button", name="Generate").click()
        page.locator(".strip .badge", has_text="Done").wait_for()
        video = page.locator("video.result-video")
        assert video.get_attribute("poster")
        assert fetch_image(video.get_attribute("poster") or "").size == (640, 480)
        # It plays: its clock moves on.
        video.evaluate("v => { v.muted = true; return v.play(); }")
        page.wait_for_function("() => document.querySelector('video.result-video').currentTime > 0.3")
        assert video.evaluate("v => [v.videoWidth, v.videoHeight]") == [640, 480]
        download = page.get_by_role("link", name="Download")
        assert download.get_attribute("href") == video.get_attribute("src")
        assert (download.get_attribute("download") or "").endswith(".mp4")
        screenshot(page, "video")


@pytest.mark.slow
def test_a_3d_model_turns_in_the_viewer(live: Starter, visit: Visitor) -> None:
    with live() as server:
        page = visit(server.base).page
        connect(page, server.key)
        upload_png(page, "#photo-file", shape_on_backdrop(480, 360, (40, 90, 200)), "vase.png")
        pick_task(page, "object_3d")
        page.get_by_role("button", name="Generate").click()
        page.locator(".strip .badge", has_text="Done").wait_for()
        viewer = page.locator("model-viewer")
        viewer.wait_for()
        # <model-viewer> says when the GLB is parsed and its model is drawn.
        page.wait_for_function("() => document.querySelector('model-viewer')?.loaded === true"
                               " && document.querySelector('model-viewer').modelIsVisible",
                               polling=250, timeout=60_000)  # WebGL in software, on a shared CPU
        src = viewer.evaluate("viewer => viewer.src")
        assert src and page.get_by_text("3D model (GLB)").is_visible()
        page.wait_for_timeout(500)  # a frame drawn after the load
        drawn = Image.open(io.BytesIO(viewer.screenshot())).convert("RGB")
        screenshot(page, "playground-3d.png")
        glb = httpx.get(src, timeout=10)

    assert glb.headers["content-type"] == "model/gltf-binary"
    # The card's blue shows in the viewer's picture, on its light background.
    pixels = np.asarray(drawn, dtype=np.int32)
    blue = (pixels[..., 2] > 120) & (pixels[..., 0] < 90)
    assert blue.mean() > 0.01, blue.mean()

"""A picture traced into an SVG drawing (colour tracing with vtracer: not AI, so every engine
runs it the same way)."""

from __future__ import annotations

import io
import re

import vtracer
from PIL import Image

from roomrender.engines.base import RenderedVector

# Tracing works on at most this many pixels a side; the drawing keeps the input's size.
MAX_TRACE_SIDE = 2048
_SVG_TAG = re.compile(r"<svg\b[^>]*>")


def vectorize(image: Image.Image) -> RenderedVector:
    """`image` as an SVG of filled colour regions, its viewBox the image's own pixels."""
    width, height = image.size
    traced = image.convert("RGB")
    if max(width, height) > MAX_TRACE_SIDE:
        traced.thumbnail((MAX_TRACE_SIDE, MAX_TRACE_SIDE), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    traced.save(buffer, "PNG")
    svg = vtracer.convert_raw_image_to_svg(
        buffer.getvalue(), img_format="png", colormode="color", hierarchical="stacked",
        mode="spline", filter_speckle=4, color_precision=6, layer_difference=16)
    return RenderedVector(_sized(svg, traced.size, (width, height)), width=width, height=height)


def _sized(svg: str, traced: tuple[int, int], size: tuple[int, int]) -> str:
    """The root element given a viewBox of the traced pixels and the input's width and height,
    so that it scales to any size and shows at the input's."""
    root = (f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{size[0]}" '
            f'height="{size[1]}" viewBox="0 0 {traced[0]} {traced[1]}">')
    if not _SVG_TAG.search(svg):
        raise ValueError("the tracer returned no <svg> element")
    return _SVG_TAG.sub(root, svg, count=1)

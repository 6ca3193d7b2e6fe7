"""The straight-line map of a photo: Canny edges, then a probabilistic Hough transform that keeps
straight segments longer than 4% of the image, drawn white on black.

That is the kind of map the M-LSD ControlNet was trained on (thin straight wall, window and
ceiling lines), and what `control_map="lines"` returns (jagilley/controlnet-hough's first output).
Plain image processing: both engines draw it, the diffusers engine also conditions on it. OpenCV
releases the GIL inside Canny, GaussianBlur and HoughLinesP, so maps of a batch draw in parallel.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image


def straight_lines(image: Image.Image) -> Image.Image:
    """Straight segments of `image`, white on black, at its size."""
    gray = cv2.GaussianBlur(np.asarray(image.convert("L")), (5, 5), 0)
    edges = cv2.Canny(gray, 30, 90)
    side = max(image.size)
    found = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=max(10, side // 20),
                            minLineLength=max(4, int(side * 0.04)), maxLineGap=max(2, side // 100))
    canvas = np.zeros((image.height, image.width), dtype=np.uint8)
    for x1, y1, x2, y2 in ([] if found is None else found.reshape(-1, 4)):
        cv2.line(canvas, (int(x1), int(y1)), (int(x2), int(y2)), 255, max(1, side // 256))
    return Image.fromarray(canvas, "L").convert("RGB")

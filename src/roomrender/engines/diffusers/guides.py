"""A picture from words with a guide image (text_to_image with `image`, Luw's `fluw`): the
family's text pipeline swapped for its image-to-image one, from the guide fitted to the asked
shape, at the request's strength (how much changes), else the registry's `guide_strength`."""

from __future__ import annotations

from dataclasses import replace

from PIL import Image, ImageOps

from roomrender.canonical.errors import Unsupported
from roomrender.engines.diffusers.registry import TaskSpec

# A text pipeline → its image-to-image sibling (same components); a registry entry may name
# its own with `guide_pipeline`.
IMAGE_TO_IMAGE = {
    "StableDiffusionPipeline": "StableDiffusionImg2ImgPipeline",
    "StableDiffusionXLPipeline": "StableDiffusionXLImg2ImgPipeline",
}
GUIDE_STRENGTH = 0.75


def guided(spec: TaskSpec) -> TaskSpec:
    """`spec` (a text pipeline) as an image-to-image call from a guide, its own pipeline by name."""
    pipeline = spec.extra.get("guide_pipeline") or IMAGE_TO_IMAGE.get(spec.pipeline)
    if pipeline is None:
        raise Unsupported(f"the model {spec.family!r} cannot start from a guide image here "
                          f"({spec.pipeline} has no image-to-image pipeline); send the prompt alone "
                          "or name a model that can (e.g. sd15)", code="guide_not_supported")
    return replace(spec, pipeline=str(pipeline), kind="img2img", variant="guide",
                   strength=float(spec.extra.get("guide_strength", GUIDE_STRENGTH)))


def guide_start(image: Image.Image, work: tuple[int, int]) -> Image.Image:
    """The guide cropped to the working size's shape (centred, nothing stretched) and resized."""
    return ImageOps.fit(image.convert("RGB"), work, Image.Resampling.LANCZOS)

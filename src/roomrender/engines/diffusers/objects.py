"""The object_3d task on the diffusers engine: a photo of an object → a textured GLB.

Shap-E image-to-3D (openai/shap-e-img2img, MIT; diffusers' ShapEImg2ImgPipeline): the object is
cut out first (the cutout path: segmentation + matting), laid on white in a square (Shap-E saw
renders on white), the prior denoised to the object's latent, and the latent decoded to a mesh by
the pipeline's own renderer (`decode_to_mesh`, marching cubes over its signed distance field at
the registry's `grid_size`: 128 as the pipeline's output_type="mesh" does, smaller for tests).
The mesh is turned Y up (Shap-E's objects stand along +Z), its crumbs dropped (pieces of under
1% of its faces), and finished by engines/meshes.py like every engine's: cleaned, decimated to
the `simplify` budget, the cut-out photo projected from the front as its base-colour texture
(Shap-E's vertex colours are a blurred 128³ field; the photo is sharp where the client looks),
metres, on the floor, GLB. One photo is used: the first (Shap-E conditions on one view).

Hunyuan3D-2 (tencent/Hunyuan3D-2, through the `hy3dgen` package) is registered, licence-gated
(models pull needs --accept-licence tencent-hunyuan-community), never a default; its pipeline is
not wired here: a job naming it is answered with what to install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import trimesh
from PIL import Image

from roomrender.canonical.errors import Unsupported
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob, JobResult, RenderedMesh
from roomrender.engines.diffusers.registry import TaskSpec
from roomrender.engines.diffusers.store import ModelStore
from roomrender.engines.meshes import glb

# Pieces with fewer than this share of the mesh's faces are dropped.
CRUMB_SHARE = 0.01
# The object's share of the square Shap-E sees.
FILL = 0.85


class EmptyMesh(Unsupported):
    code = "no_object_found"


def on_white(cutout: Image.Image, side: int = 256) -> Image.Image:
    """The cut-out object centred on a white square, FILL of its side."""
    rgba = cutout.convert("RGBA")
    box = rgba.getbbox() or (0, 0, rgba.width, rgba.height)
    subject = rgba.crop(box)
    scale = FILL * side / max(subject.size)
    subject = subject.resize((max(1, round(subject.width * scale)), max(1, round(subject.height * scale))),
                             Image.Resampling.LANCZOS)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(subject, ((side - subject.width) // 2, (side - subject.height) // 2))
    return square.convert("RGB")


def to_trimesh(decoded: Any) -> trimesh.Trimesh:
    """Shap-E's decoded mesh (Z up) as a trimesh, Y up, without its crumbs."""
    vertices = decoded.verts.detach().float().cpu().numpy()
    faces = decoded.faces.detach().cpu().numpy().astype(np.int64)
    if len(faces) == 0:
        raise EmptyMesh("the 3D model found no surface for this object; try a clearer photo of it")
    # (x, y, z) Z up → (x, z, -y) Y up.
    upright = np.stack([vertices[:, 0], vertices[:, 2], -vertices[:, 1]], axis=1)
    mesh = trimesh.Trimesh(upright, faces, process=True)
    pieces = mesh.split(only_watertight=False)
    if len(pieces) > 1:
        kept = [piece for piece in pieces if len(piece.faces) >= CRUMB_SHARE * len(mesh.faces)]
        joined = trimesh.util.concatenate(kept or [max(pieces, key=lambda p: len(p.faces))])
        assert isinstance(joined, trimesh.Trimesh)
        mesh = joined
    return mesh


class ObjectMaker:
    """Runs the object_3d jobs of a batch one by one (each its own seed, photo and budget)."""

    def __init__(self, store: ModelStore, cut: Callable[[TaskSpec, list[Image.Image]], list[Image.Image]],
                 device: torch.device, gpu: ThreadPoolExecutor) -> None:
        self.store = store
        self.cut = cut
        self.device = device
        self.gpu = gpu

    def generate(self, batch: list[EngineJob], specs: list[TaskSpec], context: BatchContext) -> list[JobResult]:
        results: list[JobResult] = []
        for job, spec in zip(batch, specs, strict=True):
            if context.is_canceled(job.job_id):
                raise BatchCanceled()
            try:
                results.append([self.make(job, spec, context)])
            except BatchCanceled:
                raise
            except Exception as failure:
                results.append(failure)
        return results

    def make(self, job: EngineJob, spec: TaskSpec, context: BatchContext) -> RenderedMesh:
        if spec.pipeline != "ShapEImg2ImgPipeline":
            raise hunyuan_unavailable()
        cutout = self.cut(spec, [job.image])[0]
        context.progress([job.job_id], 0.1)
        decoded = self.gpu.submit(self.shap_e, spec, on_white(cutout), job.request.seed or 0).result()
        context.progress([job.job_id], 0.9)
        model = RenderedMesh(glb(to_trimesh(decoded), cutout, job.request))
        context.progress([job.job_id], 1.0)
        return model

    def shap_e(self, spec: TaskSpec, picture: Image.Image, seed: int) -> Any:
        """The prior denoised to the object's latent, decoded to a mesh (on the GPU thread)."""
        pipeline = self.store.pipeline(spec)
        pipeline.scheduler = self.store.new_scheduler(spec)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():
            latents = pipeline(image=picture, num_inference_steps=spec.steps, guidance_scale=spec.guidance,
                               generator=generator, output_type="latent").images
            return pipeline.shap_e_renderer.decode_to_mesh(
                latents[:1], self.device, grid_size=int(spec.extra.get("grid_size", 128)))


def hunyuan_unavailable() -> Unsupported:
    if importlib.util.find_spec("hy3dgen") is None:
        return Unsupported("Hunyuan3D-2 needs the hy3dgen package: pip install hy3dgen (and accept its licence, "
                           "tencent-hunyuan-community, when pulling its weights)", code="needs_package")
    return Unsupported("Hunyuan3D-2 is registered (licence-gated) but not wired into this engine yet; "
                       "run object_3d with the default Shap-E model", code="not_wired")

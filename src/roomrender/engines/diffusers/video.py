"""Room tours by Wan 2.2 TI2V-5B (diffusers' WanImageToVideoPipeline, `expand_timesteps`: the
photo is the clip's first latent frame, the others are denoised from noise).

- The camera move's words (canonical/camera.py) lead the prompt, the job's prompt follows.
- The model films at its own rate (`model_fps`, 24) and size (the shorter side at most the
  family's `resolution`, 704, both sides multiples of 32: the VAE's 16x and the transformer's
  2x2 patches), `4k + 1` frames; the clip is then resampled to the asked fps and frame size.
- Progress per denoising step (cancel is checked there), then per latent frame decoded.
- The latents are decoded one latent frame at a time (the VAE is causal in time: each step
  carries its cache forward, as its own `decode` does), and each frame goes to the encoder
  (engines/clips.py's ClipWriter) as it comes: memory stays flat whatever the clip's length; a
  canceled or failed clip leaves no file.
- Live previews: every `preview_every` steps the last latent frame, shrunk to at most
  `preview_side` pixels, is decoded by the model's own VAE (not while offloaded, where the VAE
  would evict the transformer from the GPU at each preview).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.nn import functional

from roomrender.canonical.camera import (
    CAMERA_MOVES,
    DEFAULT_CAMERA_MOVE,
    DEFAULT_DURATION_SECONDS,
    DEFAULT_FPS,
    DEFAULT_RESOLUTION,
    RESOLUTION_LINES,
    frame_count,
    frame_size,
)
from roomrender.canonical.models import GenerationRequest
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob, JobResult, RenderedVideo
from roomrender.engines.clips import ClipWriter
from roomrender.engines.diffusers.registry import TaskSpec

# Sides of the model's frames are multiples of this: the VAE's 16x times the 2x2 patches.
WORKING_MULTIPLE = 32
SCENE = "the interior of a room, photorealistic, natural light, steady camera, no people"


def working_size(spec: TaskSpec, resolution: str, width: int, height: int) -> tuple[int, int]:
    """The model's frame for a photo of `width` x `height`: the photo's shape, its shorter side
    the asked lines but at most the family's resolution, rounded to WORKING_MULTIPLE."""
    lines = min(RESOLUTION_LINES[resolution], spec.resolution)
    scale = lines / min(width, height)
    return tuple(max(WORKING_MULTIPLE, round(side * scale / WORKING_MULTIPLE) * WORKING_MULTIPLE)
                 for side in (width, height))  # type: ignore[return-value]


def model_frames(duration: float, model_fps: int) -> int:
    """Wan's frame count for `duration` seconds at its own rate: `4k + 1`, at least 5."""
    wanted = max(2, round(duration * model_fps) + 1)
    return max(5, 4 * math.ceil((wanted - 1) / 4) + 1)


def source_frame(index: int, fps: int, model_fps: int, last: int) -> int:
    """Which of the model's frames output frame `index` shows (nearest in time)."""
    return min(last, round(index * model_fps / fps))


def video_prompt(request: GenerationRequest) -> str:
    move = CAMERA_MOVES[request.camera or DEFAULT_CAMERA_MOVE]
    parts = [move.prompt, request.prompt or "", SCENE]
    return ", ".join(part.strip().rstrip(".") for part in parts if part and part.strip())


def _denormalized(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    z_dim = int(vae.config.z_dim)
    mean = torch.tensor(vae.config.latents_mean).view(1, z_dim, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, z_dim, 1, 1, 1)
    return latents * std.to(latents) + mean.to(latents)


def _to_pixels(frame: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] → (H, W, 3) uint8."""
    pixels = ((frame.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return np.ascontiguousarray(pixels.permute(1, 2, 0).cpu().numpy())


@torch.inference_mode()
def decode_frames(vae: Any, latents: torch.Tensor) -> Iterator[tuple[int, np.ndarray]]:
    """(latent frame index, RGB frame) for every frame of `latents` (1, C, T, h, w), decoded one
    latent frame at a time with the VAE's causal cache (1 frame for the first, 4 for each next)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

    z = _denormalized(vae, latents.to(next(vae.parameters()).device, vae.dtype))
    vae.clear_cache()
    try:
        x = vae.post_quant_conv(z)
        for index in range(x.shape[2]):
            vae._conv_idx = [0]
            out = vae.decoder(x[:, :, index:index + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx,
                              first_chunk=index == 0)
            if vae.config.patch_size is not None:
                out = unpatchify(out, patch_size=vae.config.patch_size)
            for frame in out[0].unbind(1):
                yield index, _to_pixels(frame)
    finally:
        vae.clear_cache()


@torch.inference_mode()
def preview_frame(vae: Any, latents: torch.Tensor, max_side: int) -> Image.Image:
    """The last latent frame as it stands, shrunk to at most `max_side` pixels, decoded."""
    last = latents[:1, :, -1:].float()
    factor = int(vae.config.scale_factor_spatial)
    h, w = last.shape[-2:]
    scale = min(1.0, max_side / factor / max(h, w))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    if size != (h, w):
        last = functional.interpolate(last[:, :, 0], size=size, mode="area")[:, :, None]
    pixels = vae.decode(_denormalized(vae, last.to(next(vae.parameters()).device, vae.dtype))).sample
    return Image.fromarray(_to_pixels(pixels[0, :, 0]), "RGB")


def offloaded(pipeline: Any) -> bool:
    return hasattr(pipeline.vae, "_hf_hook") or hasattr(pipeline.transformer, "_hf_hook")


def render_clip(pipeline: Any, spec: TaskSpec, job: EngineJob, context: BatchContext,
                device: torch.device, scratch: Path | None = None) -> RenderedVideo:
    """The job's clip. BatchCanceled (from a progress report, at every step and latent frame)
    stops it and deletes the file."""
    request = job.request
    resolution = request.resolution or DEFAULT_RESOLUTION
    out_size = frame_size(resolution, *job.image.size)
    work_w, work_h = working_size(spec, resolution, *job.image.size)
    fps = request.fps or DEFAULT_FPS
    model_fps = int(spec.extra.get("model_fps", 24))
    duration = request.duration or DEFAULT_DURATION_SECONDS
    count = frame_count(duration, fps)
    num_frames = model_frames(duration, model_fps)
    steps = request.steps or spec.steps
    seed = request.seed if request.seed is not None else random.randrange(2**32)
    every = int(spec.extra.get("preview_every", 5))
    side = int(spec.extra.get("preview_side", 256))
    previews = context.wants_previews and not offloaded(pipeline)
    job_ids = [job.job_id]

    def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        total = getattr(pipe, "num_timesteps", None) or steps
        context.progress(job_ids, 0.02 + 0.83 * (step + 1) / total)
        if previews and (step + 1) % every == 0 and step + 1 < total:
            context.preview(job.job_id, preview_frame(pipe.vae, tensors["latents"], side))
        return tensors

    pipeline.scheduler = pipeline.scheduler.from_config(pipeline.scheduler.config)
    photo = job.image.convert("RGB").resize((work_w, work_h), Image.Resampling.LANCZOS)
    with torch.inference_mode():
        latents = pipeline(
            image=photo, prompt=video_prompt(request),
            negative_prompt=request.negative_prompt or str(spec.extra.get("negative_prompt", "")),
            height=work_h, width=work_w, num_frames=num_frames, num_inference_steps=steps,
            guidance_scale=request.guidance if request.guidance is not None else spec.guidance,
            generator=torch.Generator("cpu").manual_seed(seed), output_type="latent",
            callback_on_step_end=on_step_end).frames
    vae = pipeline.vae
    parked = next(vae.parameters()).device
    vae.to(device)  # offloaded: the VAE is back in CPU memory after the call
    poster: Image.Image | None = None
    written = 0
    try:
        with ClipWriter(*out_size, fps, directory=scratch) as clip:
            latent_frames = latents.shape[2]
            reported = -1
            for produced, (latent_index, pixels) in enumerate(decode_frames(vae, latents)):
                frame = Image.fromarray(pixels, "RGB")
                if frame.size != out_size:
                    frame = frame.resize(out_size, Image.Resampling.BICUBIC)
                while written < count and source_frame(written, fps, model_fps, num_frames - 1) <= produced:
                    clip.write(frame)
                    if poster is None:
                        poster = frame
                    written += 1
                if latent_index != reported:  # once per latent frame (4 frames each but the first)
                    reported = latent_index
                    context.progress(job_ids, 0.85 + 0.15 * (latent_index + 1) / latent_frames)
            while written < count:  # never: the model's frames cover the clip; kept for safety
                assert poster is not None
                clip.write(frame)
                written += 1
    finally:
        vae.to(parked)
    assert poster is not None
    return RenderedVideo(clip.path, poster, fps=fps, duration_seconds=count / fps,
                         width=out_size[0], height=out_size[1])


def render_clips(pipeline: Any, spec: TaskSpec, batch: list[EngineJob], context: BatchContext,
                 device: torch.device, scratch: Path | None = None) -> list[JobResult]:
    """One clip per job, in turn; a canceled job's clip ends there, the others go on."""
    results: list[JobResult] = []
    for job in batch:
        try:
            results.append([render_clip(pipeline, spec, job, context, device, scratch)])
        except BatchCanceled as canceled:
            results.append(canceled)
    return results

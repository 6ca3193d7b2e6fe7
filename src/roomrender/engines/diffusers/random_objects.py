"""Randomly initialised Shap-E image-to-3D checkpoints (openai/shap-e-img2img's layout), for tests
(`tiny`: the sizes of diffusers' own Shap-E tests, runs on a CPU in seconds) and the GPU smoke
bench (`full`: the real architecture: a 24-layer prior, CLIP ViT-L/14, the 256-wide renderer).
The meshes are blobs; the point is that the pipeline runs through the real loading code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _sizes(tiny: bool) -> dict[str, Any]:
    if tiny:
        return {"width": 32, "image": 32, "patch": 4, "heads": 4, "layers": 2, "intermediate": 37,
                "prior_heads": 2, "head_dim": 16, "prior_layers": 1, "tokens": 32, "renderer": 8}
    return {"width": 1024, "image": 224, "patch": 14, "heads": 16, "layers": 24, "intermediate": 4096,
            "prior_heads": 16, "head_dim": 64, "prior_layers": 24, "tokens": 1024, "renderer": 256}


def write_shap_e(folder: Path, tiny: bool = True, dtype: torch.dtype = torch.float32) -> None:
    """prior/, image_encoder/, image_processor/, scheduler/, shap_e_renderer/ and model_index.json
    under `folder`, as ShapEImg2ImgPipeline.from_pretrained reads them."""
    from diffusers import HeunDiscreteScheduler, PriorTransformer
    from diffusers.pipelines.shap_e.renderer import ShapERenderer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    size = _sizes(tiny)
    width, hidden = size["width"], size["renderer"]
    torch.manual_seed(0)
    prior: Any = PriorTransformer(
        num_attention_heads=size["prior_heads"], attention_head_dim=size["head_dim"], num_layers=size["prior_layers"],
        embedding_dim=width, num_embeddings=size["tokens"], embedding_proj_dim=width, time_embed_dim=width * 4,
        clip_embed_dim=width * 2, additional_embeddings=0, time_embed_act_fn="gelu", norm_in_type="layer",
        embedding_proj_norm_type="layer", encoder_hid_proj_type=None, added_emb_type=None)
    encoder: Any = CLIPVisionModel(CLIPVisionConfig(
        hidden_size=width, image_size=size["image"], projection_dim=width, intermediate_size=size["intermediate"],
        num_attention_heads=size["heads"], num_channels=3, num_hidden_layers=size["layers"],
        patch_size=size["patch"]))
    processor = CLIPImageProcessor(crop_size=size["image"], size=size["image"], do_center_crop=True,
                                   do_normalize=True, do_resize=True, image_mean=CLIP_MEAN, image_std=CLIP_STD,
                                   resample=3)
    renderer = ShapERenderer(param_shapes=((hidden, 93), (hidden, hidden), (hidden, hidden), (hidden, hidden)),
                             d_latent=width, d_hidden=hidden, n_output=12, background=(255.0, 255.0, 255.0))
    with torch.no_grad():
        cases, masks = marching_cubes_table()
        renderer.mesh_decoder.cases.copy_(cases)
        renderer.mesh_decoder.masks.copy_(masks)
    if tiny:
        _surface(renderer)
    scheduler: Any = HeunDiscreteScheduler(beta_schedule="exp", num_train_timesteps=1024, prediction_type="sample",
                                      use_karras_sigmas=True, clip_sample=True, clip_sample_range=1.0)
    prior.to(dtype).save_pretrained(folder / "prior")
    encoder.to(dtype).save_pretrained(folder / "image_encoder")
    renderer.to(dtype).save_pretrained(folder / "shap_e_renderer")
    processor.save_pretrained(folder / "image_processor")
    scheduler.save_pretrained(folder / "scheduler")
    index = {"_class_name": "ShapEImg2ImgPipeline", "prior": ["diffusers", "PriorTransformer"],
             "image_encoder": ["transformers", "CLIPVisionModel"],
             "image_processor": ["transformers", "CLIPImageProcessor"],
             "scheduler": ["diffusers", "HeunDiscreteScheduler"],
             "shap_e_renderer": ["shap_e", "ShapERenderer"]}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))



def _surface(renderer: Any) -> None:
    """Random weights leave the signed distance one-signed over the whole volume (no surface, no
    mesh). The tiny renderer's MLP is set to a ball's distance instead: its first layer sees the
    position (+x, -x, +y, ...), the second sums silu(t) + silu(-t) = t·tanh(t/2) (about |p|² near
    the origin), the next pass it on, and the last turns it into a distance that is zero at radius
    0.5. The latents still move the first four layers a little (a lumpy ball); the colours stay
    random."""
    mlp = renderer.mlp.mlp
    hidden = mlp[0].out_features
    designed = []
    with torch.no_grad():
        first = torch.zeros(hidden, mlp[0].in_features)
        for axis in range(3):
            first[2 * axis, axis], first[2 * axis + 1, axis] = 2.0, -2.0
        summing = torch.zeros(hidden, hidden)
        summing[0, :6] = 1.0
        passing = torch.zeros(hidden, hidden)
        passing[0, 0] = 1.0
        designed = [first, summing, passing, passing]
        for layer, weight in zip(mlp, designed, strict=False):
            layer.weight.copy_(weight)
        for index, layer in enumerate(mlp):
            layer.bias.zero_()
            if 4 <= index < len(mlp) - 1:
                layer.weight.zero_()
                layer.weight[0, 0] = 1.0
        for (name, projection), weight in zip(renderer.params_proj.projections.items(), designed, strict=True):
            assert name.startswith("nerstf__mlp__")
            projection.norm.weight.fill_(0.02)
            projection.norm.bias.zero_()
            projection.proj.bias.copy_(weight.reshape(-1))
        last = mlp[-1]
        last.weight[0].zero_()
        last.weight[0, 0] = -4.0
        edge = renderer.mlp(position=torch.tensor([[[0.5, 0.0, 0.0]]]), direction=None, ts=None,
                            nerf_level="fine", rendering_mode="stf")
        # tanh(-4·h + bias) = 0 where h is its value at radius 0.5.
        last.bias[0] = -torch.atanh(edge.signed_distance.flatten()[0].clamp(-0.999, 0.999))


# The cube's corners are numbered x + 2y + 4z (the bits of Shap-E's marching-cubes case index) and
# its edges in the order of diffusers' `_create_flat_edge_indices`: the x edges, the y, the z.
CUBE_EDGES = ((0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7))
# Each face's corners in order around it.
CUBE_FACES = ((0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5))


def _corner(index: int) -> tuple[int, int, int]:
    return index & 1, (index >> 1) & 1, (index >> 2) & 1


def marching_cubes_table() -> tuple[torch.Tensor, torch.Tensor]:
    """Shap-E's MeshDecoder lookup table (`cases` (256, 5, 3): edge indices of up to five
    triangles per case; `masks` (256, 5): which are used), which the real checkpoint ships in its
    weights and a random one must be given. Built here: on each face the edges whose corners
    differ are paired (an ambiguous face keeps its inside corners apart, the same way from both
    cubes that share it, so the surface is closed), the pairs are chained into loops and each
    loop is fanned into triangles facing out (inside: field > 0)."""
    edge_of = {pair: index for index, pair in enumerate(CUBE_EDGES)}

    def edge(a: int, b: int) -> int:
        return edge_of[(min(a, b), max(a, b))]

    cases = torch.zeros(256, 5, 3, dtype=torch.long)
    masks = torch.zeros(256, 5, dtype=torch.bool)
    for case in range(256):
        inside = [bool(case >> corner & 1) for corner in range(8)]
        links: dict[int, list[int]] = {}
        for face in CUBE_FACES:
            ring = [(face[i], face[(i + 1) % 4]) for i in range(4)]
            crossed = [edge(a, b) for a, b in ring if inside[a] != inside[b]]
            if len(crossed) == 4:
                first = next(i for i in range(4) if inside[face[i]])
                pairs = [(edge(face[first - 1], face[first]), edge(face[first], face[(first + 1) % 4])),
                         (edge(face[(first + 1) % 4], face[(first + 2) % 4]),
                          edge(face[(first + 2) % 4], face[(first + 3) % 4]))]
            else:
                pairs = [(crossed[0], crossed[1])] if crossed else []
            for a, b in pairs:
                links.setdefault(a, []).append(b)
                links.setdefault(b, []).append(a)
        triangles: list[tuple[int, int, int]] = []
        seen: set[int] = set()
        for start in sorted(links):
            if start in seen:
                continue
            loop, previous, current = [start], -1, start
            seen.add(start)
            while True:
                following = next(n for n in links[current] if n != previous) if previous != -1 else links[current][0]
                if following == start:
                    break
                loop.append(following)
                seen.add(following)
                previous, current = current, following
            triangles += _oriented_fan(loop, inside)
        if len(triangles) > 5:
            raise AssertionError(f"marching-cubes case {case}: {len(triangles)} triangles")
        for slot, triangle in enumerate(triangles):
            cases[case, slot] = torch.tensor(triangle)
            masks[case, slot] = True
    return cases, masks


def _oriented_fan(loop: list[int], inside: list[bool]) -> list[tuple[int, int, int]]:
    """The loop of edges fanned into triangles, wound so that their normal points away from the
    inside corners on those edges."""
    points = torch.tensor([[sum(axis) / 2 for axis in zip(_corner(CUBE_EDGES[e][0]), _corner(CUBE_EDGES[e][1]),
                                                          strict=True)] for e in loop], dtype=torch.float32)
    fan = [(loop[0], loop[i], loop[i + 1]) for i in range(1, len(loop) - 1)]
    normal = torch.zeros(3, dtype=torch.float32)
    for i in range(1, len(loop) - 1):
        normal += torch.linalg.cross(points[i] - points[0], points[i + 1] - points[0])
    corners = [c for e in loop for c in CUBE_EDGES[e] if inside[c]]
    centre = torch.tensor([_corner(c) for c in corners], dtype=torch.float32).mean(dim=0)
    if float(normal @ (points.mean(dim=0) - centre)) < 0:
        fan = [(a, c, b) for a, b, c in fan]
    return fan

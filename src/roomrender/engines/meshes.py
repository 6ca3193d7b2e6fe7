"""3D models of objects (the object_3d task): a card of a cut-out photo, and the finishing every
engine's mesh gets: metres, Y up, standing on the floor plane (y = 0) centred over the origin,
scaled to the object's real size when the request gives one, decimated to its face budget,
textured (or one base colour) and written as GLB with trimesh."""

from __future__ import annotations

import io

import numpy as np
import trimesh
from PIL import Image

from roomrender.canonical.models import Dimensions, GenerationRequest

# Without a real size, an object's longest side is taken to be this many metres.
DEFAULT_SIZE_M = 1.0
# A card's thickness as a share of its longest side: "gently extruded".
CARD_DEPTH = 0.02
# The roughness of a glossy finish and of a plain one (glTF's metallic-roughness model).
GLOSSY_ROUGHNESS, MATTE_ROUGHNESS = 0.15, 0.9
# Alpha at or below this is cut out of a textured card (glTF alphaMode MASK).
ALPHA_CUTOFF = 0.5


def card(picture: Image.Image, depth_share: float = CARD_DEPTH) -> trimesh.Trimesh:
    """A thin box at the picture's aspect ratio, its longest side 1, the picture on its front
    (+Z) and, mirrored, on its back; its sides sample the picture's edge (transparent when the
    picture is a cut-out, so the silhouette is what shows)."""
    aspect = picture.width / picture.height
    half_w, half_h = (0.5, 0.5 / aspect) if aspect >= 1 else (0.5 * aspect, 0.5)
    half_d = depth_share / 2
    x0, x1, y0, y1, z0, z1 = -half_w, half_w, -half_h, half_h, -half_d, half_d
    low = 0.5 / max(picture.size)  # half a texel in from the border
    high = 1 - low
    quads: list[tuple[list[tuple[float, float, float]], list[tuple[float, float]]]] = [
        # corners (counter-clockwise seen from outside) and their (u, v)
        ([(x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1)], [(0, 0), (1, 0), (1, 1), (0, 1)]),
        ([(x1, y0, z0), (x0, y0, z0), (x0, y1, z0), (x1, y1, z0)], [(1, 0), (0, 0), (0, 1), (1, 1)]),
        ([(x0, y1, z1), (x1, y1, z1), (x1, y1, z0), (x0, y1, z0)], [(0, high), (1, high)] * 2),
        ([(x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1)], [(0, low), (1, low)] * 2),
        ([(x1, y0, z1), (x1, y0, z0), (x1, y1, z0), (x1, y1, z1)], [(high, 0), (high, 0), (high, 1), (high, 1)]),
        ([(x0, y0, z0), (x0, y0, z1), (x0, y1, z1), (x0, y1, z0)], [(low, 0), (low, 0), (low, 1), (low, 1)]),
    ]
    vertices = np.array([corner for corners, _ in quads for corner in corners], dtype=np.float64)
    uv = np.array([point for _, points in quads for point in points], dtype=np.float64)
    faces = np.array([[4 * q, 4 * q + 1, 4 * q + 2] for q in range(6)]
                     + [[4 * q, 4 * q + 2, 4 * q + 3] for q in range(6)], dtype=np.int64)
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    mesh.visual = trimesh.visual.TextureVisuals(uv=uv)
    return mesh


def textured_from_front(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """UVs projected from the front (+Z) onto the mesh's bounds: the photo painted along the view
    it was taken from (what a single-view model saw)."""
    low, high = mesh.bounds
    span = np.maximum(high - low, 1e-9)
    uv = (mesh.vertices[:, :2] - low[:2]) / span[:2]
    textured = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    textured.visual = trimesh.visual.TextureVisuals(uv=uv)
    return textured


def decimated(mesh: trimesh.Trimesh, budget: int | None) -> trimesh.Trimesh:
    """The mesh cleaned (merged vertices, no degenerate or duplicate faces) and, above `budget`
    faces, simplified by quadric decimation to at most that many."""
    clean = trimesh.Trimesh(mesh.vertices, mesh.faces, process=True)
    clean.update_faces(clean.nondegenerate_faces() & clean.unique_faces())
    clean.remove_unreferenced_vertices()
    if budget is None or len(clean.faces) <= budget:
        return clean
    simpler = clean.simplify_quadric_decimation(face_count=budget)
    # Quadric decimation lands near its target; never above the client's budget.
    while len(simpler.faces) > budget:
        simpler = simpler.simplify_quadric_decimation(face_count=max(budget - 1, 1))
    return simpler


def standing(mesh: trimesh.Trimesh, size: Dimensions | None) -> trimesh.Trimesh:
    """The mesh scaled to metres (its real size: height, else width, else depth, uniformly; none
    given: its longest side DEFAULT_SIZE_M), its lowest point on y = 0, centred over the origin."""
    extents = mesh.extents
    if size is not None and size.height is not None:
        factor = size.height / max(extents[1], 1e-9)
    elif size is not None and size.width is not None:
        factor = size.width / max(extents[0], 1e-9)
    elif size is not None and size.depth is not None:
        factor = size.depth / max(extents[2], 1e-9)
    else:
        factor = DEFAULT_SIZE_M / max(float(extents.max()), 1e-9)
    placed = mesh.copy()
    placed.apply_scale(factor)
    low, high = placed.bounds
    placed.apply_translation([-(low[0] + high[0]) / 2, -low[1], -(low[2] + high[2]) / 2])
    return placed


def base_colour(picture: Image.Image) -> tuple[int, int, int, int]:
    """The mean colour of the picture's opaque pixels."""
    rgba = np.asarray(picture.convert("RGBA"), dtype=np.float64)
    opaque = rgba[..., 3] > 127
    pixels = rgba[opaque][:, :3] if opaque.any() else rgba[..., :3].reshape(-1, 3)
    red, green, blue = (int(round(value)) for value in pixels.mean(axis=0))
    return red, green, blue, 255


def glb(mesh: trimesh.Trimesh, picture: Image.Image, request: GenerationRequest) -> bytes:
    """The finished GLB: `mesh` (with UVs on `picture`) standing in metres, within the face
    budget, with `picture` as its base-colour texture, or its mean colour when texture=false."""
    uv = getattr(mesh.visual, "uv", None)
    finished = standing(mesh, request.dimensions)
    if uv is None or len(finished.faces) > (request.simplify or len(finished.faces)):
        finished = textured_from_front(standing(decimated(finished, request.simplify), request.dimensions))
        uv = getattr(finished.visual, "uv", None)
    roughness = GLOSSY_ROUGHNESS if request.glossy else MATTE_ROUGHNESS
    if request.texture:
        rgba = picture.convert("RGBA")
        material = trimesh.visual.material.PBRMaterial(
            baseColorTexture=rgba, metallicFactor=0.0, roughnessFactor=roughness,
            alphaMode="MASK", alphaCutoff=ALPHA_CUTOFF, doubleSided=False)
        finished.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    else:
        material = trimesh.visual.material.PBRMaterial(
            baseColorFactor=base_colour(picture), metallicFactor=0.0, roughnessFactor=roughness)
        finished.visual = trimesh.visual.TextureVisuals(material=material)
    buffer = io.BytesIO()
    finished.export(buffer, file_type="glb")
    return buffer.getvalue()

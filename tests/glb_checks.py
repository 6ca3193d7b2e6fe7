"""What every object_3d result must be: a GLB that trimesh loads, with a base-colour texture
(or none, when asked), finite bounds in metres, standing on the floor (y = 0), within its face
budget."""

from __future__ import annotations

import io

import numpy as np
import trimesh
from PIL import Image


def object_photo(size: tuple[int, int] = (160, 120), colour: tuple[int, int, int] = (40, 70, 160)) -> bytes:
    """A product shot: a coloured block on a plain near-white background, as PNG."""
    photo = Image.new("RGB", size, (248, 248, 246))
    width, height = size
    photo.paste(colour, (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    buffer = io.BytesIO()
    photo.save(buffer, format="PNG")
    return buffer.getvalue()


def checked_glb(data: bytes, max_faces: int, textured: bool = True) -> trimesh.Trimesh:
    """The one mesh of a GLB, after the checks every object_3d result passes."""
    assert data[:4] == b"glTF", data[:16]
    scene = trimesh.load(io.BytesIO(data), file_type="glb")
    meshes = list(scene.geometry.values())
    assert len(meshes) == 1
    mesh = meshes[0]
    assert 0 < len(mesh.faces) <= max_faces
    bounds = scene.bounds
    assert np.isfinite(bounds).all()
    assert abs(bounds[0][1]) < 1e-6, bounds  # standing on the floor plane, Y up
    assert (bounds[1] - bounds[0]).max() < 100  # metres: a piece of furniture, not a building
    material = mesh.visual.material
    if textured:
        texture = material.baseColorTexture
        assert texture is not None and texture.width > 1 and texture.height > 1
        assert mesh.visual.uv is not None and len(mesh.visual.uv) == len(mesh.vertices)
    else:
        assert material.baseColorTexture is None
    return mesh  # type: ignore[no-any-return]

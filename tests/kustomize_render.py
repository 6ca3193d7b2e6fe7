"""The part of kustomize that deploy/kubernetes uses, in Python: resources (files and folders),
`namespace`, `labels` (metadata only), `images` and JSON 6902 `patches` with a target. Tests render
with it where no `kustomize` binary is; where `kubectl` is, they check it renders the same."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import yaml

# Kinds without a namespace among those deploy/kubernetes holds.
CLUSTER_KINDS = {"Namespace"}
Manifest = dict[str, Any]


def render(folder: Path) -> list[Manifest]:
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    objects: list[Manifest] = []
    for resource in spec.get("resources", []):
        path = folder / resource
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    objects = [copy.deepcopy(obj) for obj in objects]
    for patch in spec.get("patches", []):
        ops = yaml.safe_load((folder / patch["path"]).read_text())
        target = patch["target"]
        matched = [obj for obj in objects if obj["kind"] == target["kind"]
                   and obj["metadata"]["name"] == target["name"]]
        assert matched, f"patch {patch['path']} matches nothing"
        for obj in matched:
            objects[objects.index(obj)] = jsonpatch.apply_patch(obj, ops)
    for obj in objects:
        _transform(obj, spec)
    return objects


def _transform(obj: Manifest, spec: dict[str, Any]) -> None:
    metadata = obj["metadata"]
    if "namespace" in spec:
        if obj["kind"] == "Namespace":
            metadata["name"] = spec["namespace"]
        elif obj["kind"] not in CLUSTER_KINDS:
            metadata["namespace"] = spec["namespace"]
    for label in spec.get("labels", []):
        metadata.setdefault("labels", {}).update(label["pairs"])
    for image in spec.get("images", []):
        for container in pod_containers(obj):
            name, _, _tag = container["image"].partition(":")
            if name == image["name"]:
                new = image.get("newName", name)
                if "digest" in image:
                    container["image"] = f"{new}@{image['digest']}"
                elif "newTag" in image:
                    container["image"] = f"{new}:{image['newTag']}"
                else:
                    container["image"] = new + (f":{_tag}" if _tag else "")


def pod_containers(obj: Manifest) -> list[dict[str, Any]]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def by_kind_and_name(objects: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    return {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}

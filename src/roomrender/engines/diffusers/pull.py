"""`roomrender models pull`: the files the registry needs, from the Hugging Face Hub into the
models folder (`<models_dir>/<repo id>/...`, where the engine looks first).

Only what the loading code reads is fetched, never a whole repository: per component folder its
configs (and tokenizer files) and one set of weights: the registry's variant (`fp16`) where the
repository has it, else the full-precision safetensors (sharded ones with their index), and a
pickled `.bin` only where no safetensors exist. huggingface_hub does the transfers: a progress
bar per file, and an interrupted file resumes where it stopped (HTTP Range), within a run (it
retries a dropped connection) and across runs (the partial file is kept under
`<repo folder>/.cache/huggingface/`, with what was fetched, so a second pull fetches nothing
new). HF_ENDPOINT (a mirror) and HF_TOKEN (gated repositories) are honoured.

The server never downloads: this runs only from the command line.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from roomrender.engines.diffusers.loading import LORA_WEIGHTS, required_folders
from roomrender.engines.diffusers.registry import ModelSpec

CONFIG_FILES = frozenset({"config.json", "scheduler_config.json", "preprocessor_config.json",
                          "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                          "tokenizer.json", "added_tokens.json", "spiece.model",
                          "generation_config.json", "chat_template.jinja", "chat_template.json",
                          "video_preprocessor_config.json", "config.yaml"})
# diffusers' name, then transformers' names.
WEIGHT_STEMS = ("diffusion_pytorch_model", "model", "pytorch_model")
PIPELINE_KINDS = frozenset({"sd", "sdxl", "sd_upscale", "wan", "flux", "qwen_image", "shap_e"})



class LicenceNotAccepted(ValueError):
    """A model under a licence-gated licence, pulled without accepting it by name."""


def refuse_unaccepted(specs: list[ModelSpec], gated: frozenset[str], accepted: list[str]) -> None:
    """Raise unless every gated licence among `specs` is in `accepted` (`--accept-licence`)."""
    taken = {name.lower() for name in accepted}
    for spec in specs:
        licence = (spec.licence or "").lower()
        if licence in gated and licence not in taken:
            raise LicenceNotAccepted(
                f"{spec.id} is under the {spec.licence} licence, which excludes some territories and "
                f"uses: read it, then pull with --accept-licence {spec.licence}")


class NothingToFetch(ValueError):
    """The repository lacks a file the registry needs."""


def _in_folder(files: list[str], folder: str) -> dict[str, str]:
    """The files directly inside `folder` ("" the root), by name."""
    return {PurePosixPath(f).name: f for f in files if str(PurePosixPath(f).parent).strip(".") == folder}


def choose_weights(inside: dict[str, str], variant: str | None) -> list[str]:
    for stem in WEIGHT_STEMS:
        names = ([f"{stem}.{variant}.safetensors"] if variant else []) + [f"{stem}.safetensors"]
        for name in names:
            if name in inside:
                return [inside[name]]
        index = f"{stem}.safetensors.index.json"
        if index in inside:
            shards = [path for name, path in inside.items()
                      if name.startswith(f"{stem}-") and name.endswith(".safetensors")]
            return [inside[index], *sorted(shards)]
    for stem in WEIGHT_STEMS:
        if f"{stem}.bin" in inside:
            return [inside[f"{stem}.bin"]]
    return []


def wanted_files(spec: ModelSpec, files: list[str]) -> list[str]:
    """The files of the repository (`files`: all its paths) that the loading code reads for `spec`."""
    chosen: list[str] = []
    if spec.kind in PIPELINE_KINDS and "model_index.json" in files:
        chosen.append("model_index.json")
    for folder, needs_weights in required_folders(spec):
        inside = _in_folder(files, folder)
        chosen += [path for name, path in inside.items() if name in CONFIG_FILES]
        if needs_weights:
            weights = choose_weights(inside, spec.variant)
            if not weights:
                raise NothingToFetch(f"{spec.id} has no weights in {folder or 'its root'}")
            chosen += weights
    if spec.kind in ("ip_adapter", "lora"):
        name = spec.weight_name or LORA_WEIGHTS
        path = f"{spec.subfolder}/{name}" if spec.subfolder else name
        if path not in files:
            raise NothingToFetch(f"{spec.id} has no {path}")
        chosen.append(path)
    return sorted(set(chosen))


def plan_pull(specs: list[ModelSpec], list_files: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """Repository id → the files to fetch from it, for every model of `specs` (a repository used
    by several models, h94/IP-Adapter's SD 1.5 and SDXL adapters, once, with all they need)."""
    listed: dict[str, list[str]] = {}
    plan: dict[str, set[str]] = {}
    for spec in specs:
        if spec.id not in listed:
            listed[spec.id] = list_files(spec.id)
        plan.setdefault(spec.id, set()).update(wanted_files(spec, listed[spec.id]))
    return {repo: sorted(files) for repo, files in plan.items()}


def hub_endpoint() -> str | None:
    """HF_ENDPOINT as it is now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def pull(specs: list[ModelSpec], models_dir: Path, *, report: Callable[[str], None] = print) -> dict[str, list[str]]:
    """Fetch what `specs` need into `models_dir`; returns what was asked of each repository."""
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=hub_endpoint())
    revisions: dict[str, str | None] = {}

    def list_files(repo: str) -> list[str]:
        info = api.model_info(repo)
        revisions[repo] = info.sha  # every file from the same commit
        return [sibling.rfilename for sibling in info.siblings or []]

    plan = plan_pull(list(dict.fromkeys(specs)), list_files)
    for repo, files in plan.items():
        report(f"{repo}: {len(files)} file(s)")
        for filename in files:
            hf_hub_download(repo, filename, revision=revisions[repo], local_dir=models_dir / repo,
                            endpoint=api.endpoint)
    return plan

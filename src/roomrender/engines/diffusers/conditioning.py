"""Prompt embeddings, whole however long: CLIP reads 77 tokens, users write more.

A pipeline given `prompt=` keeps the first 77 CLIP tokens and drops the rest. Here prompts are
encoded with compel instead: a prompt longer than 75 tokens becomes several 77-token chunks (cut
at a sentence or phrase end where one is near), each encoded by the text encoder(s), the chunks'
embeddings concatenated; the pipeline gets `prompt_embeds` (and SDXL's pooled embeddings, which
come from the first chunk, as SDXL's own encoder takes them). Up to 75 tokens the embeddings are
those the pipeline would compute itself.

The text is taken literally (compel's weighting syntax is not parsed): user prompts are plain
sentences, and "2-seater" or "(optional)" must not turn into weights.

Every prompt of a call is padded to the longest one's chunk count with empty-prompt chunks, which
changes the image; so jobs batch together only with the same chunk count (`chunk_count`, part of
the engine's batch key), and a job gets the images it would get alone.
"""

from __future__ import annotations

from typing import Any

import torch

CHUNK_TOKENS = 77


def _providers(pipeline: Any) -> list[Any]:
    """compel's embeddings provider for each text encoder (SDXL has two, whose embeddings are
    concatenated; the second gives the pooled one)."""
    from compel import Compel, ReturnedEmbeddingsType

    if getattr(pipeline, "text_encoder_2", None) is None:
        return [Compel(tokenizer=pipeline.tokenizer, text_encoder=pipeline.text_encoder,
                       truncate_long_prompts=False).conditioning_provider]
    penultimate = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
    return [Compel(tokenizer=tokenizer, text_encoder=encoder, returned_embeddings_type=penultimate,
                   truncate_long_prompts=False).conditioning_provider
            for tokenizer, encoder in ((pipeline.tokenizer, pipeline.text_encoder),
                                       (pipeline.tokenizer_2, pipeline.text_encoder_2))]


@torch.inference_mode()
def prompt_embeddings(pipeline: Any, positives: list[str], negatives: list[str]) -> dict[str, torch.Tensor]:
    """The pipeline's `prompt_embeds` / `negative_prompt_embeds` (and SDXL's pooled ones) for one
    prompt pair per image; each distinct text is encoded once."""
    providers = _providers(pipeline)

    def encode(text: str) -> torch.Tensor:
        return torch.cat([provider.get_embeddings_for_weighted_prompt_fragments(
            text_batch=[[text]], fragment_weights_batch=[[1.0]], device=provider.device) for provider in providers],
            dim=-1)

    texts = list(dict.fromkeys([*positives, *negatives]))
    encoded = [encode(text) for text in texts]
    longest = max(e.shape[1] for e in encoded)
    if any(e.shape[1] < longest for e in encoded):
        # Shorter prompts are padded with chunks of the empty prompt, as compel pads them.
        empty = encode("")
        encoded = [torch.cat([e, *[empty] * ((longest - e.shape[1]) // CHUNK_TOKENS)], dim=1) for e in encoded]
    table = torch.cat(encoded)
    index = {text: i for i, text in enumerate(texts)}

    def pick(tensor: torch.Tensor, chosen: list[str]) -> torch.Tensor:
        return tensor[torch.tensor([index[text] for text in chosen], device=tensor.device)]

    found = {"prompt_embeds": pick(table, positives), "negative_prompt_embeds": pick(table, negatives)}
    if len(providers) > 1:
        pooled: torch.Tensor = providers[1].get_pooled_embeddings(texts, device=providers[1].device)
        found["pooled_prompt_embeds"] = pick(pooled, positives)
        found["negative_pooled_prompt_embeds"] = pick(pooled, negatives)
    return found


def chunk_count(tokenizer: Any, texts: list[str]) -> int:
    """How many 77-token chunks the longest of `texts` takes, split as `prompt_embeddings`
    splits it (no text encoder needed)."""
    from compel.embeddings_provider import EmbeddingsProvider

    provider = EmbeddingsProvider(tokenizer, text_encoder=None, truncate=False, device="cpu")
    longest = 1
    for ids in provider.get_token_ids(texts, include_start_and_end_markers=False):
        # compel's own chunking (a private method): the split points depend on the tokens.
        chunked, _weights, _mask = provider._chunk_and_pad_token_ids(ids, [1.0] * len(ids), "cpu")
        longest = max(longest, len(chunked) // CHUNK_TOKENS)
    return longest


def token_count(tokenizer: Any, text: str) -> int:
    """CLIP tokens of `text`, without the start and end markers."""
    return len(tokenizer(text, truncation=False, add_special_tokens=False)["input_ids"])

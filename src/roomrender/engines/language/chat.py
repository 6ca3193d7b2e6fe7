"""The chat task's assistant: a causal language model with a chat template (Qwen2.5-Instruct by
default) run by transformers, its answer streamed token by token (TextIteratorStreamer).

A photo is not seen by this model: it is described in words from what plain image processing
finds (its size, shape, brightness and main colours, engines/moodboards.py's palette), and the
description goes into the question. (No vision-language model is wired yet.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from roomrender.canonical.models import GenerationRequest
from roomrender.engines.moodboards import palette

SYSTEM_PROMPT = (
    "You are roomrender's interior-design assistant. You answer questions about rooms, layouts, "
    "furniture, materials, colours, lighting and styles clearly and practically.")
DEFAULT_MAX_NEW_TOKENS = 512


@dataclass(frozen=True)
class Answer:
    text: str
    prompt_tokens: int
    completion_tokens: int


def describe_photo(image: Image.Image) -> str:
    """What plain image processing can say of a photo, in words (no AI)."""
    width, height = image.size
    shape = "landscape" if width > height else "portrait" if height > width else "square"
    light = float(np.asarray(image.convert("L"), dtype=np.float32).mean()) / 255
    brightness = "bright" if light > 0.6 else "dim" if light < 0.35 else "moderately lit"
    colours = ", ".join(f"{swatch.name} ({swatch.hex})" for swatch in palette([image], 5))
    return (f"[The user attached a photo: {width}x{height} px, {shape}, {brightness}; its main "
            f"colours: {colours}.]")


def chat_messages(request: GenerationRequest, photo: Image.Image | None = None) -> list[dict[str, str]]:
    """The conversation as the chat template reads it: the system prompt, the earlier turns,
    then the question (with its photo described)."""
    system = SYSTEM_PROMPT
    if request.lang:
        system += f" Answer in the language whose code is {request.lang}."
    messages = [{"role": "system", "content": system}]
    for turn in request.history:
        messages += [{"role": "user", "content": turn.prompt},
                     {"role": "assistant", "content": turn.answer}]
    question = request.prompt or ""
    if photo is not None:
        question = f"{describe_photo(photo)}\n{question}"
    messages.append({"role": "user", "content": question})
    return messages


class _Stop:
    """A stopping criterion: stop when `should_stop` says so (the job was canceled)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        stop = self.should_stop()
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


def answer(model: Any, tokenizer: Any, messages: list[dict[str, str]], *,
           max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, seed: int | None = None,
           on_text: Callable[[str], None] | None = None,
           should_stop: Callable[[], bool] | None = None) -> Answer:
    """The model's answer to `messages`, each new piece of text given to `on_text` as it comes.
    Greedy (the same answer for the same conversation) unless a seed asks for sampling."""
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                            return_dict=True)
    input_ids = encoded["input_ids"].to(model.device)
    attention = encoded["attention_mask"].to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    kwargs: dict[str, Any] = {
        "input_ids": input_ids, "attention_mask": attention, "streamer": streamer,
        "max_new_tokens": max_new_tokens, "pad_token_id": tokenizer.pad_token_id or tokenizer.eos_token_id,
        "do_sample": seed is not None}
    if seed is not None:
        kwargs.update(temperature=0.7, top_p=0.9)
    if should_stop is not None:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_Stop(should_stop)])
    produced: list[torch.Tensor] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            if seed is not None:
                torch.manual_seed(seed)
            with torch.inference_mode():
                produced.append(model.generate(**kwargs))
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)
            streamer.end()  # type: ignore[no-untyped-call]

    thread = threading.Thread(target=run, name="chat-generate", daemon=True)
    thread.start()
    pieces: list[str] = []
    for piece in streamer:
        if piece:
            pieces.append(piece)
            if on_text is not None:
                on_text(piece)
    thread.join()
    if failure:
        raise failure[0]
    completion = int(produced[0].shape[-1] - input_ids.shape[-1]) if produced else 0
    return Answer("".join(pieces).strip(), int(input_ids.shape[-1]), completion)

"""The chat task in the diffusers engine, and enhance_prompt's rewriting: the registry's
`language` model (engines/language/chat.py runs it), loaded from the model store so that it is
located, pulled and kept within the memory budget like the pipelines' models."""

from __future__ import annotations

import logging

from roomrender.canonical.models import GenerationRequest, Task
from roomrender.engines.base import BatchCanceled, BatchContext, EngineJob, JobResult, RenderedText
from roomrender.engines.diffusers.registry import Registry, TaskSpec
from roomrender.engines.diffusers.store import ModelStore
from roomrender.engines.enhancing import REWRITE_INSTRUCTION, enhanced
from roomrender.engines.language.chat import DEFAULT_MAX_NEW_TOKENS, answer, chat_messages

log = logging.getLogger("roomrender.engines.diffusers")
# A rewritten prompt is short: it need not run as long as an answer.
REWRITE_MAX_NEW_TOKENS = 120


class Assistant:
    def __init__(self, registry: Registry, store: ModelStore, family: str) -> None:
        self.registry = registry
        self.store = store
        self.family = family

    def spec(self) -> TaskSpec | None:
        return self.registry.spec_for(Task.chat, None, self.family)

    def answer_all(self, spec: TaskSpec, batch: list[EngineJob], context: BatchContext) -> list[JobResult]:
        """Each job's answer in turn (one conversation at a time), its progress the share of
        its token budget spent."""
        assert spec.base is not None
        tokenizer, model = self.store.language_model(spec.base)
        limit = int(spec.extra.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS))
        results: list[JobResult] = []
        for job in batch:
            streamed = _Progress(context, job.job_id, limit)
            try:
                reply = answer(model, tokenizer, chat_messages(job.request, job.images.get("image")),
                               max_new_tokens=limit, seed=job.request.seed, on_text=streamed,
                               should_stop=streamed.canceled)
                results.append([RenderedText(reply.text)])
            except BatchCanceled:
                raise
            except Exception as failure:
                log.exception("chat answer of %s failed", job.job_id)
                results.append(failure)
        return results

    def rewrite_prompts(self, batch: list[EngineJob]) -> None:
        """enhance_prompt=true: each such job's prompt rewritten by the language model when its
        weights are here (else build_prompt's deterministic expansion applies later)."""
        wanting = [job for job in batch if job.request.enhance_prompt and job.request.prompt]
        spec = self.spec() if wanting else None
        if spec is None or spec.base is None or self.store.missing(spec):
            return
        tokenizer, model = self.store.language_model(spec.base)
        for job in wanting:

            def rewrite(prompt: str) -> str:
                messages = [{"role": "system", "content": REWRITE_INSTRUCTION},
                            {"role": "user", "content": prompt}]
                return answer(model, tokenizer, messages, max_new_tokens=REWRITE_MAX_NEW_TOKENS).text

            job.request = enhanced(job.request, rewrite)


class _Progress:
    """A chat job's progress: the share of its token budget spent, reported per piece of text,
    with its answer so far (stripped as the final answer is: always a prefix of it)."""

    def __init__(self, context: BatchContext, job_id: str, limit: int) -> None:
        self.context = context
        self.job_id = job_id
        self.limit = limit
        self.pieces = 0
        self.text: list[str] = []

    def __call__(self, piece: str) -> None:
        self.pieces += 1
        self.text.append(piece)
        self.context.partial_text(self.job_id, "".join(self.text).strip())
        self.context.progress([self.job_id], min(0.99, self.pieces / self.limit))

    def canceled(self) -> bool:
        return self.context.is_canceled(self.job_id)


def is_chat(request: GenerationRequest) -> bool:
    return request.task == Task.chat

"""The loaded models, kept within a memory budget: least recently used ones are unloaded first.

Every component a pipeline is assembled from (a UNet, a VAE, a text encoder, a ControlNet, a
preprocessor's model) is one entry, weighed by the bytes of its parameters and buffers;
tokenizers, processors and configs weigh nothing and stay. When loading an entry takes the total
over the budget, the least recently used entries are dropped until it fits again, sparing what the
batch at hand uses (`begin_batch` starts a batch; every entry it touches is spared until the
next) and what the pipeline running now holds. Whoever holds a dropped entry is told
(`on_evict`): the model store forgets the pipelines built on it, which are assembled again (and
the entry loaded again) when next needed.

A single task needing more than the budget still runs (its entries are spared), over budget;
the log says so.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger("roomrender.engines.diffusers")

GIB = 1024**3


def weight_bytes(value: Any) -> int:
    """Bytes of a torch module's parameters and buffers (0 for anything else)."""
    parameters = getattr(value, "parameters", None)
    buffers = getattr(value, "buffers", None)
    if not callable(parameters) or not callable(buffers):
        return 0
    seen: set[int] = set()
    total = 0
    for tensor in [*parameters(), *buffers()]:
        if id(tensor) not in seen:
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
    return total


class PartCache:
    def __init__(self, budget_bytes: int | None = None) -> None:
        # None: no budget, nothing is ever unloaded.
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()  # least recently used first
        self._bytes: dict[Hashable, int] = {}
        self._batch: set[Hashable] = set()
        self._running: frozenset[Hashable] = frozenset()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[Hashable, Any], None]] = []
        # How often each entry was loaded: more than once means it was unloaded in between.
        self.loads: Counter[Hashable] = Counter()
        self.evictions = 0

    def on_evict(self, listener: Callable[[Hashable, Any], None]) -> None:
        self._listeners.append(listener)

    @property
    def resident_bytes(self) -> int:
        with self._lock:
            return sum(self._bytes.values())

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The entry under `key`, loaded once (and again after it was unloaded)."""
        with self._lock:
            self._batch.add(key)
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
            value = load()
            self._entries[key] = value
            self._bytes[key] = weight_bytes(value)
            self.loads[key] += 1
            self._fit()
            return value

    def touch(self, keys: frozenset[Hashable]) -> None:
        """`keys` were used just now, by the pipeline that runs next."""
        with self._lock:
            self._running = keys
            self._batch |= keys
            for key in keys:
                if key in self._entries:
                    self._entries.move_to_end(key)

    def reweigh(self, keys: frozenset[Hashable]) -> None:
        """Weigh these entries again (an adapter attached to a UNet adds weights to it)."""
        with self._lock:
            for key in keys:
                if key in self._entries:
                    self._bytes[key] = weight_bytes(self._entries[key])
            self._fit()

    def begin_batch(self) -> None:
        with self._lock:
            self._batch = set()

    def drop(self, key: Hashable) -> None:
        with self._lock:
            if key in self._entries:
                value = self._entries.pop(key)
                self._bytes.pop(key, None)
                self.evictions += 1
                for listener in self._listeners:
                    listener(key, value)

    def _fit(self) -> None:
        if self.budget_bytes is None:
            return
        spared = self._batch | self._running
        while self.resident_bytes > self.budget_bytes:
            victim = next((key for key in self._entries if key not in spared and self._bytes[key] > 0), None)
            if victim is None:
                log.warning("the models in use need %.2f GiB, over the memory budget of %.2f GiB",
                            self.resident_bytes / GIB, self.budget_bytes / GIB)
                return
            log.info("unloading %s (%.2f GiB) to stay within the memory budget", victim, self._bytes[victim] / GIB)
            self.drop(victim)

"""Watching jobs without polling (the SSE streams): the watchers of a job in this process share one
channel, kept current by the change feed.

- A watcher's first state comes from one read (none when the job already has watchers here);
  after that every change arrives with the job's new row, so a watcher costs nothing while
  nothing changes, and sees every change however short (a `running` phase of 10 ms included).
- Queue positions: a change that moves a lane's queue (a job of that engine queued, started,
  canceled or failed ahead of a watched queued job) recomputes the positions of every watched
  queued job of the lane in one query. A lane recomputes as often as keeps its moves under
  `POSITION_MOVES_PER_SECOND` (a few watchers: at once; thousands: less often) and at least
  every `POSITION_INTERVAL_SECONDS` while its queue moves.
- Channels live on the server's event loop. Publishers (workers, request threads, the feed's
  listener) hand changes over with one `call_soon_threadsafe` per burst; reads this module needs
  after the first (positions, catching up) run on one thread of its own, never the request pool.
- A text job's answer as it forms (jobs/live_text.py) reaches its watchers as `job.text` updates
  carrying the new piece (`text`, at offset `text_at`), in order with the job's own changes.
- Each change is presented (`JobService.present`) once per job, not once per watcher, and
  `JobUpdate.rendered` lets a dialect render it once for all its streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from roomrender.canonical.errors import NotFound
from roomrender.canonical.models import Job, JobStatus
from roomrender.events.feed import Change, Subscription
from roomrender.jobs.live_text import TEXT_TOPIC
from roomrender.jobs.queue import JOB_TOPIC, JobQueue
from roomrender.jobs.records import JobRecord

log = logging.getLogger("roomrender.watch")

T = TypeVar("T")

# The longest a lane's watchers wait for a position move...
POSITION_INTERVAL_SECONDS = 1.0
# ...and, below that, the moves a lane sends per second at most: each recompute may move every
# watcher of the lane, and a move costs a write to each stream.
POSITION_MOVES_PER_SECOND = 5000.0
# Position moves reach this many watchers per turn of the event loop: a move touches every
# watcher of a queued job at once, and a job's own change must not wait behind thousands.
POSITION_SLICE_WATCHERS = 100
# Events after which the jobs behind the changed one may have moved.
_MOVES_QUEUE = frozenset({"job.queued", "job.requeued", "job.started", "job.canceled",
                          "job.failed"})
# Updates a newer one of the same status replaces while a slow watcher has not taken it yet.
COALESCED = frozenset({"job.progress", "job.position"})
# The event of a watcher's first update.
FIRST = "job.watch"
# The event of a piece of a text job's answer (JobUpdate.text).
TEXT = "job.text"
_QUEUED = JobStatus.queued.value


@dataclass(eq=False)
class JobUpdate:
    """A job's state after a change, shared by every watcher of the job."""

    job: Job
    event: str
    _forms: dict[str, Any] = field(default_factory=dict, repr=False)
    # A `job.text` update's piece of the answer, and its offset in the answer.
    text: str | None = None
    text_at: int = 0

    def rendered(self, form: str, render: Callable[[Job], T]) -> T:
        """`render(job)`, computed once for every stream that asks for the same `form`."""
        if form not in self._forms:
            self._forms[form] = render(self.job)
        found: T = self._forms[form]
        return found


def _order(columns: dict[str, Any]) -> tuple[float, float, float]:
    """A queued job's place in its lane (from a change's columns): smaller runs first (see
    JobQueue's urgency)."""
    return (-columns["priority"], columns["turn"], columns["created_at"])


def _place(record: JobRecord) -> tuple[float, float, float]:
    return (-record.priority, record.turn, record.created_at)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Watch:
    """One watcher: the updates it has not taken yet, in order."""

    __slots__ = ("_hub", "_pending", "_waiter", "active", "channel", "closed", "draining")

    def __init__(self, hub: _Hub, channel: _Channel) -> None:
        self._hub = hub
        self.channel = channel
        self._pending: deque[JobUpdate] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.active = False
        self.closed = False
        self.draining = False

    @property
    def job(self) -> Job | None:
        """The job as this process last saw it."""
        update = self.channel.update
        return None if update is None else update.job

    def push(self, update: JobUpdate) -> None:
        if self.closed:
            return
        pending = self._pending
        if (pending and update.event in COALESCED and pending[-1].event in COALESCED
                and pending[-1].job.status == update.job.status):
            pending[-1] = update
        else:
            pending.append(update)
        if self._waiter is not None:
            _resolve(self._waiter)

    async def next(self, timeout: float) -> JobUpdate | None:
        """The next update; None when `timeout` seconds passed without one, once closed, or
        once told to stop serving (`draining`: the server is shutting down) and all was taken."""
        if not self._pending and not self.closed and not self.draining:
            loop = self._hub.loop
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self.closed or not self._pending:
            return None
        return self._pending.popleft()

    def stop_serving(self) -> None:
        """The server is shutting down: `next` answers None from now on (the stream ends)."""
        self.draining = True
        if self._waiter is not None:
            _resolve(self._waiter)

    def close(self) -> None:
        """Stop watching (idempotent); a pending `next` returns None."""
        if self.closed:
            return
        self.closed = True
        if self._waiter is not None:
            _resolve(self._waiter)
        self._hub.leave(self)


class _Channel:
    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.record: JobRecord | None = None
        self.position: int | None = None
        self.update: JobUpdate | None = None
        self.watches: set[Watch] = set()
        # Changes that arrived before the first read answered.
        self.early: list[tuple[dict[str, Any], str]] = []
        # Queued again (a requeue): its update waits for the lane's positions.
        self.awaiting: str | None = None


class _Lane:
    """The watched queued jobs of one engine, and their position recomputes."""

    def __init__(self, hub: _Hub, engine: str) -> None:
        self.hub = hub
        self.engine = engine
        self.channels: set[_Channel] = set()
        self._last: tuple[float, float, float] | None = None
        self.in_flight = False
        self.dirty = False
        self.timer: asyncio.TimerHandle | None = None
        self.next_allowed = 0.0

    def track(self, channel: _Channel) -> None:
        self.channels.add(channel)
        self._last = None

    def untrack(self, channel: _Channel) -> None:
        self.channels.discard(channel)
        self._last = None

    def moved(self, order: tuple[float, float, float]) -> None:
        """A job at `order` entered or left the queue: positions behind it changed."""
        if not self.channels:
            return
        if self._last is None:
            self._last = max(_place(channel.record) for channel in self.channels
                             if channel.record is not None)
        if order < self._last:
            self.request()

    def request(self, urgent: bool = False) -> None:
        self.dirty = True
        if self.in_flight or (self.timer is not None and not urgent):
            return
        delay = 0.0 if urgent else self.next_allowed - self.hub.loop.time()
        if delay <= 0:
            if self.timer is not None:
                self.timer.cancel()
            self._start()
        else:
            self.timer = self.hub.loop.call_later(delay, self._start)

    def _start(self) -> None:
        self.timer = None
        if not self.channels:
            self.dirty = False
            return
        self.dirty, self.in_flight = False, True
        ids = [channel.job_id for channel in self.channels]
        self.hub.run_off_loop(self.hub.owner.queue.positions, self._finish, self.engine, ids)

    def _finish(self, positions: dict[str, int] | None) -> None:
        self.in_flight = False
        watchers = sum(len(channel.watches) for channel in self.channels)
        self.next_allowed = self.hub.loop.time() + min(
            POSITION_INTERVAL_SECONDS, watchers / POSITION_MOVES_PER_SECOND)
        moved: list[tuple[_Channel, str]] = []
        for channel in list(self.channels):
            position = (positions or {}).get(channel.job_id)
            if position is None:
                continue  # no longer queued: its own change is on its way
            if position != channel.position or channel.awaiting:
                channel.position = position
                moved.append((channel, channel.awaiting or "job.position"))
                channel.awaiting = None
        if moved:
            self.hub.emit_in_slices(moved)
        if self.dirty:
            self.request(urgent=any(channel.awaiting for channel in self.channels))


class _Hub:
    """The channels of one event loop."""

    def __init__(self, owner: JobWatchers, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.loop = loop
        self.channels: dict[str, _Channel] = {}
        self.lanes: dict[str, _Lane] = {}
        self._inbox: deque[Change] = deque()
        self._scheduled = False
        self._subscriptions: list[Subscription] = []

    # -- from any thread -----------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        data = change.data
        if change.key not in self.channels and data is not None and (
                data["row"]["engine"] not in self.lanes or data["event"] not in _MOVES_QUEUE):
            return
        self._inbox.append(change)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self._drain)

    def _on_text(self, change: Change) -> None:
        if change.key not in self.channels or change.data is None:
            return
        self._inbox.append(change)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self._drain)

    def _on_resync(self) -> None:
        self._call_soon(self._catch_up, None)

    def _call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody watches any more
            self._scheduled = False

    def run_off_loop(self, function: Callable[..., T], done: Callable[[T | None], None],
                     *args: Any) -> None:
        """`function(*args)` on the watchers' own thread, then `done(result)` (None if it
        failed) on the loop."""
        def finished(future: Future[T]) -> None:
            try:
                result: T | None = future.result()
            except Exception:
                log.exception("a watchers' read failed")
                result = None
            self._call_soon(done, result)

        self.owner.executor().submit(function, *args).add_done_callback(finished)

    # -- on the loop ---------------------------------------------------------------------

    def attach(self) -> None:
        """Subscribe to the feed (while the hub has channels)."""
        if not self._subscriptions:
            feed = self.owner.queue.feed
            self._subscriptions = [feed.subscribe(JOB_TOPIC, self._on_change),
                                   feed.subscribe(TEXT_TOPIC, self._on_text),
                                   feed.on_resync(self._on_resync)]

    async def ready(self) -> None:
        """Once other processes' changes are heard too (the feed's listener is on)."""
        if not self.owner.queue.feed.is_ready:
            await self.loop.run_in_executor(None, self.owner.queue.feed.wait_ready)

    def drain(self) -> None:
        for channel in list(self.channels.values()):
            for watch in list(channel.watches):
                watch.stop_serving()

    def channel(self, job_id: str) -> _Channel:
        channel = self.channels.get(job_id)
        if channel is None:
            channel = self.channels[job_id] = _Channel(job_id)
        return channel

    def leave(self, watch: Watch) -> None:
        channel = watch.channel
        channel.watches.discard(watch)
        if channel.watches or self.channels.get(channel.job_id) is not channel:
            return
        del self.channels[channel.job_id]
        self._untrack(channel)
        if not self.channels:  # nobody watches on this loop: no subscription, no hub
            for subscription in self._subscriptions:
                subscription.close()
            self._subscriptions = []
            if self.owner._hubs.get(self.loop) is self:
                del self.owner._hubs[self.loop]

    def seed(self, channel: _Channel, record: JobRecord, position: int | None) -> None:
        """The answer of a first read."""
        if channel.record is not None and record.updated_at <= channel.record.updated_at:
            return
        early, channel.early = channel.early, []
        for data, _event in early:
            if data["updated_at"] > record.updated_at:
                record = record.merged(data)
        channel.record = record
        channel.position = position if record.status == _QUEUED else None
        self._track(channel)
        if early and channel.position is not None:
            self.lanes[record.engine].request(urgent=True)
        self.emit(channel, FIRST)

    def emit_in_slices(self, moved: list[tuple[_Channel, str]]) -> None:
        """Emit these position moves, `POSITION_SLICE_WATCHERS` watchers per loop turn."""
        budget = POSITION_SLICE_WATCHERS
        while moved and budget > 0:
            channel, event = moved.pop()
            if (self.channels.get(channel.job_id) is channel and channel.record is not None
                    and channel.record.status == _QUEUED):  # else its own change was shown
                self.emit(channel, event)
                budget -= len(channel.watches)
        if moved:
            self.loop.call_soon(self.emit_in_slices, moved)

    def emit(self, channel: _Channel, event: str) -> None:
        assert channel.record is not None
        try:
            job = self.owner.present(channel.record, channel.position)
        except Exception:
            log.exception("presenting job %s failed", channel.job_id)
            return
        update = channel.update = JobUpdate(job, event)
        for watch in channel.watches:
            if watch.active:
                watch.push(update)

    def _drain(self) -> None:
        self._scheduled = False
        inbox = self._inbox
        while inbox:
            change = inbox.popleft()
            data = change.data
            if change.topic == TEXT_TOPIC:
                self._text(change)
                continue
            if data is None:  # too large to carry: read it
                if change.key in self.channels:
                    self._catch_up([change.key])
                for each in self.lanes.values():
                    each.request()
                continue
            row, event = data["row"], data["event"]
            lane = self.lanes.get(row["engine"])
            if lane is not None and event in _MOVES_QUEUE:
                lane.moved(_order(row))
            channel = self.channels.get(change.key)
            if channel is not None:
                self._apply(channel, row, event)

    def _text(self, change: Change) -> None:
        """A piece of a watched job's answer, to its watchers (not kept: a new watcher hears
        the pieces from now on)."""
        channel = self.channels.get(change.key)
        if channel is None or channel.update is None or change.data is None:
            return
        update = JobUpdate(channel.update.job, TEXT, text=str(change.data["text"]),
                           text_at=int(change.data["at"]))
        for watch in channel.watches:
            if watch.active:
                watch.push(update)

    def _apply(self, channel: _Channel, data: dict[str, Any], event: str) -> None:
        if channel.record is None:
            channel.early.append((data, event))
            return
        if data["updated_at"] <= channel.record.updated_at:
            return  # the first read already saw it
        was = channel.record.status
        record = channel.record = channel.record.merged(data)
        self._track(channel)
        if record.status == _QUEUED:
            if was != _QUEUED or channel.position is None:
                channel.awaiting = event  # shown once its position is known
                self.lanes[record.engine].request(urgent=True)
                return
        else:
            channel.position = channel.awaiting = None
        self.emit(channel, event)

    def _track(self, channel: _Channel) -> None:
        assert channel.record is not None
        engine = channel.record.engine
        if channel.record.status == _QUEUED:
            if engine not in self.lanes:
                self.lanes[engine] = _Lane(self, engine)
            self.lanes[engine].track(channel)
        else:
            self._untrack(channel)

    def _untrack(self, channel: _Channel) -> None:
        if channel.record is None:
            return
        lane = self.lanes.get(channel.record.engine)
        if lane is not None:
            lane.untrack(channel)
            if not lane.channels:
                if lane.timer is not None:
                    lane.timer.cancel()
                del self.lanes[lane.engine]

    def _catch_up(self, job_ids: list[str] | None) -> None:
        """Read these watched jobs (all when None) and apply what changed unseen; then
        recompute every lane's positions."""
        ids = list(self.channels) if job_ids is None else job_ids
        if ids:
            self.run_off_loop(self.owner.queue.rows, self._caught_up, ids)
        if job_ids is None:
            for lane in list(self.lanes.values()):
                lane.request(urgent=True)

    def _caught_up(self, records: list[JobRecord] | None) -> None:
        for record in records or []:
            channel = self.channels.get(record.id)
            if channel is not None and channel.record is not None:
                self._apply(channel, record.columns(), "job.changed")


class JobWatchers:
    """Every watcher of this process (one hub per event loop)."""

    def __init__(self, queue: JobQueue,
                 present: Callable[[JobRecord, int | None], Job]) -> None:
        self.queue = queue
        self.present = present
        # One hub per event loop, kept while it has watchers.
        self._hubs: dict[asyncio.AbstractEventLoop, _Hub] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._inline_reads = queue.db.dialect.name == "sqlite"

    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="watchers")
        return self._executor

    async def watch(self, owner_id: str, job_id: str) -> Watch:
        """Start watching a job of `owner_id` (NotFound otherwise); the first update is ready."""
        loop = asyncio.get_running_loop()
        hub = self._hubs.get(loop)
        if hub is None:
            hub = self._hubs[loop] = _Hub(self, loop)
        channel = hub.channel(job_id)
        watch = Watch(hub, channel)
        channel.watches.add(watch)  # before reading: no change between the read and now is lost
        hub.attach()
        try:
            await hub.ready()
            if channel.update is None or channel.record is None:
                record, position = await self._read(job_id, owner_id)
                if record is None:
                    raise NotFound(f"no job {job_id!r}")
                hub.seed(channel, record, position)
            if (channel.record is None or channel.record.owner_id != owner_id
                    or channel.update is None):
                raise NotFound(f"no job {job_id!r}")
        except BaseException:
            watch.close()
            raise
        watch.active = True
        watch.push(channel.update)
        return watch

    async def _read(self, job_id: str, owner_id: str) -> tuple[JobRecord | None, int | None]:
        # SQLite answers a read by key in-process faster than a hop to a thread; a networked
        # database is read from the default executor (first updates only).
        if self._inline_reads:
            return self._first_read(job_id, owner_id)
        return await asyncio.get_running_loop().run_in_executor(
            None, self._first_read, job_id, owner_id)

    def _first_read(self, job_id: str, owner_id: str) -> tuple[JobRecord | None, int | None]:
        record = self.queue.owned(job_id, owner_id)
        if record is None:
            return None, None
        position = self.queue.queue_position(record) if record.status == _QUEUED else None
        return record, position

    def drain(self) -> None:
        """The server is shutting down: every open watch stops serving (from any thread, a
        signal handler included)."""
        for hub in list(self._hubs.values()):
            try:
                hub.loop.call_soon_threadsafe(hub.drain)
            except RuntimeError:  # that loop is closed already
                pass

    def watching(self) -> int:
        """How many watchers are open (all loops)."""
        return sum(len(channel.watches) for hub in list(self._hubs.values())
                   for channel in list(hub.channels.values()))

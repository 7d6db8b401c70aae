"""One gate per account: each endpoint's calls wait in line for the server's limit.

Misskey limits each endpoint for each account, and a call it refuses (429) did
nothing. The gate keeps one lane per endpoint: its calls take turns in the
order they came, at most ``MAX_IN_FLIGHT`` at once, so a burst into a limit it
does not know yet gets only a few 429s. A 429 closes the lane until the moment
the server names and teaches it the limit, so the rest of the burst goes as
the server frees room and needs no more 429s. Misskey (a sliding window that
counts refused calls too): ``limit`` calls (info.total, else the calls that
passed since the lane was idle) per ``window`` s (from when the oldest call in
the server's window was sent to the reset it named); a call goes once the
limit-th last answer is a window old. Sharkey (a bucket that drains in
X-RateLimit-Clear, as big as one more than the most X-RateLimit-Remaining
seen): one call a drip, from the reset on. Misskey 12 (a bare 429): one call
tries alone ``PROBE_AFTER`` s after the window filled, longer after each
refusal; the first that passes shows the window. A call waits at most until
its deadline: once the server's limit puts the next turn past it, it gets a
MisskeyRateLimitError at once (waiting for calls in flight does not count).
A lane idle for a window forgets what it learned; ``close`` ends every
waiting call with MisskeyClientClosedError.
"""

from __future__ import annotations

import asyncio
from collections import deque
import logging
from types import TracebackType
from typing import Final, Self

from .errors import MisskeyApiError, MisskeyClientClosedError, MisskeyRateLimitError

_LOGGER = logging.getLogger(__name__)

# Before a limit is known, the calls of a burst that can run past it at once.
MAX_IN_FLIGHT: Final = 4
# After a bare 429, a lone call tries again this many seconds after the window
# filled (Misskey's windows are whole seconds; a refused try counts in it).
PROBE_AFTER: Final = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 45, 60, 90, 120, 180)
# Calls remembered, for windows of that many calls at most.
HISTORY: Final = 10_000


class Turn:
    """One call's right to go: ``with turn:`` around sending it and reading the answer."""

    __slots__ = ("done", "index", "lane", "remaining")

    def __init__(self, lane: Lane) -> None:
        """Be given by ``lane``; not sent yet."""
        self.lane = lane
        # Its place among the lane's calls once sent, and whether it is over.
        self.index = -1
        self.done = False
        # Sharkey's X-RateLimit-Remaining in the answer, set by the caller.
        self.remaining: int | None = None

    def __enter__(self) -> Self:
        """Note that the call goes out."""
        self.lane.sent(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Tell the lane how the call went, and give the turn back."""
        self.lane.answered(self, exc)


class Lane:
    """The calls of one account to one endpoint."""

    def __init__(self, endpoint: str, loop: asyncio.AbstractEventLoop) -> None:
        """Start with nothing in line and no limit known."""
        self.endpoint = endpoint
        self.loop = loop
        self._queue: deque[tuple[asyncio.Future[Turn], float]] = deque()
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        # When recent calls were sent (``_count`` in all) and answered.
        self._sent: deque[float] = deque(maxlen=HISTORY)
        self._count = 0
        self._answers: deque[float] = deque(maxlen=HISTORY)
        self._last_error: MisskeyRateLimitError | None = None
        self._forget()

    def _forget(self) -> None:
        """Know nothing of the limit (the next burst learns it again)."""
        self._answers.clear()
        self._passed = 0  # calls the limit let through since the lane was idle
        self._hold_until = 0.0
        # Misskey's window, or Sharkey's bucket: size and one drip, the next.
        self._limit: int | None = None
        self._window: float | None = None
        self._size = 0
        self._drip: float | None = None
        self._next_drip = 0.0
        # One call at a time: after a 429, until a call passes.
        self._alone = False
        # A bare 429: which of PROBE_AFTER the lone try waits, from when the
        # window filled; calls from ``_probe_from`` on are tries.
        self._step = -1
        self._anchor = 0.0
        self._probe_from = 0

    # --- turns ---------------------------------------------------------------

    async def enter(self, deadline: float) -> Turn:
        """Wait in line for a turn; MisskeyRateLimitError once it would come after ``deadline``."""
        if not self._in_flight and not self._queue:
            self._forget_if_quiet(self.loop.time())
        first = False
        while True:
            if self._closed:
                raise MisskeyClientClosedError(f"{self.endpoint}: the client is closed")
            future: asyncio.Future[Turn] = self.loop.create_future()
            if first:
                self._queue.appendleft((future, deadline))
            else:
                self._queue.append((future, deadline))
            self._pump()
            try:
                turn = await future
            except asyncio.CancelledError:
                if not future.cancelled() and future.exception() is None:
                    self.leave(future.result())
                raise
            if not self._closed and self._hold_until <= self.loop.time():
                return turn
            # Closed, or a 429 came back after the turn was given: wait again,
            # first in line.
            self.leave(turn)
            first = True

    def leave(self, turn: Turn) -> None:
        """Give a turn back (nothing if its call was answered already)."""
        if not turn.done:
            turn.done = True
            self._in_flight -= 1
            self._pump()

    def ready_at(self) -> float:
        """Return the earliest moment (loop time) the server's limit lets a call go."""
        return self._ready_at(self.loop.time())

    def _ready_at(self, now: float) -> float:
        ready = max(now, self._hold_until)
        if self._drip is not None:
            return max(ready, self._next_drip)
        if self._window is not None and self._limit:
            # With the calls in flight, the next is the limit-th of the window.
            if 0 < (back := self._limit - self._in_flight) <= len(self._answers):
                ready = max(ready, self._answers[-back] + self._window)
        return ready

    def _room(self) -> bool:
        """Whether the calls in flight leave room for one more."""
        most = 1 if self._alone else MAX_IN_FLIGHT
        if self._window is not None and self._limit:
            most = min(most, self._limit)
        return self._in_flight < most

    def _pump(self) -> None:
        """Give turns to the calls in line whose time has come; else wake up then."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queue = self._queue
        while queue and not self._closed:
            future, _ = queue[0]
            if future.done():
                queue.popleft()
                continue
            if not self._room():
                return
            now = self.loop.time()
            if (ready := self._ready_at(now)) <= now:
                queue.popleft()
                self._in_flight += 1
                if self._drip is not None:
                    self._next_drip = max(self._next_drip, now) + self._drip
                future.set_result(Turn(self))
                continue
            # The server's limit holds the line: who cannot wait learns it now.
            for waiter, deadline in queue:
                if deadline < ready and not waiter.done():
                    waiter.set_exception(self._error(ready - now))
            if any(not waiter.done() for waiter, _ in queue):
                self._timer = self.loop.call_at(ready, self._pump)
            return

    def close(self) -> None:
        """End every waiting call, and any later one, with MisskeyClientClosedError."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            future, _ = self._queue.popleft()
            if not future.done():
                future.set_exception(
                    MisskeyClientClosedError(f"{self.endpoint}: the client was closed")
                )

    # --- what the server answered --------------------------------------------

    def sent(self, turn: Turn) -> None:
        """Note that a turn's call goes out now."""
        turn.index = self._count
        self._count += 1
        self._sent.append(self.loop.time())

    def answered(self, turn: Turn, error: BaseException | None) -> None:
        """Learn from a call's answer (or its failure), and give its turn back."""
        now = self.loop.time()
        self._answers.append(now)
        if turn.remaining is not None:
            self._size = max(self._size, turn.remaining + 1)
        if isinstance(error, MisskeyRateLimitError):
            self._refused(turn, error, now)
        elif error is None or isinstance(error, MisskeyApiError):
            # The limit let it through (another error or none).
            self._passed += 1
            self._alone = False
            if self._step >= 0 and turn.index >= self._probe_from:
                # The lone try passed: the window is no longer than it waited.
                self._limit = self._limit or self._passed - 1 or None
                self._window = PROBE_AFTER[self._step]
                self._step = -1
        self.leave(turn)

    def _refused(self, turn: Turn, err: MisskeyRateLimitError, now: float) -> None:
        err.endpoint = self.endpoint
        self._last_error = err
        if err.retry_after is None:
            reset = self._probe(turn, now)
        else:
            reset = now + err.retry_after
            self._step = -1
            self._learn(turn, err, reset)
        self._hold_until = max(self._hold_until, reset)
        _LOGGER.debug(
            "%s: rate limited for %.3f s; %s calls per %s s, or one per %s s",
            self.endpoint,
            self._hold_until - now,
            self._limit,
            self._window,
            self._drip,
        )

    def _learn(self, turn: Turn, err: MisskeyRateLimitError, reset: float) -> None:
        """Learn the window or the bucket from a 429 that named its reset."""
        if err.clear_after:
            # Sharkey's bucket is full: one place frees at each drip.
            if size := err.limit or self._size:
                self._drip = err.clear_after / size
                self._next_drip = max(self._next_drip, reset)
        elif limit := err.limit or self._limit or self._passed:
            # Misskey frees the window at the reset, a window after the oldest
            # of the last ``limit`` calls reached it (sent no earlier).
            oldest = turn.index - limit + 1 - (self._count - len(self._sent))
            if oldest >= 0 and (window := reset - self._sent[oldest]) > 0:
                self._limit, self._window = limit, window
        self._alone = self._drip is None and self._window is None

    def _probe(self, turn: Turn, now: float) -> float:
        """Return when a lone call tries again after a 429 that said nothing of when."""
        limit = self._limit or self._passed
        filled = self._answers[-limit] if 0 < limit <= len(self._answers) else now
        if self._step < 0:
            self._step, self._anchor, self._probe_from = 0, filled, self._count
            self._window = self._drip = None
        else:
            # A call of the full window, or the lone try, refused: it counts.
            self._anchor = max(self._anchor, filled)
            if turn.index >= self._probe_from:
                self._step = min(self._step + 1, len(PROBE_AFTER) - 1)
        while (
            self._step < len(PROBE_AFTER) - 1
            and self._anchor + PROBE_AFTER[self._step] <= now
        ):
            self._step += 1
        if self._anchor + PROBE_AFTER[self._step] <= now:
            self._anchor = now
        self._alone = True
        return self._anchor + PROBE_AFTER[self._step]

    def _forget_if_quiet(self, now: float) -> None:
        """Forget the limit once the lane's last call is a window (or bucket) old."""
        if now < self._hold_until or self._step >= 0:
            return
        span = self._window or (self._drip or 0) * self._size
        if not self._answers or self._answers[-1] + span <= now:
            self._forget()

    def _error(self, retry_after: float) -> MisskeyRateLimitError:
        """Return the 429 to raise for a call that cannot wait long enough."""
        last = self._last_error
        if last is None:
            err = MisskeyRateLimitError(429, "RATE_LIMIT_EXCEEDED", "rate limited")
        else:
            err = MisskeyRateLimitError(
                last.status, last.code, last.message, last.error_id, last.info
            )
            err.clear_after, err.limit = last.clear_after, last.limit
        err.endpoint = self.endpoint
        err.retry_after = max(retry_after, 0.0)
        return err


class RateLimitGate:
    """The lanes of one account, one per endpoint."""

    def __init__(self) -> None:
        """Start with no lanes; each is made at its endpoint's first call."""
        self._lanes: dict[str, Lane] = {}
        self._closed = False

    def lane(self, endpoint: str) -> Lane:
        """Return the endpoint's lane."""
        if (lane := self._lanes.get(endpoint)) is None:
            lane = self._lanes[endpoint] = Lane(endpoint, asyncio.get_running_loop())
            if self._closed:
                lane.close()
        return lane

    def close(self) -> None:
        """Close every lane: waiting and later calls raise MisskeyClientClosedError."""
        self._closed = True
        for lane in self._lanes.values():
            lane.close()

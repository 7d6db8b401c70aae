"""One gate per account: each endpoint's calls wait in line for the server's limit.

A call Misskey refuses (429) did nothing. Each endpoint of the account has a
lane: its calls take turns in order, at most ``MAX_IN_FLIGHT`` at once, so a
burst into a limit not known yet gets only a few 429s. A 429 holds the lane
until the moment the server names, and teaches it the limit, so the rest of the
burst goes as room frees, without more 429s. Misskey's sliding window (refused
calls count too): ``limit`` calls (info.total, else those that passed since the
lane was idle) per ``window`` s (the reset less when the oldest call in the
window was sent); a call goes once the limit-th last answer is a window old.
Sharkey's bucket (one more than the most X-RateLimit-Remaining seen) empties in
X-RateLimit-Clear: one call a drip from the reset on. A bare 429 (Misskey 12):
one call tries alone ``PROBE_AFTER`` s after the window filled, longer after
each refusal; the first to pass shows the window. A call the limit would hold
past its deadline gets the 429 at once. An idle lane forgets once its last call
is a window old; ``close`` ends every waiting call.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final, Self

from .errors import MisskeyApiError, MisskeyClientClosedError, MisskeyRateLimitError

# Before a limit is known, the calls of a burst that can run past it at once.
MAX_IN_FLIGHT: Final = 4
# After a bare 429, a lone call tries again this many seconds after the window
# filled (Misskey's windows are whole seconds; a refused try counts in it).
PROBE_AFTER: Final = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 45, 60, 90, 120, 180)


class Turn:
    """One call's right to go: ``with turn:`` around sending it and reading the answer."""

    __slots__ = ("done", "index", "lane", "remaining")

    def __init__(self, lane: Lane) -> None:
        """Be given by ``lane``: not sent (``index`` -1), not over."""
        self.lane, self.index, self.done = lane, -1, False
        self.remaining: int | None = None  # Sharkey's, set by the caller

    def __enter__(self) -> Self:
        """Note that the call goes out."""
        self.lane.sent(self)
        return self

    def __exit__(self, _: object, error: BaseException | None, __: object) -> None:
        """Tell the lane how the call went, and give the turn back."""
        self.lane.answered(self, error)


class Lane:
    """The calls of one account to one endpoint."""

    def __init__(self, endpoint: str, closed: bool) -> None:
        """Start with nothing in line and no limit known (in the running loop)."""
        self.endpoint, self.loop = endpoint, asyncio.get_running_loop()
        self._queue: deque[tuple[asyncio.Future[Turn], float]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = closed
        self._count = self._in_flight = 0  # calls sent in all, and in flight
        self._last_error = MisskeyRateLimitError(429, "RATE_LIMIT_EXCEEDED")
        # When the recent calls were sent (the last ones of ``_count``) and answered.
        self._sent: deque[float] = deque(maxlen=10_000)
        self._answers: deque[float] = deque(maxlen=10_000)
        self._forget()

    def _forget(self) -> None:
        """Know nothing of the limit: the next burst learns it again."""
        self._sent.clear()
        self._answers.clear()
        self._passed = 0  # calls the limit let through since the lane was idle
        self._hold_until = 0.0
        # Misskey's window; Sharkey's bucket (its size, one drip, the next).
        self._limit: int | None = None
        self._window: float | None = None
        self._drip: float | None = None
        self._size, self._next_drip = 0, 0.0
        self._alone = False  # after a 429: one call at a time until one passes
        # A bare 429: the wait (of PROBE_AFTER) from when the window filled;
        # calls from ``_probe_from`` on are lone tries.
        self._step, self._anchor, self._probe_from = -1, 0.0, 0

    async def enter(self, deadline: float) -> Turn:
        """Wait in line for a turn; MisskeyRateLimitError once it would come after ``deadline``."""
        now, last = self.loop.time(), self._answers[-1] if self._answers else 0.0
        span = self._window or (self._drip or 0) * self._size
        if not (self._in_flight or self._queue or self._closed or self._step >= 0):
            if max(self._hold_until, last + span) <= now:
                # Idle, and its last call a window (or bucket) old: nothing
                # holds it (most calls go here, not through the line).
                self._forget()
                return self._grant(now)
        join = self._queue.append
        while not self._closed:
            future: asyncio.Future[Turn] = self.loop.create_future()
            join((future, deadline))
            self._pump()
            try:
                turn = await future
            except asyncio.CancelledError:
                if not future.cancelled() and future.exception() is None:
                    self.leave(future.result())
                raise
            if not self._closed and self._hold_until <= self.loop.time():
                return turn
            # A 429 came back after the turn was given: wait again, first in line.
            self.leave(turn)
            join = self._queue.appendleft
        raise MisskeyClientClosedError(self.endpoint)

    def leave(self, turn: Turn) -> None:
        """Give a turn back (nothing if its call was answered already)."""
        if not turn.done:
            turn.done = True
            self._in_flight -= 1
            self._pump()

    def ready_at(self, now: float | None = None) -> float:
        """Return the earliest moment (loop time) the server's limit lets a call go."""
        ready = max(self.loop.time() if now is None else now, self._hold_until)
        if self._drip is not None:
            return max(ready, self._next_drip)
        # With the calls in flight, the next is the limit-th of the window.
        back = (self._limit or 0) - self._in_flight
        if self._window is not None and 0 < back <= len(self._answers):
            ready = max(ready, self._answers[-back] + self._window)
        return ready

    def _pump(self) -> None:
        """Give turns to the calls in line whose time has come; else wake up then."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        most = 1 if self._alone else MAX_IN_FLIGHT
        if self._window is not None and self._limit:
            most = min(most, self._limit)
        queue = self._queue
        while queue and not self._closed and self._in_flight < most:
            if (future := queue[0][0]).done():
                queue.popleft()
            elif (ready := self.ready_at(now := self.loop.time())) <= now:
                queue.popleft()
                future.set_result(self._grant(now))
            else:
                # The server's limit holds the line: who cannot wait learns it now.
                for waiter, deadline in queue:
                    if deadline < ready and not waiter.done():
                        waiter.set_exception(self._last_error.again(ready - now))
                if any(not waiter.done() for waiter, _ in queue):
                    self._timer = self.loop.call_at(ready, self._pump)
                return

    def _grant(self, now: float) -> Turn:
        self._in_flight += 1
        if self._drip is not None:
            self._next_drip = max(self._next_drip, now) + self._drip
        return Turn(self)

    def close(self) -> None:
        """End every waiting call, and any later one, with MisskeyClientClosedError."""
        self._closed = True
        self._pump()  # (only cancels the timer now)
        for future, _ in self._queue:
            if not future.done():
                future.set_exception(MisskeyClientClosedError(self.endpoint))
        self._queue.clear()

    def sent(self, turn: Turn) -> None:
        """Note that a turn's call goes out now."""
        turn.index = self._count
        self._count += 1
        self._sent.append(self.loop.time())

    def answered(self, turn: Turn, error: BaseException | None) -> None:
        """Learn from a call's answer (or failure), and give its turn back."""
        self._answers.append(now := self.loop.time())
        if turn.remaining is not None:
            self._size = max(self._size, turn.remaining + 1)
        if isinstance(error, MisskeyRateLimitError):
            self._refused(turn, error, now)
        elif error is None or isinstance(error, MisskeyApiError):
            # The limit let it through.
            self._passed += 1
            self._alone = False
            if self._step >= 0 and turn.index >= self._probe_from:
                # The lone try (the last call sent) passed: the window is no
                # longer than from when it filled until then.
                self._limit = self._limit or self._passed - 1 or None
                self._window, self._step = self._sent[-1] - self._anchor, -1
        self.leave(turn)

    def _refused(self, turn: Turn, err: MisskeyRateLimitError, now: float) -> None:
        """Hold the lane until the server's moment; learn its window or bucket."""
        err.endpoint, self._last_error = self.endpoint, err
        if err.retry_after is None:
            reset = self._probe(turn, now)
        else:
            reset, self._step = now + err.retry_after, -1
            limit = err.limit or self._limit or self._passed
            oldest = turn.index - limit + 1 - (self._count - len(self._sent))
            if err.clear_after:
                # Sharkey's bucket is full: one place frees at each drip.
                if size := err.limit or self._size:
                    self._drip = err.clear_after / size
                    self._next_drip = max(self._next_drip, reset)
            # Misskey frees the window at the reset, a window after the oldest
            # of the last ``limit`` calls reached it (sent no earlier).
            elif limit and oldest >= 0 and (window := reset - self._sent[oldest]) > 0:
                self._limit, self._window = limit, window
        self._alone = self._drip is None and self._window is None
        self._hold_until = max(self._hold_until, reset)

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
        while self._anchor + PROBE_AFTER[self._step] <= now:
            if self._step == len(PROBE_AFTER) - 1:
                self._anchor = now
            else:
                self._step += 1
        return self._anchor + PROBE_AFTER[self._step]


class RateLimitGate(dict[str, Lane]):
    """The lanes of one account, one per endpoint, each made at its first call."""

    closed = False

    def __missing__(self, endpoint: str) -> Lane:
        """Make the endpoint's lane (closed if the gate is)."""
        lane = self[endpoint] = Lane(endpoint, self.closed)
        return lane

    def close(self) -> None:
        """Close every lane: waiting and later calls raise MisskeyClientClosedError."""
        self.closed = True
        for lane in self.values():
            lane.close()

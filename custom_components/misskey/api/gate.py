"""One gate per account that holds its calls after a 429 and lets them out paced.

Misskey limits each endpoint for each account: so many calls per window
(Misskey: a sliding window that counts refused calls too) or a bucket that
drains at a steady rate (Sharkey). Without a gate, every call a burst got
refused would come back at the same instant, be refused again, and push the
window further. Here, for each endpoint of the account (a lane):

* at most ``MAX_IN_FLIGHT`` calls are in flight at once, so that a burst sends
  only a few calls past a limit it does not know yet;
* a 429 holds every call until the moment the server named; then one call
  goes alone (a little late, at random), and the others follow once it passed;
* the first 429 of a burst shows the limit, and the next calls go as the
  server frees room, so that the burst needs no more 429s. Misskey's window:
  how many calls passed since the burst began (or its ``info.total``) and
  when it frees; each next call goes a window after one that passed.
  Sharkey's bucket: its size (from X-RateLimit-Remaining) and the time it
  takes to drain (X-RateLimit-Clear); one call goes at each drip.

A 429 that says nothing of when (Misskey 12): a lone call tries again a whole
number of seconds after the window filled, at growing intervals.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
import logging
import random
from types import TracebackType
from typing import Final, Self

from .errors import MisskeyRateLimitError

_LOGGER = logging.getLogger(__name__)

# Before a burst has met the limit, this bounds how many of its calls the
# server refuses at once (and counts against the account, as Misskey does).
MAX_IN_FLIGHT: Final = 4
# Misskey 12 says neither when nor how long: a lone call tries again this many
# seconds after the window filled. Misskey's windows are whole seconds; a try
# it refuses takes a place in the window for a whole window, so the first
# comes after 2 s, not 1.
PROBE_AFTER: Final = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 45, 60, 90, 120, 180)
# The call that goes first after a hold waits up to this share of the window
# (or hold) more, at random, so that two clients of one account do not go at
# the same instant.
JITTER: Final = 0.005
MAX_JITTER: Final = 0.1
# Calls remembered while the window's length is unknown.
MAX_REMEMBERED: Final = 10_000


class Turn:
    """The right to send one call to an endpoint, and what became of it."""

    # Every call makes one: the rarely set fields default on the class.
    # Its place among the calls of its epoch, and when it was answered.
    index = 0
    answered_at: float | None = None
    # Calls the server said it would still take (Sharkey's
    # X-RateLimit-Remaining on every answer).
    remaining: int | None = None
    # Whether the request itself took the turn (and gives it back), and
    # whether a request has used it.
    own = False
    used = False

    def __init__(self, lane: Lane, epoch: int) -> None:
        """Belong to the lane's current epoch (the time since its last 429)."""
        self.lane = lane
        self.epoch = epoch

    @property
    def in_burst(self) -> bool:
        """Whether other calls of the lane are in flight or waiting, or it was refused."""
        lane = self.lane
        return (
            lane._in_flight > 1  # noqa: SLF001
            or bool(lane._waiters)  # noqa: SLF001
            or lane._epoch > 0  # noqa: SLF001
        )

    def __enter__(self) -> Self:
        """Note that the call goes out now."""
        self.used = True
        lane = self.lane
        if self.epoch != lane._epoch:  # noqa: SLF001
            lane.sent_late(self)
            return self
        # (Every call passes here: kept short.)
        run = lane._run  # noqa: SLF001
        if not run.sent:
            run.start = lane.loop.time()
        self.index = run.sent
        run.sent += 1
        run.turns.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Tell the lane how the call went; give the turn back if it was the request's."""
        if exc is None:
            lane = self.lane
            if (
                self.epoch == lane._epoch  # noqa: SLF001
                and lane._basis is None  # noqa: SLF001
                and self.remaining is None
            ):
                # Never refused (every call passes here: kept short). A call
                # alone ends its run: nothing to learn from it.
                if lane._in_flight > 1 or lane._waiters:  # noqa: SLF001
                    now = self.answered_at = lane.loop.time()
                    lane._answers.append(now)  # noqa: SLF001
                    run = lane._run  # noqa: SLF001
                    run.accepted += 1
                    if run.first_accepted_at is None:
                        run.first_accepted_at = now
            else:
                lane.accepted(self)
        elif isinstance(exc, MisskeyRateLimitError):
            self.lane.refused(self, exc)
        else:
            # A timeout or a broken connection: the server may have counted it.
            self.lane.answered(self)
        if self.own:
            lane = self.lane
            lane._in_flight -= 1  # noqa: SLF001
            if lane._waiters or lane._timer is not None:  # noqa: SLF001
                lane._wake()  # noqa: SLF001


@dataclass(slots=True)
class _Waiter:
    future: asyncio.Future[Turn]
    deadline: float


class _Run:
    """The calls of one epoch, in the order they went out."""

    __slots__ = (
        "accepted",
        "epoch",
        "first_accepted_at",
        "most_remaining",
        "sent",
        "start",
        "turns",
    )

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.turns: deque[Turn] = deque(maxlen=MAX_REMEMBERED)
        self.sent = 0
        self.accepted = 0
        self.first_accepted_at: float | None = None
        self.most_remaining: int | None = None
        # When its first call went out.
        self.start: float | None = None

    def answered_at(self, index: int, default: float) -> float:
        """Return when the call sent ``index``-th was answered (``default``: not known)."""
        # Older than what is remembered: answered before the oldest.
        position = max(index - (self.sent - len(self.turns)), 0)
        if position >= len(self.turns):
            return default
        answered = self.turns[position].answered_at
        return default if answered is None else answered


@dataclass(slots=True)
class _Basis:
    """The first 429 of a burst, and the calls before it: what shows the window.

    Calls of the burst still in flight then keep adding to it as they come back.
    """

    run: _Run
    refused_at: float
    # The window's size if the server said it (Misskey's info.total).
    limit: int | None
    # When the server said a call may go again, and (Sharkey) its bucket is
    # empty; None if it did not say.
    reset_at: float | None
    clear_at: float | None
    # Without a reset (Misskey 12): when the window filled, as far as seen, and
    # which of PROBE_AFTER the lone call waits.
    anchor: float = 0.0
    step: int = 0

    @property
    def seen_limit(self) -> int | None:
        """Return the window's size: said, or the calls that passed."""
        return self.limit or self.run.accepted or None


class Lane:
    """The calls of one account to one endpoint."""

    def __init__(self, endpoint: str, loop: asyncio.AbstractEventLoop) -> None:
        """Start with no limit known."""
        self.endpoint = endpoint
        self.loop = loop
        self._waiters: deque[_Waiter] = deque()
        self._in_flight = 0
        self._hold_until = 0.0
        # After a hold, one call goes alone until it passed.
        self._probing = False
        # Incremented by the first 429 of each burst; calls sent before it
        # bring no news when they are refused too.
        self._epoch = 0
        self._run = _Run(0)
        self._basis: _Basis | None = None
        # The last 429 said nothing of when, and no call has passed since.
        self._unknown = False
        # The server's window as seen: ``limit`` calls per ``window`` seconds.
        self._limit: int | None = None
        self._window: float | None = None
        # Or (Sharkey) a bucket that lets one call in every ``interval`` s,
        # the next at ``next_slot``, and is empty ``drain`` s after the last.
        self._interval: float | None = None
        self._next_slot = 0.0
        self._drain = 0.0
        # When each recent call was answered, oldest first.
        self._answers: deque[float] = deque(maxlen=MAX_REMEMBERED)
        self._last_error: MisskeyRateLimitError | None = None
        self._timer: asyncio.TimerHandle | None = None

    # --- taking and giving back turns --------------------------------------

    def try_enter(self) -> Turn | None:
        """Return a turn if a call may go at once, without waiting."""
        if self._waiters:
            return None
        if self._epoch == 0:
            # Never refused: only the calls in flight count. (Every call
            # passes here: kept short.)
            if self._in_flight == 0:
                if (run := self._run).sent:
                    # The lane was quiet: a new run.
                    run.turns.clear()
                    run.sent = run.accepted = 0
                    run.first_accepted_at = run.most_remaining = run.start = None
                    if self._answers:
                        self._answers.clear()
            elif self._in_flight >= MAX_IN_FLIGHT:
                return None
            self._in_flight += 1
            return Turn(self, 0)
        now = self.loop.time()
        if self._in_flight == 0:
            self._forget_if_quiet(now)
        if not self._room() or self._ready_at(now) > now:
            return None
        return self._grant()

    async def enter(self, deadline: float) -> Turn:
        """Wait for a turn; raise MisskeyRateLimitError if it comes after ``deadline``.

        Waiting for calls in flight to finish does not count against the
        deadline; waiting for the server's limit does.
        """
        if (turn := self.try_enter()) is not None:
            return turn
        again = False
        while True:
            now = self.loop.time()
            if (ready := self._ready_at(now)) > deadline or (
                deadline <= now and self._limited(now)
            ):
                raise self._error(ready - now)
            waiter = _Waiter(self.loop.create_future(), deadline)
            if again:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            self._wake()
            turn = await self._wait(waiter)
            if turn.epoch == self._epoch:
                return turn
            # Given before a 429 that came back while this caller woke up:
            # it waits again, first in line.
            self._in_flight -= 1
            again = True

    async def _wait(self, waiter: _Waiter) -> Turn:
        now = self.loop.time()
        timeout = waiter.deadline - now if waiter.deadline > now else None
        while True:
            try:
                done, _ = await asyncio.wait((waiter.future,), timeout=timeout)
            except asyncio.CancelledError:
                self._abandon(waiter)
                raise
            if done:
                return waiter.future.result()
            now = self.loop.time()
            if self._limited(now):
                self._abandon(waiter)
                raise self._error(self._ready_at(now) - now)
            # Only calls in flight are in the way; they end on their own.
            timeout = None

    def ready_at(self) -> float:
        """Return the earliest moment (loop time) the server's limit lets a call go."""
        return self._ready_at(self.loop.time())

    def leave(self, turn: Turn) -> None:
        """Give a turn back."""
        self._in_flight -= 1
        if self._waiters or self._timer is not None:
            self._wake()

    # --- what the server answered ------------------------------------------

    def sent_late(self, turn: Turn) -> None:
        """Note a call going out that was given its turn before the last 429."""
        if (basis := self._basis) is not None and basis.run.epoch == turn.epoch:
            run = basis.run
            turn.index = run.sent
            run.sent += 1
            run.turns.append(turn)

    def accepted(self, turn: Turn) -> None:
        """Note a call the server carried out."""
        now = turn.answered_at = self.loop.time()
        self._answers.append(now)
        basis = self._basis
        if turn.epoch == self._epoch:
            run = self._run
        elif basis is not None and basis.run.epoch == turn.epoch:
            run = basis.run
        else:
            return
        run.accepted += 1
        if turn.remaining is not None and (
            run.most_remaining is None or turn.remaining > run.most_remaining
        ):
            run.most_remaining = turn.remaining
        if run.first_accepted_at is None:
            run.first_accepted_at = now
        if run is not self._run:
            # A call of the burst that was on its way when the 429 came.
            if not self._unknown:
                self._relearn()
            return
        self._probing = False
        if self._unknown and basis is not None:
            # The first call to pass after a 429 that said nothing: the
            # window is (in whole seconds) at most as long as it waited.
            self._unknown = False
            self._learn(basis.seen_limit, PROBE_AFTER[basis.step])

    def answered(self, turn: Turn) -> None:
        """Note a call whose outcome is unknown (it may count against the limit)."""
        turn.answered_at = self.loop.time()
        self._answers.append(turn.answered_at)

    def refused(self, turn: Turn, err: MisskeyRateLimitError) -> None:
        """Note a 429: hold the lane until the server's moment, and learn its window."""
        now = turn.answered_at = self.loop.time()
        self._answers.append(now)
        err.endpoint = self.endpoint
        self._last_error = err
        reset = None if err.retry_after is None else now + err.retry_after
        basis = self._basis
        if turn.epoch != self._epoch:
            # Sent before the burst's first 429 came back: the same news.
            if reset is not None:
                self._hold(reset)
            elif self._unknown and basis is not None and basis.run.epoch == turn.epoch:
                basis.anchor = max(basis.anchor, self._anchor(basis, turn, now))
                self._hold(basis.anchor + PROBE_AFTER[basis.step])
            return
        run = self._run
        self._epoch += 1
        self._run = _Run(self._epoch)
        self._probing = True
        if reset is not None:
            clear = None if err.clear_after is None else now + err.clear_after
            self._basis = _Basis(run, now, err.limit, reset, clear)
            self._unknown = False
            self._relearn()
            self._hold(reset)
        else:
            if not self._unknown or basis is None:
                basis = self._basis = _Basis(run, now, err.limit, None, None)
                basis.anchor = self._anchor(basis, turn, now)
                self._unknown = True
            else:
                # The lone call after the hold was refused too.
                basis.step += 1
            while (
                basis.step < len(PROBE_AFTER) - 1
                and basis.anchor + PROBE_AFTER[basis.step] <= now
            ):
                basis.step += 1
            if basis.anchor + PROBE_AFTER[basis.step] <= now:
                # Past the longest wait: try again that long from now.
                basis.anchor = now
            self._hold(basis.anchor + PROBE_AFTER[basis.step])
        _LOGGER.debug(
            "%s: rate limited for %.3f s; window %s calls per %s s",
            self.endpoint,
            self._hold_until - now,
            self._limit,
            self._window,
        )

    # --- the schedule ----------------------------------------------------------

    def _grant(self) -> Turn:
        self._in_flight += 1
        if self._interval is not None:
            self._next_slot = max(self._next_slot, self.loop.time()) + self._interval
        return Turn(self, self._epoch)

    def _room(self) -> bool:
        """Whether the calls in flight leave room for one more."""
        if self._in_flight >= (1 if self._probing else MAX_IN_FLIGHT):
            return False
        return self._limit is None or self._in_flight < self._limit

    def _ready_at(self, now: float) -> float:
        """Return the earliest moment the limit lets the next call go."""
        ready = max(now, self._hold_until)
        if self._interval is not None:
            return max(ready, self._next_slot)
        if self._limit is None or self._window is None:
            return ready
        answers = self._answers
        while answers and answers[0] <= now - self._window:
            answers.popleft()
        excess = self._in_flight + len(answers) - self._limit
        if excess < 0 or excess >= len(answers):
            # Free, or full of calls in flight (``_room`` waits for those).
            return ready
        # The call may go once ``excess + 1`` of the answered calls are a
        # window old.
        return max(ready, answers[excess] + self._window)

    def _limited(self, now: float) -> bool:
        """Whether the server's limit, not calls in flight, holds the lane."""
        return (
            self._hold_until > now
            or self._probing
            or self._unknown
            or self._ready_at(now) > now
        )

    def _anchor(self, basis: _Basis, turn: Turn, now: float) -> float:
        """Return when the call that fills the window with ``turn`` was answered.

        Misskey keeps the last ``limit`` calls; the oldest of them frees the
        window a window after it reached the server, which was no later than
        its answer.
        """
        if (limit := basis.seen_limit) is None:
            return now
        return basis.run.answered_at(turn.index + 1 - limit, now)

    def _relearn(self) -> None:
        """Learn the window from the basis (again, as more of its calls came back)."""
        basis = self._basis
        if basis is None or basis.reset_at is None or not basis.run.accepted:
            return
        run = basis.run
        limit = basis.limit or run.accepted
        start = run.start if run.start is not None else basis.refused_at
        if basis.clear_at is not None:
            # Sharkey's bucket: as full as it holds (one more than it said it
            # would still take after a call; exactly so after the first call
            # into an empty bucket), it lets one in at each drip: from the
            # reset it named, every ``clear / size`` seconds.
            drain = basis.clear_at - basis.refused_at
            if basis.limit is None and run.most_remaining is not None:
                limit = run.most_remaining + 1
            if drain > 0:
                self._limit = self._window = None
                self._interval, self._drain = drain / limit, drain
                self._next_slot = max(self._next_slot, basis.reset_at)
        else:
            # Misskey's window frees at the reset it names, a window after a
            # call sent no earlier than the burst's first.
            self._learn(limit, basis.reset_at - start)

    def _learn(self, limit: int | None, window: float) -> None:
        if limit is None or window <= 0:
            return
        self._limit, self._window = limit, window

    def _hold(self, until: float) -> None:
        if until <= self._hold_until:
            return
        self._hold_until = until
        now = self.loop.time()
        # Whoever cannot wait that long learns it now, not at its deadline.
        for waiter in self._waiters:
            if not waiter.future.done() and until > waiter.deadline:
                waiter.future.set_exception(self._error(until - now))
        self._wake()

    def _wake(self) -> None:
        """Give turns to waiters whose time has come; else wake when it comes."""
        now = self.loop.time()
        waiters = self._waiters
        while waiters and waiters[0].future.done():
            waiters.popleft()
        if not waiters and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while waiters:
            if waiters[0].future.done():
                waiters.popleft()
                continue
            if not self._room():
                return
            ready = self._ready_at(now)
            if ready > now:
                self._wake_at(ready, now)
                return
            waiters.popleft().future.set_result(self._grant())

    def _wake_at(self, when: float, now: float) -> None:
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        if self._probing:
            span = self._window if self._window is not None else when - now
            when += random.uniform(0, min(MAX_JITTER, JITTER * span))
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()

    def _abandon(self, waiter: _Waiter) -> None:
        """Take a waiter out that stopped waiting; give back a turn it was given."""
        future = waiter.future
        if future.done() and not future.cancelled():
            if future.exception() is None:
                self.leave(future.result())
            return
        future.cancel()
        self._wake()

    def _forget_if_quiet(self, now: float) -> None:
        """Forget a window once nothing waits and its calls are a window old.

        The next burst learns it again; meanwhile the account may have been
        used elsewhere, or the limit changed.
        """
        if self._hold_until > now or self._unknown:
            return
        if self._interval is not None and now < self._next_slot + self._drain:
            return
        if self._window is not None and self._answers:
            if self._answers[-1] > now - self._window:
                return
        self._limit = self._window = self._interval = None
        self._probing = False
        self._basis = None
        self._new_run()

    def _new_run(self) -> None:
        """Start the run afresh: the calls before are no longer in any window."""
        if self._answers:
            self._answers.clear()
        if (run := self._run).sent:
            run.turns.clear()
            run.sent = run.accepted = 0
            run.first_accepted_at = run.most_remaining = run.start = None

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

    def lane(self, endpoint: str) -> Lane:
        """Return the endpoint's lane."""
        if (lane := self._lanes.get(endpoint)) is None:
            lane = self._lanes[endpoint] = Lane(endpoint, asyncio.get_running_loop())
        return lane

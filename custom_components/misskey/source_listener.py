"""Follows the account's sources on its connection: channels, catch-up, cursors, events.

The sources (antennas, lists, channels, hashtags, accounts: see sources.py)
share the connection that the listener (listener.py) owns and keeps alive.
What is theirs is here: each source's channel, joined and left as subentries
come and go, without reconnecting; followed accounts heard on the home
timeline, others polled; after every (re)connection, each source caught up
since the last note it delivered (its cursor, kept in the listener's Store);
a source Misskey no longer has, offered for removal; each new note fired once
to its event entity. A source's faults are its own: they never end the
connection, and each is logged once until its source works again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
import functools
import logging
from typing import Any

from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
import homeassistant.util.dt as dt_util

from .api import (
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyClient,
    MisskeyClientClosedError,
    MisskeyError,
    instance_host,
)
from .api.stream import MisskeyStream, StreamEvent
from .const import (
    CATCH_UP_MAX_PAGES,
    CATCH_UP_PAGE,
    DOMAIN,
    RATE_LIMIT_MAX_WAIT,
    SOURCE_POLL_INTERVAL,
)
from .errors import OutageLog, describe_error
from .notification import RecentIds, created_at
from .sources import (
    DELIVERY_HOME_TIMELINE,
    DELIVERY_POLLING,
    DELIVERY_STREAM,
    GONE_CODES,
    HOME_TIMELINE,
    Source,
    async_clear_source_gone,
    async_raise_source_gone,
    entry_sources,
    note_attributes,
)

_LOGGER = logging.getLogger(__name__)

# What a source's failing call means for its notes (name, account, error).
_CATCH_UP_FAILED = (
    "Could not catch up on %s of %s (%s); its live notes still come, "
    "the missed ones at the next try"
)
_DELIVERY_UNKNOWN = (
    "Could not tell whether %s is followed by %s (%s); its notes arrive as "
    "before (polled when never told), and the next connection asks again"
)


class _SourceState:
    """How one source fares on the connection."""

    __slots__ = (
        "channel_id",
        "delivered",
        "delivery",
        "gone",
        "outage",
        "pending",
        "source",
    )

    def __init__(self, source: Source) -> None:
        self.source = source
        # The ID the stream joined its channel with; None for an account.
        self.channel_id: str | None = None
        self.delivery = DELIVERY_STREAM if source.channel else DELIVERY_POLLING
        self.gone = False
        # Its catch-up failing: logged once, until it works again.
        self.outage = OutageLog(_LOGGER)
        # While it catches up: its live notes, delivered after.
        self.pending: list[Mapping[str, Any]] | None = None
        self.delivered = RecentIds()


class SourceFollower:
    """Hears the account's sources on the listener's connection and fires their notes.

    The listener calls it at its moments: ``load`` and ``cursors`` with its
    Store; ``async_sync`` once loaded; ``hold_live_notes`` then ``async_run``
    beside each connection (``async_catch_up`` while it polls instead);
    ``handle`` with each event of a channel other than ``main``. What it
    needs of the listener is passed in, and nothing more: a source added
    while ``connected`` catches up at once, the account's own notes never
    fire, ``save`` writes the Store, and ``availability_changed`` makes a
    gone source's entity unavailable.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        *,
        client: MisskeyClient,
        stream: MisskeyStream,
        window: timedelta,
        connected: Callable[[], bool],
        account_id: Callable[[], str],
        save: Callable[[], None],
        availability_changed: Callable[[], None],
    ) -> None:
        """Follow the sources of ``entry`` on ``stream``."""
        self.hass = hass
        self._entry = entry
        self._client = client
        self._instance = instance_host(client.url)
        self._stream = stream
        self._window = window
        self._connected = connected
        self._account_id = account_id
        self._save = save
        self._availability_changed = availability_changed
        # The last note each source delivered, by subentry ID: the Store's
        # ``sources`` section. A source without a key was never started.
        self.cursors: dict[str, str | None] = {}
        # Whether the cursors were read from the Store: until then, changes
        # of the subentries wait for the first sync.
        self._loaded = False
        self._sources: dict[str, _SourceState] = {}
        self._source_listeners: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self._sources_added_listeners: list[Callable[[list[Source]], None]] = []
        self._home_channel: str | None = None
        self._lock = asyncio.Lock()
        self.delivered_notes = 0
        self.skipped_old = 0

    # --- life cycle ---------------------------------------------------------

    @callback
    def async_start(self) -> None:
        """Follow the subentries: they come and go without a reload."""
        self._entry.async_on_unload(
            async_dispatcher_connect(
                self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, self._async_entry_changed
            )
        )

    def load(self, stored: Mapping[str, str | None] | None) -> None:
        """Take the cursors the Store kept (its ``sources`` section)."""
        self.cursors = dict(stored or {})
        self._loaded = True

    # --- who listens ----------------------------------------------------------

    @callback
    def async_add_source_listener(
        self, subentry_id: str, listener: Callable[[dict[str, Any]], None]
    ) -> CALLBACK_TYPE:
        """Call ``listener`` with the attributes of each note of a source; return the undo."""
        listeners = self._source_listeners.setdefault(subentry_id, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    @callback
    def async_add_sources_added_listener(
        self, listener: Callable[[list[Source]], None]
    ) -> CALLBACK_TYPE:
        """Call ``listener`` with the sources added while the account is loaded."""
        self._sources_added_listeners.append(listener)
        return lambda: self._sources_added_listeners.remove(listener)

    def source_gone(self, subentry_id: str) -> bool:
        """Return whether Misskey no longer has a source."""
        state = self._sources.get(subentry_id)
        return state is not None and state.gone

    def diagnostics(self) -> dict[str, Any]:
        """Return how each source fares, for diagnostics."""
        return {
            subentry_id: {
                "kind": state.source.kind,
                "delivery": state.delivery,
                "joined": state.channel_id in self._stream.joined
                if state.channel_id is not None
                else self._home_channel in self._stream.joined
                if state.delivery == DELIVERY_HOME_TIMELINE
                else None,
                "gone": state.gone,
                "last_note_id": self.cursors.get(subentry_id),
            }
            for subentry_id, state in self._sources.items()
        }

    # --- following the subentries -----------------------------------------------

    @callback
    def _async_entry_changed(
        self, change: ConfigEntryChange, entry: ConfigEntry
    ) -> None:
        if (
            change is ConfigEntryChange.UPDATED
            and entry.entry_id == self._entry.entry_id
            and self._loaded
            and set(entry_sources(entry)) != set(self._sources)
        ):
            self._entry.async_create_background_task(
                self.hass,
                self._async_sources_changed(),
                f"{DOMAIN} sources {self._entry.entry_id}",
            )

    async def _async_sources_changed(self) -> None:
        """Follow the subentries; what fails here is said, and the next connection redoes it."""
        try:
            await self.async_sync(catch_up=True)
        except MisskeyError as err:
            _LOGGER.warning(
                "Could not start the new sources of %s (%s); they start at the "
                "next connection",
                self._entry.title,
                describe_error(err),
            )
        except Exception:
            _LOGGER.exception(
                "Unexpected error following the sources of %s", self._entry.title
            )

    async def async_sync(self, *, catch_up: bool) -> None:
        """Join the channels of new sources and leave those of removed ones.

        On the open connection: the other sources and ``main`` hear on. A new
        source marks its place (its earlier notes never fire).
        """
        async with self._lock:
            wanted = entry_sources(self._entry)
            stored = set(self.cursors)
            for subentry_id in set(self._sources) - set(wanted):
                state = self._sources.pop(subentry_id)
                if state.channel_id is not None:
                    await self._stream.leave(state.channel_id)
                self.cursors.pop(subentry_id, None)
                self._source_listeners.pop(subentry_id, None)
                async_clear_source_gone(self.hass, self._entry, subentry_id)
            # Sources removed while the account was not loaded.
            for subentry_id in set(self.cursors) - set(wanted):
                del self.cursors[subentry_id]
            added: list[_SourceState] = []
            for subentry_id, source in wanted.items():
                if subentry_id in self._sources:
                    continue
                state = _SourceState(source)
                if (channel := source.channel) is not None:
                    state.channel_id = await self._stream.join(*channel)
                self._sources[subentry_id] = state
                added.append(state)
            # Only forgetting a removed source's place changes what is stored.
            if set(self.cursors) != stored:
                self._save()
            if added:
                sources = [state.source for state in added]
                for listener in list(self._sources_added_listeners):
                    listener(sources)
            if catch_up and added and self._connected():
                if any(state.source.channel is None for state in added):
                    await self._async_choose_account_delivery()
                for state in added:
                    await self._async_catch_up_source(state, None)

    async def _async_choose_account_delivery(self) -> None:
        """Hear followed accounts on the home timeline, others by polling their notes."""
        states = [
            state
            for state in self._sources.values()
            if state.source.channel is None and not state.gone
        ]
        for state in states:
            try:
                user = await self._client.retry_rate_limited(
                    functools.partial(self._client.user_by_id, state.source.target),
                    RATE_LIMIT_MAX_WAIT,
                )
            except MisskeyApiError as err:
                if err.code in GONE_CODES:
                    self._source_gone(state)
                    continue
                self._source_problem(state, err, _DELIVERY_UNKNOWN)
                continue
            except MisskeyError as err:
                self._source_problem(state, err, _DELIVERY_UNKNOWN)
                continue
            following = user.raw.get("isFollowing") is True
            state.delivery = DELIVERY_HOME_TIMELINE if following else DELIVERY_POLLING
        home = any(
            state.delivery == DELIVERY_HOME_TIMELINE and not state.gone
            for state in self._sources.values()
        )
        if home and self._home_channel is None:
            self._home_channel = await self._stream.join(HOME_TIMELINE, {})
        elif not home and self._home_channel is not None:
            channel_id, self._home_channel = self._home_channel, None
            await self._stream.leave(channel_id)

    # --- catching up ------------------------------------------------------------

    def hold_live_notes(self) -> None:
        """Keep each source's live notes until it has caught up, so that they fire in order.

        Called as the connection goes live, before its first event is read:
        the sources catch up beside it (``async_run``).
        """
        for state in self._sources.values():
            if state.pending is None:
                state.pending = []

    async def async_run(self, live_since: datetime) -> None:
        """Catch the sources up, then poll the accounts not followed, while connected.

        It runs beside the connection, which it must not end: each source's
        problems are its own (a refused credential shows on the connection
        and the account's reading too).
        """
        try:
            await self._async_choose_account_delivery()
        except Exception:
            _LOGGER.exception(
                "Unexpected error choosing how accounts of %s are heard",
                self._entry.title,
            )
        await self.async_catch_up(live_since)
        while True:
            await asyncio.sleep(SOURCE_POLL_INTERVAL.total_seconds())
            for state in list(self._sources.values()):
                if state.delivery == DELIVERY_POLLING and not state.gone:
                    # As good as live: nothing made since the last poll is old.
                    await self._async_catch_up_source(state, None)

    async def async_catch_up(self, live_since: datetime | None) -> None:
        """Catch up every source still on Misskey; notes before ``live_since`` were missed."""
        for state in list(self._sources.values()):
            if not state.gone:
                await self._async_catch_up_source(state, live_since)

    async def _async_catch_up_source(
        self, state: _SourceState, live_since: datetime | None
    ) -> None:
        """Deliver, oldest first, what a source had since its last note delivered.

        A source never started only marks its place. A source that is gone on
        Misskey raises its repair issue and is not asked again; other errors
        leave its place where it was, for the next connection or poll.
        """
        subentry_id = state.source.subentry_id
        endpoint, params = state.source.timeline
        if state.pending is None:
            state.pending = []
        try:
            if subentry_id not in self.cursors:
                newest = await self._async_notes(endpoint, params, None, 1)
                if subentry_id in self._sources:
                    self.cursors[subentry_id] = (
                        str(newest[-1]["id"]) if newest else None
                    )
                    self._save()
            else:
                await self._async_page_source(state, endpoint, params, live_since)
        except MisskeyApiError as err:
            if err.code in GONE_CODES:
                self._source_gone(state)
            else:
                self._source_problem(state, err)
            return
        except MisskeyError as err:
            self._source_problem(state, err)
            return
        except Exception:
            _LOGGER.exception(
                "Unexpected error catching up on %s of %s",
                state.source.name,
                self._entry.title,
            )
            return
        finally:
            # What came live meanwhile, after what was missed.
            pending, state.pending = state.pending, None
            if pending and subentry_id in self._sources:
                self._deliver_notes(state, pending, missed_before=None)
        state.outage.recovered(
            "Caught up on %s of %s again", state.source.name, self._entry.title
        )

    async def _async_page_source(
        self,
        state: _SourceState,
        endpoint: str,
        params: dict[str, Any],
        live_since: datetime | None,
    ) -> None:
        subentry_id = state.source.subentry_id
        for _ in range(CATCH_UP_MAX_PAGES):
            cursor = self.cursors.get(subentry_id)
            page = await self._async_notes(endpoint, params, cursor, CATCH_UP_PAGE)
            page = [n for n in page if cursor is None or str(n["id"]) > cursor]
            if not page or subentry_id not in self._sources:
                return
            missed_before = (
                None
                if live_since is None
                else min(live_since, dt_util.utcnow() - self._window)
            )
            self._deliver_notes(state, page, missed_before=missed_before)

    async def _async_notes(
        self,
        endpoint: str,
        params: dict[str, Any],
        since_id: str | None,
        limit: int,
    ) -> list[Mapping[str, Any]]:
        return await self._client.retry_rate_limited(
            lambda: self._client.timeline(
                endpoint, params, since_id=since_id, limit=limit
            ),
            RATE_LIMIT_MAX_WAIT,
        )

    # --- faults -------------------------------------------------------------------

    def _source_problem(
        self, state: _SourceState, err: MisskeyError, message: str = _CATCH_UP_FAILED
    ) -> None:
        """Log a source's failing call once, until it works again.

        Apart from the connection's outages: the connection is fine.
        ``message`` takes the source's name, the account and the error.
        """
        if isinstance(err, MisskeyClientClosedError):
            # The account is unloading: nothing went wrong.
            return
        state.outage.problem(
            message, state.source.name, self._entry.title, describe_error(err)
        )
        if isinstance(err, MisskeyAuthenticationError):
            # The credential is refused here too, whatever the connection
            # says yet: ask for a new one (one flow, however many sources).
            self._entry.async_start_reauth(self.hass)

    def _source_gone(self, state: _SourceState) -> None:
        """Stop asking for a source Misskey no longer has; ask the user to remove it."""
        if state.gone:
            return
        state.gone = True
        _LOGGER.warning(
            "%s of %s no longer exists on %s",
            state.source.name,
            self._entry.title,
            self._instance,
        )
        async_raise_source_gone(self.hass, self._entry, state.source)
        # Its entity becomes unavailable.
        self._availability_changed()
        if state.channel_id is not None:
            channel_id, state.channel_id = state.channel_id, None
            self._entry.async_create_background_task(
                self.hass,
                self._stream.leave(channel_id),
                f"{DOMAIN} leave {channel_id}",
            )

    # --- live notes -----------------------------------------------------------------

    def handle(self, event: StreamEvent) -> None:
        """Deliver a note heard on a source's channel or on the home timeline."""
        if event.type != "note" or not isinstance(event.body, Mapping):
            return
        note = event.body
        if "id" not in note:
            return
        if event.channel == self._home_channel:
            for state in list(self._sources.values()):
                if state.delivery == DELIVERY_HOME_TIMELINE and state.source.matches(
                    note
                ):
                    self._deliver_live(state, note)
            return
        for state in list(self._sources.values()):
            if state.channel_id == event.channel:
                self._deliver_live(state, note)
                return

    def _deliver_live(self, state: _SourceState, note: Mapping[str, Any]) -> None:
        if state.pending is not None:
            state.pending.append(note)
        else:
            self._deliver_notes(state, [note], missed_before=None)

    def _deliver_notes(
        self,
        state: _SourceState,
        notes: Iterable[Mapping[str, Any]],
        *,
        missed_before: datetime | None,
    ) -> None:
        """Fire a source's event for each new note; never for the account's own notes."""
        subentry_id = state.source.subentry_id
        started = subentry_id in self.cursors
        cursor = self.cursors.get(subentry_id)
        own_id = self._account_id()
        for note in notes:
            note_id = str(note["id"])
            if note_id in state.delivered:
                continue
            if started and (cursor is None or note_id > cursor):
                cursor = note_id
            # No loops: an automation that posts must not hear itself.
            if note.get("userId") == own_id:
                continue
            if (
                missed_before is not None
                and created_at(str(note.get("createdAt") or "")) < missed_before
            ):
                # Not remembered: by Misskey's clock, it may be one that comes
                # live too (made as the connection was made), and then fires.
                self.skipped_old += 1
                continue
            state.delivered.add(note_id)
            self._fire(state, note)
        if started and cursor != self.cursors.get(subentry_id):
            self.cursors[subentry_id] = cursor
            self._save()

    def _fire(self, state: _SourceState, note: Mapping[str, Any]) -> None:
        try:
            attributes = note_attributes(note, self._client.url, self._instance)
            # How it came: with the event, so that the entity's state changes
            # only when a note arrives.
            attributes["delivery"] = state.delivery
        except Exception:
            _LOGGER.exception("Skipped note %s", note.get("id"))
            return
        self.delivered_notes += 1
        for listener in list(self._source_listeners.get(state.source.subentry_id, [])):
            try:
                listener(attributes)
            except Exception:
                # One entity's bug must not keep the note from the others,
                # nor cut the connection.
                _LOGGER.exception(
                    "Error handling %s note %s", DOMAIN, attributes.get("note_id")
                )

"""Hears the account: notifications and chat messages, live, none lost, none twice.

One streaming connection per account (channel ``main``), kept by one
supervising loop that outlives any fault. After every (re)connection, and after
Home Assistant restarts, what arrived while away is fetched from
``i/notifications`` since the last notification delivered, which a Store keeps
(written as soon as an event fired). A server or proxy that refuses WebSockets
is polled instead.

The account's sources (antennas, lists, channels, hashtags, accounts) share
the connection: a SourceFollower (source_listener.py) joins their channels on
it and catches them up after every (re)connection; their cursors are kept in
the same Store, under ``sources``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
import logging
import random
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.start import async_at_started
import homeassistant.util.dt as dt_util
from homeassistant.util.json import json_loads

from .api import (
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    MisskeyStreamRefusedError,
    MisskeyTimeoutError,
    Notification,
    instance_host,
)
from .api.stream import MisskeyStream, StreamEvent
from .const import (
    CATCH_UP_MAX_PAGES,
    CATCH_UP_PAGE,
    CONF_CATCH_UP_WINDOW,
    CONF_CREDENTIAL,
    DEFAULT_CATCH_UP_WINDOW,
    DOMAIN,
    PERMISSION_READ_NOTIFICATIONS,
    POLL_INTERVAL,
    RATE_LIMIT_MAX_WAIT,
    RECONNECT_MAX_DELAY,
    RECONNECT_MAX_RETRY_AFTER,
    RECONNECT_MIN_DELAY,
    RECONNECT_RESET_AFTER,
    SOURCE_POLL_INTERVAL,
    STREAM_CONNECT_TIMEOUT,
    STREAM_HEARTBEAT,
    STREAM_RETRY_INTERVAL,
)
from .coordinator import MisskeyDataUpdateCoordinator, unread_notifications
from .data import listener_store
from .errors import OutageLog, describe_error
from .notification import (
    MisskeyEvent,
    RecentIds,
    created_at,
    event_from_chat_message,
    event_from_notification,
)
from .permissions import async_record_refused_permission, has_permission
from .source_listener import SourceFollower
from .sources import Source

_LOGGER = logging.getLogger(__name__)

MODE_CONNECTING: Final = "connecting"
MODE_STREAMING: Final = "streaming"
MODE_POLLING: Final = "polling"
MODE_DISCONNECTED: Final = "disconnected"
# WebSockets refused, and notifications may not be read: nothing can arrive.
MODE_REFUSED: Final = "refused"
MODE_AUTH_FAILED: Final = "authentication_failed"
MODE_SUSPENDED: Final = "suspended"
# The supervising loop ended: only a bug can do that.
MODE_STOPPED: Final = "stopped"
# While nothing can reach Home Assistant; a reconnect only delays events.
_UNAVAILABLE_MODES: Final = frozenset(
    {MODE_REFUSED, MODE_AUTH_FAILED, MODE_SUSPENDED, MODE_STOPPED}
)


class MisskeyListener:
    """Delivers the account's events to the entities that listen for them."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        coordinator: MisskeyDataUpdateCoordinator,
    ) -> None:
        """Listen for the entry's account."""
        self.hass = hass
        self._entry = entry
        self._coordinator = coordinator
        self._client = coordinator.client
        self._instance = instance_host(self._client.url)
        self._credential: str = entry.data[CONF_CREDENTIAL]
        self._stream = MisskeyStream(
            async_get_clientsession(hass),
            self._client.url,
            self._credential,
            heartbeat=STREAM_HEARTBEAT,
            connect_timeout=STREAM_CONNECT_TIMEOUT,
            json_loads=json_loads,
        )
        self._store = listener_store(hass, entry.entry_id)
        self._window = timedelta(
            minutes=entry.options.get(CONF_CATCH_UP_WINDOW, DEFAULT_CATCH_UP_WINDOW)
        )
        # The sources ride on this connection; what they need of it is passed
        # in, so that they never reach into the listener.
        self.sources = SourceFollower(
            hass,
            entry,
            client=self._client,
            stream=self._stream,
            window=self._window,
            connected=lambda: self.connected,
            account_id=lambda: coordinator.data.id,
            save=self._save,
            availability_changed=lambda: self._call(self._connection_listeners),
        )
        self._event_listeners: list[Callable[[MisskeyEvent], None]] = []
        self._connection_listeners: list[CALLBACK_TYPE] = []
        self._unread_listeners: list[CALLBACK_TYPE] = []
        # The newest notification delivered or skipped; None before the first.
        self._cursor: str | None = None
        # Whether the cursor was ever set, so that an account that had no
        # notification at all does not skip its first ones.
        self._initialized = False
        # Whether the cursor was read from the Store (only then is it saved).
        self._loaded = False
        self._delivered = RecentIds()
        self._can_catch_up = has_permission(entry, PERMISSION_READ_NOTIFICATIONS)
        self.mode = MODE_CONNECTING
        self.refused_status: int | None = None
        self.last_error: str | None = None
        self.connected_since: datetime | None = None
        self.reconnects = 0
        self.delivered = 0
        self.skipped_old = 0
        # The upgrade was refused: poll until it is time to try again.
        self._refused: MisskeyStreamRefusedError | None = None
        # Until heard live again, the next problem is part of the same outage.
        self._outage = OutageLog(_LOGGER)
        self._bug_logged = False
        # Set by each successful read of the account (after it was refused).
        self._account_readable = asyncio.Event()
        # Unread notifications: what `i` said, plus those seen unread since.
        self._unread_base: int | None = None
        self._unread_ids: set[str] = set()

    # --- life cycle ---------------------------------------------------------

    @callback
    def async_start(self) -> None:
        """Start listening in the background once Home Assistant has started."""
        self._update_unread_from_account()
        self._entry.async_on_unload(
            self._coordinator.async_add_listener(self._async_account_updated)
        )
        self._entry.async_on_unload(self._async_stop)
        self.sources.async_start()
        # Automations listen only once Home Assistant has started: what is
        # caught up after a restart must wait for them, or it is heard by none.
        self._entry.async_on_unload(async_at_started(self.hass, self._async_begin))

    @callback
    def _async_begin(self, hass: HomeAssistant) -> None:
        # Not eager: when Home Assistant already runs, set-up returns first.
        task = self._entry.async_create_background_task(
            hass,
            self._async_listen(),
            f"{DOMAIN} listener {self._entry.entry_id}",
            eager_start=False,
        )
        task.add_done_callback(self._async_run_ended)

    @callback
    def _async_run_ended(self, task: asyncio.Task[None]) -> None:
        """Say so if the supervising loop ever ends other than by unloading."""
        if task.cancelled():
            return
        err = task.exception()
        self.last_error = describe_error(err) if err is not None else "stopped"
        _LOGGER.error(
            "Stopped listening to %s: %s; reload the account",
            self._entry.title,
            self.last_error,
        )
        self._set_mode(MODE_STOPPED)

    async def _async_listen(self) -> None:
        """Load where events stopped last time, then keep the account heard."""
        try:
            stored = await self._store.async_load() or {}
        except HomeAssistantError as err:
            # Unreadable: start over, as on a first start (nothing replayed).
            _LOGGER.warning(
                "Could not read where events of %s stopped (%s); "
                "events missed while away are not caught up this time",
                self._entry.title,
                err,
            )
            stored = {}
        self._cursor = stored.get("last_notification_id")
        self._initialized = bool(stored.get("initialized"))
        self.sources.load(stored.get("sources"))
        self._loaded = True
        await self.sources.async_sync(catch_up=False)
        await self._async_run()

    async def _async_stop(self) -> None:
        # The background task, cancelled on unload, closes the connection.
        if self._loaded:
            await self._store.async_save(self._stored())

    # --- who listens ----------------------------------------------------------

    @callback
    def async_add_event_listener(
        self, event_listener: Callable[[MisskeyEvent], None]
    ) -> CALLBACK_TYPE:
        """Call ``event_listener`` with every event; return the undo."""
        self._event_listeners.append(event_listener)
        return lambda: self._event_listeners.remove(event_listener)

    @callback
    def async_add_connection_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``listener`` when the connection changes; return the undo."""
        self._connection_listeners.append(listener)
        return lambda: self._connection_listeners.remove(listener)

    @callback
    def async_add_unread_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``listener`` when the unread count changes; return the undo."""
        self._unread_listeners.append(listener)
        return lambda: self._unread_listeners.remove(listener)

    @staticmethod
    def _call(listeners: list[CALLBACK_TYPE]) -> None:
        for listener in list(listeners):
            listener()

    @property
    def connected(self) -> bool:
        """Return whether the account's events arrive live."""
        return self.mode == MODE_STREAMING

    @property
    def running(self) -> bool:
        """Return whether the loop that keeps the account heard still runs."""
        return self.mode != MODE_STOPPED

    @property
    def available(self) -> bool:
        """Return whether events can still reach Home Assistant, now or caught up later."""
        return self.mode not in _UNAVAILABLE_MODES

    # --- supervision ------------------------------------------------------------

    async def _async_run(self) -> None:
        """Keep the account heard until the entry unloads, whatever goes wrong.

        Each turn of the loop is one connection, or one spell of polling while
        WebSockets are refused. Whatever ends it is handled here: a refused
        credential waits for re-authentication, anything else (the server,
        the network, a bug of ours) is logged once per outage and tried again
        after a delay that grows to RECONNECT_MAX_DELAY.
        """
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            began = loop.time()
            retry_after: float | None = None
            try:
                if self._refused is None:
                    await self._async_stream()
                else:
                    await self._async_poll(self._refused)
                    continue
            except MisskeyStreamRefusedError as err:
                self._refused = err
                continue
            except (MisskeyAuthenticationError, MisskeyAccountSuspendedError) as err:
                await self._async_wait_for_account(err)
                attempt = 0
                continue
            except MisskeyRateLimitError as err:
                self._problem(err)
                retry_after = err.retry_after
            except Exception as err:  # noqa: BLE001 - the loop must outlive anything
                self._problem(err)
            if loop.time() - began >= RECONNECT_RESET_AFTER:
                attempt = 0
            delay = reconnect_delay(attempt)
            if retry_after is not None:
                delay = max(delay, min(retry_after, RECONNECT_MAX_RETRY_AFTER))
            attempt += 1
            self.reconnects += 1
            await asyncio.sleep(delay)

    def _problem(self, err: Exception) -> None:
        """Record why the account is not heard; log it once per outage."""
        self.last_error = describe_error(err)
        self.connected_since = None
        if isinstance(err, MisskeyError):
            self._outage.problem(
                "Lost the connection to %s for %s (%s); reconnecting",
                self._instance,
                self._entry.title,
                self.last_error,
            )
        elif not self._bug_logged:
            # A bug of ours: its traceback is what a report needs, once (and
            # never with a message that holds the credential).
            self._bug_logged = self._outage.failing = True
            _LOGGER.error(
                "Unexpected error while listening to %s; trying again",
                self._entry.title,
                exc_info=err if self._credential not in str(err) else None,
            )
        self._set_mode(MODE_DISCONNECTED)

    def _set_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            self._call(self._connection_listeners)

    async def _async_wait_for_account(self, err: MisskeyApiError) -> None:
        """Wait until the account can be read again: re-authenticated, or no longer suspended.

        A refused credential starts re-authentication. Neither is tried again
        here (Misskey counts failed authentications against the address): the
        account's next successful read, or the reload that re-authentication
        brings, resumes listening.
        """
        self._account_readable.clear()
        self.last_error = str(err)
        self.connected_since = None
        if isinstance(err, MisskeyAccountSuspendedError):
            self._set_mode(MODE_SUSPENDED)
            self._outage.problem(
                "%s is suspended on %s: no events until its moderators lift it",
                self._entry.title,
                self._instance,
            )
        else:
            self._set_mode(MODE_AUTH_FAILED)
            self._outage.problem(
                "Misskey no longer accepts the credential of %s; "
                "re-authenticate the account",
                self._entry.title,
            )
            self._entry.async_start_reauth(self.hass)
        await self._account_readable.wait()

    @callback
    def _async_account_updated(self) -> None:
        if self._coordinator.last_update_success:
            self._account_readable.set()
        self._update_unread_from_account()

    # --- streaming ---------------------------------------------------------------

    async def _async_stream(self) -> None:
        """Connect, catch up, then deliver live events until the connection ends."""
        try:
            await self._stream.connect()
        except (MisskeyTimeoutError, MisskeyStreamRefusedError) as err:
            # Misskey 12 never answers the upgrade of a refused credential,
            # and Misskey refuses a suspended account's with a bare 403, as a
            # proxy might: the API tells which.
            if isinstance(err, MisskeyTimeoutError) or err.status == 403:
                await self._client.account()
            raise
        try:
            if not self.available:
                # What is caught up now must reach automations.
                self._set_mode(MODE_CONNECTING)
            live_since = dt_util.utcnow()
            await self._async_catch_up(live_since)
            # The sources catch up beside the connection: the account's own
            # events do not wait for them.
            self.sources.hold_live_notes()
            self._connected()
            sources = asyncio.create_task(self.sources.async_run(live_since))
            sources.add_done_callback(self._sources_ended)
            try:
                async for event in self._stream.events():
                    self._handle(event)
            finally:
                sources.cancel()
        finally:
            await self._stream.close()

    @callback
    def _sources_ended(self, task: asyncio.Task[None]) -> None:
        """Say so if the sources stop beside a live connection (only a bug can do that)."""
        if task.cancelled() or (err := task.exception()) is None:
            return
        _LOGGER.error(
            "Unexpected error following the sources of %s; they catch up "
            "again at the next connection",
            self._entry.title,
            exc_info=err if self._credential not in str(err) else None,
        )

    def _connected(self) -> None:
        self._outage.recovered("Listening to %s again", self._entry.title)
        self._bug_logged = False
        self.refused_status = None
        self.connected_since = dt_util.utcnow()
        self._set_mode(MODE_STREAMING)

    # --- polling -----------------------------------------------------------------

    async def _async_poll(self, refused: MisskeyStreamRefusedError) -> None:
        """Poll ``i/notifications`` while WebSockets are refused; then try them again.

        Without ``read:notifications`` nothing can be heard until the
        WebSocket is accepted or the account re-authorized.
        """
        # Whatever ends this spell, streaming is tried next.
        self._refused = None
        self.refused_status = refused.status
        self.last_error = str(refused)
        self.connected_since = None
        loop = asyncio.get_running_loop()
        until = loop.time() + STREAM_RETRY_INTERVAL.total_seconds()
        if self._can_catch_up:
            self._outage.problem(
                "%s does not accept WebSocket connections (%s); asking for "
                "notifications every %s s instead",
                self._instance,
                refused,
                POLL_INTERVAL.total_seconds(),
            )
            self._set_mode(MODE_POLLING)
        # Only what came before the first poll, or while polls failed, was
        # missed (and is held to the window): a notification's time is
        # Misskey's clock, which may differ from Home Assistant's by seconds.
        live_since: datetime | None = dt_util.utcnow()
        # The sources' timelines are asked less often: there are many.
        sources_since: datetime | None = live_since
        sources_due = loop.time()
        while self._can_catch_up and loop.time() < until:
            started = dt_util.utcnow()
            try:
                await self._async_catch_up(live_since)
            except MisskeyAuthenticationError, MisskeyAccountSuspendedError:
                raise
            except MisskeyError as err:
                self.last_error = describe_error(err)
                _LOGGER.debug("Polling %s failed: %s", self._instance, err)
                live_since = live_since or started
            else:
                live_since = None
            if loop.time() >= sources_due:
                await self.sources.async_catch_up(sources_since)
                sources_since = None
                sources_due = loop.time() + SOURCE_POLL_INTERVAL.total_seconds()
            await asyncio.sleep(POLL_INTERVAL.total_seconds())
        if not self._can_catch_up:
            self._outage.problem(
                "%s does not accept WebSocket connections (%s), and %s has not "
                "allowed reading notifications: no events until it is re-authorized",
                self._instance,
                refused,
                self._entry.title,
            )
            self._set_mode(MODE_REFUSED)
            await asyncio.sleep(max(until - loop.time(), 0))

    # --- catching up ------------------------------------------------------------

    async def _async_catch_up(self, live_since: datetime | None) -> None:
        """Deliver, oldest first, what arrived since the last notification delivered.

        Notifications made before ``live_since`` were missed: only those
        younger than the window fire (None: nothing was missed). Those made
        since are as good as live. The stream is already connected, so what
        arrives meanwhile waits in its buffer and is recognised as delivered
        afterwards.
        """
        if not self._can_catch_up:
            return
        try:
            if not self._initialized:
                # The first start replays nothing: it only marks the place.
                newest = await self._async_page(None, limit=1)
                self._cursor = newest[-1].id if newest else None
                self._initialized = True
                self._save()
                return
            for _ in range(CATCH_UP_MAX_PAGES):
                cursor = self._cursor
                page = await self._async_page(cursor, limit=CATCH_UP_PAGE)
                # Sharkey pages by millisecond and may send the anchor, the
                # last notification delivered, again: only newer ones count.
                page = [n for n in page if cursor is None or n.id > cursor]
                if not page:
                    return
                missed_before = (
                    None
                    if live_since is None
                    else min(live_since, dt_util.utcnow() - self._window)
                )
                self._deliver_notifications(page, missed_before=missed_before)
        except MisskeyPermissionDeniedError:
            self._can_catch_up = False
            # The repair issue asks to re-authorize, for good.
            async_record_refused_permission(
                self.hass, self._entry, PERMISSION_READ_NOTIFICATIONS
            )
            self._outage.problem(
                "%s has not allowed Home Assistant to read notifications: "
                "events missed while away are not caught up until it is re-authorized",
                self._entry.title,
            )
            self._call(self._connection_listeners)

    async def _async_page(self, since_id: str | None, limit: int) -> list[Notification]:
        return await self._client.retry_rate_limited(
            lambda: self._client.notifications(since_id=since_id, limit=limit),
            RATE_LIMIT_MAX_WAIT,
        )

    def _deliver_notifications(
        self, notifications: Iterable[Notification], *, missed_before: datetime | None
    ) -> None:
        """Fire the events of new notifications; skip those made before ``missed_before``."""
        cursor = self._cursor
        for notification in notifications:
            if notification.id in self._delivered:
                continue
            if self._cursor is None or notification.id > self._cursor:
                self._cursor = notification.id
            if (
                missed_before is not None
                and created_at(notification.created_at) < missed_before
            ):
                # Not remembered: by Misskey's clock, it may be one that comes
                # live too (made as the connection was made), and then fires.
                self.skipped_old += 1
                continue
            self._delivered.add(notification.id)
            try:
                event = event_from_notification(
                    notification, self._client.url, self._instance
                )
            except Exception:
                # A notification we cannot read is skipped, not retried: it
                # would stop every one after it at each reconnect.
                _LOGGER.exception("Skipped notification %s", notification.id)
                continue
            if event is not None:
                self._fire(event)
        if self._cursor != cursor:
            self._save()

    # --- live events -------------------------------------------------------------

    def _handle(self, event: StreamEvent) -> None:
        body = event.body
        if event.channel is not None:
            # Every channel but ``main`` is a source's.
            self.sources.handle(event)
        elif event.type == "notification" and isinstance(body, dict) and "id" in body:
            notification = Notification.from_json(body)
            new = notification.id not in self._delivered
            # The event first: it is what automations wait for.
            self._deliver_notifications([notification], missed_before=None)
            if new:
                self._count_unread(notification.id)
        elif event.type in ("newChatMessage", "messagingMessage") and isinstance(
            body, dict
        ):
            if (
                chat := event_from_chat_message(
                    body, self._coordinator.data.id, self._instance
                )
            ) and chat.id not in self._delivered:
                self._delivered.add(chat.id)
                self._fire(chat)
        elif event.type == "readAllNotifications":
            self._unread_base = 0
            self._unread_ids.clear()
            self._call(self._unread_listeners)

    def _fire(self, event: MisskeyEvent) -> None:
        self.delivered += 1
        for event_listener in list(self._event_listeners):
            try:
                event_listener(event)
            except Exception:
                # One consumer's bug must not keep the event from the others,
                # nor cut the connection.
                _LOGGER.exception("Error handling %s event %s", DOMAIN, event.id)

    # --- unread notifications ------------------------------------------------

    @property
    def unread_notifications(self) -> int | None:
        """Return how many notifications are unread, if the server says."""
        if self._unread_base is None:
            return None
        return self._unread_base + len(self._unread_ids)

    @callback
    def _update_unread_from_account(self) -> None:
        # The new reading counts what arrived live before it.
        self._unread_base = unread_notifications(self._coordinator.data)
        self._unread_ids.clear()
        self._call(self._unread_listeners)

    def _count_unread(self, notification_id: str) -> None:
        """Count a notification that arrived live; it is unread until the user reads all.

        Misskey's own hint (``unreadNotification``, two seconds later) is not
        used: it repeats notifications the last reading already counted.
        Those caught up after an absence are counted by the next reading.
        """
        if self._unread_base is not None:
            self._unread_ids.add(notification_id)
            self._call(self._unread_listeners)

    # --- storage ------------------------------------------------------------------

    def _stored(self) -> dict[str, Any]:
        return {
            "last_notification_id": self._cursor,
            "initialized": self._initialized,
            "sources": self.sources.cursors,
        }

    def _save(self) -> None:
        """Write where events stopped at once, right after they fired.

        An event fired but not yet on disk fires again after a power cut:
        the write starts before anything the event triggers can run.
        """
        self._entry.async_create_task(
            self.hass, self._store.async_save(self._stored()), eager_start=True
        )

    def diagnostics(self) -> dict[str, Any]:
        """Return how the listener fares, for diagnostics."""
        return {
            "mode": self.mode,
            "refused_status": self.refused_status,
            "catch_up": self._can_catch_up,
            "catch_up_window_minutes": self._window.total_seconds() / 60,
            "connected_since": self.connected_since,
            "reconnects": self.reconnects,
            "delivered": self.delivered,
            "skipped_as_too_old": self.skipped_old + self.sources.skipped_old,
            "last_notification_id": self._cursor,
            "last_error": self.last_error,
            "delivered_notes": self.sources.delivered_notes,
            "sources": self.sources.diagnostics(),
        }

    # --- sources (for their entities; source_listener.py follows them) ---------

    @callback
    def async_add_source_listener(
        self, subentry_id: str, listener: Callable[[dict[str, Any]], None]
    ) -> CALLBACK_TYPE:
        """Call ``listener`` with the attributes of each note of a source; return the undo."""
        return self.sources.async_add_source_listener(subentry_id, listener)

    @callback
    def async_add_sources_added_listener(
        self, listener: Callable[[list[Source]], None]
    ) -> CALLBACK_TYPE:
        """Call ``listener`` with the sources added while the account is loaded."""
        return self.sources.async_add_sources_added_listener(listener)

    def source_gone(self, subentry_id: str) -> bool:
        """Return whether Misskey no longer has a source."""
        return self.sources.source_gone(subentry_id)


def reconnect_delay(attempt: int) -> float:
    """Return how long to wait before try ``attempt`` (from 0) after a lost connection.

    It doubles from RECONNECT_MIN_DELAY up to RECONNECT_MAX_DELAY and stays
    there, each time at random between half and all of it, so that the clients
    of a restarted server do not all come back at the same instant.
    """
    delay = min(RECONNECT_MAX_DELAY, RECONNECT_MIN_DELAY * 2.0 ** min(attempt, 16))
    return delay * random.uniform(0.5, 1.0)

"""Misskey's streaming API: one WebSocket joined to ``main`` and to other channels.

Misskey multiplexes channels on one connection: each is joined with
``connect`` under an ID of ours, left with ``disconnect``, and its messages
carry that ID. ``main`` is joined by connect(); others (an antenna, a list, a
hashtag...) by join(), now and again after every reconnection.

The credential travels as ``?i=`` because Misskey 12 reads nothing else; no
message or exception of this module shows the URL, so it never leaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
import contextlib
import json
import logging
import secrets
from typing import Any, Final

import aiohttp
from yarl import URL

from .errors import (
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyConnectionError,
    MisskeyRateLimitError,
    MisskeyServerError,
    MisskeyStreamRefusedError,
    MisskeyTimeoutError,
)
from .models import Model

_LOGGER = logging.getLogger(__name__)

# The server pings every 60 s (20 s on Misskey 12); our own pings, sent after
# this much silence, notice a connection that died without a close (a dead NAT
# entry, a stalled proxy) within 1.5 heartbeats.
DEFAULT_HEARTBEAT: Final = 30.0
DEFAULT_CONNECT_TIMEOUT: Final = 15.0
# Far above what channel main sends (a notification of a note of thousands of
# characters is tens of KiB), and still a bound on memory.
DEFAULT_MAX_MESSAGE_SIZE: Final = 4 * 1024 * 1024
MAIN_CHANNEL: Final = "main"


class StreamEvent(Model):
    """An event of a channel: its type (``notification``, ``note``...) and body.

    ``channel`` is the ID join() returned, None for ``main``.
    """

    __slots__ = ("body", "channel", "type")
    _hidden = frozenset()

    def __init__(self, type: str, body: Any, channel: str | None = None) -> None:
        """Hold the event."""
        self.type = type
        self.body = body
        self.channel = channel


class MisskeyStream:
    """A connection to the streaming API of one instance, for one account.

    ``connect()`` joins ``main``; iterate ``events()`` until the connection
    ends, which the iteration raises as MisskeyConnectionError. A closed
    stream can connect again.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        credential: str,
        *,
        heartbeat: float = DEFAULT_HEARTBEAT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        json_loads: Callable[[str], Any] = json.loads,
    ) -> None:
        """Use the caller's aiohttp session; the stream never closes it.

        ``json_loads`` decodes each message (an application may have a faster
        one than the standard library's). A message over ``max_message_size``
        bytes ends the connection (WebSocket close code 1009).
        """
        self._json_loads = json_loads
        self._session = session
        base = URL(url.rstrip("/"))
        self._url = base.with_scheme("wss" if base.scheme == "https" else "ws")
        self._credential = credential
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.max_message_size = max_message_size
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._channel_id = ""
        # The other channels, by our ID: (name, params), joined at every connect.
        self._channels: dict[str, tuple[str, Mapping[str, Any]]] = {}
        # Those the server said it joined on this connection.
        self.joined: set[str] = set()

    async def connect(self) -> None:
        """Open the WebSocket and join ``main``; raise if either fails.

        MisskeyAuthenticationError: the credential was refused (HTTP 401).
        MisskeyStreamRefusedError: the server (or a proxy) answered the upgrade
        with something else than a WebSocket, or did not let us join ``main``.
        MisskeyRateLimitError, MisskeyServerError, MisskeyConnectionError:
        try again later.
        """
        await self.close()
        url = (self._url / "streaming").with_query(i=self._credential)
        try:
            async with asyncio.timeout(self.connect_timeout):
                # Pings are ours (see events()): aiohttp's heartbeat timer
                # outlives a closed connection.
                self._ws = await self._session.ws_connect(
                    url, autoping=False, max_msg_size=self.max_message_size
                )
                self._channel_id = secrets.token_hex(8)
                await self._ws.send_json(_connect(MAIN_CHANNEL, self._channel_id, {}))
                await self._wait_until_joined(self._ws)
                self.joined = set()
                for channel_id, (name, params) in self._channels.items():
                    await self._ws.send_json(_connect(name, channel_id, params))
        except TimeoutError:
            await self.close()
            # Misskey 12 never answers the upgrade of a refused credential.
            raise MisskeyTimeoutError(
                f"streaming: not connected in {self.connect_timeout} s"
            ) from None
        except aiohttp.WSServerHandshakeError as err:
            await self.close()
            raise _handshake_error(err) from None
        except aiohttp.ClientConnectorError as err:
            await self.close()
            raise MisskeyCannotConnectError(
                f"streaming: {type(err).__name__}: {err.os_error}"
            ) from None
        except (aiohttp.ClientError, ConnectionError) as err:
            await self.close()
            raise MisskeyConnectionError(f"streaming: {type(err).__name__}") from None
        except BaseException:
            await self.close()
            raise

    async def _wait_until_joined(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.PING:
                await ws.pong(message.data)
                continue
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise MisskeyConnectionError(
                    f"streaming: closed before joining {MAIN_CHANNEL}"
                )
            data = self._decode(message.data)
            if (
                data.get("type") == "connected"
                and isinstance(body := data.get("body"), Mapping)
                and body.get("id") == self._channel_id
            ):
                return

    async def join(self, name: str, params: Mapping[str, Any]) -> str:
        """Join channel ``name`` now if connected, and at every connect; return its ID.

        Misskey answers ``connected`` only to a join it accepted: one it
        refused (an antenna deleted, a channel unknown) stays silent, and its
        ID never enters ``joined``. A join that cannot be sent now waits for
        the next connection: this one is ending, which events() raises.
        """
        channel_id = secrets.token_hex(8)
        self._channels[channel_id] = (name, params)
        if self.connected and self._ws is not None:
            with contextlib.suppress(MisskeyConnectionError):
                await self._send(self._ws.send_json(_connect(name, channel_id, params)))
        return channel_id

    async def leave(self, channel_id: str) -> None:
        """Leave a channel join() joined, on the open connection and for good."""
        if self._channels.pop(channel_id, None) is None:
            return
        self.joined.discard(channel_id)
        if self.connected and self._ws is not None:
            # Not sent: the connection is ending, and the next one will not join it.
            with contextlib.suppress(MisskeyConnectionError):
                await self._send(
                    self._ws.send_json(
                        {"type": "disconnect", "body": {"id": channel_id}}
                    )
                )

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Yield the events of ``main`` until the connection ends.

        The end is always an exception: MisskeyConnectionError when the server
        or the network closed it, MisskeyTimeoutError when a ping sent after
        ``heartbeat`` seconds of silence went unanswered for half as long.
        """
        ws = self._ws
        if ws is None:
            raise MisskeyConnectionError("streaming: not connected")
        try:
            async for event in self._receive(ws):
                yield event
        except MisskeyConnectionError:
            # A dead connection is closed here, not left to the caller.
            await self.close()
            raise

    async def _receive(
        self, ws: aiohttp.ClientWebSocketResponse
    ) -> AsyncIterator[StreamEvent]:
        pinged = False
        while True:
            try:
                message = await ws.receive(
                    timeout=self.heartbeat / 2 if pinged else self.heartbeat
                )
            except TimeoutError:
                if pinged:
                    raise MisskeyTimeoutError("streaming: no answer to pings") from None
                await self._send(ws.ping())
                pinged = True
                continue
            # Any frame shows the connection is alive.
            pinged = False
            if message.type is aiohttp.WSMsgType.TEXT:
                if (event := self._event(self._decode(message.data))) is not None:
                    yield event
            elif message.type is aiohttp.WSMsgType.PING:
                await self._send(ws.pong(message.data))
            elif message.type is aiohttp.WSMsgType.ERROR and ws.close_code == 1009:
                raise MisskeyConnectionError(
                    f"streaming: a message over {self.max_message_size} bytes"
                )
            elif message.type not in (
                aiohttp.WSMsgType.PONG,
                aiohttp.WSMsgType.BINARY,
            ):
                raise MisskeyConnectionError(
                    f"streaming: closed ({ws.close_code or 'no close code'})"
                )

    @staticmethod
    async def _send(frame: Awaitable[None]) -> None:
        try:
            await frame
        except (aiohttp.ClientError, ConnectionError) as err:
            raise MisskeyConnectionError(f"streaming: {type(err).__name__}") from None

    def _event(self, data: Mapping[str, Any]) -> StreamEvent | None:
        """Return the event of a joined channel a message carries, if it carries one.

        Each channel keeps sending with the ID it was joined with, so that ID
        identifies it; other messages (broadcasts, note updates) are not ours.
        """
        body = data.get("body")
        if not isinstance(body, Mapping):
            return None
        channel_id = body.get("id")
        if data.get("type") == "connected":
            if channel_id in self._channels:
                self.joined.add(channel_id)
            return None
        if data.get("type") != "channel":
            return None
        if channel_id == self._channel_id:
            channel = None
        elif channel_id in self._channels:
            channel = channel_id
        else:
            return None
        event_type = body.get("type")
        if not isinstance(event_type, str):
            return None
        return StreamEvent(event_type, body.get("body"), channel)

    def _decode(self, text: str) -> Mapping[str, Any]:
        try:
            data = self._json_loads(text)
        except ValueError:
            # Misskey 12 answers a text "ping" with "pong"; nothing else is not JSON.
            return {}
        return data if isinstance(data, Mapping) else {}

    @property
    def connected(self) -> bool:
        """Return whether the connection is open."""
        return self._ws is not None and not self._ws.closed

    async def close(self) -> None:
        """Close the connection, if one is open."""
        if (ws := self._ws) is not None:
            self._ws = None
            await ws.close()


def _connect(name: str, channel_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the message that joins a channel."""
    return {
        "type": "connect",
        "body": {
            "channel": name,
            "id": channel_id,
            "params": dict(params),
            # Without it a refused join gets no answer at all, nor an accepted one.
            "pong": True,
        },
    }


def _handshake_error(err: aiohttp.WSServerHandshakeError) -> Exception:
    """Return what a refused upgrade means; never with the URL, which holds ``i``."""
    status = err.status
    if status == 401:
        return MisskeyAuthenticationError(401, None, "streaming: HTTP 401")
    if status == 429:
        rate_limited = MisskeyRateLimitError(429, None, "streaming: HTTP 429")
        if err.headers is not None:
            with contextlib.suppress(KeyError, ValueError):
                rate_limited.retry_after = float(err.headers["Retry-After"])
        return rate_limited
    if status >= 500:
        return MisskeyServerError(status, None, f"streaming: HTTP {status}")
    # A proxy that does not pass WebSocket upgrades answers with a page, 400,
    # 404, 426 or the like; so does a suspended account (403).
    return MisskeyStreamRefusedError(status)

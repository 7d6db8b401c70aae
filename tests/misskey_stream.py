"""The streaming API and notifications of the test Misskey server.

It follows Misskey 2026.3.2's server (``server/api/StreamingApiServerService.ts``,
``stream/Connection.ts``, ``stream/channels/main.ts``, ``core/NotificationService.ts``)
and what shared/reference/misskey-streaming-and-account.md saw on running servers:
the credential is checked before the upgrade (401, or no answer at all on
Misskey 12), ``connect`` with ``pong`` is acknowledged with ``connected``,
``main`` cannot be left, notifications get IDs that sort by time, and
``unreadNotification`` follows a notification two seconds later if it is
still unread. Switches refuse the upgrade, drop or stall the sockets.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .misskey_server import AccessToken, MisskeyServer, User

# Misskey 2026.3.2's notification types (misskey-js consts notificationTypes).
NOTIFICATION_TYPES = (
    "note",
    "follow",
    "mention",
    "reply",
    "renote",
    "quote",
    "reaction",
    "pollEnded",
    "scheduledNotePosted",
    "scheduledNotePostFailed",
    "receiveFollowRequest",
    "followRequestAccepted",
    "roleAssigned",
    "chatRoomInvitationReceived",
    "achievementEarned",
    "exportCompleted",
    "login",
    "createToken",
    "app",
    "test",
)


def now_iso(skew: float = 0.0) -> str:
    """Return the time as Misskey writes it; ``skew`` s later by the server's clock."""
    now = time.time() + skew
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + (
        f".{int(now % 1 * 1000):03d}Z"
    )


@dataclass
class UpgradeFault:
    """An answer to one upgrade request in place of the real one."""

    # "status": answer ``status`` with ``headers`` and ``body``; "drop": cut
    # the connection without an answer; "hang": never answer.
    kind: str
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class StreamConnection:
    """One client's WebSocket."""

    ws: web.WebSocketResponse
    user: User | None
    token: AccessToken | None
    close_transport: Callable[[], None]
    pause_reading: Callable[[], None]
    # ``main`` is shared and cannot be left: the first ID it was joined with
    # keeps receiving its events.
    main_id: str | None = None
    stalled: bool = False
    received: list[Any] = field(default_factory=list)
    # The other channels joined (antenna, hashtag...): ID -> (name, params).
    channels: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)


class StreamHub:
    """The sockets of the server, the notifications of its users, and their events."""

    def __init__(self, server: MisskeyServer) -> None:
        """Serve ``/streaming`` for the server."""
        self.server = server
        self.connections: list[StreamConnection] = []
        # Every upgrade request, accepted or not, for tests to count.
        self.upgrades = 0
        self.notifications: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.latest_read: dict[str, str] = {}
        self.unread_delay = 2.0
        self.chat_delay = 3.0
        # Answer the upgrade with this status and a page, as a proxy that does
        # not pass WebSocket upgrades does.
        self.refuse_status: int | None = None
        # Answers for the next upgrades, one each, before anything else.
        self.upgrade_faults: list[UpgradeFault] = []
        # Upgrades wait while this is clear, as on a server that is starting.
        self._open = asyncio.Event()
        self._open.set()
        self._tasks: set[asyncio.Task[None]] = set()
        # While timers are held (hold_timers()): what later() was given, with
        # when it would have run, until run_timers().
        self.held: list[tuple[float, int, Callable[[], Any]]] | None = None
        self._held_order = itertools.count()

    # --- what tests do ----------------------------------------------------

    def drop(self) -> None:
        """Cut every socket without a close frame, as a restart or a network fault does."""
        for connection in list(self.connections):
            connection.close_transport()

    def stall(self) -> None:
        """Stop reading and sending on every socket, without closing them.

        Pings go unanswered, as on a connection a NAT or proxy silently lost.
        """
        for connection in self.connections:
            connection.stalled = True
            connection.pause_reading()

    def hold(self) -> None:
        """Keep new upgrade requests waiting until release()."""
        self._open.clear()

    def release(self) -> None:
        """Let the waiting upgrade requests and the next ones in."""
        self._open.set()

    def fail_upgrades(self, fault: UpgradeFault, count: int = 1) -> None:
        """Answer the next ``count`` upgrade requests with ``fault``."""
        self.upgrade_faults.extend([fault] * count)

    async def send_raw(self, user: User, text: str) -> None:
        """Send a text frame as it is to every socket of the user on ``main``."""
        for connection in self.joined(user):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection.ws.send_str(text)

    async def close_sockets(self, code: int) -> None:
        """Close every socket with a close frame of ``code``."""
        for connection in list(self.connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection.ws.close(code=code)

    def joined(self, user: User) -> list[StreamConnection]:
        """Return the live sockets of the user that joined ``main``."""
        return [
            c
            for c in self.connections
            if c.user is user and c.main_id is not None and not c.ws.closed
        ]

    async def wait_joined(self, user: User, count: int = 1) -> None:
        """Wait until the user has ``count`` sockets on ``main``.

        As long as tests/listening.py's WAIT: only a failing wait takes that long.
        """
        async with asyncio.timeout(30):
            while len(self.joined(user)) < count:
                await asyncio.sleep(0.01)

    # --- the socket ---------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Authenticate, then upgrade; what Misskey does with ``/streaming``."""
        from .misskey_server import MISSKEY_13, SHARKEY, ApiError  # noqa: PLC0415

        server = self.server
        self.upgrades += 1
        await self._open.wait()
        if self.upgrade_faults:
            fault = self.upgrade_faults.pop(0)
            if fault.kind == "drop":
                assert request.transport is not None
                request.transport.abort()
                return web.Response(status=500)
            if fault.kind == "hang":
                await server.closing.wait()
                return web.Response(status=504)
            return web.Response(
                text=fault.body, status=fault.status, headers=fault.headers
            )
        if self.refuse_status is not None:
            return web.Response(
                text="<!DOCTYPE html><html><body>Not a WebSocket</body></html>",
                status=self.refuse_status,
                content_type="text/html",
            )
        if server.variant == SHARKEY:
            # Sharkey's wsconnect limit, checked before anything else: a bare
            # 429 (no Retry-After, no body), and the connection closed.
            try:
                server.check_rate_limit("streaming")
            except ApiError:
                return _bare(429, "Rate Limit Exceeded")
        credential = request.query.get("i")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and server.variant != MISSKEY_13:
            credential = header.removeprefix("Bearer ")
        user: User | None = None
        token: AccessToken | None = None
        if credential is not None:
            try:
                user, token = server.authenticate_credential(credential, streaming=True)
            except ApiError as err:
                if err.code == "YOUR_ACCOUNT_SUSPENDED":
                    return _bare(403, "Forbidden")
                user = token = None
            # Misskey 2026 refuses an app without read:account as it refuses
            # a bad credential; Misskey 12 lets it in.
            if user is None or (
                token is not None
                and "read:account" not in token.permission
                and server.variant != MISSKEY_13
            ):
                if server.variant == MISSKEY_13:
                    # Misskey 12's upgrade handler throws and never answers.
                    await server.closing.wait()
                    return web.Response(status=504)
                return _bare(
                    401,
                    "Unauthorized",
                    {
                        "WWW-Authenticate": 'Bearer realm="Misskey", error="invalid_token", '
                        'error_description="Failed to authenticate"'
                    },
                )
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        connection = StreamConnection(
            ws, user, token, transport.abort, transport.pause_reading
        )
        self.connections.append(connection)
        try:
            await self._serve(connection)
        finally:
            self.connections.remove(connection)
        return ws

    async def _serve(self, connection: StreamConnection) -> None:
        from .misskey_server import MISSKEY_13  # noqa: PLC0415

        ws = connection.ws
        while True:
            if connection.stalled:
                # Nothing is read, so pings are not answered either.
                await self.server.closing.wait()
                return
            message = await ws.receive()
            if message.type is not WSMsgType.TEXT:
                if message.type in (WSMsgType.PING, WSMsgType.PONG):
                    continue
                return
            if message.data == "ping" and self.server.variant == MISSKEY_13:
                await ws.send_str("pong")
                continue
            try:
                data = json.loads(message.data)
            except ValueError:
                continue
            connection.received.append(data)
            if not isinstance(data, dict):
                continue
            body = data.get("body")
            if data.get("type") == "disconnect" and isinstance(body, dict):
                # main cannot be left; the others can.
                connection.channels.pop(str(body.get("id")), None)
                continue
            if data.get("type") != "connect":
                continue
            if isinstance(body, dict):
                await self._connect(connection, body)

    async def _connect(
        self, connection: StreamConnection, body: dict[str, Any]
    ) -> None:
        channel, channel_id, pong = (
            body.get("channel"),
            body.get("id"),
            body.get("pong"),
        )
        if not isinstance(channel_id, str) or connection.user is None:
            return
        if channel != "main":
            params = body.get("params")
            await self.server.sources.connect(
                connection,
                str(channel),
                channel_id,
                params if isinstance(params, dict) else {},
                bool(pong),
            )
            return
        token = connection.token
        from .misskey_server import MISSKEY_13  # noqa: PLC0415

        if (
            token is not None
            and "read:account" not in token.permission
            and self.server.variant != MISSKEY_13
        ):
            return
        if connection.main_id is not None:
            # main is shared: a second join is ignored, without an answer.
            return
        connection.main_id = channel_id
        if pong:
            await connection.ws.send_json(
                {"type": "connected", "body": {"id": channel_id}}
            )

    # --- events ---------------------------------------------------------------

    async def publish_main(self, user_id: str, event_type: str, body: Any) -> None:
        """Send an event of ``main`` to every socket of the user."""
        for connection in self.connections:
            if (
                connection.user is None
                or connection.user.id != user_id
                or connection.main_id is None
                or connection.stalled
                or connection.ws.closed
            ):
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await connection.ws.send_json(
                    {
                        "type": "channel",
                        "body": {
                            "id": connection.main_id,
                            "type": event_type,
                            "body": body,
                        },
                    }
                )

    def hold_timers(self) -> None:
        """Keep what later() is given until run_timers(), however long its delay.

        A test that must tell what comes at once from what comes seconds
        later then does not depend on how fast the machine is.
        """
        self.held = []

    async def run_timers(self) -> None:
        """Run what later() held, in the order its delays would have; hold on."""
        held, self.held = self.held or [], []
        for _, _, event in sorted(held, key=lambda item: item[:2]):
            await event()

    def later(self, delay: float, event: Callable[[], Any]) -> None:
        """Run a coroutine function after ``delay`` seconds, as Misskey's timers do."""
        if self.held is not None:
            when = asyncio.get_running_loop().time() + delay
            self.held.append((when, next(self._held_order), event))
            return

        async def run() -> None:
            await asyncio.sleep(delay)
            await event()

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def notify(
        self,
        notifiee: User,
        notification_type: str,
        notifier: User | None = None,
        **data: Any,
    ) -> dict[str, Any]:
        """Create a notification, publish it, and hint at it two seconds later if unread."""
        from .misskey_server import new_id  # noqa: PLC0415

        notification: dict[str, Any] = {
            "id": new_id(),
            "createdAt": now_iso(self.server.clock_skew),
            "type": notification_type,
        }
        if notifier is not None:
            notification |= {"userId": notifier.id, "user": notifier.pack()}
        notification |= data
        self.notifications[notifiee.id].append(notification)
        await self.publish_main(notifiee.id, "notification", notification)

        async def hint() -> None:
            if self.latest_read.get(notifiee.id, "") < notification["id"]:
                await self.publish_main(notifiee.id, "unreadNotification", notification)

        self.later(self.unread_delay, hint)
        return notification

    async def read_all(self, user: User) -> None:
        """Mark every notification of the user read."""
        if self.notifications[user.id]:
            self.latest_read[user.id] = self.notifications[user.id][-1]["id"]
        await self.publish_main(user.id, "readAllNotifications", None)

    def unread_count(self, user: User) -> int:
        """Return how many notifications the user has not read."""
        latest = self.latest_read.get(user.id, "")
        return sum(1 for n in self.notifications[user.id] if n["id"] > latest)

    def page(
        self,
        user: User,
        *,
        since_id: str | None,
        until_id: str | None,
        limit: int,
        include: list[str] | None,
        exclude: list[str] | None,
    ) -> list[dict[str, Any]]:
        """Return a page of notifications as ``i/notifications`` does.

        Oldest first with ``sinceId`` alone, else newest first; the type
        filters apply after the page is read.
        """
        from .misskey_server import SHARKEY  # noqa: PLC0415

        # Sharkey pages by millisecond: the anchor itself may come back.
        inclusive = self.server.variant == SHARKEY
        items = [
            n
            for n in self.notifications[user.id]
            if (
                since_id is None
                or n["id"] > since_id
                or (inclusive and n["id"] == since_id)
            )
            and (
                until_id is None
                or n["id"] < until_id
                or (inclusive and n["id"] == until_id)
            )
        ]
        items = items[:limit] if since_id and not until_id else items[::-1][:limit]
        if include:
            items = [n for n in items if n["type"] in include]
        elif exclude:
            items = [n for n in items if n["type"] not in exclude]
        return items

    async def close(self) -> None:
        """Stop the timers and close the sockets."""
        for task in self._tasks:
            task.cancel()
        for connection in list(self.connections):
            connection.close_transport()


def _bare(
    status: int, reason: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Return an upgrade's refusal as Misskey writes it: status line, headers, no body.

    Misskey then destroys the socket: the connection is not kept alive.
    """
    response = web.Response(status=status, reason=reason, headers=headers)
    response.force_close()
    return response

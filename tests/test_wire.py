"""The test server's channel main sends what real servers sent, action by action.

tests/fixtures/real_main_channel.json holds what Misskey 2026.3.2, Sharkey
2025.2.2 and Misskey 12.26.0 sent a listening user (bob) while another user
(admin) acted, distilled to the order of the events, which of them came
seconds later, and the fields of each notification. The same actions on the
test server must give the same.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
import itertools
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from custom_components.misskey.api import MisskeyClient

from .listening import WAIT
from .misskey_server import MISSKEY, MISSKEY_13, SHARKEY, MisskeyServer, User

REAL = json.loads(
    (Path(__file__).parent / "fixtures" / "real_main_channel.json").read_text()
)

type Action = Callable[[MisskeyServer, "Users"], Awaitable[None]]


class Users:
    """Bob, who listens, and admin, who acts; each with a client of his own."""

    def __init__(self, session: aiohttp.ClientSession, server: MisskeyServer) -> None:
        """Add both users to the server."""
        self.bob: User = server.add_user("bob")
        self.admin: User = server.add_user("admin")
        self.as_bob = MisskeyClient(session, server.url, self.bob.native_token)
        self.as_admin = MisskeyClient(session, server.url, self.admin.native_token)

    async def admin_does(self, endpoint: str, **params: Any) -> Any:
        """Call an endpoint as admin."""
        return await self.as_admin.request(endpoint, params, authenticated=True)

    async def bob_note(self, **params: Any) -> dict[str, Any]:
        """Post a note as bob, before the action."""
        result: dict[str, Any] = await self.as_bob.request(
            "notes/create", {"text": "bob's note", **params}, authenticated=True
        )
        return result["createdNote"]


async def mention(server: MisskeyServer, users: Users) -> None:
    """Admin: a public note with @bob."""
    await users.admin_does("notes/create", text="hello @bob")


async def reply(server: MisskeyServer, users: Users) -> None:
    """Admin replies to bob's note."""
    note = await users.bob_note()
    await users.admin_does("notes/create", text="a reply", replyId=note["id"])


async def specified(server: MisskeyServer, users: Users) -> None:
    """Admin: a note only bob sees, without @ in its text."""
    await users.admin_does(
        "notes/create",
        text="just for you",
        visibility="specified",
        visibleUserIds=[users.bob.id],
    )


async def follow(server: MisskeyServer, users: Users) -> None:
    """Admin follows bob."""
    await users.admin_does("following/create", userId=users.bob.id)


async def reaction(server: MisskeyServer, users: Users) -> None:
    """Admin reacts 👍 to bob's note."""
    note = await users.bob_note()
    await users.admin_does("notes/reactions/create", noteId=note["id"], reaction="👍")


async def reaction_unknown_emoji(server: MisskeyServer, users: Users) -> None:
    """Admin reacts with a custom emoji the server does not have."""
    note = await users.bob_note()
    await users.admin_does(
        "notes/reactions/create", noteId=note["id"], reaction=":unknown_emoji:"
    )


async def renote(server: MisskeyServer, users: Users) -> None:
    """Admin renotes bob's note."""
    note = await users.bob_note()
    await users.admin_does("notes/create", renoteId=note["id"])


async def quote(server: MisskeyServer, users: Users) -> None:
    """Admin quotes bob's note."""
    note = await users.bob_note()
    await users.admin_does("notes/create", text="look", renoteId=note["id"])


async def chat(server: MisskeyServer, users: Users) -> None:
    """Admin sends bob a chat message (Misskey 12: a messaging message)."""
    if server.variant == MISSKEY:
        await users.admin_does(
            "chat/messages/create-to-user", toUserId=users.bob.id, text="hi"
        )
    elif server.variant == MISSKEY_13:
        await users.admin_does(
            "messaging/messages/create", userId=users.bob.id, text="hi"
        )


async def poll(server: MisskeyServer, users: Users) -> None:
    """Bob's poll ends."""
    note = await users.bob_note(poll={"choices": ["a", "b"], "expiredAfter": 3000})
    await server.end_poll(note["id"])


async def mark_all_as_read(server: MisskeyServer, users: Users) -> None:
    """Bob reads all his notifications (with his own token)."""
    await users.as_bob.request("notifications/mark-all-as-read", authenticated=True)


ACTIONS: dict[str, Action] = {
    "mention": mention,
    "reply": reply,
    "specified": specified,
    "follow": follow,
    "reaction": reaction,
    "reaction_unknown_emoji": reaction_unknown_emoji,
    "renote": renote,
    "quote": quote,
    "chat": chat,
    "poll": poll,
    "mark_all_as_read": mark_all_as_read,
}
# Misskey 12 tells the author of each vote instead of when a poll ends, and the
# test server has no votes.
LEFT_OUT = {(MISSKEY_13, "poll")}


@pytest.fixture
async def session(socket_enabled: None) -> AsyncGenerator[aiohttp.ClientSession]:
    """Return a plain aiohttp session, as a script on the real servers used."""
    async with aiohttp.ClientSession() as session:
        yield session


async def frames_of(
    server: MisskeyServer,
    session: aiohttp.ClientSession,
    users: Users,
    action: Action,
) -> list[list[Any]]:
    """Return [delayed, event, notification type, fields] of what main sent bob.

    Delayed: sent by one of the server's timers (seconds later on a real
    server), which the test holds (StreamHub.hold_timers) and then runs.
    """
    markers = itertools.count()
    async with session.ws_connect(
        f"{server.url.replace('http', 'ws')}/streaming?i={users.bob.native_token}"
    ) as ws:
        await ws.send_json(
            {
                "type": "connect",
                "body": {"channel": "main", "id": "m1", "params": {}, "pong": True},
            }
        )
        assert (await ws.receive_json())["type"] == "connected"

        async def read(delayed: bool) -> list[list[Any]]:
            """Read what bob was sent until a marker sent after it (in order)."""
            marker = {"type": "marker", "body": next(markers)}
            await server.streams.send_raw(users.bob, json.dumps(marker))
            frames: list[list[Any]] = []
            while (message := await ws.receive_json(timeout=WAIT)) != marker:
                if message["type"] != "channel":
                    continue
                event, body = message["body"]["type"], message["body"]["body"]
                if isinstance(body, dict) and body.get("userId") == users.bob.id:
                    # Bob's own setup notes make no events for him; a safety net.
                    continue
                kind = (
                    body.get("type")
                    if event in ("notification", "unreadNotification")
                    else None
                )
                frames.append(
                    [
                        delayed,
                        event,
                        kind,
                        sorted(body) if event == "notification" else None,
                    ]
                )
            return frames

        await action(server, users)
        frames = await read(delayed=False)
        await server.streams.run_timers()
        frames += await read(delayed=True)
        # Nothing is left to come later.
        assert server.streams.held == []
        return frames


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
@pytest.mark.parametrize("action", ACTIONS)
async def test_main_channel_as_real_servers(
    misskey: MisskeyServer,
    session: aiohttp.ClientSession,
    variant: str,
    action: str,
) -> None:
    """Each action sends bob the events a real server of the variant sent."""
    if (variant, action) in LEFT_OUT:
        pytest.skip("not played by the test server")
    misskey.streams.hold_timers()
    users = Users(session, misskey)
    if action == "mark_all_as_read":
        # Its unread hint goes before bob listens, as seconds later it would.
        await mention(misskey, users)
        await misskey.streams.run_timers()
    frames = await frames_of(misskey, session, users, ACTIONS[action])
    assert frames == REAL[variant][action]

"""Every fault between Home Assistant and Misskey ends in recovery, re-authentication or a clear message.

The table: for each state the account can be in when a fault strikes, each
fault as the test server plays it, and what the user then sees:

- ``recovers``: events go on without help; a mention made during the fault
  fires once (caught up), and so does one made after;
- ``polls``: the same, by polling ``i/notifications`` (no WebSockets);
- ``no_catch_up``: live events go on; what was missed is not caught up (the
  account did not allow reading notifications);
- ``no_events``: nothing can arrive, and the event entities say so;
- ``reauth``: Home Assistant asks to re-authenticate; the event entities are
  unavailable until the credential works again;
- ``suspended``: the account's moderators suspended it; the event entities are
  unavailable until they lift it, then what was missed arrives once.

Whatever the outcome, the log holds at most one warning for the outage, no
traceback, and never the credential. Posting and uploading have their rows in
tests/test_faults_actions.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
import logging
import socket
from unittest.mock import patch

import aiohttp
import aiohttp.abc
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.api import (
    MisskeyCannotConnectError,
    MisskeyClient,
    MisskeyStream,
)
from custom_components.misskey.const import DOMAIN
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant

from .conftest import HANG_TIMEOUT
from .listening import Events, entity_id, post_as, set_up, until
from .misskey_server import ERROR_IDS, MisskeyServer
from .misskey_stream import StreamHub, UpgradeFault

pytestmark = pytest.mark.usefixtures("fast_listener", "fast_requests")

HTML = "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"
# Over the stream's 4 MiB bound.
OVERSIZED = '{"type":"channel","body":{"x":"' + "x" * (4 * 1024 * 1024) + '"}}'


@pytest.fixture
def fast_requests() -> Generator[None]:
    """Give up on an unanswered request after HANG_TIMEOUT (1 s), not 10 s."""
    with patch("custom_components.misskey.api.transport.DEFAULT_TIMEOUT", HANG_TIMEOUT):
        yield


def api_error(code: str, message: str, kind: str = "client") -> dict[str, object]:
    """Return Misskey's error body."""
    return {
        "error": {"message": message, "code": code, "id": ERROR_IDS[code], "kind": kind}
    }


AUTHENTICATION_FAILED = api_error(
    "AUTHENTICATION_FAILED",
    "Authentication failed. Please ensure your token is correct.",
)
PERMISSION_DENIED = api_error(
    "PERMISSION_DENIED",
    "Your app does not have the necessary permissions to use this endpoint.",
    "permission",
)


@dataclass
class Scene:
    """The account being heard, and what a fault may do to it."""

    hass: HomeAssistant
    misskey: MisskeyServer
    entry: MockConfigEntry
    bob: MisskeyClient

    @property
    def streams(self) -> StreamHub:
        """Return the server's streaming side."""
        return self.misskey.streams

    async def mention(self, text: str) -> str:
        """Have bob mention the account; return the note's ID."""
        return str((await post_as(self.bob, text=f"@alice {text}"))["id"])

    async def away(
        self, cut: Callable[[], object], then: Callable[[], object] = lambda: None
    ) -> str:
        """Cut the connection, arm the next attempt's fault, mention meanwhile.

        Upgrades wait until the mention is made, so it can only arrive by
        catching up, after whatever ``then`` does to the next attempt.
        """
        self.streams.hold()
        if isinstance(result := cut(), Awaitable):
            await result
        await until(lambda: not self.streams.joined(self.misskey.user))
        if isinstance(result := then(), Awaitable):
            await result
        note = await self.mention("while away")
        self.streams.release()
        return note


# A strike does the fault to the scene; it returns the mention made meanwhile,
# if one was.
Strike = Callable[[Scene], Awaitable[str | None]]


def at_upgrade(fault: UpgradeFault, count: int = 1) -> Strike:
    """Answer the next ``count`` upgrades after a lost connection with ``fault``."""

    async def strike(scene: Scene) -> str:
        return await scene.away(
            scene.streams.drop, lambda: scene.streams.fail_upgrades(fault, count)
        )

    return strike


def at_catch_up(kind: str, count: int = 1, **kwargs: object) -> Strike:
    """Answer the catch-up after a lost connection with a fault, ``count`` times."""

    async def strike(scene: Scene) -> str:
        return await scene.away(
            scene.streams.drop,
            lambda: scene.misskey.fail_next("i/notifications", kind, count, **kwargs),
        )

    return strike


def while_polling(kind: str, count: int = 1, **kwargs: object) -> Strike:
    """Answer the next polls with a fault; mention the account meanwhile."""

    async def strike(scene: Scene) -> str:
        scene.misskey.fail_next("i/notifications", kind, count, **kwargs)
        return await scene.mention("while polling fails")

    return strike


async def revoke(scene: Scene) -> None:
    """Revoke the credential (as the user does in Misskey's settings), then cut the socket."""
    scene.misskey.revoke()
    scene.streams.drop()


async def suspend(scene: Scene) -> str:
    """Have the server's moderators suspend the account (the socket stays open)."""
    scene.misskey.user.is_suspended = True
    return await scene.away(scene.streams.drop)


async def suspend_while_polling(scene: Scene) -> str:
    """Suspend the account while it is polled."""
    scene.misskey.user.is_suspended = True
    return await scene.mention("while suspended")


async def revoke_while_polling(scene: Scene) -> None:
    """Revoke the credential while the account is polled."""
    scene.misskey.revoke()


async def drop(scene: Scene) -> str:
    """Cut the socket without a close frame, as a network fault does."""
    return await scene.away(scene.streams.drop)


async def close_1011(scene: Scene) -> str:
    """Close the socket with 1011, as a server failing inside does."""
    return await scene.away(lambda: scene.streams.close_sockets(1011))


async def oversized(scene: Scene) -> str:
    """Send a message over the stream's bound; the client ends the connection."""
    return await scene.away(
        lambda: scene.streams.send_raw(scene.misskey.user, OVERSIZED)
    )


async def stall(scene: Scene) -> str:
    """Stop answering on the open socket, as a lost NAT entry does."""
    scene.streams.hold()
    scene.streams.stall()
    note = await scene.mention("while stalled")
    scene.streams.release()
    return note


async def restart(scene: Scene) -> str:
    """Restart the server: sockets cut, the port closed, then open again."""
    scene.streams.hold()
    await scene.misskey.go_down()
    await scene.misskey.come_back()
    note = await scene.mention("after the restart")
    scene.streams.release()
    return note


async def malformed(scene: Scene) -> None:
    """Send what is not JSON, or not what Misskey sends, on the open socket."""
    user = scene.misskey.user
    (connection,) = scene.streams.joined(user)
    channel = f'"id":"{connection.main_id}"'
    for text in (
        "{not json",
        "[]",
        '{"type":"channel","body":"x"}',
        '{"type":"channel","body":{' + channel + ',"type":7}}',
        '{"type":"channel","body":{' + channel + ',"type":"notification","body":'
        '{"id":"0","type":"mention","note":[],"user":"x","createdAt":5}}}',
        '{"type":"channel","body":{' + channel + ',"type":"newChatMessage",'
        '"body":{"id":1,"fromUser":[]}}}',
        '{"type":"emojiAdded","body":{"emoji":{"name":"x"}}}',
    ):
        await scene.streams.send_raw(user, text)


@dataclass(frozen=True)
class Row:
    """A fault, how it strikes, and what the user sees."""

    state: str
    fault: str
    strike: Strike
    outcome: str
    # Whether the connection ends (so that recovering means a new one).
    cuts: bool = True


ROWS = [
    # The upgrade of a reconnect.
    Row("connecting", "refused upgrade (a proxy's page)", at_upgrade(UpgradeFault("status", 404, body=HTML)), "polls"),
    Row("connecting", "401", revoke, "reauth"),
    Row("connecting", "403 (a proxy)", at_upgrade(UpgradeFault("status", 403)), "polls"),
    Row("connecting", "403 (account suspended)", suspend, "suspended"),
    Row("connecting", "429 with Retry-After", at_upgrade(UpgradeFault("status", 429, {"Retry-After": "1"})), "recovers"),
    Row("connecting", "429 without Retry-After", at_upgrade(UpgradeFault("status", 429), 2), "recovers"),
    Row("connecting", "5xx", at_upgrade(UpgradeFault("status", 502, body=HTML), 3), "recovers"),
    Row("connecting", "connection reset", at_upgrade(UpgradeFault("drop"), 2), "recovers"),
    Row("connecting", "stall (no answer)", at_upgrade(UpgradeFault("hang")), "recovers"),
    Row("connecting", "server restart", restart, "recovers"),
    # An open connection.
    Row("streaming", "401 (revoked, then dropped)", revoke, "reauth"),
    Row("streaming", "5xx (close 1011)", close_1011, "recovers"),
    Row("streaming", "connection reset", drop, "recovers"),
    Row("streaming", "stall", stall, "recovers"),
    Row("streaming", "malformed messages", malformed, "recovers", cuts=False),
    Row("streaming", "oversized message", oversized, "recovers"),
    Row("streaming", "server restart", restart, "recovers"),
    # WebSockets refused: i/notifications every POLL_INTERVAL.
    Row("polling", "401", revoke_while_polling, "reauth"),
    Row("polling", "403 (no read:notifications)", while_polling("json", status=403, body=PERMISSION_DENIED), "no_events"),
    Row("polling", "403 (account suspended)", suspend_while_polling, "suspended"),
    Row("polling", "429 with Retry-After", while_polling("rate_limit", retry_after=0.3), "polls"),
    Row("polling", "429 without Retry-After", while_polling("json", status=429, body=api_error("RATE_LIMIT_EXCEEDED", "Rate limit exceeded.")), "polls"),
    Row("polling", "5xx", while_polling("server_error", 2), "polls"),
    Row("polling", "connection reset", while_polling("drop", 2), "polls"),
    Row("polling", "stall", while_polling("hang", delay=30), "polls"),
    Row("polling", "malformed answer", while_polling("html", status=200), "polls"),
    # i/notifications after a reconnect.
    Row("catching up", "401", at_catch_up("json", status=401, body=AUTHENTICATION_FAILED), "reauth"),
    Row("catching up", "403 (no read:notifications)", at_catch_up("json", status=403, body=PERMISSION_DENIED), "no_catch_up"),
    Row("catching up", "429 with Retry-After", at_catch_up("rate_limit", retry_after=0.3), "recovers"),
    Row("catching up", "429 without Retry-After", at_catch_up("json", status=429, body=api_error("RATE_LIMIT_EXCEEDED", "Rate limit exceeded.")), "recovers"),
    Row("catching up", "5xx", at_catch_up("server_error", 2), "recovers"),
    Row("catching up", "connection reset", at_catch_up("drop"), "recovers"),
    Row("catching up", "stall", at_catch_up("hang", delay=30), "recovers"),
    Row("catching up", "malformed answer", at_catch_up("json", status=200, body={"x": 1}), "recovers"),
]  # fmt: skip


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.state}: {r.fault}" for r in ROWS])
async def test_fault(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    row: Row,
) -> None:
    """The fault ends as the row says, with one warning at most and no traceback."""
    if row.strike is stall:
        # Only pings notice a stalled socket.
        request.getfixturevalue("stall_heartbeat")
    if row.state == "polling":
        misskey.streams.refuse_status = 404
        mock_config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
        await until(lambda: misskey.calls("i/notifications"))
    else:
        await set_up(hass, misskey, mock_config_entry)
    scene = Scene(hass, misskey, mock_config_entry, as_bob)
    listener = mock_config_entry.runtime_data.listener
    mentions_id = entity_id(hass, mock_config_entry, "event", "mentions")
    streaming = entity_id(hass, mock_config_entry, "binary_sensor", "streaming")
    mentions = Events(hass, mentions_id)
    since = listener.connected_since
    caplog.clear()
    caplog.set_level(logging.DEBUG, "custom_components.misskey")

    during = await row.strike(scene)

    if row.outcome in ("reauth", "suspended"):
        if row.outcome == "reauth":
            await until(lambda: reauth_flows(hass))
            await until(lambda: listener.mode == "authentication_failed")
        else:
            await until(lambda: listener.mode == "suspended")
            assert not reauth_flows(hass)
            misskey.user.is_suspended = False
        assert hass.states.get(mentions_id).state == STATE_UNAVAILABLE
        assert hass.states.get(streaming).state == STATE_OFF
        if misskey.tokens:
            # The account works again: its next read says so, and what was
            # missed arrives once.
            await mock_config_entry.runtime_data.coordinator.async_refresh()
            wanted = "polling" if row.state == "polling" else "streaming"
            await until(lambda: listener.mode == wanted)
            await mentions.wait(1)
            assert mentions.note_ids() == [during]
            assert hass.states.get(mentions_id).state != STATE_UNAVAILABLE
    elif row.outcome == "no_events":
        await until(lambda: listener.mode == "refused")
        assert hass.states.get(mentions_id).state == STATE_UNAVAILABLE
        assert hass.states.get(streaming).state == STATE_OFF
    else:
        wanted = "polling" if row.outcome == "polls" else "streaming"
        await until(
            lambda: (
                listener.mode == wanted
                and (
                    not row.cuts
                    or row.state == "polling"
                    or listener.connected_since != since
                )
            )
        )
        after = await scene.mention("after")
        heard = [after] if row.outcome == "no_catch_up" else [during, after]
        await mentions.wait(len([n for n in heard if n is not None]))
        assert mentions.note_ids() == [n for n in heard if n is not None]
        assert hass.states.get(streaming).state == (
            STATE_ON if wanted == "streaming" else STATE_OFF
        )
        assert not reauth_flows(hass)

    ours = [r for r in caplog.records if r.name.startswith("custom_components")]
    assert len([r for r in ours if r.levelno >= logging.WARNING]) <= 1
    assert not any(r.exc_info for r in ours)
    assert mock_config_entry.data["i"] not in caplog.text
    assert mock_config_entry.data["i"] not in str(listener.diagnostics())


def reauth_flows(hass: HomeAssistant) -> list[object]:
    """Return the re-authentication flows in progress."""
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


class _NoNames(aiohttp.abc.AbstractResolver):
    """A resolver for a network whose DNS is down: no name resolves."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[aiohttp.abc.ResolveResult]:
        """Fail as getaddrinfo does when no server answers."""
        raise OSError(socket.EAI_AGAIN, "Temporary failure in name resolution")

    async def close(self) -> None:
        """Nothing to close."""


async def test_dns_failure_is_a_connection_that_cannot_be_made(
    misskey: MisskeyServer,
) -> None:
    """DNS down: the API and the stream fail as for a server that is down.

    Home Assistant's own session cannot be given a broken resolver, so this row
    is shown on the client; the listener treats that error as it does a
    server restart (the rows above): one warning, retried, recovered.
    """
    connector = aiohttp.TCPConnector(resolver=_NoNames())
    async with aiohttp.ClientSession(connector=connector) as session:
        url = misskey.url.replace("127.0.0.1", "misskey.test")
        with pytest.raises(MisskeyCannotConnectError) as err:
            await MisskeyClient(session, url, "credential").account()
        assert "credential" not in str(err.value)
        stream = MisskeyStream(session, url, "credential")
        with pytest.raises(MisskeyCannotConnectError) as err:
            await stream.connect()
        assert "credential" not in str(err.value)

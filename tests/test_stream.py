"""The streaming client against the test server's /streaming, over real WebSockets."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp
import pytest

from custom_components.misskey.api import (
    MisskeyAuthenticationError,
    MisskeyClient,
    MisskeyConnectionError,
    MisskeyError,
    MisskeyRateLimitError,
    MisskeyStream,
    MisskeyStreamRefusedError,
    MisskeyTimeoutError,
    StreamEvent,
)

from .conftest import STALL_HEARTBEAT, authorize
from .misskey_server import MISSKEY, MISSKEY_13, SHARKEY, MisskeyServer


@pytest.fixture
async def session(socket_enabled: None) -> AsyncGenerator[aiohttp.ClientSession]:
    """Return an aiohttp session."""
    async with aiohttp.ClientSession() as session:
        yield session


def stream(
    session: aiohttp.ClientSession,
    misskey: MisskeyServer,
    credential: str,
    *,
    heartbeat: float = 30,
    connect_timeout: float = 10,
) -> MisskeyStream:
    """Return a stream; short timeouts only where a test wants them to end it.

    A healthy connection must not be given up because a loaded machine was
    slow to answer: no pings (a heartbeat longer than any test here) and ten
    seconds to connect, unless a test says otherwise.
    """
    return MisskeyStream(
        session,
        misskey.url,
        credential,
        heartbeat=heartbeat,
        connect_timeout=connect_timeout,
    )


async def next_event(misskey_stream: MisskeyStream) -> StreamEvent:
    """Return the next event of main."""
    async for event in misskey_stream.events():
        return event
    raise AssertionError("no event")


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
async def test_joins_main_and_yields_its_events(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """The app credential joins main; its events come, others' do not."""
    client = stream(session, misskey, authorize(misskey))
    await client.connect()
    assert client.connected
    (connection,) = misskey.streams.joined(misskey.user)
    assert connection.received[0]["body"]["pong"] is True
    # An event for someone else, then one for the account.
    other = misskey.add_user("bob")
    await misskey.streams.publish_main(other.id, "followed", {"id": "x"})
    await misskey.streams.publish_main(misskey.user.id, "followed", {"id": "y"})
    assert await next_event(client) == StreamEvent("followed", {"id": "y"})
    await client.close()
    assert not client.connected


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY])
async def test_refused_credential_is_401(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """A revoked credential, or an app without read:account, is refused before the upgrade."""
    credential = authorize(misskey)
    misskey.revoke()
    no_read = authorize(misskey, ["write:notes"])
    for refused in (credential, no_read):
        with pytest.raises(MisskeyAuthenticationError) as err:
            await stream(session, misskey, refused).connect()
        assert refused not in str(err.value)
        assert refused not in repr(err.value)
    assert not misskey.streams.connections


@pytest.mark.parametrize("variant", [MISSKEY_13])
async def test_misskey_12_never_answers_a_refused_credential(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """Misskey 12 leaves the upgrade unanswered: the timeout ends it."""
    credential = authorize(misskey)
    misskey.revoke()
    with pytest.raises(MisskeyTimeoutError) as err:
        await stream(session, misskey, credential, connect_timeout=0.5).connect()
    assert credential not in str(err.value)


@pytest.mark.parametrize("status", [200, 400, 403, 404, 426])
async def test_refused_upgrade(
    misskey: MisskeyServer, session: aiohttp.ClientSession, status: int
) -> None:
    """A page instead of a WebSocket says that streaming is refused, with its status."""
    misskey.streams.refuse_status = status
    credential = authorize(misskey)
    with pytest.raises(MisskeyStreamRefusedError) as err:
        await stream(session, misskey, credential).connect()
    assert err.value.status == status
    assert credential not in str(err.value)


@pytest.mark.parametrize("status", [500, 502])
async def test_server_error_on_upgrade_is_retried_later(
    misskey: MisskeyServer, session: aiohttp.ClientSession, status: int
) -> None:
    """A 5xx is the server's trouble, not a refusal of WebSockets."""
    misskey.streams.refuse_status = status
    with pytest.raises(MisskeyError) as err:
        await stream(session, misskey, authorize(misskey)).connect()
    assert not isinstance(err.value, MisskeyStreamRefusedError)


@pytest.mark.parametrize("variant", [SHARKEY])
async def test_sharkey_limits_upgrades(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """Sharkey allows 32 upgrades in 5 minutes; the 33rd is a rate limit."""
    credential = authorize(misskey)
    for _ in range(32):
        client = stream(session, misskey, credential)
        await client.connect()
        await client.close()
    with pytest.raises(MisskeyRateLimitError) as err:
        await stream(session, misskey, credential).connect()
    # A bare 429, as on a running Sharkey: it says nothing of when.
    assert err.value.retry_after is None


async def test_dropped_socket_ends_the_events(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """A socket cut without a close frame ends the iteration with an error."""
    client = stream(session, misskey, authorize(misskey))
    await client.connect()
    misskey.streams.drop()
    with pytest.raises(MisskeyConnectionError):
        await next_event(client)


async def test_stalled_socket_ends_the_events(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """A socket that answers no ping is given up after 1.5 heartbeats."""
    client = stream(session, misskey, authorize(misskey), heartbeat=0.2)
    await client.connect()
    misskey.streams.stall()
    with pytest.raises(MisskeyTimeoutError):
        await next_event(client)


async def test_idle_socket_stays(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """A healthy socket with nothing to say answers pings and stays open."""
    # Each ping may wait half a second for its answer, far longer than a
    # loaded machine takes (a shorter heartbeat gave up healthy sockets).
    client = stream(session, misskey, authorize(misskey), heartbeat=STALL_HEARTBEAT)
    await client.connect()
    events = client.events()
    # Two and a half heartbeats of silence (two pings answered), then an event.
    misskey.streams.later(
        2.5 * STALL_HEARTBEAT,
        lambda: misskey.streams.publish_main(misskey.user.id, "meUpdated", {}),
    )
    assert await anext(events) == StreamEvent("meUpdated", {})
    await client.close()


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
async def test_notifications_oldest_first_and_unread(
    misskey: MisskeyServer, session: aiohttp.ClientSession
) -> None:
    """i/notifications comes back oldest first either way, and leaves them unread."""
    bob = misskey.add_user("bob")
    as_bob = MisskeyClient(session, misskey.url, bob.native_token)
    for n in range(3):
        await as_bob.request(
            "notes/create", {"text": f"@alice {n}"}, authenticated=True
        )
    client = MisskeyClient(session, misskey.url, authorize(misskey))
    everything = await client.notifications()
    assert [n.note["text"] for n in everything if n.note] == [
        "@alice 0",
        "@alice 1",
        "@alice 2",
    ]
    since = await client.notifications(since_id=everything[0].id)
    assert [n.id for n in since if n.id != everything[0].id] == [
        n.id for n in everything[1:]
    ]
    assert all(c.body["markAsRead"] is False for c in misskey.calls("i/notifications"))
    assert misskey.streams.unread_count(misskey.user) == 3

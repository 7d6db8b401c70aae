"""Fixtures for the Misskey tests: a Misskey server on loopback and an account on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator
from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

# Imported before Home Assistant looks for it, so this checkout's integration
# wins over the plugin's testing_config/custom_components.
import custom_components.misskey  # noqa: F401
from custom_components.misskey.api import MisskeyClient, credential_from_access_token
from custom_components.misskey.const import (
    APP_PERMISSIONS,
    CONF_CREDENTIAL,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    CONF_PERMISSIONS,
    DEFAULT_LOCAL_ONLY,
    DEFAULT_VISIBILITY,
    DOMAIN,
    LEGACY_PERMISSIONS,
)
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .listening import WAIT, until
from .misskey_server import AccessToken, App, MisskeyServer, User, reserve_port


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load integrations from custom_components."""


@pytest.fixture
def variant() -> str:
    """Return the Misskey variant the server plays; tests override it."""
    return "misskey"


@pytest.fixture
async def misskey(socket_enabled: None, variant: str) -> AsyncGenerator[MisskeyServer]:
    """Run a Misskey server on 127.0.0.1 for the test."""
    server = MisskeyServer(variant)
    await server.start()
    yield server
    await server.close()


# How long a client waits for an answer in a test where the server hangs on
# purpose. The test's other requests wait as long: a tenth of a second, which
# a loaded machine sometimes takes, would make them fail too.
HANG_TIMEOUT = 1.0


@pytest.fixture
def refused_port(socket_enabled: None) -> Generator[int]:
    """Return a port on 127.0.0.1 where nothing listens, for the whole test.

    A port found free and let go (pytest's unused_tcp_port) may be taken by
    the next server anything on the machine starts; this one stays bound
    (see reserve_port), so connections to it are refused until the test ends.
    """
    with reserve_port() as sock:
        yield sock.getsockname()[1]


# The heartbeat of tests that need a stalled socket noticed (stall_heartbeat):
# a ping after 1 s of silence, given up 0.5 s later. Anything shorter gives up
# healthy sockets on a loaded machine, where the event loop may not get to the
# answer for a tenth of a second (both ends run in the test's one loop).
STALL_HEARTBEAT = 1.0


@pytest.fixture
def fast_listener(misskey: MisskeyServer) -> Generator[None]:
    """Reconnect and poll in milliseconds; the server hints unread at once.

    Timeouts that end a healthy connection when missed stay long enough for
    a loaded machine: no pings (a heartbeat longer than any test's silence,
    see STALL_HEARTBEAT for tests of a stalled socket), and 2 s to connect.
    """
    misskey.streams.unread_delay = 0.05
    misskey.streams.chat_delay = 0.05
    with patch.multiple(
        "custom_components.misskey.listener",
        RECONNECT_MIN_DELAY=0.05,
        RECONNECT_MAX_DELAY=0.2,
        STREAM_HEARTBEAT=30.0,
        STREAM_CONNECT_TIMEOUT=2.0,
        RECONNECT_MAX_RETRY_AFTER=2.0,
        POLL_INTERVAL=timedelta(seconds=0.05),
        STREAM_RETRY_INTERVAL=timedelta(seconds=0.5),
    ):
        yield


@pytest.fixture
def stall_heartbeat(fast_listener: None) -> Generator[None]:
    """Ping after STALL_HEARTBEAT s of silence, so that a stalled socket is noticed."""
    with patch("custom_components.misskey.listener.STREAM_HEARTBEAT", STALL_HEARTBEAT):
        yield


@pytest.fixture
def bob(misskey: MisskeyServer) -> User:
    """Return another user of the server, who talks to the account."""
    return misskey.add_user("bob", name="Bob")


@pytest.fixture
async def as_bob(
    hass: HomeAssistant, misskey: MisskeyServer, bob: User
) -> AsyncGenerator[MisskeyClient]:
    """Return a client signed in as bob with his own token.

    It waits for answers as long as a test waits for anything (tests/listening.py's
    WAIT), whatever timeout the test gives the account's own requests.
    """
    return MisskeyClient(
        async_get_clientsession(hass),
        misskey.url,
        bob.native_token,
        request_timeout=WAIT,
    )


@pytest.fixture
def carol(misskey: MisskeyServer) -> User:
    """Return a third user of the server, whom nobody follows."""
    return misskey.add_user("carol", name="Carol")


@pytest.fixture
async def as_carol(
    hass: HomeAssistant, misskey: MisskeyServer, carol: User
) -> MisskeyClient:
    """Return a client signed in as carol, waiting as long as as_bob does."""
    return MisskeyClient(
        async_get_clientsession(hass),
        misskey.url,
        carol.native_token,
        request_timeout=WAIT,
    )


@pytest.fixture
def fast_authorization() -> Generator[None]:
    """Poll the session every few milliseconds instead of every few seconds."""
    with patch("custom_components.misskey.config_flow.AUTHORIZE_POLL_INTERVAL", 0.01):
        yield


def authorize(server: MisskeyServer, permission: list[str] | None = None) -> str:
    """Authorize an app for the server's user as the config flow would; return ``i``."""
    app_id = f"app{len(server.apps)}"
    app = App(
        id=app_id,
        name="Home Assistant",
        description="",
        permission=permission or list(APP_PERMISSIONS),
        callback_url=None,
        secret=f"secret{app_id}".ljust(32, "x"),
    )
    server.apps[app.id] = app
    raw = f"token{app_id}".ljust(32, "y")
    credential = credential_from_access_token(raw, app.secret)
    server.tokens.append(
        AccessToken(raw, credential, app.id, server.user.id, list(app.permission))
    )
    return credential


# The options the config flow gives a new account.
NEW_ENTRY_OPTIONS = {
    CONF_DEFAULT_VISIBILITY: DEFAULT_VISIBILITY,
    CONF_DEFAULT_LOCAL_ONLY: DEFAULT_LOCAL_ONLY,
}


@pytest.fixture
def mock_config_entry(misskey: MisskeyServer) -> MockConfigEntry:
    """Return an entry for the server's user, as the config flow makes it now."""
    host = misskey.url.removeprefix("http://")
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"@{misskey.user.username}@{host}",
        unique_id=f"{misskey.user.id}@{host}",
        minor_version=3,
        data={
            CONF_URL: misskey.url,
            CONF_CREDENTIAL: authorize(misskey),
            CONF_PERMISSIONS: list(APP_PERMISSIONS),
        },
        options=NEW_ENTRY_OPTIONS,
    )


@pytest.fixture
def legacy_config_entry(misskey: MisskeyServer) -> MockConfigEntry:
    """Return an entry as set-ups before entry version 1.2 made it.

    Its app has the permissions those versions asked for, and the entry does
    not record them.
    """
    host = misskey.url.removeprefix("http://")
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"@{misskey.user.username}@{host}",
        unique_id=f"{misskey.user.id}@{host}",
        minor_version=1,
        data={
            CONF_URL: misskey.url,
            CONF_CREDENTIAL: authorize(misskey, list(LEGACY_PERMISSIONS)),
        },
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    request: pytest.FixtureRequest,
) -> MockConfigEntry:
    """Set up the integration with the account.

    In a test that moves the clock (freezer), the clock is frozen first. The
    event loop's time then is freezegun's, which is not the real monotonic
    clock: frozen under a running listener, every timer it had set (a
    request's timeout, say) would fall due at once, and one that fell due as
    the entry unloaded turned the unload's cancellation into a timeout, which
    the listener survived; the unload then waited for it on a clock that
    never moves (test_unload_leaves_nothing_behind hung now and then).
    """
    if "freezer" in request.fixturenames:
        request.getfixturevalue("freezer")
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Serialize Home Assistant's states and registry entries without volatile fields."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


# Fixed, so that snapshots do not change with the server's random IDs and port.
STABLE_USER_ID = "9wmbgk3a0001ab12"
STABLE_HOST = "misskey.test"


@pytest.fixture
def stable_entry(misskey: MisskeyServer) -> MockConfigEntry:
    """Return an entry for a user with a fixed ID and counts, titled without the port."""
    misskey.user = misskey.add_user(
        "carol",
        user_id=STABLE_USER_ID,
        name="Carol",
        email="carol@example.invalid",
        followers_count=42,
        following_count=7,
        notes_count=1234,
    )
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"@carol@{STABLE_HOST}",
        unique_id=f"{STABLE_USER_ID}@{STABLE_HOST}",
        minor_version=3,
        data={
            CONF_URL: misskey.url,
            CONF_CREDENTIAL: authorize(misskey),
            CONF_PERMISSIONS: list(APP_PERMISSIONS),
        },
        options=NEW_ENTRY_OPTIONS,
    )


def listener_tasks(hass: HomeAssistant) -> list[asyncio.Task[Any]]:
    """Return the accounts' listeners that run (a background task each)."""
    return [
        task
        for task in hass._background_tasks
        if not task.done() and task.get_name().startswith(f"{DOMAIN} listener")
    ]


async def settle(hass: HomeAssistant) -> None:
    """Wait for every task, background ones too, but the accounts' listeners.

    A listener runs as long as its account is loaded, so
    ``async_block_till_done(wait_background_tasks=True)`` would never return.
    """
    while True:
        await hass.async_block_till_done()
        listeners = listener_tasks(hass)
        pending = [
            task
            for task in hass._background_tasks
            if not task.done() and task not in listeners
        ]
        if not pending:
            return
        await asyncio.wait(pending)


async def until_pool_closed(hass: HomeAssistant) -> None:
    """Wait until Home Assistant's HTTP client saw its kept-alive connections end.

    After MisskeyServer.go_down(): the next request then opens a connection,
    which is refused (nothing was sent), as once a server has been down for a
    while; not sent on a kept-alive connection whose end is still on its way.
    """
    connector = async_get_clientsession(hass).connector
    assert connector is not None
    await until(
        lambda: (
            not any(
                protocol.is_connected()
                for pooled in connector._conns.values()
                for protocol, _ in pooled
            )
        )
    )

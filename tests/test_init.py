"""Tests for setting up, re-authenticating and unloading accounts."""

from __future__ import annotations

from collections.abc import AsyncGenerator
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.misskey.const import CONF_CREDENTIAL, DOMAIN, UPDATE_INTERVAL
from custom_components.misskey.notify import (
    CONF_ENTRY_ID,
    MisskeyNotificationService,
    async_get_service,
)
from homeassistant.components.notify import (
    ATTR_MESSAGE,
    DOMAIN as NOTIFY_DOMAIN,
    SERVICE_SEND_MESSAGE,
)
from homeassistant.components.notify.legacy import NOTIFY_SERVICES
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, CONF_URL, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import slugify

from .conftest import authorize, settle
from .listening import until
from .misskey_server import MisskeyServer

pytestmark = pytest.mark.usefixtures("fast_authorization")


def notify_service(entry: MockConfigEntry) -> str:
    """Return the name of the entry's legacy notify service."""
    return f"{DOMAIN}_{slugify(entry.title)}"


def entity_ids(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    """Return the entry's enabled entity IDs by unique ID."""
    return {
        e.unique_id: e.entity_id
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if e.disabled_by is None
    }


def reauth_flows(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    """Return the IDs of the re-authentication flows of the entry."""
    return [
        flow["flow_id"]
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
        and flow["context"].get("entry_id") == entry.entry_id
    ]


async def reauthorize(
    hass: HomeAssistant, misskey: MisskeyServer, flow_id: str
) -> None:
    """Allow access again on the server and finish the flow."""
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    (session,) = misskey.pending_sessions()
    misskey.accept_session(session.token)
    await settle(hass)
    result = await hass.config_entries.flow.async_configure(flow_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()


async def test_setup_and_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A working account loads with its entities and notify service.

    Silenced and suspended are there too, disabled until the user wants them.
    """
    assert init_integration.state is ConfigEntryState.LOADED
    unique_id = init_integration.unique_id
    assert set(entity_ids(hass, init_integration)) == {
        f"{unique_id}_notify",
        f"{unique_id}_followers",
        f"{unique_id}_following",
        f"{unique_id}_notes",
        f"{unique_id}_last_note",
        f"{unique_id}_bot",
        f"{unique_id}_cat",
        f"{unique_id}_locked",
        f"{unique_id}_moved",
        f"{unique_id}_unread_notifications",
        f"{unique_id}_streaming",
        f"{unique_id}_mentions",
        f"{unique_id}_direct_messages",
        f"{unique_id}_new_followers",
        f"{unique_id}_note_activity",
    }
    disabled = {
        e.unique_id
        for e in er.async_entries_for_config_entry(
            er.async_get(hass), init_integration.entry_id
        )
        if e.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    }
    assert disabled == {f"{unique_id}_silenced", f"{unique_id}_suspended"}
    assert hass.services.has_service(NOTIFY_DOMAIN, notify_service(init_integration))


async def test_unreachable_server_retries(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that is down at start-up is retried later, without an error in the log."""
    # Down, its port kept: nothing else can answer there.
    await misskey.go_down()
    mock_config_entry.add_to_hass(hass)
    with caplog.at_level(logging.DEBUG):
        assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert mock_config_entry.data[CONF_CREDENTIAL] not in caplog.text
    assert not reauth_flows(hass, mock_config_entry)


@pytest.mark.parametrize("endpoint", ["meta", "i"])
async def test_server_error_retries(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    endpoint: str,
) -> None:
    """A failing server is retried; once it works again, the entry loads."""
    misskey.fail_next(endpoint, "server_error")
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY

    await hass.config_entries.async_reload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED


async def test_revoked_credential_reauthenticates(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A revoked credential stops the entry and asks to re-authenticate.

    Allowing access again loads the entry with the same entities.
    """
    before = entity_ids(hass, init_integration)
    old = init_integration.data[CONF_CREDENTIAL]
    misskey.revoke()
    await hass.config_entries.async_reload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.SETUP_ERROR
    (flow_id,) = reauth_flows(hass, init_integration)

    await reauthorize(hass, misskey, flow_id)

    assert init_integration.state is ConfigEntryState.LOADED
    assert init_integration.data[CONF_CREDENTIAL] != old
    assert entity_ids(hass, init_integration) == before
    for entity_id in before.values():
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state != STATE_UNAVAILABLE
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        SERVICE_SEND_MESSAGE,
        {
            ATTR_ENTITY_ID: before[f"{init_integration.unique_id}_notify"],
            ATTR_MESSAGE: "Back again",
        },
        blocking=True,
    )
    assert misskey.calls("notes/create")[-1].body["text"] == "Back again"


@pytest.mark.parametrize("permission", [None, ["write:notes"]])
async def test_refused_credential_at_setup(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    permission: list[str] | None,
) -> None:
    """A wrong credential, or one without read:account, fails set-up and asks for reauth."""
    data = dict(mock_config_entry.data)
    if permission is None:
        data[CONF_CREDENTIAL] = "0" * 64
    else:
        data[CONF_CREDENTIAL] = authorize(misskey, permission)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data=data,
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert len(reauth_flows(hass, entry)) == 1


async def test_credential_revoked_while_running(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The next refresh after a revocation starts re-authentication."""
    assert not reauth_flows(hass, init_integration)
    misskey.revoke()
    freezer.tick(UPDATE_INTERVAL)
    async_fire_time_changed(hass)
    await settle(hass)
    (flow_id,) = reauth_flows(hass, init_integration)

    await reauthorize(hass, misskey, flow_id)
    assert init_integration.state is ConfigEntryState.LOADED
    assert not reauth_flows(hass, init_integration)


@pytest.fixture
async def other_misskey(misskey: MisskeyServer) -> AsyncGenerator[MisskeyServer]:
    """Run a second Misskey server (sockets are already enabled by ``misskey``)."""
    server = MisskeyServer()
    server.user = server.add_user("bob", name="Bob")
    await server.start()
    yield server
    await server.close()


async def test_two_accounts_on_two_servers(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    other_misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Two accounts side by side each post to their own server."""
    host = other_misskey.url.removeprefix("http://")
    other_entry = MockConfigEntry(
        domain=DOMAIN,
        title=f"@bob@{host}",
        unique_id=f"{other_misskey.user.id}@{host}",
        data={CONF_URL: other_misskey.url, CONF_CREDENTIAL: authorize(other_misskey)},
    )
    other_misskey.user.followers_count = 3
    for entry in (mock_config_entry, other_entry):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    for entry, server in ((mock_config_entry, misskey), (other_entry, other_misskey)):
        assert entry.state is ConfigEntryState.LOADED
        ids = entity_ids(hass, entry)
        assert len(ids) == 15
        await hass.services.async_call(
            NOTIFY_DOMAIN,
            SERVICE_SEND_MESSAGE,
            {
                ATTR_ENTITY_ID: ids[f"{entry.unique_id}_notify"],
                ATTR_MESSAGE: f"entity of {entry.title}",
            },
            blocking=True,
        )
        await hass.services.async_call(
            NOTIFY_DOMAIN,
            notify_service(entry),
            {ATTR_MESSAGE: f"service of {entry.title}"},
            blocking=True,
        )
        assert [r.body["text"] for r in server.calls("notes/create")] == [
            f"entity of {entry.title}",
            f"service of {entry.title}",
        ]
        followers = hass.states.get(ids[f"{entry.unique_id}_followers"])
        assert followers is not None
        assert followers.state == str(server.user.followers_count)


async def test_unload_leaves_nothing_behind(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Unloading makes the entities unavailable and removes the notify service."""
    ids = entity_ids(hass, init_integration)
    service = notify_service(init_integration)
    assert hass.services.has_service(NOTIFY_DOMAIN, service)

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()

    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert not hass.services.has_service(NOTIFY_DOMAIN, service)
    for entity_id in ids.values():
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.state == STATE_UNAVAILABLE
    calls = len(misskey.requests)
    # Nothing keeps polling the server, nor listening to it.
    assert not misskey.streams.joined(misskey.user)
    freezer.tick(UPDATE_INTERVAL * 2)
    async_fire_time_changed(hass)
    await settle(hass)
    assert len(misskey.requests) == calls

    # Loading it again brings everything back.
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    assert hass.services.has_service(NOTIFY_DOMAIN, service)
    assert entity_ids(hass, init_integration) == ids
    assert {entity_id.split(".")[0] for entity_id in ids.values()} == {
        Platform.BINARY_SENSOR,
        Platform.EVENT,
        Platform.NOTIFY,
        Platform.SENSOR,
    }


async def test_reload_keeps_one_notify_service(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Each reload replaces the entry's notify service; none piles up in notify.

    This reads notify's internal list (legacy.NOTIFY_SERVICES), which notify.py
    must clean as notify has no public way to drop one service: the test
    fails when a Home Assistant release changes it.
    """

    def ours() -> list[MisskeyNotificationService]:
        return [
            service
            for service in hass.data[NOTIFY_SERVICES].get(DOMAIN, [])
            if isinstance(service, MisskeyNotificationService)
        ]

    (first,) = ours()
    assert first.entry is init_integration
    for _ in range(2):
        assert await hass.config_entries.async_reload(init_integration.entry_id)
        await hass.async_block_till_done()
    (service,) = ours()
    assert service is not first
    assert hass.services.has_service(NOTIFY_DOMAIN, notify_service(init_integration))

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert ours() == []
    assert not hass.services.has_service(
        NOTIFY_DOMAIN, notify_service(init_integration)
    )

    # The service notify calls is the current one, whose entry is loaded.
    assert await hass.config_entries.async_setup(init_integration.entry_id)
    await hass.async_block_till_done()
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        notify_service(init_integration),
        {ATTR_MESSAGE: "after reloads"},
        blocking=True,
    )
    assert [r.body["text"] for r in misskey.calls("notes/create")] == ["after reloads"]


async def test_notify_service_only_by_discovery(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """The notify service comes from an entry: YAML or a vanished entry makes none."""
    assert await async_setup_component(
        hass, NOTIFY_DOMAIN, {NOTIFY_DOMAIN: [{"platform": DOMAIN, "name": "yaml"}]}
    )
    await hass.async_block_till_done()
    assert not hass.services.has_service(NOTIFY_DOMAIN, "yaml")
    assert await async_get_service(hass, {}, {CONF_ENTRY_ID: "gone"}) is None


async def test_unload_ends_a_post_waiting_out_a_rate_limit(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A note held by a 429 fails at once when the account unloads, and is not posted."""
    misskey.fail_next("notes/create", "rate_limit", retry_after=30)
    waiting = hass.async_create_task(
        hass.services.async_call(
            DOMAIN, "post", {"text": "held"}, blocking=True, return_response=True
        )
    )
    await until_called(misskey, "notes/create")
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    with pytest.raises(HomeAssistantError) as exc:
        await waiting
    assert exc.value.translation_key == "cannot_connect"
    assert len(misskey.calls("notes/create")) == 1
    assert not misskey.notes


async def until_called(misskey: MisskeyServer, endpoint: str) -> None:
    """Wait until the server received a call to ``endpoint``."""
    await until(lambda: misskey.calls(endpoint))


async def test_removing_the_account_forgets_what_it_kept(
    hass: HomeAssistant, init_integration: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    """Where its events stopped and Assist's conversations go with the account."""
    entry_id = init_integration.entry_id
    kept = (f"{DOMAIN}.{entry_id}", f"{DOMAIN}.{entry_id}.assist")
    for key in kept:
        hass_storage[key] = {"version": 1, "minor_version": 1, "key": key, "data": {}}
    await hass.config_entries.async_remove(entry_id)
    await hass.async_block_till_done()
    assert [key for key in kept if key in hass_storage] == []

"""The whole path on every Misskey variant: older Misskey, Firefish, FoundKey, Sharkey.

Each variant answers as the real servers of shared/reference/misskey-api.md do
(statuses, error shapes, limits); set-up, posting and re-authentication must
work on all of them.
"""

from __future__ import annotations

import itertools

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import CONF_CREDENTIAL, DOMAIN
from homeassistant.components.notify import (
    ATTR_MESSAGE,
    DOMAIN as NOTIFY_DOMAIN,
    SERVICE_SEND_MESSAGE,
)
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER, ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify

from .conftest import authorize, settle
from .listening import until
from .misskey_server import MISSKEY_13, SHARKEY, VARIANTS, MisskeyServer, Request

pytestmark = [
    pytest.mark.usefixtures("fast_authorization"),
    pytest.mark.parametrize("variant", VARIANTS),
]


def refused(requests: list[Request]) -> list[Request]:
    """Return the requests the server answered with 429."""
    return [r for r in requests if r.refused_until is not None]


def reauth_flows(hass: HomeAssistant) -> list[str]:
    """Return the IDs of the re-authentication flows in progress."""
    return [
        flow["flow_id"]
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


async def test_set_up_and_post(
    hass: HomeAssistant, misskey: MisskeyServer, variant: str
) -> None:
    """The config flow makes an entry that loads and posts, both ways."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: misskey.url}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    # The poller asks a few times while the user reads the page; Sharkey
    # answers the third poll within a second with 429 (Retry-After: 1).
    if variant == SHARKEY:
        await until(lambda: refused(misskey.calls("auth/session/userkey")))
    else:
        await until(lambda: len(misskey.calls("auth/session/userkey")) >= 2)
    (session,) = misskey.pending_sessions()
    misskey.accept_session(session.token)
    await settle(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    polls = misskey.calls("auth/session/userkey")
    assert len(polls) >= 3
    if variant == SHARKEY:
        # 400, 400, 429 (Retry-After: 1); the poller waited, then succeeded:
        # no poll before the moment a 429 named, one poll after the last 429.
        (*_, last_refused) = refused(polls)
        assert polls[-2] is last_refused
        for before, after in itertools.pairwise(polls):
            if before.refused_until is not None:
                assert after.at >= before.refused_until

    entity_id = er.async_get(hass).async_get_entity_id(
        NOTIFY_DOMAIN, DOMAIN, f"{entry.unique_id}_notify"
    )
    assert entity_id is not None
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        SERVICE_SEND_MESSAGE,
        {ATTR_ENTITY_ID: entity_id, ATTR_MESSAGE: "From the entity"},
        blocking=True,
    )
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        f"{DOMAIN}_{slugify(entry.title)}",
        {ATTR_MESSAGE: "From the service"},
        blocking=True,
    )
    assert [note["text"] for note in misskey.notes.values()] == [
        "From the entity",
        "From the service",
    ]
    # The credential always travels in the body: Misskey 12 ignores the header.
    for request in misskey.calls("notes/create"):
        assert request.body["i"] == entry.data[CONF_CREDENTIAL]
        assert "Authorization" not in request.headers


async def test_note_length_limit(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    variant: str,
) -> None:
    """The server's own maxNoteTextLength (500 on Misskey 12, 6000 on Sharkey) holds."""
    limit = misskey.max_note_text_length
    assert limit == {MISSKEY_13: 500, SHARKEY: 6000}.get(variant, 3000)
    service = f"{DOMAIN}_{slugify(init_integration.title)}"
    await hass.services.async_call(
        NOTIFY_DOMAIN, service, {ATTR_MESSAGE: "x" * limit}, blocking=True
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            NOTIFY_DOMAIN, service, {ATTR_MESSAGE: "x" * (limit + 1)}, blocking=True
        )
    assert err.value.translation_key == "text_too_long"
    assert len(misskey.notes) == 1


@pytest.mark.parametrize("revoked", [False, True], ids=["wrong", "revoked"])
async def test_bad_credential_asks_to_reauthenticate(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    revoked: bool,
) -> None:
    """A refused credential is an authentication failure on every variant, never not-ready."""
    mock_config_entry.add_to_hass(hass)
    if revoked:
        misskey.revoke()
    else:
        hass.config_entries.async_update_entry(
            mock_config_entry,
            data={**mock_config_entry.data, CONF_CREDENTIAL: "f" * 64},
        )
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert len(reauth_flows(hass)) == 1


async def test_missing_permission_asks_to_reauthenticate(
    hass: HomeAssistant, misskey: MisskeyServer, mock_config_entry: MockConfigEntry
) -> None:
    """A credential without read:account (400 on Misskey 12, 403 elsewhere) asks for reauth."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data={
            CONF_URL: misskey.url,
            CONF_CREDENTIAL: authorize(misskey, ["write:notes"]),
        },
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert len(reauth_flows(hass)) == 1


async def test_post_with_revoked_credential(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Posting with a revoked credential says so and starts re-authentication."""
    misskey.revoke()
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            NOTIFY_DOMAIN,
            f"{DOMAIN}_{slugify(init_integration.title)}",
            {ATTR_MESSAGE: "Hello"},
            blocking=True,
        )
    assert err.value.translation_key == "authentication_failed"
    await hass.async_block_till_done()
    assert len(reauth_flows(hass)) == 1
    assert not misskey.notes


async def test_content_warning_limit(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    variant: str,
) -> None:
    """The content warning may be as long as meta's maxCwLength (Sharkey), else 100."""
    limit = misskey.max_cw_length
    assert limit == (500 if variant == SHARKEY else 100)
    service = f"{DOMAIN}_{slugify(init_integration.title)}"
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        service,
        {ATTR_MESSAGE: "Spoiler", "data": {"cw": "c" * limit}},
        blocking=True,
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            NOTIFY_DOMAIN,
            service,
            {ATTR_MESSAGE: "Spoiler", "data": {"cw": "c" * (limit + 1)}},
            blocking=True,
        )
    assert err.value.translation_key == "cw_too_long"
    assert [note["cw"] for note in misskey.notes.values()] == ["c" * limit]

"""Tests for the notify entity and the notify service."""

from __future__ import annotations

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import DOMAIN
from homeassistant.components.notify import (
    ATTR_DATA,
    ATTR_MESSAGE,
    ATTR_TARGET,
    ATTR_TITLE,
    DOMAIN as NOTIFY_DOMAIN,
    SERVICE_SEND_MESSAGE,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er

from .conftest import HANG_TIMEOUT, until_pool_closed
from .misskey_server import MisskeyServer

pytestmark = pytest.mark.usefixtures("init_integration")


def notify_entity_id(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """Return the entity ID of the entry's notify entity."""
    entity_id = er.async_get(hass).async_get_entity_id(
        NOTIFY_DOMAIN, DOMAIN, f"{entry.unique_id}_notify"
    )
    assert entity_id is not None
    return entity_id


async def send_message(
    hass: HomeAssistant, entry: MockConfigEntry, message: str, title: str | None = None
) -> None:
    """Call notify.send_message on the entry's notify entity."""
    data = {ATTR_ENTITY_ID: notify_entity_id(hass, entry), ATTR_MESSAGE: message}
    if title is not None:
        data[ATTR_TITLE] = title
    await hass.services.async_call(
        NOTIFY_DOMAIN, SERVICE_SEND_MESSAGE, data, blocking=True
    )


def notify_service(misskey: MisskeyServer) -> str:
    """Return the name of the account's notify service."""
    host = misskey.url.removeprefix("http://").replace(".", "_").replace(":", "_")
    return f"misskey_alice_{host}"


def last_note(misskey: MisskeyServer) -> dict[str, object]:
    """Return what notes/create received last."""
    return misskey.calls("notes/create")[-1].body


async def test_send_message_posts_a_note(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """notify.send_message posts the message, with the title as a bold first line."""
    await send_message(hass, init_integration, "The washing machine is done.")
    await send_message(hass, init_integration, "Dry it now.", "Laundry")
    texts = [note["text"] for note in misskey.notes.values()]
    assert texts == ["The washing machine is done.", "**Laundry**\nDry it now."]
    body = last_note(misskey)
    assert body["i"] == init_integration.data["i"]
    # A new account's notes stay off the public timelines (its options).
    assert set(body) == {"i", "text", "visibility"}
    assert body["visibility"] == "home"
    # The entity records when it last posted.
    state = hass.states.get(notify_entity_id(hass, init_integration))
    assert state is not None
    assert state.state != "unknown"


async def test_notify_service_with_data(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """The legacy notify service takes the note's options in data."""
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        notify_service(misskey),
        {
            ATTR_MESSAGE: "Someone is at the door.",
            ATTR_TITLE: "Door",
            ATTR_DATA: {"visibility": "home", "cw": "Home", "local_only": True},
        },
        blocking=True,
    )
    body = last_note(misskey)
    assert body["text"] == "**Door**\nSomeone is at the door."
    assert body["visibility"] == "home"
    assert body["cw"] == "Home"
    assert body["localOnly"] is True


@pytest.mark.parametrize("acceptance", ["likeOnlyForRemote", "like_only_for_remote"])
async def test_notify_data_reaction_acceptance(
    hass: HomeAssistant, misskey: MisskeyServer, acceptance: str
) -> None:
    """The notify data's reaction_acceptance takes both spellings."""
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        notify_service(misskey),
        {ATTR_MESSAGE: "Hi", ATTR_DATA: {"reaction_acceptance": acceptance}},
        blocking=True,
    )
    assert last_note(misskey)["reactionAcceptance"] == "likeOnlyForRemote"


async def test_notify_service_target_is_recipients(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """A notify target becomes a recipient of a direct note."""
    bob = misskey.add_user("bob")
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        notify_service(misskey),
        {ATTR_MESSAGE: "Psst.", ATTR_TARGET: ["@bob"]},
        blocking=True,
    )
    body = last_note(misskey)
    assert body["visibility"] == "specified"
    assert body["visibleUserIds"] == [bob.id]


async def test_notify_service_invalid_data(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """Bad data is a validation error and posts nothing."""
    with pytest.raises(ServiceValidationError) as exc:
        await hass.services.async_call(
            NOTIFY_DOMAIN,
            notify_service(misskey),
            {ATTR_MESSAGE: "Hi", ATTR_DATA: {"visibility": "everyone"}},
            blocking=True,
        )
    assert exc.value.translation_key == "invalid_notify_data"
    assert not misskey.notes


@pytest.mark.parametrize(
    ("fault", "kwargs", "key", "exception"),
    [
        ("server_error", {}, "server_error", HomeAssistantError),
        ("hang", {"delay": 30}, "post_outcome_unknown", HomeAssistantError),
        ("drop", {}, "post_outcome_unknown", HomeAssistantError),
        ("html", {"status": 200}, "post_outcome_unknown", HomeAssistantError),
    ],
)
async def test_failed_post_raises(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    fault: str,
    kwargs: dict[str, object],
    key: str,
    exception: type[HomeAssistantError],
) -> None:
    """A failed post raises a translated error the automation sees, and is not retried."""
    init_integration.runtime_data.coordinator.client.request_timeout = HANG_TIMEOUT
    misskey.fail_next("notes/create", fault, **kwargs)
    with pytest.raises(exception) as exc:
        await send_message(hass, init_integration, "Hi")
    assert exc.value.translation_key == key
    assert len(misskey.calls("notes/create")) == 1


async def test_revoked_credential_starts_reauth(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Misskey refusing the credential on a post shows the re-authenticate card."""
    misskey.revoke()
    with pytest.raises(HomeAssistantError) as exc:
        await hass.services.async_call(
            NOTIFY_DOMAIN,
            notify_service(misskey),
            {ATTR_MESSAGE: "Hi"},
            blocking=True,
        )
    assert exc.value.translation_key == "authentication_failed"
    await hass.async_block_till_done()
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    assert init_integration.data["i"] not in str(exc.value)


async def test_cannot_connect(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A server that is down: the note was not posted, and the error says so."""
    await misskey.go_down()
    await until_pool_closed(hass)
    with pytest.raises(HomeAssistantError) as exc:
        await send_message(hass, init_integration, "Hi")
    assert exc.value.translation_key == "cannot_connect"


async def test_posts_after_a_failed_read_of_the_account(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """One failed read of the account (the sensors' business) never drops a note.

    Home Assistant skips notify.send_message for an unavailable entity with
    only a log line, so the notify entity stays available.
    """
    coordinator = init_integration.runtime_data.coordinator
    misskey.fail_next("i", "server_error")
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    followers = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{init_integration.unique_id}_followers"
    )
    assert followers is not None
    assert hass.states.get(followers).state == "unavailable"
    assert hass.states.get(notify_entity_id(hass, init_integration)).state != (
        "unavailable"
    )

    await send_message(hass, init_integration, "by the entity")
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        notify_service(misskey),
        {ATTR_MESSAGE: "by the service"},
        blocking=True,
    )
    await hass.services.async_call(
        DOMAIN, "post", {"text": "by the action"}, blocking=True
    )
    assert [c.body["text"] for c in misskey.calls("notes/create")] == [
        "by the entity",
        "by the service",
        "by the action",
    ]

"""What a note is when the call does not say: the account's options.

New accounts post ``home``; accounts set up before the option existed keep
``public``. Every path (the notify service, notify.send_message and
misskey.post) follows the option unless the call says otherwise.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import (
    CONF_CATCH_UP_WINDOW,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    CONF_LISTEN,
    DOMAIN,
)
from homeassistant.components.notify import (
    ATTR_DATA,
    ATTR_MESSAGE,
    ATTR_TARGET,
    DOMAIN as NOTIFY_DOMAIN,
    SERVICE_SEND_MESSAGE,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import slugify
import homeassistant.util.dt as dt_util

from .misskey_server import SHARKEY, MisskeyServer


async def set_options(
    hass: HomeAssistant, entry: MockConfigEntry, **options: Any
) -> None:
    """Change the account's options as the options dialog does (it reloads)."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    # Fields without a default (Assist's agent) are left empty, as in the dialog.
    form = {
        key.schema: key.default()
        for key in result["data_schema"].schema
        if callable(key.default)
    }
    form |= dict(entry.options) | options
    result = await hass.config_entries.options.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def post_three_ways(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Post with the notify service, notify.send_message and misskey.post."""
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        f"{DOMAIN}_{slugify(entry.title)}",
        {ATTR_MESSAGE: "service"},
        blocking=True,
    )
    entity = er.async_get(hass).async_get_entity_id(
        NOTIFY_DOMAIN, DOMAIN, f"{entry.unique_id}_notify"
    )
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        SERVICE_SEND_MESSAGE,
        {ATTR_ENTITY_ID: entity, ATTR_MESSAGE: "entity"},
        blocking=True,
    )
    await hass.services.async_call(DOMAIN, "post", {"text": "action"}, blocking=True)


def posted(misskey: MisskeyServer) -> list[tuple[str, str, bool]]:
    """Return each note's text, visibility and local-only, as the server keeps them."""
    return [
        (note["text"], note["visibility"], note["localOnly"])
        for note in misskey.notes.values()
    ]


async def test_new_account_posts_home(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Every way of posting is home and federated for an account set up now."""
    await post_three_ways(hass, init_integration)
    assert posted(misskey) == [
        ("service", "home", False),
        ("entity", "home", False),
        ("action", "home", False),
    ]


async def test_options_apply_to_every_path(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The options' visibility and local-only reach all three ways of posting."""
    await set_options(
        hass,
        init_integration,
        **{CONF_DEFAULT_VISIBILITY: "followers", CONF_DEFAULT_LOCAL_ONLY: True},
    )
    assert init_integration.options == {
        CONF_DEFAULT_VISIBILITY: "followers",
        CONF_DEFAULT_LOCAL_ONLY: True,
        CONF_LISTEN: True,
        CONF_CATCH_UP_WINDOW: 15,
    }
    await post_three_ways(hass, init_integration)
    assert posted(misskey) == [
        ("service", "followers", True),
        ("entity", "followers", True),
        ("action", "followers", True),
    ]


async def test_a_call_says_otherwise(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A call's visibility and local_only win; recipients make a note specified."""
    bob = misskey.add_user("bob")
    await set_options(
        hass,
        init_integration,
        **{CONF_DEFAULT_VISIBILITY: "followers", CONF_DEFAULT_LOCAL_ONLY: True},
    )
    await hass.services.async_call(
        DOMAIN,
        "post",
        {"text": "public", "visibility": "public", "local_only": False},
        blocking=True,
    )
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        f"{DOMAIN}_{slugify(init_integration.title)}",
        {ATTR_MESSAGE: "direct", ATTR_TARGET: ["@bob"]},
        blocking=True,
    )
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        f"{DOMAIN}_{slugify(init_integration.title)}",
        {ATTR_MESSAGE: "home", ATTR_DATA: {"visibility": "home"}},
        blocking=True,
    )
    assert posted(misskey) == [
        ("public", "public", False),
        ("direct", "specified", True),
        ("home", "home", True),
    ]
    assert list(misskey.notes.values())[1]["visibleUserIds"] == [bob.id]


@pytest.mark.parametrize("minor_version", [1, 2])
async def test_older_accounts_keep_posting_public(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    minor_version: int,
) -> None:
    """An account set up before the option keeps its public notes and its options."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        minor_version=minor_version,
        data=dict(mock_config_entry.data),
        options={CONF_LISTEN: False, CONF_CATCH_UP_WINDOW: 30},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.minor_version == 3
    assert entry.options == {
        CONF_DEFAULT_VISIBILITY: "public",
        CONF_DEFAULT_LOCAL_ONLY: False,
        CONF_LISTEN: False,
        CONF_CATCH_UP_WINDOW: 30,
    }
    await post_three_ways(hass, entry)
    assert [visibility for _, visibility, _ in posted(misskey)] == ["public"] * 3

    # The dialog shows what it is, and changing it changes the notes.
    result = await hass.config_entries.options.async_init(entry.entry_id)
    suggested = {
        key.schema: (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }
    assert suggested[CONF_DEFAULT_VISIBILITY] == "public"
    hass.config_entries.options.async_abort(result["flow_id"])
    await set_options(hass, entry, **{CONF_DEFAULT_VISIBILITY: "home"})
    await hass.services.async_call(DOMAIN, "post", {"text": "now"}, blocking=True)
    assert posted(misskey)[-1] == ("now", "home", False)


async def test_options_offer_no_specified_default(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Specified as a default would make notes without recipients the account's own."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    for key, selector in result["data_schema"].schema.items():
        if key.schema == CONF_DEFAULT_VISIBILITY:
            assert selector.config["options"] == ["public", "home", "followers"]
            break
    else:
        pytest.fail("no default_visibility in the options")


async def test_public_default_when_the_role_may_not(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A public default is no request for public: posted home, as Misskey would."""
    await set_options(hass, init_integration, **{CONF_DEFAULT_VISIBILITY: "public"})
    assert misskey.policies is not None
    misskey.policies["canPublicNote"] = False
    await init_integration.runtime_data.coordinator.async_refresh()

    await hass.services.async_call(DOMAIN, "post", {"text": "Hi"}, blocking=True)
    assert misskey.calls("notes/create")[-1].body["visibility"] == "home"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "post", {"text": "Hi", "visibility": "public"}, blocking=True
        )
    assert err.value.translation_key == "public_not_allowed"


@pytest.mark.parametrize("variant", [SHARKEY])
async def test_local_only_default_and_sharkey_schedules(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Sharkey cannot schedule a local-only note: the default is not dropped unsaid."""
    await set_options(hass, init_integration, **{CONF_DEFAULT_LOCAL_ONLY: True})
    later = (dt_util.utcnow() + timedelta(days=1)).isoformat()
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "post", {"text": "Later", "scheduled_at": later}, blocking=True
        )
    assert err.value.translation_key == "scheduled_option_not_supported"
    assert "local_only: false" in str(err.value)
    await hass.services.async_call(
        DOMAIN,
        "post",
        {"text": "Later", "scheduled_at": later, "local_only": False},
        blocking=True,
    )
    assert len(misskey.scheduled_notes) == 1

"""Tests for the diagnostics of an account."""

from __future__ import annotations

import json

from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.misskey import diagnostics
from custom_components.misskey.const import CONF_CREDENTIAL
from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from .listening import until
from .misskey_server import MisskeyServer


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    misskey: MisskeyServer,
    stable_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """Diagnostics hold the instance's meta and the account, without any secret.

    Nor anything personal: what the account's profile says, its pictures, and
    who runs the server.
    """
    carol = misskey.user
    carol.birthday = "1990-04-01"
    carol.location = "Kyoto, near the river"
    carol.description = "Cat person. Home automation at home in Kyoto."
    carol.fields = [{"name": "Blog", "value": "https://carol.example.invalid/blog"}]
    carol.banner_id = "bannerfile123"
    carol.moved_to = "https://elsewhere.example.invalid/users/carolsnewid"
    misskey.maintainer_name = "Dave Operator"
    misskey.maintainer_email = "dave@operator.example.invalid"
    assert await async_setup_component(hass, "diagnostics", {})
    stable_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(stable_entry.entry_id)
    await hass.async_block_till_done()
    await misskey.streams.wait_joined(misskey.user)
    await until(lambda: stable_entry.runtime_data.listener.connected)

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, stable_entry
    )

    text = json.dumps(diagnostics)
    credential = stable_entry.data[CONF_CREDENTIAL]
    assert credential not in text
    personal = [
        "carol@example.invalid",
        "Carol",  # the display name; the username is carol
        "1990-04-01",
        "Kyoto",
        "carol.example.invalid",
        "bannerfile123/",  # in the banner's URL; its file ID stays
        "/avatar/",
        "carolsnewid",
        "Dave Operator",
        "dave@operator.example.invalid",
    ]
    assert [value for value in personal if value in text] == []
    for token in misskey.tokens:
        assert token.token not in text
    for app in misskey.apps.values():
        assert app.secret not in text
    assert diagnostics["account"]["email"] == "**REDACTED**"
    assert diagnostics["entry"][CONF_CREDENTIAL] == "**REDACTED**"
    # The server's port is random; the snapshot names it the same each time.
    assert diagnostics["listener"]["mode"] == "streaming"
    assert json.loads(text.replace(misskey.url, "http://misskey.test")) == snapshot(
        exclude=props("connected_since")
    )


def test_redaction_keeps_what_helps() -> None:
    """Flags, empty fields, and names that are not the account's stay."""
    raw = {
        "id": "9wmbgk3a0001ab12",
        "name": "Carol",
        "email": "carol@example.invalid",
        "emailVerified": True,
        "receiveAnnouncementEmail": True,
        "contactEmail": "carol@work.example.invalid",
        "birthday": None,
        "location": "",
        "fields": [],
        "description": "Bio",
        "roles": [{"id": "r1", "name": "Moderators", "description": "They help"}],
        "achievements": [{"name": "notes1", "unlockedAt": 1}],
    }
    assert diagnostics._redact(raw, diagnostics.ACCOUNT_PERSONAL) == raw | {
        "email": REDACTED,
        "contactEmail": REDACTED,
        "description": REDACTED,
        "roles": [{"id": "r1", "name": "Moderators", "description": REDACTED}],
    }

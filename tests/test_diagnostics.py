"""Tests for the diagnostics of an account."""

from __future__ import annotations

import asyncio
import json

from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.misskey.const import CONF_CREDENTIAL
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from .misskey_server import MisskeyServer


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    misskey: MisskeyServer,
    stable_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """Diagnostics hold the instance's meta and the account, without any secret."""
    assert await async_setup_component(hass, "diagnostics", {})
    stable_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(stable_entry.entry_id)
    await hass.async_block_till_done()
    await misskey.streams.wait_joined(misskey.user)
    async with asyncio.timeout(5):
        while not stable_entry.runtime_data.listener.connected:
            await asyncio.sleep(0.01)

    diagnostics = await get_diagnostics_for_config_entry(
        hass, hass_client, stable_entry
    )

    text = json.dumps(diagnostics)
    credential = stable_entry.data[CONF_CREDENTIAL]
    assert credential not in text
    assert "carol@example.invalid" not in text
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

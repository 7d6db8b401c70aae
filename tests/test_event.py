"""The event entities in Home Assistant's history: what the recorder keeps of an event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.misskey.api import MisskeyClient
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.history import state_changes_during_period
from homeassistant.core import HomeAssistant
import homeassistant.util.dt as dt_util

from .listening import Events, entity_id, post_as, set_up
from .misskey_server import MisskeyServer

pytestmark = pytest.mark.usefixtures("fast_listener")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(
    recorder_mock: Recorder, enable_custom_integrations: None
) -> None:
    """Start the recorder before Home Assistant, then load custom integrations."""


async def test_long_note_stays_in_history(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A note longer than the recorder keeps: automations get all, history who and what.

    The recorder drops every attribute of a state whose attributes exceed 16 KiB.
    """
    misskey.max_note_text_length = 6000
    text = "@alice " + "地震速報、震度五弱。" * 585
    await set_up(hass, misskey, mock_config_entry)
    mentions_id = entity_id(hass, mock_config_entry, "event", "mentions")
    mentions = Events(hass, mentions_id)
    note = await post_as(as_bob, text=text)
    await mentions.wait(1)
    assert len(text.encode()) > 16384
    assert mentions.fired[0][1]["text"] == text

    await async_wait_recording_done(hass)
    states = await recorder_mock.async_add_executor_job(
        state_changes_during_period,
        hass,
        dt_util.utcnow() - timedelta(minutes=1),
        None,
        mentions_id,
    )
    recorded = states[mentions_id][-1].attributes
    assert recorded["note_id"] == note["id"]
    assert recorded["user"] == mentions.fired[0][1]["user"]
    assert recorded["text_excerpt"] == text[:199] + "…"
    assert "text" not in recorded
    assert "exceed maximum size" not in caplog.text

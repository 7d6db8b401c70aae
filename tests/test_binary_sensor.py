"""Tests for the account's binary sensors and the time of its last note."""

from __future__ import annotations

from datetime import datetime
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.misskey.const import CONF_LISTEN, DOMAIN, UPDATE_INTERVAL
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .conftest import settle
from .misskey_server import MISSKEY_13, MisskeyServer


def entity_id(
    hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str
) -> str:
    """Return the entity ID of one of the account's entities."""
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.unique_id}_{key}"
    )
    assert found is not None
    return found


def state(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str:
    """Return the state of one of the account's entities."""
    current = hass.states.get(entity_id(hass, entry, platform, key))
    assert current is not None
    return current.state


async def next_update(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Let the coordinator read the account again."""
    freezer.tick(UPDATE_INTERVAL)
    async_fire_time_changed(hass)
    await settle(hass)


async def test_binary_sensors(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    stable_entry: MockConfigEntry,
) -> None:
    """Bot, cat, locked, moved, silenced and suspended (the last two enabled here)."""
    misskey.user.is_cat = True
    stable_entry.add_to_hass(hass)
    # Not listening: the streaming sensor's state would depend on timing.
    hass.config_entries.async_update_entry(stable_entry, options={CONF_LISTEN: False})
    with patch("custom_components.misskey.PLATFORMS", [Platform.BINARY_SENSOR]):
        assert await hass.config_entries.async_setup(stable_entry.entry_id)
        await hass.async_block_till_done()
        disabled = [
            e.entity_id
            for e in er.async_entries_for_config_entry(
                entity_registry, stable_entry.entry_id
            )
            if e.disabled_by is not None
        ]
        assert len(disabled) == 2
        for disabled_id in disabled:
            entity_registry.async_update_entity(disabled_id, disabled_by=None)
        await hass.config_entries.async_reload(stable_entry.entry_id)
        await hass.async_block_till_done()

    await snapshot_platform(hass, entity_registry, snapshot, stable_entry.entry_id)


async def test_flags_follow_the_account(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The next read of `i` shows changed flags; no other call is needed for them."""
    assert state(hass, init_integration, Platform.BINARY_SENSOR, "moved") == STATE_OFF
    assert state(hass, init_integration, Platform.BINARY_SENSOR, "locked") == STATE_OFF
    calls = len(misskey.requests)
    reads = len(misskey.calls("i"))

    misskey.user.moved_to = misskey.add_user("alice2").id
    misskey.user.is_locked = True
    await next_update(hass, freezer)

    assert state(hass, init_integration, Platform.BINARY_SENSOR, "moved") == STATE_ON
    assert state(hass, init_integration, Platform.BINARY_SENSOR, "locked") == STATE_ON
    assert len(misskey.calls("i")) > reads
    assert {r.endpoint for r in misskey.requests[calls:]} <= {"i", "i/notifications"}


@pytest.mark.parametrize("variant", [MISSKEY_13])
async def test_flags_the_server_has(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Misskey 12 has no account moves: no entity that could only be unknown."""
    unique_ids = {
        e.unique_id
        for e in er.async_entries_for_config_entry(
            er.async_get(hass), init_integration.entry_id
        )
        if e.domain == Platform.BINARY_SENSOR
    }
    assert unique_ids == {
        f"{init_integration.unique_id}_{key}"
        for key in ("bot", "cat", "locked", "silenced", "suspended", "streaming")
    }


async def test_last_note(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """`i` has no time of the last note: users/notes, only when notesCount changed."""
    freezer.move_to("2026-12-01T09:00:00+00:00")
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    (request,) = misskey.calls("users/notes")
    body = dict(request.body)
    assert body.pop("i") == mock_config_entry.data["i"]
    assert body == {
        "userId": misskey.user.id,
        "limit": 1,
        "withReplies": True,
        "withRenotes": True,
        "withChannelNotes": True,
    }
    assert state(hass, mock_config_entry, Platform.SENSOR, "last_note") == STATE_UNKNOWN

    # Nothing new: no second call.
    await next_update(hass, freezer)
    assert len(misskey.calls("users/notes")) == 1

    # A direct reply, posted elsewhere, counts too.
    note = misskey._validate_note({"text": "first"}, misskey.user)
    misskey.notes[note["id"]] = note
    freezer.move_to("2026-12-01T10:30:00+00:00")
    reply = misskey._validate_note(
        {"text": "psst", "replyId": note["id"], "visibility": "specified"},
        misskey.user,
    )
    misskey.notes[reply["id"]] = reply
    misskey.user.notes_count = 2
    await next_update(hass, freezer)

    assert len(misskey.calls("users/notes")) == 2
    assert datetime.fromisoformat(
        state(hass, mock_config_entry, Platform.SENSOR, "last_note")
    ) == datetime.fromisoformat("2026-12-01T10:30:00+00:00")


async def test_last_note_after_a_profile_update(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A profile update brings a new notesCount; the next read still fetches the note."""
    note = misskey._validate_note({"text": "elsewhere"}, misskey.user)
    misskey.notes[note["id"]] = note
    misskey.user.notes_count = 1
    await hass.services.async_call(
        DOMAIN, "update_profile", {"is_bot": True}, blocking=True
    )
    assert len(misskey.calls("users/notes")) == 1

    await next_update(hass, freezer)
    assert len(misskey.calls("users/notes")) == 2
    assert state(hass, init_integration, Platform.SENSOR, "last_note") != STATE_UNKNOWN

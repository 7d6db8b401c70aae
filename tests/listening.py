"""Helpers for tests that hear the account: waiting, entities, the events they fire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.api import MisskeyClient
from custom_components.misskey.const import CONF_CATCH_UP_WINDOW, CONF_LISTEN, DOMAIN
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .misskey_server import MisskeyServer

# How long a test waits for something that must happen. A wait that is met
# returns at once, so this only bounds a failing one; it is generous because
# on a loaded machine (two cores, a benchmark beside the tests) a reconnect, a
# poll or a set-up can take seconds. It stays well below pytest-timeout's 60 s,
# so that a condition never met fails at the line that waited for it.
WAIT = 30.0


async def until(predicate: Callable[[], Any], timeout: float = WAIT) -> None:
    """Wait until ``predicate()`` is true."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def entity_id(
    hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str
) -> str:
    """Return the entity ID of one of the account's entities."""
    found = er.async_get(hass).async_get_entity_id(
        platform, DOMAIN, f"{entry.unique_id}_{key}"
    )
    assert found is not None, key
    return found


class Events:
    """The events an event entity fires, as automations see them."""

    def __init__(self, hass: HomeAssistant, entity: str) -> None:
        """Record the state changes of ``entity``."""
        self.fired: list[tuple[str, dict[str, Any]]] = []

        @callback
        def record(event: Event[EventStateChangedData]) -> None:
            new = event.data["new_state"]
            old = event.data["old_state"]
            # A state restored when the entity is added again is no event, as
            # automations on event entities say with not_from: unavailable.
            if (
                event.data["entity_id"] == entity
                and old is not None
                and old.state != STATE_UNAVAILABLE
                and new is not None
                and new.attributes.get("event_type") is not None
            ):
                attributes = dict(new.attributes)
                self.fired.append((attributes.pop("event_type"), attributes))

        hass.bus.async_listen("state_changed", record)

    async def wait(self, count: int) -> None:
        """Wait until ``count`` events fired."""
        await until(lambda: len(self.fired) >= count)

    def note_ids(self) -> list[str]:
        """Return the note IDs of the events, in order."""
        return [attributes.get("note_id") for _, attributes in self.fired]


async def set_up(
    hass: HomeAssistant, misskey: MisskeyServer, entry: MockConfigEntry
) -> None:
    """Set up the account and wait until it listens (caught up, events live)."""
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await misskey.streams.wait_joined(misskey.user)
    await until(lambda: entry.runtime_data.listener.connected)


def without_catch_up(entry: MockConfigEntry) -> MockConfigEntry:
    """Return the account's entry again, with a catch-up window of 0."""
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=entry.unique_id,
        minor_version=entry.minor_version,
        data=dict(entry.data),
        options={**entry.options, CONF_LISTEN: True, CONF_CATCH_UP_WINDOW: 0},
    )


async def reconnect(misskey: MisskeyServer, entry: MockConfigEntry) -> None:
    """Cut the account's socket; wait until it listens again on a new one.

    The cut socket may still count as joined for a moment: a new one is
    what tells that the listener came back.
    """
    old = misskey.streams.joined(misskey.user)
    misskey.streams.drop()
    await until(lambda: any(c not in old for c in misskey.streams.joined(misskey.user)))
    await until(lambda: entry.runtime_data.listener.connected)


async def post_as(client: MisskeyClient, **params: Any) -> dict[str, Any]:
    """Post a note as another user; return it."""
    note: dict[str, Any] = (
        await client.request("notes/create", params, authenticated=True)
    )["createdNote"]
    return note

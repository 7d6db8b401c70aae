"""What Home Assistant alone spends on set-up for entities like Misskey's (bench only).

``scripts/bench --only startup`` sets this up beside the integration: the same
platforms, the same 17 entities (12 when not listening) on one service device,
the same categories, device classes and entities disabled by default, and
nothing else: no client, no round trip, no listener. Its set-up time is the
floor an integration with these entities cannot go under.
"""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.components.event import EventEntity
from homeassistant.components.notify import NotifyEntity
from homeassistant.components.sensor import SensorDeviceClass, SensorEntity
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EntityCategory, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

DOMAIN = "misskey_reference"
PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.NOTIFY, Platform.SENSOR]

SENSORS = ("followers", "following", "notes", "last_note", "unread_notifications")
# (key, enabled by default)
FLAGS = (
    ("bot", True),
    ("cat", True),
    ("locked", True),
    ("moved", True),
    ("silenced", False),
    ("suspended", False),
)
EVENTS = ("mentions", "direct_messages", "new_followers", "note_activity")


async def async_setup_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Add the entities, as Misskey's set-up does after its first reading."""
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Remove the entities."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


def listening(entry: ConfigEntry) -> bool:
    """Return whether the entry plays an account that listens."""
    return bool(entry.options.get("listen", True))


class ReferenceEntity(Entity):
    """Named and put on the account's device, as MisskeyEntity does."""

    _attr_has_entity_name = True

    def __init__(self, entry: ConfigEntry, key: str) -> None:
        """Make the entity ``key`` of the entry's account."""
        assert entry.unique_id is not None
        self._attr_name = key
        self._attr_unique_id = f"{entry.unique_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.unique_id)},
            name=entry.title,
            manufacturer="Misskey",
            model="Misskey account",
            sw_version="2026.3.2",
            configuration_url="http://127.0.0.1",
            entry_type=DeviceEntryType.SERVICE,
        )


class ReferenceSensor(ReferenceEntity, SensorEntity):
    """A number (a time for last_note)."""

    def __init__(self, entry: ConfigEntry, key: str) -> None:
        """Make the sensor ``key``."""
        super().__init__(entry, key)
        if key == "last_note":
            self._attr_device_class = SensorDeviceClass.TIMESTAMP
        else:
            self._attr_native_value = 1


class ReferenceBinarySensor(ReferenceEntity, BinarySensorEntity):
    """A diagnostic flag of the account, or the connection."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_is_on = False

    def __init__(self, entry: ConfigEntry, key: str, *, enabled: bool) -> None:
        """Make the binary sensor ``key``."""
        super().__init__(entry, key)
        self._attr_entity_registry_enabled_default = enabled
        if key == "streaming":
            self._attr_device_class = BinarySensorDeviceClass.CONNECTIVITY


class ReferenceEvent(ReferenceEntity, EventEntity):
    """An event entity (it restores its last state, as Misskey's do)."""

    _attr_event_types = ["mention"]


class ReferenceNotify(ReferenceEntity, NotifyEntity):
    """A notify entity that sends nothing."""

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Send nothing."""

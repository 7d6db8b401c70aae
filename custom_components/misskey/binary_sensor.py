"""Binary sensors of a Misskey account."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import MisskeyConfigEntry, MisskeyDataUpdateCoordinator
from .entity import MisskeyEntity
from .listener import MisskeyListener

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MisskeyConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of the account."""
    data = entry.runtime_data
    if data.listener is not None:
        async_add_entities(
            [MisskeyStreamingBinarySensor(data.coordinator, data.listener)]
        )


class MisskeyStreamingBinarySensor(MisskeyEntity, BinarySensorEntity):
    """Whether the account's events arrive live over the streaming API."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "streaming"

    def __init__(
        self, coordinator: MisskeyDataUpdateCoordinator, listener: MisskeyListener
    ) -> None:
        """Make the sensor of the account's listener."""
        super().__init__(coordinator, "streaming")
        self._listener = listener

    async def async_added_to_hass(self) -> None:
        """Follow the connection."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self._listener.async_add_state_listener(self.async_write_ha_state)
        )

    @property
    def is_on(self) -> bool:
        """Return whether the streaming connection is up."""
        return self._listener.connected

    @property
    def available(self) -> bool:
        """Stay available when the server is not: then the connection is off."""
        return True

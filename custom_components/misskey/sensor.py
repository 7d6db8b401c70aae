"""Sensors of a Misskey account: its counts, its last note, unread notifications."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, override

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .api import Account
from .coordinator import MisskeyDataUpdateCoordinator, unread_notifications
from .entity import MisskeyEntity

if TYPE_CHECKING:
    from .data import MisskeyConfigEntry
    from .listener import MisskeyListener

# The coordinator reads the account for all of them.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class MisskeySensorEntityDescription(SensorEntityDescription):
    """Describes a sensor of the account."""

    value_fn: Callable[[Account], StateType | datetime]


# Misskey's `i` has no diagnostic value worth a sensor of its own (the server's
# version is the device's software version), so there are only these.
SENSORS: tuple[MisskeySensorEntityDescription, ...] = (
    MisskeySensorEntityDescription(
        key="followers",
        translation_key="followers",
        state_class=SensorStateClass.TOTAL,
        value_fn=lambda account: account.followers_count,
    ),
    MisskeySensorEntityDescription(
        key="following",
        translation_key="following",
        state_class=SensorStateClass.TOTAL,
        value_fn=lambda account: account.following_count,
    ),
    MisskeySensorEntityDescription(
        key="notes",
        translation_key="notes",
        state_class=SensorStateClass.TOTAL,
        value_fn=lambda account: account.notes_count,
    ),
    MisskeySensorEntityDescription(
        key="last_note",
        translation_key="last_note",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda account: account.last_note_at,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MisskeyConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of the account."""
    data = entry.runtime_data
    async_add_entities(
        [
            *(
                MisskeySensorEntity(data.coordinator, description)
                for description in SENSORS
            ),
            MisskeyUnreadNotificationsSensor(data.coordinator, data.listener),
        ]
    )


class MisskeySensorEntity(MisskeyEntity, SensorEntity):
    """A number the account's profile shows."""

    entity_description: MisskeySensorEntityDescription

    def __init__(
        self,
        coordinator: MisskeyDataUpdateCoordinator,
        description: MisskeySensorEntityDescription,
    ) -> None:
        """Make the sensor of the account."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    @override
    def native_value(self) -> StateType | datetime:
        """Return the value from the last read of the account."""
        return self.entity_description.value_fn(self.coordinator.data)


class MisskeyUnreadNotificationsSensor(MisskeyEntity, SensorEntity):
    """Unread notifications: read with the account, then counted live while listening."""

    _attr_translation_key = "unread_notifications"
    _attr_state_class = SensorStateClass.MEASUREMENT

    def __init__(
        self,
        coordinator: MisskeyDataUpdateCoordinator,
        listener: MisskeyListener | None,
    ) -> None:
        """Make the sensor of the account."""
        super().__init__(coordinator, "unread_notifications")
        self._listener = listener

    async def async_added_to_hass(self) -> None:
        """Follow the listener's count too."""
        await super().async_added_to_hass()
        if self._listener is not None:
            self.async_on_remove(
                self._listener.async_add_unread_listener(self.async_write_ha_state)
            )

    @property
    @override
    def native_value(self) -> StateType:
        """Return the count, if the server tells it."""
        if self._listener is not None:
            return self._listener.unread_notifications
        return unread_notifications(self.coordinator.data)

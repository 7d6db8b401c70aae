"""Binary sensors of a Misskey account: its profile's flags and standing, and streaming."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, override

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import Account
from .coordinator import MisskeyDataUpdateCoordinator
from .entity import MisskeyEntity

if TYPE_CHECKING:
    from .data import MisskeyConfigEntry
    from .listener import MisskeyListener

# The coordinator reads the account for all of them.
PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class MisskeyBinarySensorEntityDescription(BinarySensorEntityDescription):
    """Describes a flag of the account."""

    # The field of Misskey's user object; servers without it get no entity.
    field: str
    is_on_fn: Callable[[Account], bool | None]


# As core's Mastodon integration has them, where Misskey has the flag; the
# moderators' verdicts are off by default like Mastodon's.
BINARY_SENSORS: tuple[MisskeyBinarySensorEntityDescription, ...] = (
    MisskeyBinarySensorEntityDescription(
        key="bot",
        translation_key="bot",
        entity_category=EntityCategory.DIAGNOSTIC,
        field="isBot",
        is_on_fn=lambda account: account.is_bot,
    ),
    MisskeyBinarySensorEntityDescription(
        key="cat",
        translation_key="cat",
        entity_category=EntityCategory.DIAGNOSTIC,
        field="isCat",
        is_on_fn=lambda account: account.is_cat,
    ),
    MisskeyBinarySensorEntityDescription(
        key="locked",
        translation_key="locked",
        entity_category=EntityCategory.DIAGNOSTIC,
        field="isLocked",
        is_on_fn=lambda account: account.is_locked,
    ),
    MisskeyBinarySensorEntityDescription(
        key="moved",
        translation_key="moved",
        entity_category=EntityCategory.DIAGNOSTIC,
        field="movedTo",
        is_on_fn=lambda account: account.moved_to is not None,
    ),
    MisskeyBinarySensorEntityDescription(
        key="silenced",
        translation_key="silenced",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        field="isSilenced",
        is_on_fn=lambda account: account.is_silenced,
    ),
    MisskeyBinarySensorEntityDescription(
        key="suspended",
        translation_key="suspended",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        field="isSuspended",
        is_on_fn=lambda account: account.is_suspended,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MisskeyConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the flags the account's server sends, and the streaming sensor."""
    data = entry.runtime_data
    coordinator = data.coordinator
    entities: list[BinarySensorEntity] = [
        MisskeyBinarySensorEntity(coordinator, description)
        for description in BINARY_SENSORS
        if description.field in coordinator.data.raw
    ]
    if data.listener is not None:
        entities.append(MisskeyStreamingBinarySensor(coordinator, data.listener))
    async_add_entities(entities)


class MisskeyBinarySensorEntity(MisskeyEntity, BinarySensorEntity):
    """A flag of the account's profile."""

    entity_description: MisskeyBinarySensorEntityDescription

    def __init__(
        self,
        coordinator: MisskeyDataUpdateCoordinator,
        description: MisskeyBinarySensorEntityDescription,
    ) -> None:
        """Make the binary sensor of the account."""
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    @override
    def is_on(self) -> bool | None:
        """Return the flag from the last read of the account."""
        return self.entity_description.is_on_fn(self.coordinator.data)


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
            self._listener.async_add_connection_listener(self.async_write_ha_state)
        )

    @property
    def is_on(self) -> bool:
        """Return whether the streaming connection is up."""
        return self._listener.connected

    @property
    def available(self) -> bool:
        """Stay available when the server is not (the connection is off then).

        Unavailable only once nothing keeps the connection any more.
        """
        return self._listener.running

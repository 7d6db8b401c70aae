"""Base entity for a Misskey account."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import MisskeyDataUpdateCoordinator


class MisskeyEntity(CoordinatorEntity[MisskeyDataUpdateCoordinator]):
    """An entity of one Misskey account; the account is its device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: MisskeyDataUpdateCoordinator, key: str) -> None:
        """Name the entity after the account."""
        super().__init__(coordinator)
        entry = coordinator.config_entry
        assert entry.unique_id is not None
        self._attr_unique_id = f"{entry.unique_id}_{key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.unique_id)},
            name=entry.title,
            manufacturer=coordinator.meta.name or "Misskey",
            model="Misskey account",
            sw_version=coordinator.meta.version,
            configuration_url=coordinator.client.url,
            entry_type=DeviceEntryType.SERVICE,
        )

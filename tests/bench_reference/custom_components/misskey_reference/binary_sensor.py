"""The account's flags, and the connection when listening."""

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import FLAGS, ReferenceBinarySensor, listening


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors."""
    entities = [
        ReferenceBinarySensor(entry, key, enabled=enabled) for key, enabled in FLAGS
    ]
    if listening(entry):
        entities.append(ReferenceBinarySensor(entry, "streaming", enabled=True))
    async_add_entities(entities)

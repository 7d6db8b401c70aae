"""The account's event entities, when listening."""

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import EVENTS, ReferenceEvent, listening


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the event entities."""
    if listening(entry):
        async_add_entities(ReferenceEvent(entry, key) for key in EVENTS)

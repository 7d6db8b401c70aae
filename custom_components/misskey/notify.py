"""Notify entity and notify service for a Misskey account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, override

import probatio

from homeassistant.components.notify import (
    ATTR_DATA,
    ATTR_TARGET,
    ATTR_TITLE,
    BaseNotificationService,
    NotifyEntity,
    NotifyEntityFeature,
)

# Internal to notify, and the only way to drop a service object from its list
# (tests/test_init.py fails when it changes). Its public async_reset_platform
# would also stop notify from hearing any later discovery, of every
# integration, so an account loaded again would get no service.
from homeassistant.components.notify.legacy import NOTIFY_SERVICES
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import ConfigType, DiscoveryInfoType
from homeassistant.util.hass_dict import HassKey

from .const import ATTR_RECIPIENTS, DOMAIN
from .coordinator import MisskeyDataUpdateCoordinator
from .entity import MisskeyEntity
from .post import async_post_note, compose_text
from .services import NOTE_OPTIONS

if TYPE_CHECKING:
    from .data import MisskeyConfigEntry

PARALLEL_UPDATES = 0

CONF_ENTRY_ID = "entry_id"

# Entry ID -> the notify service made for it, to remove it on unload.
_SERVICES: HassKey[dict[str, MisskeyNotificationService]] = HassKey(
    f"{DOMAIN}_notify_services"
)

NOTIFY_DATA_SCHEMA = probatio.Schema(NOTE_OPTIONS)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MisskeyConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the notify entity of the account."""
    async_add_entities([MisskeyNotifyEntity(entry.runtime_data.coordinator)])


class MisskeyNotifyEntity(MisskeyEntity, NotifyEntity):
    """Posts a note for notify.send_message."""

    _attr_name = None
    _attr_supported_features = NotifyEntityFeature.TITLE

    def __init__(self, coordinator: MisskeyDataUpdateCoordinator) -> None:
        """Make the entity of the account."""
        super().__init__(coordinator, "notify")

    @property
    @override
    def available(self) -> bool:
        """Post whenever the account is loaded.

        Home Assistant drops messages to an unavailable notify entity without
        a word, so one failed read of the account must not make it so; a
        post that fails says why itself.
        """
        return True

    @override
    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Post the message as a note."""
        await async_post_note(
            self.hass, self.coordinator.config_entry, compose_text(message, title), {}
        )


async def async_get_service(
    hass: HomeAssistant,
    config: ConfigType,
    discovery_info: DiscoveryInfoType | None = None,
) -> MisskeyNotificationService | None:
    """Return the notify service of the entry that discovered it."""
    if discovery_info is None:
        return None
    entry: MisskeyConfigEntry | None = hass.config_entries.async_get_entry(
        discovery_info[CONF_ENTRY_ID]
    )
    if entry is None or not hasattr(entry, "runtime_data"):
        return None
    service = MisskeyNotificationService(entry)
    hass.data.setdefault(_SERVICES, {})[entry.entry_id] = service
    return service


async def async_unload_service(hass: HomeAssistant, entry: MisskeyConfigEntry) -> None:
    """Remove the entry's notify service; notify has no config entry support for it."""
    if (service := hass.data.get(_SERVICES, {}).pop(entry.entry_id, None)) is None:
        return
    await service.async_unregister_services()
    # Else notify would keep the object, and each reload add one more.
    services: list[BaseNotificationService] = hass.data.get(NOTIFY_SERVICES, {}).get(
        DOMAIN, []
    )
    if service in services:
        services.remove(service)


class MisskeyNotificationService(BaseNotificationService):
    """The notify service for automations, notify groups and alerts."""

    def __init__(self, entry: MisskeyConfigEntry) -> None:
        """Post for the entry's account."""
        self.entry = entry

    @override
    async def async_send_message(self, message: str = "", **kwargs: Any) -> None:
        """Post the message as a note, with the options of ``data``."""
        try:
            options = NOTIFY_DATA_SCHEMA(kwargs.get(ATTR_DATA) or {})
        except probatio.Invalid as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="invalid_notify_data",
                translation_placeholders={"error": str(err)},
            ) from err
        if targets := kwargs.get(ATTR_TARGET):
            options[ATTR_RECIPIENTS] = [*options.get(ATTR_RECIPIENTS, []), *targets]
        text = compose_text(message, kwargs.get(ATTR_TITLE))
        await async_post_note(self.hass, self.entry, text, options)

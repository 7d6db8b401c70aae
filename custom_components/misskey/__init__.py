"""The Misskey integration: post notes, manage the account and hear it from Home Assistant."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING

from homeassistant.const import CONF_NAME, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, discovery
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.importlib import async_import_module
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import slugify
from homeassistant.util.json import json_loads

from .api import MisskeyClient
from .auth_callback import async_register_callback_view
from .const import (
    CONF_ASSIST_ACCOUNTS,
    CONF_CREDENTIAL,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    CONF_LISTEN,
    CONF_PERMISSIONS,
    DEFAULT_LISTEN,
    DEFAULT_LOCAL_ONLY,
    DOMAIN,
    LEGACY_DEFAULT_VISIBILITY,
    LEGACY_PERMISSIONS,
)
from .coordinator import MisskeyDataUpdateCoordinator
from .data import MisskeyConfigEntry, MisskeyData, assist_store, listener_store
from .notify import CONF_ENTRY_ID, async_unload_service
from .permissions import async_remove_permissions_issue, async_update_permissions_issue
from .services import async_setup_services
from .sources import async_forget_sources

if TYPE_CHECKING:
    from .listener import MisskeyListener

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.EVENT,
    Platform.NOTIFY,
    Platform.SENSOR,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up what all accounts share."""
    async_register_callback_view(hass)
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: MisskeyConfigEntry) -> bool:
    """Set up a Misskey account."""
    client = MisskeyClient(
        async_get_clientsession(hass),
        entry.data[CONF_URL],
        entry.data[CONF_CREDENTIAL],
        json_loads=json_loads,
    )
    # Calls waiting out a rate limit end with the entry, not minutes later.
    entry.async_on_unload(client.close)
    coordinator = MisskeyDataUpdateCoordinator(hass, entry, client)
    await coordinator.async_config_entry_first_refresh()
    listener: MisskeyListener | None = None
    if entry.options.get(CONF_LISTEN, DEFAULT_LISTEN):
        listening = await _async_import_listening(hass)
        listener = listening.MisskeyListener(hass, entry, coordinator)
    entry.runtime_data = MisskeyData(client, coordinator, listener)
    async_update_permissions_issue(hass, entry)
    if listener is not None and entry.options.get(CONF_ASSIST_ACCOUNTS):
        await _async_start_assist(hass, entry, listener)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # After the platforms, so that the event entities hear what is caught up.
    if listener is not None:
        listener.async_start()

    # The notify service that groups and alerts call has no config entry
    # support, so it is loaded the legacy way, one service per account.
    hass.async_create_task(
        discovery.async_load_platform(
            hass,
            Platform.NOTIFY,
            DOMAIN,
            {
                CONF_NAME: f"{DOMAIN}_{slugify(entry.title)}",
                CONF_ENTRY_ID: entry.entry_id,
            },
            {},
        ),
        f"{DOMAIN} notify service {entry.entry_id}",
    )
    return True


async def async_unload_entry(hass: HomeAssistant, entry: MisskeyConfigEntry) -> bool:
    """Unload a Misskey account."""
    await async_unload_service(hass, entry)
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: MisskeyConfigEntry) -> None:
    """Forget the account's repair issues, where its events stopped, its conversations."""
    async_remove_permissions_issue(hass, entry)
    async_forget_sources(hass, entry)
    await listener_store(hass, entry.entry_id).async_remove()
    await assist_store(hass, entry.entry_id).async_remove()


async def _async_import_listening(hass: HomeAssistant) -> ModuleType:
    """Return the listener's module, imported (in the executor) only when needed.

    An account that only posts never needs the streaming client, so Home
    Assistant does not import it at every start.
    """
    return await async_import_module(hass, f"{__name__}.listener")


async def _async_start_assist(
    hass: HomeAssistant, entry: MisskeyConfigEntry, listener: MisskeyListener
) -> None:
    """Let the listed accounts talk to Assist (imported only by accounts that list some)."""
    assist = await async_import_module(hass, f"{__name__}.assist")
    entry.runtime_data.assist = assist.MisskeyAssist(hass, entry, listener)
    entry.runtime_data.assist.async_start()


async def async_migrate_entry(hass: HomeAssistant, entry: MisskeyConfigEntry) -> bool:
    """Bring older entries up to date.

    1.2 records what older entries were granted, so that missing permissions
    show. 1.3 gives the account a default visibility: new accounts post home,
    older ones keep posting public, as they did, until the user changes it.
    """
    if entry.version > 1:
        return False
    if entry.minor_version < 2:
        hass.config_entries.async_update_entry(
            entry,
            data={**entry.data, CONF_PERMISSIONS: LEGACY_PERMISSIONS},
            minor_version=2,
        )
    if entry.minor_version < 3:
        hass.config_entries.async_update_entry(
            entry,
            options={
                CONF_DEFAULT_VISIBILITY: LEGACY_DEFAULT_VISIBILITY,
                CONF_DEFAULT_LOCAL_ONLY: DEFAULT_LOCAL_ONLY,
                **entry.options,
            },
            minor_version=3,
        )
    return True

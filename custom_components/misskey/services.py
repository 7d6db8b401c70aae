"""The misskey.post action."""

from __future__ import annotations

import probatio

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv, service
from homeassistant.util.json import JsonValueType

from .const import (
    ATTR_NOTE,
    ATTR_REACTION,
    ATTR_TEXT,
    DOMAIN,
    SERVICE_DELETE_NOTE,
    SERVICE_POST,
    SERVICE_REACT,
)
from .coordinator import MisskeyConfigEntry, MisskeyDataUpdateCoordinator
from .notes import async_delete_note, async_react
from .post import NOTE_OPTIONS, async_post_note

SERVICE_POST_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_TEXT): cv.string,
        **NOTE_OPTIONS,
    }
)
SERVICE_REACT_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required(ATTR_NOTE): cv.string,
        probatio.Required(ATTR_REACTION): cv.string,
    }
)
SERVICE_DELETE_NOTE_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required(ATTR_NOTE): cv.string,
    }
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions once for all accounts."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_POST,
        _async_post,
        schema=SERVICE_POST_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
    hass.services.async_register(
        DOMAIN, SERVICE_REACT, _async_react, schema=SERVICE_REACT_SCHEMA
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_DELETE_NOTE,
        _async_delete_note,
        schema=SERVICE_DELETE_NOTE_SCHEMA,
    )


def _coordinator(call: ServiceCall) -> MisskeyDataUpdateCoordinator:
    """Return the account the action names, or the only one."""
    entry: MisskeyConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
    return entry.runtime_data.coordinator


async def _async_react(call: ServiceCall) -> None:
    """React to a note."""
    await async_react(
        _coordinator(call), call.data[ATTR_NOTE], call.data[ATTR_REACTION]
    )


async def _async_delete_note(call: ServiceCall) -> None:
    """Delete a note of the account."""
    await async_delete_note(_coordinator(call), call.data[ATTR_NOTE])


async def _async_post(call: ServiceCall) -> ServiceResponse:
    """Post a note and return it, so a later step can reply to it."""
    note = await async_post_note(
        call.hass, _coordinator(call), call.data.get(ATTR_TEXT), call.data
    )
    file_ids: list[JsonValueType] = list(note.file_ids)
    return {
        "id": note.id,
        "url": note.url,
        "created_at": note.created_at,
        "visibility": note.visibility,
        "local_only": note.local_only,
        "text": note.text,
        "cw": note.cw,
        "file_ids": file_ids,
    }

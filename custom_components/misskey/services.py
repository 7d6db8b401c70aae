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

from .const import ATTR_TEXT, DOMAIN, SERVICE_POST
from .coordinator import MisskeyConfigEntry
from .post import NOTE_OPTIONS, async_post_note

SERVICE_POST_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_TEXT): cv.string,
        **NOTE_OPTIONS,
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


async def _async_post(call: ServiceCall) -> ServiceResponse:
    """Post a note and return it, so a later step can reply to it."""
    entry: MisskeyConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
    note = await async_post_note(
        call.hass, entry.runtime_data.coordinator, call.data.get(ATTR_TEXT), call.data
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

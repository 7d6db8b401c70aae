"""The actions: misskey.post and the account actions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

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

from .account import (
    account_response,
    async_get_account,
    async_mute_account,
    async_unmute_account,
    async_update_profile,
)
from .api import ScheduledNote
from .const import (
    ATTR_ACCOUNT,
    ATTR_ALT_TEXT,
    ATTR_AVATAR,
    ATTR_BANNER,
    ATTR_BIRTHDAY,
    ATTR_CHANNEL,
    ATTR_CHOICES,
    ATTR_CW,
    ATTR_DELETE_AVATAR,
    ATTR_DELETE_BANNER,
    ATTR_DESCRIPTION,
    ATTR_DURATION,
    ATTR_ENDS_AT,
    ATTR_FIELDS,
    ATTR_FILE_NAME,
    ATTR_IS_BOT,
    ATTR_IS_CAT,
    ATTR_IS_LOCKED,
    ATTR_LANG,
    ATTR_LOCAL_ONLY,
    ATTR_LOCATION,
    ATTR_MEDIA,
    ATTR_MEDIA_CONTENT_ID,
    ATTR_MULTIPLE,
    ATTR_NOTE,
    ATTR_PATH,
    ATTR_POLL,
    ATTR_REACTION,
    ATTR_REACTION_ACCEPTANCE,
    ATTR_RECIPIENTS,
    ATTR_RENOTE,
    ATTR_REPLY_TO,
    ATTR_SCHEDULED_AT,
    ATTR_SENSITIVE,
    ATTR_TEXT,
    ATTR_URL,
    ATTR_VALUE,
    ATTR_VISIBILITY,
    DOMAIN,
    SERVICE_DELETE_NOTE,
    SERVICE_GET_ACCOUNT,
    SERVICE_MUTE_ACCOUNT,
    SERVICE_POST,
    SERVICE_REACT,
    SERVICE_UNMUTE_ACCOUNT,
    SERVICE_UPDATE_PROFILE,
    VISIBILITIES,
)
from .errors import reauth_on_refusal
from .notes import async_delete_note, async_react
from .post import REACTION_ACCEPTANCE_VALUES, async_post_note

if TYPE_CHECKING:
    from .data import MisskeyConfigEntry

# What the action editor's forms send for a field left empty: a text typed into
# and emptied again is "", a media picker that was cleared is nothing or {}, and
# a form (the poll) that was deleted is "".
_EMPTY: Final[tuple[Any, ...]] = (None, "", {})


def _filled(value: Any) -> Any:
    """Return a form's value without the fields left empty."""
    if isinstance(value, Mapping):
        return {key: item for key, item in value.items() if item not in _EMPTY}
    return value


def _form(schema: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Validate a form's filled fields; a form left empty is no value (None)."""

    def validate(value: Any) -> Any:
        if value in _EMPTY:
            return None
        return schema(_filled(value))

    return validate


def _no_forms(value: Any) -> Any:
    """Return a list of forms that was left empty as an empty list."""
    return [] if value in _EMPTY else value


def _media_content_id(value: Any) -> str:
    """Return a media item's ID: as text, or the media selector's whole value."""
    if isinstance(value, Mapping):
        value = value.get(ATTR_MEDIA_CONTENT_ID, "")
    return cv.string(value)


# One attachment: a form of the action editor (the file from the media browser
# under media_content_id, or a path, or a URL) or what YAML gave before the
# forms, such as a media selector's whole value.
ATTACHMENT_SCHEMA = probatio.Schema(
    {
        probatio.Exclusive(ATTR_MEDIA_CONTENT_ID, "source"): _media_content_id,
        probatio.Exclusive(ATTR_PATH, "source"): cv.string,
        probatio.Exclusive(ATTR_URL, "source"): cv.url,
        probatio.Optional("media_content_type"): cv.string,
        probatio.Optional("metadata"): dict,
        probatio.Optional(ATTR_ALT_TEXT): cv.string,
        probatio.Optional(ATTR_SENSITIVE): cv.boolean,
        probatio.Optional(ATTR_FILE_NAME): cv.string,
    }
)

POLL_SCHEMA = probatio.Schema(
    {
        probatio.Required(ATTR_CHOICES): probatio.All(cv.ensure_list, [cv.string]),
        probatio.Optional(ATTR_MULTIPLE, default=False): cv.boolean,
        probatio.Exclusive(
            ATTR_DURATION, "end", msg="a poll has a duration or an end time, not both"
        ): cv.positive_time_period,
        probatio.Exclusive(
            ATTR_ENDS_AT, "end", msg="a poll has a duration or an end time, not both"
        ): cv.datetime,
    }
)

# The options of a note, shared by the misskey.post action and the notify
# service's data, under the same names.
NOTE_OPTIONS: dict[Any, Any] = {
    probatio.Optional(ATTR_CW): cv.string,
    probatio.Optional(ATTR_VISIBILITY): probatio.In(VISIBILITIES),
    probatio.Optional(ATTR_RECIPIENTS): probatio.All(cv.ensure_list, [cv.string]),
    probatio.Optional(ATTR_LOCAL_ONLY): cv.boolean,
    probatio.Optional(ATTR_REPLY_TO): cv.string,
    probatio.Optional(ATTR_RENOTE): cv.string,
    probatio.Optional(ATTR_CHANNEL): cv.string,
    probatio.Optional(ATTR_REACTION_ACCEPTANCE): probatio.In(
        list(REACTION_ACCEPTANCE_VALUES)
    ),
    probatio.Optional(ATTR_POLL): _form(POLL_SCHEMA),
    probatio.Optional(ATTR_MEDIA): probatio.All(
        _no_forms, cv.ensure_list, [probatio.All(_filled, ATTACHMENT_SCHEMA)]
    ),
    probatio.Optional(ATTR_SENSITIVE): cv.boolean,
    probatio.Optional(ATTR_SCHEDULED_AT): cv.datetime,
}

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

SERVICE_GET_ACCOUNT_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_ACCOUNT): cv.string,
    }
)


def _mute_duration(value: Any) -> timedelta:
    """Return a duration; one too large for a timedelta is just too long.

    The mute's bound (MAX_MUTE_DURATION) is checked with a translated message
    when the action runs, which says it better than the schema's words would.
    """
    try:
        duration: timedelta = cv.time_period(value)
    except OverflowError:
        return timedelta.max
    return duration


SERVICE_MUTE_ACCOUNT_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required(ATTR_ACCOUNT): cv.string,
        probatio.Optional(ATTR_DURATION): probatio.All(
            _mute_duration, probatio.Range(min=timedelta(seconds=1))
        ),
    }
)
SERVICE_UNMUTE_ACCOUNT_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Required(ATTR_ACCOUNT): cv.string,
    }
)


def _date_or_clear(value: Any) -> date | None:
    """Return a date; empty clears it."""
    if value in (None, ""):
        return None
    return cv.date(value)


# An avatar or banner: one source, as an attachment of misskey.post has.
IMAGE_SCHEMA = probatio.Schema(
    {
        probatio.Exclusive(ATTR_MEDIA_CONTENT_ID, "source"): _media_content_id,
        probatio.Exclusive(ATTR_PATH, "source"): cv.string,
        probatio.Exclusive(ATTR_URL, "source"): cv.url,
        probatio.Optional("media_content_type"): cv.string,
        probatio.Optional("metadata"): dict,
        probatio.Optional(ATTR_FILE_NAME): cv.string,
    }
)
PROFILE_FIELD_SCHEMA = probatio.Schema(
    {
        probatio.Required(ATTR_FILE_NAME): cv.string,
        probatio.Required(ATTR_VALUE): cv.string,
    }
)
SERVICE_UPDATE_PROFILE_SCHEMA = probatio.Schema(
    {
        probatio.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        probatio.Optional(ATTR_FILE_NAME): cv.string,
        probatio.Optional(ATTR_DESCRIPTION): cv.string,
        probatio.Optional(ATTR_LOCATION): cv.string,
        probatio.Optional(ATTR_BIRTHDAY): _date_or_clear,
        probatio.Optional(ATTR_LANG): cv.string,
        probatio.Optional(ATTR_IS_LOCKED): cv.boolean,
        probatio.Optional(ATTR_IS_BOT): cv.boolean,
        probatio.Optional(ATTR_IS_CAT): cv.boolean,
        probatio.Optional(ATTR_FIELDS): probatio.All(
            cv.ensure_list, [PROFILE_FIELD_SCHEMA]
        ),
        probatio.Exclusive(
            ATTR_AVATAR, "avatar", msg="give avatar or delete_avatar, not both"
        ): IMAGE_SCHEMA,
        probatio.Exclusive(
            ATTR_DELETE_AVATAR, "avatar", msg="give avatar or delete_avatar, not both"
        ): cv.boolean,
        probatio.Exclusive(
            ATTR_BANNER, "banner", msg="give banner or delete_banner, not both"
        ): IMAGE_SCHEMA,
        probatio.Exclusive(
            ATTR_DELETE_BANNER, "banner", msg="give banner or delete_banner, not both"
        ): cv.boolean,
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
    hass.services.async_register(
        DOMAIN,
        SERVICE_GET_ACCOUNT,
        _async_get_account,
        schema=SERVICE_GET_ACCOUNT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_MUTE_ACCOUNT,
        _async_mute_account,
        schema=SERVICE_MUTE_ACCOUNT_SCHEMA,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_UNMUTE_ACCOUNT,
        _async_unmute_account,
        schema=SERVICE_UNMUTE_ACCOUNT_SCHEMA,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_UPDATE_PROFILE,
        _async_update_profile,
        schema=SERVICE_UPDATE_PROFILE_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


def _entry(call: ServiceCall) -> MisskeyConfigEntry:
    """Return the account the action names, or the only one."""
    entry: MisskeyConfigEntry = service.async_get_config_entry(
        call.hass, DOMAIN, call.data.get(ATTR_CONFIG_ENTRY_ID)
    )
    return entry


async def _async_react(call: ServiceCall) -> None:
    """React to a note."""
    entry = _entry(call)
    data = entry.runtime_data
    with reauth_on_refusal(call.hass, entry):
        await async_react(
            data.client,
            data.coordinator.limits,
            call.data[ATTR_NOTE],
            call.data[ATTR_REACTION],
        )


async def _async_delete_note(call: ServiceCall) -> None:
    """Delete a note of the account."""
    entry = _entry(call)
    data = entry.runtime_data
    with reauth_on_refusal(call.hass, entry):
        await async_delete_note(
            data.client, data.coordinator.limits, call.data[ATTR_NOTE]
        )


async def _async_post(call: ServiceCall) -> ServiceResponse:
    """Post a note and return it, so a later step can reply to it."""
    note = await async_post_note(
        call.hass, _entry(call), call.data.get(ATTR_TEXT), call.data
    )
    file_ids: list[JsonValueType] = list(note.file_ids)
    if isinstance(note, ScheduledNote):
        return {
            "scheduled": True,
            "draft_id": note.id,
            "scheduled_at": note.scheduled_at.isoformat(),
            "file_ids": file_ids,
        }
    return {
        "scheduled": False,
        "id": note.id,
        "url": note.url,
        "created_at": note.created_at,
        "visibility": note.visibility,
        "local_only": note.local_only,
        "text": note.text,
        "cw": note.cw,
        "file_ids": file_ids,
    }


async def _async_get_account(call: ServiceCall) -> ServiceResponse:
    """Return an account's profile."""
    entry = _entry(call)
    data = entry.runtime_data
    limits = data.coordinator.limits
    with reauth_on_refusal(call.hass, entry):
        account = await async_get_account(
            data.client, limits, call.data.get(ATTR_ACCOUNT)
        )
    return account_response(limits, account)


async def _async_mute_account(call: ServiceCall) -> None:
    """Mute an account."""
    entry = _entry(call)
    data = entry.runtime_data
    with reauth_on_refusal(call.hass, entry):
        await async_mute_account(
            data.client,
            data.coordinator.limits,
            call.data[ATTR_ACCOUNT],
            call.data.get(ATTR_DURATION),
        )


async def _async_unmute_account(call: ServiceCall) -> None:
    """Stop muting an account."""
    entry = _entry(call)
    data = entry.runtime_data
    with reauth_on_refusal(call.hass, entry):
        await async_unmute_account(
            data.client, data.coordinator.limits, call.data[ATTR_ACCOUNT]
        )


async def _async_update_profile(call: ServiceCall) -> ServiceResponse:
    """Change the account's profile, show it on the entities at once, and return it."""
    entry = _entry(call)
    data = entry.runtime_data
    coordinator = data.coordinator
    limits = coordinator.limits
    with reauth_on_refusal(call.hass, entry):
        account = await async_update_profile(call.hass, data.client, limits, call.data)
    account.last_note_at = coordinator.data.last_note_at
    coordinator.async_set_updated_data(account)
    if not call.return_response:
        return None
    return account_response(limits, account)

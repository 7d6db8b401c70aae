"""Acting on notes: reacting to one, deleting one of the account's own."""

from __future__ import annotations

import re
from typing import Final
import unicodedata

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .api import (
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    retry_rate_limited,
)
from .const import ATTR_NOTE, DOMAIN, RATE_LIMIT_MAX_WAIT
from .coordinator import MisskeyDataUpdateCoordinator
from .permissions import require_permission
from .post import note_id_from_reference

_CUSTOM_EMOJI_RE: Final = re.compile(r":(?P<name>[A-Za-z0-9_+-]+):")
# What a Unicode emoji sequence is made of: symbols, skin tones, variation
# selectors, the keycap mark, zero width joiners and flag tags.
_EMOJI_CATEGORIES: Final = frozenset({"So", "Sk", "Mn", "Me", "Cf"})
_KEYCAP_BASES: Final = frozenset("#*0123456789")
_MAX_EMOJI_LENGTH: Final = 16

# Misskey's refusals a user can act on, as translation keys.
_NOTE_ERRORS: Final = {
    "NO_SUCH_NOTE": "note_not_found",
    "ALREADY_REACTED": "already_reacted",
    "CANNOT_REACT_TO_RENOTE": "cannot_react_to_renote",
    "YOU_HAVE_BEEN_BLOCKED": "note_you_have_been_blocked",
    "ACCESS_DENIED": "note_not_yours",
}


def is_unicode_emoji(text: str) -> bool:
    """Return whether ``text`` is one emoji (a sequence Misskey takes as a reaction)."""
    if not 0 < len(text) <= _MAX_EMOJI_LENGTH:
        return False
    has_symbol = False
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if char in _KEYCAP_BASES:
            # 1️⃣: a digit only as the base of a keycap.
            if "\u20e3" not in text[index + 1 : index + 3]:
                return False
            has_symbol = True
        elif category not in _EMOJI_CATEGORIES:
            return False
        elif category == "So":
            has_symbol = True
    return has_symbol


async def async_react(
    coordinator: MisskeyDataUpdateCoordinator, note: str, reaction: str
) -> None:
    """React to a note with a Unicode emoji or ``:name:`` of a custom emoji.

    Misskey turns a reaction it does not know into ❤ without a word, so
    what it would not take is refused here.
    """
    require_permission(coordinator.config_entry, "write:reactions")
    note_id = note_id_from_reference(coordinator, ATTR_NOTE, note)
    reaction = reaction.strip()
    if match := _CUSTOM_EMOJI_RE.fullmatch(reaction):
        try:
            exists = await coordinator.client.custom_emoji_exists(match["name"])
        except MisskeyError as err:
            raise _action_error(coordinator, err, note) from err
        if exists is False:
            raise _validation_error("unknown_custom_emoji", reaction=reaction)
    elif not is_unicode_emoji(reaction):
        raise _validation_error("invalid_reaction", reaction=reaction)
    try:
        await retry_rate_limited(
            lambda: coordinator.client.react(note_id, reaction), RATE_LIMIT_MAX_WAIT
        )
    except MisskeyError as err:
        raise _action_error(coordinator, err, note) from err


async def async_delete_note(
    coordinator: MisskeyDataUpdateCoordinator, note: str
) -> None:
    """Delete a note of the account."""
    require_permission(coordinator.config_entry, "write:notes")
    note_id = note_id_from_reference(coordinator, ATTR_NOTE, note)
    try:
        await retry_rate_limited(
            lambda: coordinator.client.delete_note(note_id), RATE_LIMIT_MAX_WAIT
        )
    except MisskeyError as err:
        raise _action_error(coordinator, err, note) from err


def _validation_error(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )


def _action_error(
    coordinator: MisskeyDataUpdateCoordinator, err: MisskeyError, note: str
) -> HomeAssistantError:
    """Return what a user reads when Misskey did not do what was asked."""
    if isinstance(err, MisskeyAuthenticationError):
        coordinator.config_entry.async_start_reauth(coordinator.hass)
        return HomeAssistantError(
            translation_domain=DOMAIN, translation_key="authentication_failed"
        )
    if isinstance(err, MisskeyPermissionDeniedError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="permission_refused",
            translation_placeholders={"account": coordinator.config_entry.title},
        )
    if isinstance(err, MisskeyApiError) and err.code in _NOTE_ERRORS:
        return _validation_error(_NOTE_ERRORS[err.code], note=note)
    if isinstance(err, MisskeyRateLimitError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="action_rate_limited",
            translation_placeholders={"retry_after": str(round(err.retry_after or 0))},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="action_cannot_connect"
        if isinstance(err, MisskeyCannotConnectError)
        else "action_failed",
        translation_placeholders={"error": str(err)},
    )

"""Acting on notes: reacting to one, deleting one of the account's own."""

from __future__ import annotations

import re
from typing import Final
import unicodedata

from .api import MisskeyClient
from .const import ATTR_NOTE, PERMISSION_WRITE_NOTES, PERMISSION_WRITE_REACTIONS
from .errors import async_call, require_permission, validation_error
from .limits import AccountLimits
from .post import note_id_from_reference

# A custom emoji as users write it (:name:) and as Misskey reports reactions:
# :name@.: for this server's, :name@host: for another server's.
_CUSTOM_EMOJI: Final = r":(?P<name>[A-Za-z0-9_+-]+)(?:@(?P<host>\.|[A-Za-z0-9.:-]+))?:"
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
    client: MisskeyClient, limits: AccountLimits, note: str, reaction: str
) -> None:
    """React to a note with a Unicode emoji or a custom emoji.

    A custom emoji is ``:name:``, or as an event's ``reaction`` reports it:
    ``:name@.:`` (this server's) or ``:name@host:`` (another server's, which
    the account can only use if its own server has an emoji of that name).
    It is sent as ``:name:``, which every version takes. Misskey turns a
    reaction it does not know into ❤ without a word, so what it would not
    take is refused here.
    """
    require_permission(limits, PERMISSION_WRITE_REACTIONS)
    note_id = note_id_from_reference(limits.url, ATTR_NOTE, note)
    reaction = reaction.strip()
    if match := re.fullmatch(_CUSTOM_EMOJI, reaction):
        name = match["name"]
        exists = await async_call(
            client,
            limits,
            lambda: client.custom_emoji_exists(name),
            "action_failed",
        )
        if exists is False:
            if match["host"] not in (None, ".", limits.host):
                raise validation_error(
                    "unknown_remote_custom_emoji",
                    reaction=reaction,
                    name=f":{name}:",
                    host=match["host"],
                )
            raise validation_error("unknown_custom_emoji", reaction=reaction)
        reaction = f":{name}:"
    elif not is_unicode_emoji(reaction):
        raise validation_error("invalid_reaction", reaction=reaction)
    await async_call(
        client,
        limits,
        lambda: client.react(note_id, reaction),
        "action_failed",
        permission=PERMISSION_WRITE_REACTIONS,
        known=_NOTE_ERRORS,
        note=note,
    )


async def async_delete_note(
    client: MisskeyClient, limits: AccountLimits, note: str
) -> None:
    """Delete a note of the account."""
    require_permission(limits, PERMISSION_WRITE_NOTES)
    note_id = note_id_from_reference(limits.url, ATTR_NOTE, note)
    await async_call(
        client,
        limits,
        lambda: client.delete_note(note_id),
        "action_failed",
        permission=PERMISSION_WRITE_NOTES,
        known=_NOTE_ERRORS,
        note=note,
    )

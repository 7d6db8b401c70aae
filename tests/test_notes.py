"""misskey.react and misskey.delete_note, through Home Assistant against the test server."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import DOMAIN
from custom_components.misskey.notes import is_unicode_emoji
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .misskey_server import MISSKEY, MISSKEY_13, SHARKEY, MisskeyServer


async def bobs_note(misskey: MisskeyServer) -> dict[str, Any]:
    """Return a note by another user."""
    bob = misskey.add_user("bob")
    note = misskey._validate_note({"text": "garage open"}, bob)
    misskey.notes[note["id"]] = note
    return note


async def call(hass: HomeAssistant, service: str, **data: Any) -> None:
    """Call one of the actions."""
    await hass.services.async_call(DOMAIN, service, data, blocking=True)


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
@pytest.mark.parametrize("reaction", ["👍", "👍️", "1️⃣", "🇯🇵", "👨‍👩‍👧", ":blobcat:"])
async def test_react(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    reaction: str,
) -> None:
    """A reaction by note URL reaches Misskey as it was given."""
    note = await bobs_note(misskey)
    await call(
        hass, "react", note=f"{misskey.url}/notes/{note['id']}", reaction=reaction
    )
    (request,) = misskey.calls("notes/reactions/create")
    assert request.body["noteId"] == note["id"]
    assert request.body["reaction"] == reaction
    assert (note["id"], misskey.user.id) in misskey.reactions
    # Stored as Misskey would: never silently turned into a heart.
    assert misskey.reactions[note["id"], misskey.user.id] != "❤"


@pytest.mark.parametrize(
    "reaction", ["like", "👍 ok", "a", "あ", "12", "", ":no such:"]
)
async def test_react_refuses_what_misskey_would_turn_into_a_heart(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    reaction: str,
) -> None:
    """Words and several characters are refused before anything is sent."""
    note = await bobs_note(misskey)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "react", note=note["id"], reaction=reaction)
    assert err.value.translation_key == "invalid_reaction"
    assert not misskey.calls("notes/reactions/create")


async def test_react_with_unknown_custom_emoji(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A custom emoji the server does not have is refused, not sent as ❤."""
    note = await bobs_note(misskey)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "react", note=note["id"], reaction=":partyparrot:")
    assert err.value.translation_key == "unknown_custom_emoji"
    assert err.value.translation_placeholders == {"reaction": ":partyparrot:"}
    assert misskey.calls("emoji")[0].body == {"name": "partyparrot"}
    assert not misskey.calls("notes/reactions/create")


@pytest.mark.parametrize(
    ("setup", "key"),
    [
        ("missing", "note_not_found"),
        ("twice", "already_reacted"),
        ("renote", "cannot_react_to_renote"),
    ],
)
async def test_react_refused_by_misskey(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    setup: str,
    key: str,
) -> None:
    """Misskey's refusals read as what to do about them."""
    note = await bobs_note(misskey)
    note_id = note["id"]
    if setup == "missing":
        note_id = "9zzzzzzzzz"
    elif setup == "twice":
        await call(hass, "react", note=note_id, reaction="👍")
    else:
        renote = misskey._validate_note({"renoteId": note_id}, misskey.user)
        misskey.notes[renote["id"]] = renote
        note_id = renote["id"]
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "react", note=note_id, reaction="👍")
    assert err.value.translation_key == key


async def test_react_needs_the_permission(
    hass: HomeAssistant, misskey: MisskeyServer, legacy_config_entry: MockConfigEntry
) -> None:
    """An account that has not allowed reactions is told so, and nothing is sent."""
    legacy_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(legacy_config_entry.entry_id)
    await hass.async_block_till_done()
    note = await bobs_note(misskey)
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "react", note=note["id"], reaction="👍")
    assert err.value.translation_key == "missing_permission"
    assert err.value.translation_placeholders["permission"] == "write:reactions"
    assert not misskey.calls("notes/reactions/create")


async def test_react_to_a_note_of_another_server(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A note URL of another instance is no note of this one."""
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass, "react", note="https://elsewhere.example/notes/9abc", reaction="👍"
        )
    assert err.value.translation_key == "invalid_note_reference"


async def test_delete_note(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The account's notes are deleted, one after the other (Misskey allows one a second)."""
    notes = [
        await hass.services.async_call(
            DOMAIN, "post", {"text": f"note {n}"}, blocking=True, return_response=True
        )
        for n in range(2)
    ]
    for note in notes:
        assert note is not None
        await call(hass, "delete_note", note=str(note["url"]))
    assert [r.body for r in misskey.calls("notes/delete") if r.body.get("i")] != []
    deleted = {r.body["noteId"] for r in misskey.calls("notes/delete")}
    assert deleted == {note["id"] for note in notes if note is not None}
    assert not misskey.notes


@pytest.mark.parametrize(
    ("whose", "key"), [("bob", "note_not_yours"), ("nobody", "note_not_found")]
)
async def test_delete_note_refused(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    whose: str,
    key: str,
) -> None:
    """Another user's note, or none, cannot be deleted; the message says which."""
    note_id = (await bobs_note(misskey))["id"] if whose == "bob" else "9zzzzzzzzz"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, "delete_note", note=note_id)
    assert err.value.translation_key == key
    assert err.value.translation_placeholders == {"note": note_id}


async def test_delete_note_server_error(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A failing server is a clear error, not a traceback."""
    misskey.fail_next("notes/delete", "server_error")
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, "delete_note", note="9abc")
    assert err.value.translation_key == "action_failed"


@pytest.mark.parametrize(
    ("text", "emoji"),
    [
        ("👍", True),
        ("❤️", True),
        ("🏳️‍🌈", True),
        ("#️⃣", True),
        ("👍🏽", True),
        ("x", False),
        ("1", False),
        ("👍x", False),
        ("‍", False),
        ("👍" * 17, False),
    ],
)
def test_is_unicode_emoji(text: str, emoji: bool) -> None:
    """Emoji sequences pass; letters, digits alone and long strings do not."""
    assert is_unicode_emoji(text) is emoji

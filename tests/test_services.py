"""Tests for the misskey.post action, against the test server over HTTP."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.api.gate import MAX_IN_FLIGHT
from custom_components.misskey.const import DOMAIN, SERVICE_POST
from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import homeassistant.util.dt as dt_util

from .conftest import HANG_TIMEOUT
from .misskey_server import MisskeyServer

pytestmark = pytest.mark.usefixtures("init_integration")


async def post(
    hass: HomeAssistant, entry: MockConfigEntry | None = None, **data: Any
) -> dict[str, Any]:
    """Call misskey.post and return its response."""
    if entry is not None:
        data[ATTR_CONFIG_ENTRY_ID] = entry.entry_id
    response = await hass.services.async_call(
        DOMAIN, SERVICE_POST, data, blocking=True, return_response=True
    )
    assert response is not None
    return response


def sent(misskey: MisskeyServer) -> dict[str, Any]:
    """Return the parameters notes/create received last, without the credential."""
    body = dict(misskey.calls("notes/create")[-1].body)
    body.pop("i")
    return body


async def test_post_returns_the_note(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The response has what a later step needs to reply to the note."""
    response = await post(hass, init_integration, text="Hello from Home Assistant")
    (note,) = misskey.notes.values()
    assert response == {
        "scheduled": False,
        "id": note["id"],
        "url": f"{misskey.url}/notes/{note['id']}",
        "created_at": note["createdAt"],
        # A new account's default (its options).
        "visibility": "home",
        "local_only": False,
        "text": "Hello from Home Assistant",
        "cw": None,
        "file_ids": [],
    }
    assert sent(misskey) == {"text": "Hello from Home Assistant", "visibility": "home"}

    # Reply to it by URL, then by ID, as an automation would.
    await post(hass, init_integration, text="Reply", reply_to=response["url"])
    assert sent(misskey)["replyId"] == note["id"]
    await post(hass, init_integration, renote=response["id"])
    assert sent(misskey) == {"renoteId": note["id"], "visibility": "home"}


async def test_single_account_needs_no_entry(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """With one account, config_entry_id may be left out."""
    await post(hass, text="Hi")
    assert sent(misskey) == {"text": "Hi", "visibility": "home"}


async def test_every_option_reaches_misskey(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
) -> None:
    """Each field becomes the notes/create parameter Misskey expects."""
    misskey.channels.add("chan1")
    bob = misskey.add_user("bob")
    carol = misskey.add_user("carol", host="remote.example")
    response = await post(
        hass,
        init_integration,
        text="Vote!",
        cw="A poll",
        recipients=[
            "@bob",
            "@carol@remote.example",
            f"@alice@{misskey.url.removeprefix('http://')}",
        ],
        local_only=True,
        reaction_acceptance="likeOnly",
        poll={"choices": ["Yes", "No"], "multiple": True, "duration": {"hours": 1}},
    )
    assert sent(misskey) == {
        "text": "Vote!",
        "cw": "A poll",
        "visibility": "specified",
        "visibleUserIds": [bob.id, carol.id, misskey.user.id],
        "localOnly": True,
        "reactionAcceptance": "likeOnly",
        "poll": {"choices": ["Yes", "No"], "multiple": True, "expiredAfter": 3600000},
    }
    assert response["visibility"] == "specified"

    ends_at = dt_util.utcnow() + timedelta(days=1)
    await post(
        hass,
        init_integration,
        text="In a channel",
        channel="chan1",
        visibility="home",
        reaction_acceptance="all",
        poll={"choices": ["A", "B", "C"], "ends_at": ends_at.isoformat()},
    )
    assert sent(misskey) == {
        "text": "In a channel",
        "channelId": "chan1",
        "visibility": "home",
        "reactionAcceptance": None,
        "poll": {
            "choices": ["A", "B", "C"],
            "multiple": False,
            "expiresAt": int(ends_at.timestamp() * 1000),
        },
    }


@pytest.mark.parametrize(
    ("acceptance", "expected"),
    [
        # The selector's options...
        ("all", None),
        ("like_only", "likeOnly"),
        ("like_only_for_remote", "likeOnlyForRemote"),
        ("non_sensitive_only", "nonSensitiveOnly"),
        (
            "non_sensitive_only_for_local_like_only_for_remote",
            "nonSensitiveOnlyForLocalLikeOnlyForRemote",
        ),
        # ...and Misskey's own spellings, which automations already send.
        ("likeOnly", "likeOnly"),
        ("likeOnlyForRemote", "likeOnlyForRemote"),
        ("nonSensitiveOnly", "nonSensitiveOnly"),
        (
            "nonSensitiveOnlyForLocalLikeOnlyForRemote",
            "nonSensitiveOnlyForLocalLikeOnlyForRemote",
        ),
    ],
)
async def test_reaction_acceptance_spellings(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    acceptance: str,
    expected: str | None,
) -> None:
    """Both spellings of reaction_acceptance reach Misskey as its own value."""
    await post(hass, init_integration, text="Hi", reaction_acceptance=acceptance)
    assert sent(misskey) == {
        "text": "Hi",
        "reactionAcceptance": expected,
        "visibility": "home",
    }


@pytest.mark.parametrize("acceptance", ["LikeOnly", "like-only", "likeonly", ""])
async def test_reaction_acceptance_unknown(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    acceptance: str,
) -> None:
    """Another spelling is refused by the schema, and nothing is posted."""
    with pytest.raises(probatio.Invalid, match="reaction_acceptance"):
        await post(hass, init_integration, text="Hi", reaction_acceptance=acceptance)
    assert not misskey.calls("notes/create")


async def test_public_lowered_to_home(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The response tells the visibility the server really gave the note."""
    misskey.public_becomes_home = True
    response = await post(hass, init_integration, text="Hi", visibility="public")
    assert response["visibility"] == "home"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({}, "empty_note"),
        ({"text": "   "}, "empty_note"),
        ({"text": "x" * 3001}, "text_too_long"),
        ({"text": "🐈" * 3001}, "text_too_long"),
        ({"text": "Hi", "cw": "x" * 101}, "cw_too_long"),
        ({"text": "Hi", "poll": {"choices": ["only"]}}, "poll_choices"),
        (
            {"text": "Hi", "poll": {"choices": [str(i) for i in range(11)]}},
            "poll_choices",
        ),
        ({"text": "Hi", "poll": {"choices": ["a", "a"]}}, "poll_choices_unique"),
        ({"text": "Hi", "poll": {"choices": ["a", "b" * 51]}}, "poll_choice_length"),
        (
            {
                "text": "Hi",
                "poll": {"choices": ["a", "b"], "ends_at": "2001-01-01T00:00:00+00:00"},
            },
            "poll_ended",
        ),
        (
            {"text": "Hi", "recipients": ["bob"], "visibility": "public"},
            "recipients_need_specified",
        ),
        ({"text": "Hi", "recipients": ["not a user!"]}, "invalid_recipient"),
        ({"text": "Hi", "recipients": ["@nobody"]}, "recipient_not_found"),
        (
            {"text": "Hi", "reply_to": "https://elsewhere.example/notes/abc"},
            "invalid_note_reference",
        ),
        ({"text": "Hi", "reply_to": "not an id!"}, "invalid_note_reference"),
        (
            {"text": "Hi", "renote": "https://x.example/@alice"},
            "invalid_note_reference",
        ),
    ],
)
async def test_validation_errors(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    data: dict[str, Any],
    key: str,
) -> None:
    """Bad input is refused before anything is posted, with a translated message."""
    with pytest.raises(ServiceValidationError) as exc:
        await post(hass, init_integration, **data)
    assert exc.value.translation_key == key
    assert exc.value.translation_domain == DOMAIN
    assert not misskey.calls("notes/create")


async def test_schema_errors(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A poll with both a duration and an end time is refused by the schema."""
    with pytest.raises(Exception, match="duration or an end time"):
        await post(
            hass,
            init_integration,
            text="Hi",
            poll={
                "choices": ["a", "b"],
                "duration": 60,
                "ends_at": "2099-01-01T00:00:00",
            },
        )


async def test_unknown_or_unloaded_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The action says when the account does not exist or is not loaded."""
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            SERVICE_POST,
            {ATTR_CONFIG_ENTRY_ID: "nope", "text": "Hi"},
            blocking=True,
        )
    await hass.config_entries.async_unload(init_integration.entry_id)
    with pytest.raises(ServiceValidationError):
        await post(hass, init_integration, text="Hi")


@pytest.mark.parametrize(
    ("code", "key"),
    [
        ("NO_SUCH_REPLY_TARGET", "note_no_such_reply_target"),
        ("NO_SUCH_RENOTE_TARGET", "note_no_such_renote_target"),
        ("NO_SUCH_CHANNEL", "note_no_such_channel"),
        ("CONTAINS_PROHIBITED_WORDS", "note_contains_prohibited_words"),
        ("CONTAINS_TOO_MANY_MENTIONS", "note_contains_too_many_mentions"),
        ("YOU_HAVE_BEEN_BLOCKED", "note_you_have_been_blocked"),
    ],
)
async def test_named_misskey_errors(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    code: str,
    key: str,
) -> None:
    """Misskey's named refusals become messages a user understands."""
    data: dict[str, Any] = {"text": "Hi @a @b"}
    if code == "NO_SUCH_REPLY_TARGET":
        data["reply_to"] = "9abc"
    elif code == "NO_SUCH_RENOTE_TARGET":
        data["renote"] = "9abc"
    elif code == "NO_SUCH_CHANNEL":
        data["channel"] = "nochannel"
    elif code == "CONTAINS_PROHIBITED_WORDS":
        misskey.prohibited_words = ["Hi"]
    elif code == "CONTAINS_TOO_MANY_MENTIONS":
        misskey.max_mentions = 1
    else:
        other = misskey.add_user("grumpy")
        misskey.user.blocked_by.add(other.id)
        note = misskey._validate_note({"text": "mine"}, other)
        misskey.notes[note["id"]] = note
        data["reply_to"] = note["id"]
    with pytest.raises(HomeAssistantError) as exc:
        await post(hass, init_integration, **data)
    assert exc.value.translation_key == key
    assert not misskey.notes or code == "YOU_HAVE_BEEN_BLOCKED"


async def test_invalid_param_from_server(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A limit the server has and we do not know is reported with Misskey's reason."""
    misskey.max_note_text_length = 10
    with pytest.raises(ServiceValidationError) as exc:
        await post(hass, init_integration, text="x" * 20)
    # Our own check uses the limit read at set-up, so the server is the one refusing.
    assert exc.value.translation_key == "invalid_parameter"
    assert exc.value.translation_placeholders["param"] == "text"


async def test_rate_limit_is_waited_out(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A 429 is retried after Retry-After; the note is posted once."""
    misskey.fail_next("notes/create", "rate_limit", count=2, retry_after=0.05)
    await post(hass, init_integration, text="Once")
    assert len(misskey.calls("notes/create")) == 3
    assert [n["text"] for n in misskey.notes.values()] == ["Once"]


async def test_rate_limit_too_long(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A Retry-After longer than we wait fails the call, and nothing was posted."""
    misskey.fail_next("notes/create", "rate_limit", retry_after=3600)
    with pytest.raises(HomeAssistantError) as exc:
        await post(hass, init_integration, text="Later")
    assert exc.value.translation_key == "rate_limited"
    assert exc.value.translation_placeholders == {"retry_after": "3600"}
    assert not misskey.notes


async def test_burst_waits_for_the_limit(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Notes posted at once past the limit all go, once each, without a stampede."""
    # A window far longer than the first calls take to arrive, even on a
    # loaded machine: they overrun it.
    misskey.limit("notes/create", 2, 1)
    await asyncio.gather(
        *(post(hass, init_integration, text=f"Note {n}") for n in range(6))
    )

    assert sorted(n["text"] for n in misskey.notes.values()) == [
        f"Note {n}" for n in range(6)
    ]
    requests = misskey.calls("notes/create")
    refused = [r for r in requests if r.refused_until is not None]
    # Only the calls on their way when the first 429 came back were refused.
    assert 1 <= len(refused) <= MAX_IN_FLIGHT
    assert len(requests) == 6 + len(refused)


async def test_rate_limit_longer_than_a_minute(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Past Misskey's hourly limit a note fails at once, and is not sent again."""
    misskey.limit("notes/create", 1, 3600)
    await post(hass, init_integration, text="First")
    for text in ("Second", "Third"):
        with pytest.raises(HomeAssistantError) as exc:
            await post(hass, init_integration, text=text)
        assert exc.value.translation_key == "rate_limited"
        assert 3500 < int(exc.value.translation_placeholders["retry_after"]) <= 3600
    assert [n["text"] for n in misskey.notes.values()] == ["First"]
    # The second was refused once; the third was not sent at all.
    assert [r.body["text"] for r in misskey.calls("notes/create")] == [
        "First",
        "Second",
    ]


async def test_unknown_outcome_is_not_retried(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The server posted but the answer was lost: no second note."""
    init_integration.runtime_data.coordinator.client.request_timeout = HANG_TIMEOUT
    misskey.fail_next("notes/create", "hang", delay=30, after=True)
    with pytest.raises(HomeAssistantError) as exc:
        await post(hass, init_integration, text="Maybe")
    assert exc.value.translation_key == "post_outcome_unknown"
    assert len(misskey.notes) == 1
    assert len(misskey.calls("notes/create")) == 1


@pytest.fixture
def picture(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Return a file in a folder Home Assistant may read from."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(199_996))
    return path


async def test_post_with_attachments(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """Files upload first, then the note carries them; the response has their IDs."""
    (picture.parent / "b.txt").write_bytes(b"second")
    response = await post(
        hass,
        init_integration,
        media=[
            {"path": str(picture), "alt_text": "A picture"},
            {"path": str(picture.parent / "b.txt"), "sensitive": False},
        ],
        sensitive=True,
    )
    first, second = misskey.files.values()
    assert (first.comment, first.is_sensitive) == ("A picture", True)
    assert (second.comment, second.is_sensitive) == (None, False)
    assert sent(misskey) == {"fileIds": [first.id, second.id], "visibility": "home"}
    assert response["file_ids"] == [first.id, second.id]


async def test_refused_note_deletes_its_files(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """Misskey refusing the note leaves no uploaded file behind."""
    misskey.prohibited_words = ["forbidden"]
    with pytest.raises(HomeAssistantError) as exc:
        await post(
            hass,
            init_integration,
            text="forbidden",
            media=[{"path": str(picture)}],
        )
    assert exc.value.translation_key == "note_contains_prohibited_words"
    assert len(misskey.calls("drive/files/create")) == 1
    assert not misskey.files
    assert not misskey.notes


async def test_unknown_outcome_keeps_files(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """A note that may exist keeps its files, so it is not left with broken ones."""
    init_integration.runtime_data.coordinator.client.request_timeout = HANG_TIMEOUT
    misskey.fail_next("notes/create", "hang", delay=30, after=True)
    with pytest.raises(HomeAssistantError) as exc:
        await post(hass, init_integration, media=[{"path": str(picture)}])
    assert exc.value.translation_key == "post_outcome_unknown"
    assert len(misskey.files) == 1
    assert not misskey.calls("drive/files/delete")


async def test_failed_attachment_posts_nothing(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """A second attachment that fails: the first is deleted and no note is posted."""
    with pytest.raises(HomeAssistantError) as exc:
        await post(
            hass,
            init_integration,
            text="Two files",
            media=[
                {"path": str(picture)},
                {"path": str(picture.parent / "missing.png")},
            ],
        )
    assert exc.value.translation_placeholders["index"] == "2"
    assert not misskey.files
    assert not misskey.calls("notes/create")


async def test_rate_limited_upload_is_waited_out(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """An upload refused with 429 is sent again, whole, after Retry-After."""
    misskey.fail_next("drive/files/create", "rate_limit", retry_after=0.05)
    response = await post(hass, init_integration, media=[{"path": str(picture)}])
    (drive_file,) = misskey.files.values()
    assert drive_file.size == 200_004
    assert response["file_ids"] == [drive_file.id]
    assert len(misskey.calls("drive/files/create")) == 2


async def test_rate_limited_upload_too_long(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """A Retry-After longer than we wait names the attachment; nothing is posted."""
    misskey.fail_next("drive/files/create", "rate_limit", retry_after=3600)
    with pytest.raises(HomeAssistantError) as exc:
        await post(hass, init_integration, media=[{"path": str(picture)}])
    assert exc.value.translation_key == "attachment_rate_limited"
    assert exc.value.translation_placeholders["retry_after"] == "3600"
    assert not misskey.notes

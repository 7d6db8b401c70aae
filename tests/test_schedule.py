"""Tests for scheduled notes (misskey.post and notify data with scheduled_at)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import DOMAIN, SERVICE_POST
from homeassistant.components.notify import (
    ATTR_DATA,
    ATTR_MESSAGE,
    DOMAIN as NOTIFY_DOMAIN,
)
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import slugify

from .conftest import HANG_TIMEOUT
from .listening import until
from .misskey_server import (
    CHERRYPICK,
    FIREFISH,
    FOUNDKEY,
    MISSKEY_13,
    SHARKEY,
    MisskeyServer,
)

NOW = datetime.fromisoformat("2026-12-01T09:00:00+00:00")
LATER = NOW + timedelta(days=1)


# A known time to start from, so scheduledAt can be checked exactly; it runs
# on, as waiting (rate limits, time-outs) needs.
pytestmark = pytest.mark.freeze_time(NOW, tick=True)


def ms(moment: datetime) -> int:
    """Return epoch milliseconds, as Misskey takes times."""
    return int(moment.timestamp() * 1000)


async def post(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """Call misskey.post and return its response."""
    response = await hass.services.async_call(
        DOMAIN, SERVICE_POST, data, blocking=True, return_response=True
    )
    assert response is not None
    return response


def sent(misskey: MisskeyServer, endpoint: str) -> dict[str, Any]:
    """Return the parameters the endpoint received last, without the credential."""
    body = dict(misskey.calls(endpoint)[-1].body)
    body.pop("i")
    return body


def add_draft(misskey: MisskeyServer, *, scheduled: bool) -> None:
    """Give the account a draft made elsewhere (in Misskey's web client)."""
    draft_id = f"draft{len(misskey.drafts)}"
    misskey.drafts[draft_id] = {
        "id": draft_id,
        "userId": misskey.user.id,
        "isActuallyScheduled": scheduled,
        "scheduledAt": ms(LATER) if scheduled else None,
    }


@pytest.fixture
def picture(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Return a PNG in a folder Home Assistant may read from."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    path = tmp_path / "a.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(1000))
    return path


async def test_scheduled_note(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Misskey 2025.x+: a draft with scheduledAt and isActuallyScheduled; its ID back."""
    response = await post(
        hass, text="Good morning", visibility="home", scheduled_at=LATER.isoformat()
    )
    assert sent(misskey, "notes/drafts/list") == {"limit": 100}
    assert sent(misskey, "notes/drafts/create") == {
        "text": "Good morning",
        "visibility": "home",
        "scheduledAt": ms(LATER),
        "isActuallyScheduled": True,
    }
    (draft,) = misskey.drafts.values()
    assert response == {
        "scheduled": True,
        "draft_id": draft["id"],
        "scheduled_at": "2026-12-02T09:00:00+00:00",
        "file_ids": [],
    }
    assert not misskey.calls("notes/create")
    assert not misskey.notes


async def test_local_time_and_attachments(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """A time without zone is Home Assistant's local time; files go with the draft."""
    await hass.config.async_set_time_zone("Asia/Tokyo")
    response = await post(
        hass, media=[{"path": str(picture)}], scheduled_at="2026-12-24 18:00:00"
    )
    expected = datetime.fromisoformat("2026-12-24T09:00:00+00:00")
    (drive_file,) = misskey.files.values()
    assert sent(misskey, "notes/drafts/create") == {
        "fileIds": [drive_file.id],
        "visibility": "home",
        "scheduledAt": ms(expected),
        "isActuallyScheduled": True,
    }
    assert response["file_ids"] == [drive_file.id]
    assert response["scheduled_at"] == expected.isoformat()


async def test_notify_data_schedules(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The notify service's data takes scheduled_at too."""
    await hass.services.async_call(
        NOTIFY_DOMAIN,
        f"{DOMAIN}_{slugify(init_integration.title)}",
        {ATTR_MESSAGE: "Later", ATTR_DATA: {"scheduled_at": LATER.isoformat()}},
        blocking=True,
    )
    assert sent(misskey, "notes/drafts/create")["scheduledAt"] == ms(LATER)
    assert not misskey.notes


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (
            {"scheduled_at": (NOW - timedelta(minutes=1)).isoformat()},
            "scheduled_at_past",
        ),
        ({"scheduled_at": NOW.isoformat()}, "scheduled_at_past"),
        (
            {
                "scheduled_at": LATER.isoformat(),
                "poll": {
                    "choices": ["a", "b"],
                    "ends_at": (LATER - timedelta(hours=1)).isoformat(),
                },
            },
            "poll_ends_before_schedule",
        ),
    ],
)
async def test_refused_before_sending(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    data: dict[str, Any],
    key: str,
) -> None:
    """A time that passed, or a poll over before the note appears: nothing sent."""
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", **data)
    assert err.value.translation_key == key
    assert not misskey.calls("notes/drafts/list")
    assert not misskey.calls("notes/drafts/create")


@pytest.mark.parametrize("variant", [MISSKEY_13, FIREFISH, FOUNDKEY])
async def test_server_without_scheduling(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """No scheduling policy in i: said before anything, files included, is sent."""
    # Once the account is heard, its listener sends nothing more by itself:
    # what reaches the server from here on is the post's.
    await until(lambda: init_integration.runtime_data.listener.connected)
    before = len(misskey.requests)
    with pytest.raises(ServiceValidationError) as err:
        await post(
            hass,
            text="Hi",
            media=[{"path": str(picture)}],
            scheduled_at=LATER.isoformat(),
        )
    assert err.value.translation_key == "scheduling_not_supported"
    assert err.value.translation_placeholders == {"instance": misskey.url}
    assert [
        r.endpoint for r in misskey.requests[before:] if r.endpoint not in ("i", "meta")
    ] == []


async def test_role_limit_reached(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """ScheduledNoteLimit (1 by default) in use: refused before the upload."""
    add_draft(misskey, scheduled=True)
    with pytest.raises(ServiceValidationError) as err:
        await post(
            hass,
            text="Hi",
            media=[{"path": str(picture)}],
            scheduled_at=LATER.isoformat(),
        )
    assert err.value.translation_key == "scheduled_note_limit"
    assert err.value.translation_placeholders == {"max": "1"}
    assert not misskey.calls("drive/files/create")
    assert not misskey.calls("notes/drafts/create")


@pytest.mark.parametrize("variant", [CHERRYPICK])
async def test_cherrypick_schedules_three(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """CherryPick schedules as Misskey 2025.10.2 does; its base role lets 3 wait."""
    for index in range(3):
        await post(hass, text=f"Note {index}", scheduled_at=LATER.isoformat())
    assert len(misskey.drafts) == 3
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Too many", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "scheduled_note_limit"
    assert err.value.translation_placeholders == {"max": "3"}
    assert len(misskey.calls("notes/drafts/create")) == 3


async def test_draft_limit_reached(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A scheduled note is a draft: noteDraftLimit (10) full refuses it too."""
    for _ in range(10):
        add_draft(misskey, scheduled=False)
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "too_many_drafts"
    assert err.value.translation_placeholders == {"max": "10"}
    assert not misskey.calls("notes/drafts/create")


async def test_role_allows_none(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A role with scheduledNoteLimit 0 is refused without asking the server."""
    assert misskey.policies is not None
    misskey.policies["scheduledNoteLimit"] = 0
    await init_integration.runtime_data.coordinator.async_refresh()
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "scheduled_note_limit"
    assert not misskey.calls("notes/drafts/list")


async def test_server_refuses_after_upload(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """A limit lowered since the last read: Misskey's refusal is translated.

    The files uploaded for the note are deleted.
    """
    assert misskey.policies is not None
    misskey.policies["scheduledNoteLimit"] = 2
    await init_integration.runtime_data.coordinator.async_refresh()
    misskey.policies["scheduledNoteLimit"] = 1
    add_draft(misskey, scheduled=True)
    with pytest.raises(HomeAssistantError) as err:
        await post(
            hass,
            text="Hi",
            media=[{"path": str(picture)}],
            scheduled_at=LATER.isoformat(),
        )
    assert err.value.translation_key == "scheduled_note_limit_reached"
    assert len(misskey.calls("notes/drafts/create")) == 1
    assert not misskey.files
    assert len(misskey.drafts) == 1


async def test_needs_write_account(
    hass: HomeAssistant, misskey: MisskeyServer, legacy_config_entry: MockConfigEntry
) -> None:
    """An account that did not grant write:account: refused unsent, naming it."""
    legacy_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(legacy_config_entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "missing_permission"
    assert err.value.translation_placeholders["permission"] == "write:account"
    assert not misskey.calls("notes/drafts/list")


async def test_server_refuses_permission(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """An app with only write:notes gets 403 from drafts: named, no re-authentication."""
    misskey.tokens[-1].permission.remove("write:account")
    # The drafts list needs only read:account.
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, text="Hi", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "missing_permission"
    assert err.value.translation_placeholders == {
        "account": init_integration.title,
        "permission": "write:account",
    }
    assert not misskey.drafts
    await hass.async_block_till_done()
    assert not [
        flow
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


async def test_other_note_errors(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The note errors drafts share with notes/create read the same."""
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, text="Hi", reply_to="9abc", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "note_no_such_reply_target"


@pytest.mark.parametrize("variant", [SHARKEY])
async def test_sharkey_schedule(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Sharkey's notes/schedule/create answers an empty string: scheduled, no ID."""
    response = await post(
        hass, text="Later", cw="Spoiler", scheduled_at=LATER.isoformat()
    )
    assert sent(misskey, "notes/schedule/create") == {
        "text": "Later",
        "cw": "Spoiler",
        "visibility": "home",
        "scheduleNote": {"scheduledAt": ms(LATER)},
    }
    assert response == {
        "scheduled": True,
        "draft_id": None,
        "scheduled_at": LATER.isoformat(),
        "file_ids": [],
    }
    (scheduled,) = misskey.scheduled_notes.values()
    assert scheduled["note"]["text"] == "Later"
    assert not misskey.calls("notes/drafts/list")
    assert not misskey.notes


@pytest.mark.parametrize("variant", [SHARKEY])
async def test_sharkey_refusals(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Local-only would be dropped (refused unsent); its limit is the server's say."""
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", local_only=True, scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "scheduled_option_not_supported"
    assert err.value.translation_placeholders == {"option": "local_only"}
    # Its notes take a content warning of 500 characters, scheduled ones 100.
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", cw="x" * 101, scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "cw_too_long"
    assert err.value.translation_placeholders == {"length": "101", "max": "100"}
    assert not misskey.calls("notes/schedule/create")
    await post(hass, text="Now", cw="x" * 101)
    assert len(misskey.notes) == 1

    assert misskey.policies is not None
    misskey.policies["scheduleNoteMax"] = 1
    await post(hass, text="First", scheduled_at=LATER.isoformat())
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, text="Second", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "scheduled_note_limit_reached"
    assert len(misskey.scheduled_notes) == 1


@pytest.mark.parametrize("variant", [SHARKEY])
async def test_sharkey_needs_its_permission(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Sharkey guards it with write:notes-schedule; its 403 names that."""
    misskey.tokens[-1].permission.remove("write:notes-schedule")
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, text="Hi", scheduled_at=LATER.isoformat())
    assert err.value.translation_placeholders["permission"] == "write:notes-schedule"
    assert not misskey.scheduled_notes


async def test_misskey_before_scheduling(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Roles but no scheduledNoteLimit (Misskey 2023.x to early 2025.x): unsupported."""
    assert misskey.policies is not None
    del misskey.policies["scheduledNoteLimit"]
    await init_integration.runtime_data.coordinator.async_refresh()
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "scheduling_not_supported"
    assert not misskey.calls("notes/drafts/list")


async def test_rate_limits(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A short 429 is waited out (one draft); a long one is said, with nothing made."""
    misskey.fail_next("notes/drafts/create", "rate_limit", retry_after=0.05)
    await post(hass, text="Once", scheduled_at=LATER.isoformat())
    assert len(misskey.calls("notes/drafts/create")) == 2
    assert len(misskey.drafts) == 1

    misskey.drafts.clear()
    misskey.fail_next("notes/drafts/create", "rate_limit", retry_after=3600)
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, text="Later", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "rate_limited"
    assert err.value.translation_placeholders == {"retry_after": "3600"}
    assert not misskey.drafts


async def test_lost_answer_is_not_repeated(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    picture: Path,
) -> None:
    """The draft was made but the answer lost: said so, not sent again, files kept."""
    init_integration.runtime_data.coordinator.client.request_timeout = HANG_TIMEOUT
    misskey.fail_next("notes/drafts/create", "hang", delay=30, after=True)
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, media=[{"path": str(picture)}], scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "post_outcome_unknown"
    assert len(misskey.calls("notes/drafts/create")) == 1
    assert len(misskey.drafts) == 1
    assert len(misskey.files) == 1


async def test_drafts_unreadable(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """When the drafts cannot be counted, nothing is scheduled."""
    misskey.fail_next("notes/drafts/list", "server_error")
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, text="Hi", scheduled_at=LATER.isoformat())
    assert err.value.translation_key == "cannot_connect"
    assert not misskey.calls("notes/drafts/create")

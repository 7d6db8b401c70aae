"""The actions as the action editor shows them: forms, not YAML, in every language.

The editor builds its forms from services.yaml (the selectors) and the
translations; what a form sends back is what these tests post: a media
selector's whole value under media_content_id, fields typed into and emptied
again as "", a deleted poll form as "".
"""

from __future__ import annotations

from datetime import timedelta
import json
from pathlib import Path
from typing import Any

import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import DOMAIN, SERVICE_POST
from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector
from homeassistant.helpers.service import _load_services_file
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
import homeassistant.util.dt as dt_util

from .misskey_server import MisskeyServer

TRANSLATIONS = Path(__file__).resolve().parents[1] / (
    "custom_components/misskey/translations"
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(4096)


async def _descriptions(hass: HomeAssistant) -> dict[str, Any]:
    """Return services.yaml as Home Assistant reads it for the frontend.

    It is validated with Home Assistant's own schema, selectors included: a
    file it refuses reads as empty (and the editor would show no fields).
    """
    integration = await async_get_integration(hass, DOMAIN)
    descriptions: dict[str, Any] = await hass.async_add_executor_job(
        _load_services_file, integration
    )
    return descriptions


async def test_no_field_is_yaml(hass: HomeAssistant) -> None:
    """Every field of every action has a selector the editor shows as a form.

    An object selector without fields is a YAML editor; one with fields is a
    form whose every field has a label and a description in each language.
    """
    descriptions = await _descriptions(hass)
    assert set(descriptions) == {
        "post",
        "react",
        "delete_note",
        "get_account",
        "mute_account",
        "unmute_account",
        "update_profile",
    }
    languages = {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in TRANSLATIONS.glob("*.json")
    }
    forms = {}
    for action, description in descriptions.items():
        for name, field in description["fields"].items():
            assert "selector" in field, (action, name)
            # Valid for this Home Assistant (the suite also runs on the minimum).
            selector.validate_selector(field["selector"])
            if (config := field["selector"].get("object")) is None:
                continue
            assert config.get("fields"), f"{action}.{name} is a YAML editor"
            for key in ("label_field", "description_field"):
                assert config.get(key, next(iter(config["fields"]))) in config["fields"]
            forms[f"{action}.{name}"] = config["translation_key"], set(config["fields"])
    assert set(forms) == {"post.poll", "post.media", "update_profile.fields"}
    for language, strings in languages.items():
        for action_field, (key, fields) in forms.items():
            translated = strings["selector"][key]["fields"]
            assert set(translated) == fields, (language, action_field)
            assert all(
                translated[field]["name"] and translated[field]["description"]
                for field in fields
            ), (language, action_field)


async def test_attachment_forms_post_their_files(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """A file picked in the media browser, a path and a URL form, as the editor sends them."""
    media = tmp_path / "media"
    media.mkdir()
    (media / "door.png").write_bytes(PNG)
    hass.config.media_dirs = {"local": str(media)}
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    (tmp_path / "plan.txt").write_bytes(b"floor plan")
    assert await async_setup_component(hass, "media_source", {})

    response = await hass.services.async_call(
        DOMAIN,
        SERVICE_POST,
        {
            "text": "Someone at the door",
            "media": [
                {
                    # The media selector's value, as the media browser picked it.
                    "media_content_id": {
                        "media_content_id": "media-source://media_source/local/door.png",
                        "media_content_type": "image/png",
                        "metadata": {
                            "title": "door.png",
                            "thumbnail": None,
                            "media_class": "image",
                            "children_media_class": None,
                            "navigateIds": [
                                {"media_content_type": "app", "media_content_id": ""}
                            ],
                        },
                    },
                    "path": "",
                    "url": "",
                    "alt_text": "The front door,\nat night",
                    "sensitive": True,
                    "name": "",
                },
                {"path": str(tmp_path / "plan.txt"), "name": "plan-2.txt"},
            ],
        },
        blocking=True,
        return_response=True,
    )

    door, plan = misskey.files.values()
    assert (door.name, door.type, door.size) == ("door.png", "image/png", len(PNG))
    assert (door.comment, door.is_sensitive) == ("The front door,\nat night", True)
    assert (plan.name, plan.comment, plan.is_sensitive) == ("plan-2.txt", None, False)
    assert response is not None
    assert response["file_ids"] == [door.id, plan.id]
    (note,) = misskey.notes.values()
    assert note["fileIds"] == [door.id, plan.id]


@pytest.mark.usefixtures("init_integration")
async def test_poll_form(hass: HomeAssistant, misskey: MisskeyServer) -> None:
    """The poll form: choices, several answers, a duration or an end time."""

    async def post(**data: Any) -> dict[str, Any]:
        await hass.services.async_call(DOMAIN, SERVICE_POST, data, blocking=True)
        body = dict(misskey.calls("notes/create")[-1].body)
        body.pop("i")
        return body

    # The duration selector's value, with the end time typed and emptied again.
    sent = await post(
        text="Pizza?",
        poll={
            "choices": ["Yes", "No"],
            "multiple": True,
            "duration": {"days": 1, "hours": 2, "minutes": 0, "seconds": 0},
            "ends_at": "",
        },
    )
    assert sent["poll"] == {
        "choices": ["Yes", "No"],
        "multiple": True,
        "expiredAfter": int(timedelta(days=1, hours=2).total_seconds() * 1000),
    }

    # The datetime selector's value is local time.
    ends_at = (dt_util.now() + timedelta(days=2)).replace(microsecond=0)
    sent = await post(
        text="Film night?",
        poll={
            "choices": ["Fri", "Sat"],
            "ends_at": ends_at.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )
    assert sent["poll"] == {
        "choices": ["Fri", "Sat"],
        "multiple": False,
        "expiresAt": int(ends_at.timestamp() * 1000),
    }

    # A poll form that was deleted, and an emptied list of attachments: no poll, no
    # files (the visibility is the account's default).
    assert await post(text="Just text", poll="", media=[]) == {
        "text": "Just text",
        "visibility": "home",
    }


@pytest.mark.usefixtures("init_integration")
@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            {"media": [{"path": "/config/a.png", "url": "https://example.com/a.png"}]},
            "two or more values in the same group of exclusion 'source'",
        ),
        ({"poll": {"multiple": True}}, "required key not provided"),
        (
            {
                "poll": {
                    "choices": ["a", "b"],
                    "duration": {"hours": 1},
                    "ends_at": "2099-01-01 00:00:00",
                }
            },
            "a poll has a duration or an end time, not both",
        ),
    ],
)
async def test_form_errors(
    hass: HomeAssistant, misskey: MisskeyServer, data: dict[str, Any], error: str
) -> None:
    """A form that says two contradicting things is refused before anything is sent."""
    with pytest.raises(probatio.Invalid, match=error):
        await hass.services.async_call(
            DOMAIN, SERVICE_POST, {"text": "x", **data}, blocking=True
        )
    assert not misskey.calls("drive/files/create")
    assert not misskey.calls("notes/create")

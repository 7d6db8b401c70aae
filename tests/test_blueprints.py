"""The blueprints (blueprints/automation/misskey): valid, and they run on real events.

Each is checked with Home Assistant's blueprint schema for automations, then
imported from its GitHub address as the "import blueprint" button does (into
the configuration folder's blueprints/automation/misskey-ha/, GitHub answered
from this checkout) and used by automations, which answer what the test
server's users do. The account's last event, shown again when it
reloads or Home Assistant restarts, is not answered again.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
)

from custom_components.misskey.api import MisskeyClient
from homeassistant.components.automation.config import AUTOMATION_BLUEPRINT_SCHEMA
from homeassistant.components.automation.helpers import async_get_blueprints
from homeassistant.components.blueprint import Blueprint, importer
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict

from .listening import Events, entity_id, post_as, set_up, until
from .misskey_server import MisskeyServer

pytestmark = pytest.mark.usefixtures("fast_listener")

REPO = Path(__file__).resolve().parents[1]
BLUEPRINTS = REPO / "blueprints" / "automation" / "misskey"
SOURCE = "https://github.com/misskey-ha/misskey/blob/main/blueprints/automation/misskey"

INPUTS = {
    "answer_mention.yaml": {
        "mentions",
        "trusted",
        "words",
        "actions",
        "answer",
        "visibility",
    },
    "read_direct_notes_aloud.yaml": {
        "direct_messages",
        "speaker",
        "tts",
        "senders",
        "message",
    },
    "thank_new_followers.yaml": {"new_followers", "message", "visibility"},
}


def test_every_blueprint_is_tested() -> None:
    """The list above is the folder's."""
    assert sorted(path.name for path in BLUEPRINTS.iterdir()) == sorted(INPUTS)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_blueprint_schema(name: str) -> None:
    """Home Assistant's schema takes it; it says where it comes from and what it needs."""
    blueprint = Blueprint(
        load_yaml_dict(BLUEPRINTS / name),
        expected_domain="automation",
        path=f"misskey/{name}",
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )
    metadata = blueprint.metadata
    assert metadata["source_url"] == f"{SOURCE}/{name}"
    minimum = json.loads((REPO / "hacs.json").read_text())["homeassistant"]
    assert metadata["homeassistant"]["min_version"] == minimum
    assert set(blueprint.inputs) == INPUTS[name]
    for key, spec in blueprint.inputs.items():
        assert spec["name"], key
        assert "selector" in spec, key


class _Response:
    def __init__(self, text: str) -> None:
        self._text = text

    async def text(self) -> str:
        return self._text


class _GitHub:
    """raw.githubusercontent.com, serving this checkout as the main branch."""

    RAW = "https://raw.githubusercontent.com/misskey-ha/misskey/main/"

    async def get(self, url: str, **kwargs: Any) -> _Response:
        assert url.startswith(self.RAW), url
        return _Response((REPO / url.removeprefix(self.RAW)).read_text())


@pytest.fixture
async def blueprints(hass: HomeAssistant, tmp_path: Path) -> None:
    """Import the blueprints from their GitHub address, as the import button does."""
    hass.config.config_dir = str(tmp_path)
    github = SimpleNamespace(async_get_clientsession=lambda hass: _GitHub())
    with patch.object(importer, "aiohttp_client", github):
        for name in INPUTS:
            imported = await importer.fetch_blueprint_from_url(hass, f"{SOURCE}/{name}")
            path = f"{imported.suggested_filename}.yaml"
            assert path == f"misskey-ha/{name}"
            await async_get_blueprints(hass).async_add_blueprint(
                imported.blueprint, path
            )
            assert (tmp_path / "blueprints" / "automation" / path).is_file()


async def automations(hass: HomeAssistant, *uses: tuple[str, dict[str, Any]]) -> None:
    """Set up one automation per (blueprint, inputs); each must be on."""
    config = [
        {
            "id": f"misskey_{index}",
            "alias": f"Misskey {index}",
            "use_blueprint": {"path": f"misskey-ha/{name}", "input": inputs},
        }
        for index, (name, inputs) in enumerate(uses)
    ]
    assert await async_setup_component(hass, "automation", {"automation": config})
    await hass.async_block_till_done()
    for index in range(len(uses)):
        state = hass.states.get(f"automation.misskey_{index}")
        assert state is not None, f"automation {index} not created (see the log)"
        assert state.state == STATE_ON, state


async def idle(hass: HomeAssistant) -> None:
    """Wait until no automation runs (their runs post over HTTP)."""
    await hass.async_block_till_done()
    await until(
        lambda: all(
            not state.attributes.get("current")
            for state in hass.states.async_all("automation")
        )
    )


async def reload_and_restart(
    hass: HomeAssistant, misskey: MisskeyServer, entry: MockConfigEntry, entity: str
) -> None:
    """Reload the account, then set it up as after a restart; let automations see it.

    After a reload the entities come back from unavailable; after a restart
    there is no state before the restored one.
    """
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: entry.runtime_data.listener.connected)
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.states.async_remove(entity)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: entry.runtime_data.listener.connected)
    await asyncio.sleep(0.1)
    await idle(hass)
    state = hass.states.get(entity)
    assert state is not None
    assert state.attributes.get("event_type") is not None, "the last event is shown"


@pytest.mark.usefixtures("blueprints")
async def test_answer_mention(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A trusted account's mention with the words runs the actions and is answered."""
    await set_up(hass, misskey, mock_config_entry)
    mentions = entity_id(hass, mock_config_entry, "event", "mentions")
    heard = Events(hass, mentions)
    lights_off = async_mock_service(hass, "light", "turn_off")
    host = misskey.url.removeprefix("http://")
    await automations(
        hass,
        (
            "answer_mention.yaml",
            {
                "mentions": mentions,
                # As people type them: any case, with or without the first @.
                "trusted": [f"Bob@{host.upper()}", "@nobody@example.com"],
                "words": "Lights off",
                "actions": [
                    {"action": "light.turn_off", "target": {"area_id": "living_room"}}
                ],
            },
        ),
    )
    carol = MisskeyClient(
        async_get_clientsession(hass),
        misskey.url,
        misskey.add_user("carol").native_token,
    )

    await post_as(as_bob, text="@alice good morning")
    await post_as(carol, text="@alice lights off")
    asked = await post_as(as_bob, text="@alice LIGHTS OFF, please")

    def answers() -> list[dict[str, Any]]:
        return [n for n in misskey.notes.values() if n["userId"] == misskey.user.id]

    await until(answers)
    await heard.wait(3)
    await idle(hass)
    (answer,) = answers()
    assert answer["replyId"] == asked["id"]
    assert answer["text"] == f"Done, @bob@{host}."
    assert answer["visibility"] == "home"
    assert [call.data for call in lights_off] == [{"area_id": ["living_room"]}]

    await reload_and_restart(hass, misskey, mock_config_entry, mentions)
    assert len(answers()) == 1
    assert len(lights_off) == 1

    # Still listening after both.
    again = await post_as(as_bob, text="@alice lights off again")
    await until(lambda: len(answers()) == 2)
    assert answers()[-1]["replyId"] == again["id"]
    assert len(lights_off) == 2


@pytest.mark.usefixtures("blueprints")
async def test_read_direct_notes_aloud(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A note only the account sees, and a chat message, are read on the speaker."""
    await set_up(hass, misskey, mock_config_entry)
    direct = entity_id(hass, mock_config_entry, "event", "direct_messages")
    heard = Events(hass, direct)
    spoken = async_mock_service(hass, "tts", "speak")
    host = misskey.url.removeprefix("http://")
    await automations(
        hass,
        (
            "read_direct_notes_aloud.yaml",
            {
                "direct_messages": direct,
                "speaker": ["media_player.kitchen"],
                "tts": "tts.home_assistant_cloud",
            },
        ),
        (
            "read_direct_notes_aloud.yaml",
            {
                "direct_messages": direct,
                "speaker": ["media_player.office"],
                "tts": "tts.home_assistant_cloud",
                "senders": [f"@carol@{host}"],
                "message": "{{ user }} says {{ text }}",
            },
        ),
    )
    alice = misskey.user

    await post_as(
        as_bob, text="dinner at 7", visibility="specified", visibleUserIds=[alice.id]
    )
    await as_bob.request(
        "chat/messages/create-to-user",
        {"toUserId": alice.id, "text": "bring bread"},
        authenticated=True,
    )
    await heard.wait(2)
    await until(lambda: len(spoken) == 2)

    def said(calls: list[ServiceCall]) -> list[tuple[Any, ...]]:
        return [
            (
                call.data["entity_id"],
                call.data["media_player_entity_id"],
                call.data["message"],
            )
            for call in calls
        ]

    # Only the first automation reads bob; the second only carol.
    assert said(spoken) == [
        (
            ["tts.home_assistant_cloud"],
            ["media_player.kitchen"],
            "Message from bob: dinner at 7",
        ),
        (
            ["tts.home_assistant_cloud"],
            ["media_player.kitchen"],
            "Message from bob: bring bread",
        ),
    ]

    await reload_and_restart(hass, misskey, mock_config_entry, direct)
    assert len(spoken) == 2


@pytest.mark.usefixtures("blueprints")
async def test_thank_new_followers(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A new follower gets a note only they see; a follow request gets nothing."""
    await set_up(hass, misskey, mock_config_entry)
    followers = entity_id(hass, mock_config_entry, "event", "new_followers")
    heard = Events(hass, followers)
    host = misskey.url.removeprefix("http://")
    await automations(hass, ("thank_new_followers.yaml", {"new_followers": followers}))
    alice = misskey.user
    bob = misskey.users[(await as_bob.request("i", {}, authenticated=True))["id"]]

    await as_bob.request("following/create", {"userId": alice.id}, authenticated=True)

    def thanks() -> list[dict[str, Any]]:
        return [n for n in misskey.notes.values() if n["userId"] == alice.id]

    await until(thanks)
    (note,) = thanks()
    assert note["text"] == f"Thanks for the follow, @bob@{host}!"
    assert note["visibility"] == "specified"
    assert note["visibleUserIds"] == [bob.id]

    # A locked account is asked, not followed: no thanks yet.
    alice.is_locked = True
    dave = misskey.add_user("dave")
    await MisskeyClient(
        async_get_clientsession(hass),
        misskey.url,
        dave.native_token,
    ).request("following/create", {"userId": alice.id}, authenticated=True)
    await heard.wait(2)
    await idle(hass)
    assert heard.fired[1][0] == "follow_request_received"
    assert len(thanks()) == 1

    await reload_and_restart(hass, misskey, mock_config_entry, followers)
    assert len(thanks()) == 1

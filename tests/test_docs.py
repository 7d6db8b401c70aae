"""Every YAML example of the README and docs/ runs, as written, against the test server.

Each example has an ``alias`` (a configuration.yaml fragment is named by its
domains), and a scenario below of the same name sets the scene, runs it as a
user would (an automation is loaded and triggered by what it waits for, a
script or an action is run) and checks on the server what it did. Automations
on event entities must also stay quiet while the account reloads. An example
without a scenario, or a scenario without an example, fails the run: the
documentation cannot drift from the code.

The examples' accounts are on ``misskey.io``; here that is the test server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
import json
import logging
from pathlib import Path
import re
import sys
import types
from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
    setup_test_component_platform,
)
import yaml

from custom_components.misskey.api import MisskeyClient
from custom_components.misskey.const import (
    APP_PERMISSIONS,
    CONF_CREDENTIAL,
    CONF_LISTEN,
    CONF_PERMISSIONS,
    DOMAIN,
    SUBENTRY_SOURCE,
)
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_URL
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.script import Script, async_validate_actions_config
from homeassistant.setup import async_setup_component
from homeassistant.util import slugify
import homeassistant.util.dt as dt_util

from .conftest import NEW_ENTRY_OPTIONS, authorize
from .listening import WAIT, post_as, until
from .misskey_server import MisskeyServer, User

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REPOSITORY = "https://github.com/misskey-ha/misskey"
RAW = "https://raw.githubusercontent.com/misskey-ha/misskey/main/"

# The examples' server, and the ID of the second account in "Two or more accounts".
EXAMPLE_HOST = "misskey.io"
EXAMPLE_ENTRY_ID = "01JF2ZK8QJ7G6V3T1S9XW4PNBR"

_YAML_BLOCK = re.compile(
    r"^(?P<indent> *)```yaml\n(?P<body>.*?)^(?P=indent)```", re.MULTILINE | re.DOTALL
)
JPEG = b"\xff\xd8\xff\xe0" + bytes(2048) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(1000)


@dataclass(frozen=True)
class Example:
    """A YAML block of a document."""

    path: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        """Return where it is, for messages."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def data(self) -> Any:
        """Return the example as YAML reads it."""
        return yaml.safe_load(self.text)

    @property
    def name(self) -> str | None:
        """Return the example's alias (a fragment of configuration.yaml: its domains)."""
        data = self.data
        if isinstance(data, list) and data and isinstance(data[0], dict):
            data = data[0]
        if not isinstance(data, dict):
            return None
        if isinstance(alias := data.get("alias"), str):
            return alias
        if all(key in CONFIGURATION_DOMAINS for key in data):
            return "configuration: " + ", ".join(sorted(data))
        return None


# Integrations whose configuration.yaml blocks the documents show.
CONFIGURATION_DOMAINS = frozenset({"logger"})


def examples() -> list[Example]:
    """Return every YAML example of the documents."""
    found = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in _YAML_BLOCK.finditer(text):
            indent = len(match["indent"])
            body = "".join(line[indent:] for line in match["body"].splitlines(True))
            line = text.count("\n", 0, match.start()) + 2
            found.append(Example(path, line, body))
    return found


EXAMPLES = examples()


# --- the world the examples live in -------------------------------------------------


@dataclass
class World:
    """Home Assistant with the account @alice@misskey.io on the test server."""

    hass: HomeAssistant
    misskey: MisskeyServer
    entry: MockConfigEntry
    bob: User
    as_bob: MisskeyClient
    example: Example | None
    substitutions: dict[str, str] = field(default_factory=dict)
    runs: list[Event] = field(default_factory=list)

    @property
    def host(self) -> str:
        """Return the test server's host, which the examples call misskey.io."""
        return self.misskey.url.removeprefix("http://")

    @property
    def data(self) -> Any:
        """Return the example as this Home Assistant reads it."""
        assert self.example is not None
        text = self.example.text
        for old, new in self.substitutions.items():
            text = text.replace(old, new)
        return yaml.safe_load(text)

    async def load_automation(self) -> str:
        """Load the example into the automation integration; return its entity ID."""
        data = self.data
        assert "triggers" in data, data
        assert await async_setup_component(
            self.hass, "automation", {"automation": [data]}
        )
        await self.hass.async_block_till_done()
        entity_id = f"automation.{slugify(data['alias'])}"
        state = self.hass.states.get(entity_id)
        # An automation whose configuration is invalid is there, but unavailable.
        assert state is not None and state.state == "on", state
        return entity_id

    async def run(self, *, wait: bool = True) -> dict[str, Any]:
        """Run the example, a script or an action, as its editor would.

        Returns the variables it set (response_variable); with ``wait=False``
        it only starts.
        """
        data = self.data
        if isinstance(data, dict) and "sequence" in data:
            assert await async_setup_component(
                self.hass, "script", {"script": {"example": data}}
            )
            await self.hass.async_block_till_done()
            if wait:
                await self.hass.services.async_call("script", "example", blocking=True)
            else:
                await self.hass.services.async_call(
                    "script", "turn_on", {"entity_id": "script.example"}
                )
            return {}
        sequence = await async_validate_actions_config(
            self.hass, cv.SCRIPT_SCHEMA(data if isinstance(data, list) else [data])
        )
        script = Script(self.hass, sequence, "example", "test")
        result = await script.async_run(context=Context())
        return dict(result.variables) if result is not None else {}

    def notes_by(self, user: User) -> list[dict[str, Any]]:
        """Return the notes of ``user``, oldest first."""
        return [n for n in self.misskey.notes.values() if n["userId"] == user.id]

    async def quiet_across_reloads(self) -> None:
        """Reload the account twice, as option changes and Reconfigure do: no run."""
        runs = len(self.runs)
        for _ in range(2):
            assert await self.hass.config_entries.async_reload(self.entry.entry_id)
            await self.hass.async_block_till_done()
            await until(lambda: self.entry.runtime_data.listener.connected)
        await asyncio.sleep(0.2)
        await self.hass.async_block_till_done()
        assert len(self.runs) == runs, "an automation ran on a reload, without an event"


@pytest.fixture
def camera_module() -> Any:
    """Import the camera integration, whose image resizing library may be absent."""
    if "turbojpeg" not in sys.modules:
        try:
            import turbojpeg  # noqa: F401, PLC0415
        except ImportError:
            # Only used to resize snapshots, which the examples never do.
            stub = types.ModuleType("turbojpeg")
            stub.TurboJPEG = object  # type: ignore[attr-defined]
            sys.modules["turbojpeg"] = stub
    from homeassistant.components import camera  # noqa: PLC0415

    return camera


async def set_up_cameras(hass: HomeAssistant, camera_module: Any) -> None:
    """Add the examples' cameras, camera.front_door and camera.garden."""

    class Snapshot(camera_module.Camera):  # type: ignore[misc]
        def __init__(self, name: str) -> None:
            super().__init__()
            self._attr_name = name

        async def async_camera_image(
            self, width: int | None = None, height: int | None = None
        ) -> bytes:
            return JPEG

    setup_test_component_platform(
        hass, "camera", [Snapshot("Front door"), Snapshot("Garden")]
    )
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()


def example_entry(
    misskey: MisskeyServer, user: User, **options: Any
) -> MockConfigEntry:
    """Return an entry for ``user`` named as the examples name it, on the test server."""
    signed_in, misskey.user = misskey.user, user
    try:
        credential = authorize(misskey)
    finally:
        misskey.user = signed_in
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"@{user.username}@{EXAMPLE_HOST}",
        unique_id=f"{user.id}@{EXAMPLE_HOST}",
        minor_version=3,
        data={
            CONF_URL: misskey.url,
            CONF_CREDENTIAL: credential,
            CONF_PERMISSIONS: list(APP_PERMISSIONS),
        },
        options=NEW_ENTRY_OPTIONS | options,
    )


@pytest.fixture
async def world(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    fast_listener: None,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> World:
    """Set up @alice@misskey.io, listening, with bob and a remote bot around."""
    # The configuration folder, with what Home Assistant allows in it by default.
    hass.config.config_dir = str(tmp_path)
    (tmp_path / "www").mkdir()
    hass.config.allowlist_external_dirs = {hass.config.path("www")}
    example: Example | None = getattr(request, "param", None)
    entry = example_entry(misskey, misskey.user)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await misskey.streams.wait_joined(misskey.user)
    await until(lambda: entry.runtime_data.listener.connected)

    bob = misskey.add_user("bob", name="Bob")
    misskey.add_user("noisy_bot", host="example.com", is_bot=True)
    world = World(
        hass,
        misskey,
        entry,
        bob,
        MisskeyClient(async_get_clientsession(hass), misskey.url, bob.native_token),
        example,
    )
    world.substitutions = {
        f"https://{EXAMPLE_HOST}": misskey.url,
        f"@{EXAMPLE_HOST}": f"@{world.host}",
        "/config/": f"{tmp_path}/",
    }

    @callback
    def record(event: Event) -> None:
        world.runs.append(event)

    hass.bus.async_listen("automation_triggered", record)
    return world


# --- the scenarios ------------------------------------------------------------------

Scenario = Callable[[World], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    """Register what runs the example named ``name``, and checks what it did."""

    def register(function: Scenario) -> Scenario:
        assert name not in SCENARIOS, name
        SCENARIOS[name] = function
        return function

    return register


# README: posting


@scenario("Washing machine done")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    await world.load_automation()
    hass.states.async_set("binary_sensor.washing_machine", "on")
    await hass.async_block_till_done()
    hass.states.async_set("binary_sensor.washing_machine", "off")
    await until(lambda: misskey.notes)
    (note,) = misskey.notes.values()
    assert note["text"] == "**Laundry**\nThe washing machine is done."
    assert (note["visibility"], note["cw"], note["localOnly"]) == (
        "home",
        "Household chores",
        True,
    )


@scenario("Tell Misskey the doorbell rang")
async def _(world: World) -> None:
    await world.run()
    (note,) = world.misskey.notes.values()
    assert note["text"] == "**Front door**\nSomeone rang the bell."
    # The account's default (a new account: home), as the README says.
    assert (note["visibility"], note["localOnly"]) == ("home", False)


@scenario("Doorbell note")
async def _(world: World) -> None:
    await world.run()
    first, reply = world.notes_by(world.misskey.user)
    assert (first["text"], first["cw"], first["visibility"]) == (
        "Someone rang the bell.",
        "Doorbell",
        "followers",
    )
    (snapshot,) = first["fileIds"]
    stored = world.misskey.files[snapshot]
    assert (stored.name, stored.comment) == ("front_door.jpg", "The front door camera")
    assert reply["replyId"] == first["id"]
    assert (reply["text"], reply["visibility"]) == (
        "Update: it was the postman.",
        "followers",
    )


@scenario("Mute a noisy bot for the night")
async def _(world: World) -> None:
    misskey = world.misskey
    (bot,) = [u for u in misskey.users.values() if u.username == "noisy_bot"]
    await world.run()
    expires = misskey.mutes[(misskey.user.id, bot.id)]
    assert expires is not None
    hours = (expires / 1000 - dt_util.utcnow().timestamp()) / 3600
    assert 11.9 < hours <= 12


@scenario("Post as the other account")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    house = misskey.add_user("house")
    other = example_entry(misskey, house, **{CONF_LISTEN: False})
    other.add_to_hass(hass)
    assert await hass.config_entries.async_setup(other.entry_id)
    await hass.async_block_till_done()
    world.substitutions[EXAMPLE_ENTRY_ID] = other.entry_id
    await world.run()
    (note,) = world.notes_by(house)
    assert note["text"] == "The heating is on."
    assert not world.notes_by(misskey.user)

    # Without config_entry_id, as the README says.
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "post", {"text": "Which one?"}, blocking=True
        )
    assert str(err.value) == "Found multiple config entries for integration misskey"


@scenario("Lights off from Misskey")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    lights = async_mock_service(hass, "light", "turn_off")
    await world.load_automation()
    carol = misskey.add_user("carol")
    as_carol = MisskeyClient(
        async_get_clientsession(hass), misskey.url, carol.native_token
    )
    # Only people you trust: carol is not one.
    await post_as(as_carol, text="@alice Lights off!")
    mention = await post_as(world.as_bob, text="@alice lights off, please")
    await until(lambda: len(world.notes_by(misskey.user)) == 1)
    (reply,) = world.notes_by(misskey.user)
    assert reply["replyId"] == mention["id"]
    assert reply["text"] == f"Done, @bob@{world.host}: the lights are off."
    assert reply["visibility"] == "home"
    assert [call.data for call in lights] == [{"area_id": ["living_room"]}]
    await world.quiet_across_reloads()
    assert len(lights) == 1


@scenario("configuration: logger")
async def _(world: World) -> None:
    logger = logging.getLogger("custom_components.misskey")
    level = logger.level
    try:
        assert await async_setup_component(world.hass, "logger", world.data)
        await world.hass.async_block_till_done()
        assert logger.getEffectiveLevel() == logging.DEBUG
    finally:
        logger.setLevel(level)


# docs/actions.md


@scenario("Snapshot of the front door")
async def _(world: World) -> None:
    hass = world.hass
    notifications = async_mock_service(hass, "persistent_notification", "create")
    await world.run()
    (note,) = world.misskey.notes.values()
    assert note["visibility"] == "followers"
    assert [choice["text"] for choice in note["poll"]["choices"]] == ["Open", "Ignore"]
    (snapshot,) = note["fileIds"]
    assert world.misskey.files[snapshot].comment == "The front door camera"
    assert [call.data["message"] for call in notifications] == [
        f"{world.misskey.url}/notes/{note['id']} (followers)"
    ]


@scenario("Good morning tomorrow")
async def _(world: World) -> None:
    variables = await world.run()
    (draft,) = world.misskey.drafts.values()
    scheduled = variables["scheduled"]
    assert (scheduled["scheduled"], scheduled["draft_id"]) == (True, draft["id"])
    at = dt_util.parse_datetime(scheduled["scheduled_at"])
    assert at is not None
    assert dt_util.as_local(at).strftime("%H:%M") == "07:00"
    assert at > dt_util.utcnow()
    assert draft["visibility"] == "home"
    assert not world.misskey.notes


@scenario("Direct note to Bob")
async def _(world: World) -> None:
    await world.run()
    (note,) = world.misskey.notes.values()
    assert note["text"] == "**Garage**\nThe garage door is still open."
    assert (note["visibility"], note["visibleUserIds"]) == ("specified", [world.bob.id])


@scenario("Like the newest note of the account")
async def _(world: World) -> None:
    await world.run()
    (note,) = world.misskey.notes.values()
    assert world.misskey.reactions[(note["id"], world.misskey.user.id)] == "🍞"


@scenario("Garage door note")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    hass.states.async_set("binary_sensor.garage_door", "on")
    await world.run(wait=False)
    await until(lambda: misskey.notes)
    (note,) = misskey.notes.values()
    assert note["text"] == "The garage door is open."
    # The script waits for the door once misskey.post has answered, which may
    # be after the note shows on the server: close it until the script saw it.
    async with asyncio.timeout(WAIT):
        while misskey.notes:
            hass.states.async_set("binary_sensor.garage_door", "off")
            await asyncio.sleep(0.05)
            if misskey.notes and not misskey.calls("notes/delete"):
                hass.states.async_set("binary_sensor.garage_door", "on")
    assert misskey.calls("notes/delete")[-1].body["noteId"] == note["id"]


@scenario("Look Bob up")
async def _(world: World) -> None:
    variables = await world.run()
    bob = variables["bob"]
    assert (bob["id"], bob["acct"], bob["name"]) == (
        world.bob.id,
        f"@bob@{world.host}",
        "Bob",
    )


@scenario("Quiet night")
async def _(world: World) -> None:
    misskey = world.misskey
    (bot,) = [u for u in misskey.users.values() if u.username == "noisy_bot"]
    misskey.mutes[(misskey.user.id, world.bob.id)] = None
    await world.run()
    assert misskey.mutes[(misskey.user.id, bot.id)] is not None
    assert (misskey.user.id, world.bob.id) not in misskey.mutes


@scenario("Profile from the house")
async def _(world: World) -> None:
    hass, alice = world.hass, world.misskey.user
    hass.states.async_set("sensor.living_room_temperature", "21.5")
    hass.states.async_set("sensor.outside_temperature", "3")
    hass.states.async_set("binary_sensor.front_door", "off")
    (Path(hass.config.path("www")) / "banner.jpg").write_bytes(PNG)
    await world.run()
    assert (alice.name, alice.location, alice.birthday, alice.is_bot) == (
        "Home Assistant",
        "Kitchen",
        "2020-05-01",
        True,
    )
    assert alice.description == "Posts what the house is up to. Inside: 21.5 °C"
    assert alice.fields == [
        {"name": "Temperature", "value": "3 °C"},
        {"name": "Door", "value": "off"},
    ]
    assert alice.avatar_id is not None and alice.banner_id is not None
    assert world.misskey.files[alice.avatar_id].name == "garden.jpg"


# docs/events.md: each fired by what it waits for, then quiet across reloads.


@scenario("Read direct messages aloud")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    speak = async_mock_service(hass, "tts", "speak")
    await world.load_automation()
    await post_as(
        world.as_bob,
        text="dinner at 7",
        visibility="specified",
        visibleUserIds=[misskey.user.id],
    )
    await until(lambda: speak)
    (call,) = speak
    assert call.data["entity_id"] == ["tts.home_assistant_cloud"]
    assert call.data["media_player_entity_id"] == "media_player.kitchen"
    assert call.data["message"].strip() == "Message from bob: dinner at 7"
    await world.quiet_across_reloads()
    assert len(speak) == 1


@scenario("Thank new followers")
async def _(world: World) -> None:
    misskey = world.misskey
    await world.load_automation()
    await world.as_bob.request(
        "following/create", {"userId": misskey.user.id}, authenticated=True
    )
    await until(lambda: world.notes_by(misskey.user))
    (note,) = world.notes_by(misskey.user)
    assert note["text"] == f"Thanks for the follow, @bob@{world.host}!"
    assert (note["visibility"], note["visibleUserIds"]) == ("specified", [world.bob.id])
    await world.quiet_across_reloads()
    assert len(world.notes_by(misskey.user)) == 1


@scenario("Acknowledge mentions")
async def _(world: World) -> None:
    misskey = world.misskey
    await world.load_automation()
    mention = await post_as(world.as_bob, text="@alice are you there?")
    key = (mention["id"], misskey.user.id)
    await until(lambda: key in misskey.reactions)
    assert misskey.reactions[key] == "👀"
    await world.quiet_across_reloads()
    assert len(misskey.calls("notes/reactions/create")) == 1


@scenario("Join in on reactions")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    await world.load_automation()
    note = await hass.services.async_call(
        DOMAIN, "post", {"text": "Bread is ready"}, blocking=True, return_response=True
    )
    assert note is not None
    # A custom emoji, which the event reports as :blobcat@.:
    await world.as_bob.request(
        "notes/reactions/create",
        {"noteId": note["id"], "reaction": ":blobcat:"},
        authenticated=True,
    )
    key = (str(note["id"]), misskey.user.id)
    await until(lambda: key in misskey.reactions)
    assert misskey.reactions[key] == ":blobcat@.:"
    await world.quiet_across_reloads()
    assert len(misskey.calls("notes/reactions/create")) == 2


@scenario("Welcome followers by name")
async def _(world: World) -> None:
    misskey = world.misskey
    await world.load_automation()
    await world.as_bob.request(
        "following/create", {"userId": misskey.user.id}, authenticated=True
    )
    await until(lambda: world.notes_by(misskey.user))
    (note,) = world.notes_by(misskey.user)
    assert note["text"] == "Welcome, Bob!"
    assert note["visibleUserIds"] == [world.bob.id]
    await world.quiet_across_reloads()
    assert len(world.notes_by(misskey.user)) == 1


# README: sources


async def follow(world: World, title: str, data: dict[str, Any]) -> None:
    """Add a source to the account, as the form does, and wait until it is ready."""
    subentry = ConfigSubentry(
        data=data,
        subentry_type=SUBENTRY_SOURCE,
        title=title,
        unique_id=f"{data['kind']}_{data.get('user_id') or data[data['kind']]}",
    )
    world.hass.config_entries.async_add_subentry(world.entry, subentry)
    await world.hass.async_block_till_done()
    listener = world.entry.runtime_data.listener
    await until(lambda: subentry.subentry_id in listener.sources.cursors)


@scenario("Flash the lights on a strong quake")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    lights = async_mock_service(hass, "light", "turn_on")
    bot = misskey.add_user("quake_bot", is_bot=True)
    # On Misskey: an antenna of the bot's notes with the keyword.
    antenna = misskey.sources.add_antenna(
        misskey.user, "Quake bot", keywords=[["震度5"]], users=["quake_bot"]
    )
    await follow(world, "Quake bot", {"kind": "antenna", "antenna": antenna.id})
    await world.load_automation()
    as_bot = MisskeyClient(async_get_clientsession(hass), misskey.url, bot.native_token)
    await post_as(as_bot, text="震度3 東京都")
    # Not the bot: the antenna leaves it out.
    await post_as(world.as_bob, text="震度5弱 (a joke)")
    await post_as(as_bot, text="震度5弱 東京都")
    await until(lambda: lights)
    await asyncio.sleep(0.2)
    assert [call.data for call in lights] == [
        {"area_id": ["living_room"], "flash": "long"}
    ]
    await world.quiet_across_reloads()
    assert len(lights) == 1


@scenario("Read Mum's notes aloud")
async def _(world: World) -> None:
    hass, misskey = world.hass, world.misskey
    speak = async_mock_service(hass, "tts", "speak")
    mum = misskey.add_user("mum", name="Mum")
    misskey.sources.follow(misskey.user, mum)
    await follow(
        world,
        f"@mum@{EXAMPLE_HOST}",
        {"kind": "account", "account": f"@mum@{world.host}", "user_id": mum.id},
    )
    await world.load_automation()
    as_mum = MisskeyClient(async_get_clientsession(hass), misskey.url, mum.native_token)
    await post_as(as_mum, text="Home by six")
    await post_as(world.as_bob, text="Not mum")
    await until(lambda: speak)
    (call,) = speak
    assert call.data["entity_id"] == ["tts.home_assistant_cloud"]
    assert call.data["media_player_entity_id"] == "media_player.kitchen"
    assert call.data["message"] == "Mum wrote: Home by six"
    await world.quiet_across_reloads()
    assert len(speak) == 1


# --- the tests ----------------------------------------------------------------------


def test_every_example_has_a_scenario() -> None:
    """Each YAML example has a name and a scenario that runs it; each scenario an example."""
    names = [example.name for example in EXAMPLES]
    assert [e.where for e in EXAMPLES if e.name is None] == [], (
        "give each example an alias"
    )
    assert len(names) == len(set(names)), "two examples of the same name"
    assert sorted(set(names) - set(SCENARIOS)) == [], "add a scenario to test_docs.py"
    assert sorted(set(SCENARIOS) - set(names)) == [], "a scenario without an example"


@pytest.mark.parametrize(
    "world",
    EXAMPLES,
    ids=[example.name or example.where for example in EXAMPLES],
    indirect=True,
)
async def test_example(
    world: World, camera_module: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The example does what the documents say, and nothing goes wrong meanwhile."""
    await set_up_cameras(world.hass, camera_module)
    assert world.example is not None and world.example.name is not None
    await SCENARIOS[world.example.name](world)
    await world.hass.async_block_till_done()
    problems = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
        and record.name.startswith(
            (
                "homeassistant.components.automation",
                "homeassistant.components.script",
                "homeassistant.helpers.script",
                # "Template variable warning": an attribute the event lacks.
                "homeassistant.helpers.template",
                "custom_components",
            )
        )
    ]
    assert problems == []


# --- the trigger advice: what fires on a reload ------------------------------------


def _triggers(data: Any) -> list[dict[str, Any]]:
    return list(data.get("triggers", [])) if isinstance(data, dict) else []


def test_event_automations_use_event_received() -> None:
    """Every example that triggers on an event entity uses the event.received trigger."""
    wrong = [
        example.where
        for example in EXAMPLES
        for trigger in _triggers(example.data)
        if "event." in json.dumps(trigger.get("entity_id", ""))
        and trigger.get("trigger") != "event.received"
    ]
    assert wrong == []
    assert any(
        trigger.get("trigger") == "event.received"
        for example in EXAMPLES
        for trigger in _triggers(example.data)
    )


STATE_TRIGGERED = """
alias: Mentions by state
mode: queued
triggers:
  - trigger: state
    entity_id: event.alice_misskey_io_mentions
{extra}
actions:
  - action: misskey.post
    data:
      text: "Heard {{{{ trigger.to_state.attributes.user }}}}"
"""


@pytest.mark.parametrize(
    ("extra", "runs_on_reload"),
    [
        # The advice of 0.1.0's README: it runs on the way to unavailable.
        ("    not_from: unavailable", True),
        # The CHANGELOG's fix for those who keep a state trigger.
        ("    not_from: unavailable\n    not_to: unavailable", False),
    ],
    ids=["not_from", "not_from and not_to"],
)
async def test_state_trigger_on_a_reload(
    world: World, extra: str, runs_on_reload: bool
) -> None:
    """Why the documents recommend event.received: a state trigger sees reloads."""
    world.example = Example(
        ROOT / "CHANGELOG.md", 0, STATE_TRIGGERED.format(extra=extra)
    )
    await world.load_automation()
    await post_as(world.as_bob, text="@alice hello")
    await until(lambda: len(world.runs) == 1)
    if runs_on_reload:
        with pytest.raises(AssertionError, match="ran on a reload"):
            await world.quiet_across_reloads()
    else:
        await world.quiet_across_reloads()


# --- pictures, links and versions ---------------------------------------------------

_IMAGE = re.compile(r"!\[[^\]]*\]\((?P<url>[^)\s]+)\)")
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<url>[^)\s]+)\)")


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_pictures_show_in_hacs(path: Path) -> None:
    """Pictures are linked by their address in the repository, and exist there."""
    for match in _IMAGE.finditer(path.read_text(encoding="utf-8")):
        url = match["url"]
        if url.startswith("https://my.home-assistant.io/"):
            continue
        assert url.startswith(RAW), f"{path.name}: {url} is not an absolute address"
        assert (ROOT / url.removeprefix(RAW)).is_file(), url


@pytest.mark.parametrize(
    "path",
    [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCUMENTS[1:]],
    ids=lambda p: p.name,
)
def test_links_to_the_repository_exist(path: Path) -> None:
    """Links to files of the repository point at files that exist."""
    for match in _LINK.finditer(path.read_text(encoding="utf-8")):
        url = match["url"].partition("#")[0]
        if url.startswith(f"{REPOSITORY}/blob/main/"):
            target = ROOT / url.removeprefix(f"{REPOSITORY}/blob/main/")
        elif "://" in url or not url:
            continue
        else:
            # A relative link, from docs/ to docs/.
            assert path.parent != ROOT, f"{path.name}: {url} is relative (HACS)"
            target = path.parent / url
        assert target.is_file(), f"{path.name}: {url}"


def test_changelog_names_the_version() -> None:
    """The CHANGELOG's newest section is the manifest's version."""
    manifest = json.loads(
        (ROOT / "custom_components/misskey/manifest.json").read_text(encoding="utf-8")
    )
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## (\S+)", changelog, re.MULTILINE)
    assert versions and versions[0] == manifest["version"]


def test_readme_is_a_short_read() -> None:
    """The README is the user's path; reference detail lives in docs/."""
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 400

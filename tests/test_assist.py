"""Talking to the house: trusted accounts' notes go to Assist, the answer comes back in the thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.misskey  # noqa: F401
from custom_components.misskey.api import MisskeyApiError, MisskeyClient
from custom_components.misskey.const import (
    CONF_ASSIST_ACCOUNTS,
    CONF_ASSIST_AGENT,
    CONF_ASSIST_SCOPE,
    CONF_CATCH_UP_WINDOW,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    CONF_LISTEN,
    DOMAIN,
    EVENT_ASSIST,
)
from custom_components.misskey.diagnostics import async_get_config_entry_diagnostics
from custom_components.misskey.logbook import async_describe_events
from homeassistant.components import conversation
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component
import homeassistant.util.dt as dt_util

from .conftest import settle
from .listening import post_as, set_up, until
from .misskey_server import MISSKEY, SHARKEY, MisskeyServer, User

pytestmark = pytest.mark.usefixtures("fast_listener")

KITCHEN = "light.kitchen_light"


def host(misskey: MisskeyServer) -> str:
    """Return the test server's host, as accounts on it are spelled."""
    return misskey.url.removeprefix("http://")


def assist_entry(
    entry: MockConfigEntry, accounts: list[str], **options: Any
) -> MockConfigEntry:
    """Return the account's entry with Assist options (listening, catching up 15 min)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        minor_version=entry.minor_version,
        data=dict(entry.data),
        options={
            **entry.options,
            CONF_LISTEN: True,
            CONF_CATCH_UP_WINDOW: 15,
            CONF_ASSIST_ACCOUNTS: accounts,
            **options,
        },
    )


class Answers:
    """The house's answers on the server, and the misskey_assist events."""

    def __init__(self, hass: HomeAssistant, misskey: MisskeyServer) -> None:
        """Watch the server's notes and the event bus."""
        self.misskey = misskey
        self.events: list[Event] = []

        @callback
        def record(event: Event) -> None:
            self.events.append(event)

        hass.bus.async_listen(EVENT_ASSIST, record)

    def to(self, note: dict[str, Any]) -> list[dict[str, Any]]:
        """Return the account's replies to ``note``."""
        return [
            n
            for n in self.misskey.notes.values()
            if n["replyId"] == note["id"] and n["userId"] == self.misskey.user.id
        ]

    async def wait(self, note: dict[str, Any]) -> dict[str, Any]:
        """Wait for the one answer to ``note``; return it."""
        await until(lambda: self.to(note))
        (answer,) = self.to(note)
        return answer


@pytest.fixture
async def house(hass: HomeAssistant) -> None:
    """Set up Assist with Home Assistant's own agent and an exposed kitchen light."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    assert await async_setup_component(hass, "intent", {})
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {
                    "light": [
                        {
                            "name": "Kitchen light",
                            "turn_on": [{"event": "kitchen_on"}],
                            "turn_off": [{"event": "kitchen_off"}],
                        }
                    ]
                }
            ]
        },
    )
    await hass.async_block_till_done()
    async_expose_entity(hass, conversation.DOMAIN, KITCHEN, True)
    await hass.services.async_call(
        "light", "turn_on", {"entity_id": KITCHEN}, blocking=True
    )
    assert hass.states.get(KITCHEN).state == STATE_ON


class EchoAgent(conversation.AbstractConversationAgent):
    """A conversation agent that says what it heard, or fails, or takes its time."""

    def __init__(self) -> None:
        """Answer at once, by default."""
        self.heard: list[conversation.ConversationInput] = []
        self.fail: Exception | None = None
        self.delay = 0.0
        self.answer: str | None = None

    @property
    def supported_languages(self) -> list[str] | str:
        """Every language."""
        return "*"

    async def async_process(
        self, user_input: conversation.ConversationInput
    ) -> conversation.ConversationResult:
        """Answer with the conversation ID it was given, or a new one."""
        self.heard.append(user_input)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        response = intent.IntentResponse(language=user_input.language)
        response.async_set_speech(self.answer or f"heard: {user_input.text}")
        return conversation.ConversationResult(
            response=response,
            conversation_id=user_input.conversation_id or f"conv{len(self.heard)}",
        )


@pytest.fixture
async def agent(hass: HomeAssistant) -> AsyncGenerator[tuple[str, EchoAgent]]:
    """Register a test agent; return its ID (what the agent selector stores)."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    owner = MockConfigEntry(domain="test")
    owner.add_to_hass(hass)
    echo = EchoAgent()
    conversation.async_set_agent(hass, owner, echo)
    yield owner.entry_id, echo
    conversation.async_unset_agent(hass, owner)


async def direct(
    client: MisskeyClient, to: User, text: str, **params: Any
) -> dict[str, Any]:
    """Post a direct note (specified, to ``to`` alone) as the client's user."""
    return await post_as(
        client, text=text, visibility="specified", visibleUserIds=[to.id], **params
    )


@pytest.mark.usefixtures("house")
@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY])
async def test_direct_note_turns_off_the_light_and_answers_in_the_thread(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
    variant: str,
) -> None:
    """An allowed account's direct note runs; the answer reaches that account alone."""
    entry = assist_entry(mock_config_entry, [f"@bob@{host(misskey)}"])
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)

    note = await direct(as_bob, misskey.user, "@alice turn off the kitchen light")
    answer = await answers.wait(note)

    assert hass.states.get(KITCHEN).state == STATE_OFF
    assert answer["text"] == "Turned off the light"
    assert answer["visibility"] == "specified"
    assert answer["visibleUserIds"] == [bob.id]
    # Bob hears it as a reply to his note, as on a real server.
    assert misskey.streams.notifications[bob.id][-1]["type"] == "reply"
    assert misskey.streams.notifications[bob.id][-1]["note"]["id"] == answer["id"]
    # Bob sees it; nobody else does (Misskey hides it, Sharkey denies it exists).
    shown = await as_bob.request(
        "notes/show", {"noteId": answer["id"]}, authenticated=True
    )
    assert shown["text"] == "Turned off the light"
    anonymous = MisskeyClient(as_bob._session, misskey.url, "")
    if variant == SHARKEY:
        with pytest.raises(MisskeyApiError) as err:
            await anonymous.request("notes/show", {"noteId": answer["id"]})
        assert err.value.code == "NO_SUCH_NOTE"
    else:
        hidden = await anonymous.request("notes/show", {"noteId": answer["id"]})
        assert (hidden["isHidden"], hidden["text"]) == (True, None)
    await until(lambda: answers.events)
    (event,) = answers.events
    assert event.data == {
        "account": f"@alice@{host(misskey)}",
        "user": f"@bob@{host(misskey)}",
        "text": "turn off the kitchen light",
        "answer": "Turned off the light",
        "conversation_id": event.data["conversation_id"],
        "note_id": note["id"],
    }
    assert event.data["conversation_id"]


@pytest.mark.usefixtures("house")
async def test_follow_up_continues_the_conversation(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A reply to an answer continues its conversation; a new note starts another."""
    entry = assist_entry(mock_config_entry, [f"@bob@{host(misskey)}"])
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)

    first = await direct(as_bob, misskey.user, "turn off the kitchen light")
    answer = await answers.wait(first)
    follow_up = await direct(
        as_bob, misskey.user, "turn on the kitchen light", replyId=answer["id"]
    )
    await answers.wait(follow_up)
    other = await direct(as_bob, misskey.user, "turn off the kitchen light")
    await answers.wait(other)
    await until(lambda: len(answers.events) == 3)

    ids = [event.data["conversation_id"] for event in answers.events]
    assert ids[0] == ids[1] != ids[2]
    assert hass.states.get(KITCHEN).state == STATE_OFF


@pytest.mark.usefixtures("house")
async def test_nobody_else_and_never_itself(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Accounts not in the list, and the account itself, get nothing done and no answer."""
    carol = misskey.add_user("carol")
    as_carol = MisskeyClient(as_bob._session, misskey.url, carol.native_token)
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}", f"@alice@{host(misskey)}"]
    )
    await set_up(hass, misskey, entry)
    listener = entry.runtime_data.listener
    answers = Answers(hass, misskey)

    from_carol = await direct(as_carol, misskey.user, "turn off the kitchen light")
    # The account's own note, as if its server notified it of itself.
    own = misskey.notes[
        (
            await entry.runtime_data.client.create_note(
                {
                    "text": "@alice turn off the kitchen light",
                    "visibility": "specified",
                    "visibleUserIds": [misskey.user.id],
                }
            )
        ).id
    ]
    await misskey.streams.notify(misskey.user, "mention", misskey.user, note=own)
    await until(lambda: listener.delivered >= 2)
    await settle(hass)

    assert hass.states.get(KITCHEN).state == STATE_ON
    assert answers.to(from_carol) == answers.to(own) == []
    assert answers.events == []


@pytest.mark.usefixtures("house")
async def test_scope(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
) -> None:
    """Direct notes only by default; with mentions, public mentions too (answered directly)."""
    entry = assist_entry(mock_config_entry, [f"@BOB@{host(misskey).upper()}"])
    await set_up(hass, misskey, entry)
    listener = entry.runtime_data.listener
    answers = Answers(hass, misskey)

    public = await post_as(as_bob, text="@alice turn off the kitchen light")
    await until(lambda: listener.delivered >= 1)
    await settle(hass)
    assert answers.to(public) == []
    assert hass.states.get(KITCHEN).state == STATE_ON

    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_ASSIST_SCOPE: "mentions"}
    )
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: entry.runtime_data.listener.connected)
    public = await post_as(as_bob, text="@alice turn off the kitchen light")
    answer = await answers.wait(public)
    assert hass.states.get(KITCHEN).state == STATE_OFF
    assert answer["visibility"] == "specified"
    assert answer["visibleUserIds"] == [bob.id]


@pytest.mark.usefixtures("house")
async def test_caught_up_command_too_old_is_not_run(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A command caught up 3 minutes late is answered "too late", not run; a fresh one runs."""
    entry = assist_entry(mock_config_entry, [f"@bob@{host(misskey)}"])
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)
    assert await hass.config_entries.async_unload(entry.entry_id)

    old = await direct(as_bob, misskey.user, "turn off the kitchen light")
    three_minutes_ago = (dt_util.utcnow() - timedelta(minutes=3)).isoformat()
    misskey.notes[old["id"]]["createdAt"] = three_minutes_ago
    misskey.streams.notifications[misskey.user.id][-1]["createdAt"] = three_minutes_ago
    fresh = await direct(as_bob, misskey.user, "what time is it")
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    late = await answers.wait(old)
    await answers.wait(fresh)
    assert late["text"] == (
        "This arrived too late to act on (more than 2 minutes after it was sent): "
        "nothing was done. Send it again if you still want it."
    )
    assert late["visibility"] == "specified"
    assert hass.states.get(KITCHEN).state == STATE_ON
    await until(lambda: answers.events)
    assert [event.data["note_id"] for event in answers.events] == [fresh["id"]]


async def test_conversation_carries_over_a_reload(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    hass_storage: dict[str, Any],
) -> None:
    """The agent gets the command without the mention, and a follow-up after a reload."""
    agent_id, echo = agent
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)

    first = await direct(
        as_bob, misskey.user, f"@alice@{host(misskey)} is the garage door open?"
    )
    answer = await answers.wait(first)
    assert answer["text"] == "heard: is the garage door open?"
    assert echo.heard[0].language == hass.config.language
    assert echo.heard[0].conversation_id is None
    # Written once the answer's ID is back, which may be after it shows on the server.
    key = f"{DOMAIN}.{entry.entry_id}.assist"
    await until(lambda: key in hass_storage)
    await until(lambda: hass_storage[key]["data"]["answers"] == {answer["id"]: "conv1"})

    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: entry.runtime_data.listener.connected)
    follow_up = await direct(
        as_bob, misskey.user, "and the back door?", replyId=answer["id"]
    )
    await answers.wait(follow_up)
    assert echo.heard[1].conversation_id == "conv1"
    assert echo.heard[1].text == "and the back door?"


async def test_conversation_expires_after_an_hour(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    hass_storage: dict[str, Any],
) -> None:
    """A reply to an answer of a conversation silent for an hour starts a new one."""
    agent_id, echo = agent
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)
    first = await answers.wait(await direct(as_bob, misskey.user, "hello"))
    # The same as a restart an hour and a minute later.
    assert await hass.config_entries.async_unload(entry.entry_id)
    key = f"{DOMAIN}.{entry.entry_id}.assist"
    hass_storage[key]["data"]["active"]["conv1"] -= 3660
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: entry.runtime_data.listener.connected)

    await answers.wait(await direct(as_bob, misskey.user, "hi", replyId=first["id"]))
    assert echo.heard[1].conversation_id is None
    # The expired conversation is gone from the Store; the new one is there
    # (written once the answer's ID is back).
    await until(lambda: list(hass_storage[key]["data"]["active"]) == ["conv2"])


async def test_agent_error_and_time_out_answer(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An agent that fails or takes too long gets the sender an answer; logged once."""
    agent_id, echo = agent
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)

    echo.fail = RuntimeError("the model is down")
    failed = [
        await answers.wait(await direct(as_bob, misskey.user, "lights off"))
        for _ in range(2)
    ]
    assert {a["text"] for a in failed} == {
        (
            "The assistant ran into an error and could not answer; what it did, "
            "if anything, is in Home Assistant's logbook."
        )
    }
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("custom_components")
    ]
    assert len(warnings) == 1
    assert "the model is down" in warnings[0].getMessage()

    echo.fail = None
    echo.delay = 5
    with patch("custom_components.misskey.assist.ASSIST_AGENT_TIMEOUT", 0.1):
        late = await answers.wait(await direct(as_bob, misskey.user, "lights on"))
    assert late["text"] == (
        "The assistant did not answer in time; what it did, if anything, "
        "is in Home Assistant's logbook."
    )
    assert entry.runtime_data.assist.diagnostics()["last_error"] == (
        "agent did not answer within 0.1 s"
    )
    await until(lambda: len(answers.events) == 3)
    assert answers.events[0].data["answer"] == failed[0]["text"]


async def test_answer_mentions_no_one_else(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    bob: User,
) -> None:
    """A name in the agent's speech does not make its user a recipient."""
    carol = misskey.add_user("carol")
    agent_id, echo = agent
    echo.answer = "ask @carol or @carol@elsewhere.example (carol@mail.example)"
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)

    answer = await answers.wait(await direct(as_bob, misskey.user, "who knows?"))
    assert answer["visibleUserIds"] == [bob.id]
    assert carol.id not in answer["visibleUserIds"]
    assert answer["text"] == (
        "ask @\u200bcarol or @\u200bcarol@elsewhere.example (carol@mail.example)"
    )


async def test_rate_limit(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
) -> None:
    """Five commands a minute; the sixth is told to slow down; the seventh is ignored."""
    agent_id, echo = agent
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    listener = entry.runtime_data.listener
    answers = Answers(hass, misskey)

    notes = [await direct(as_bob, misskey.user, f"command {n}") for n in range(7)]
    await until(lambda: listener.delivered >= 7)
    for note in notes[:6]:
        await answers.wait(note)
    await settle(hass)

    assert [e.text for e in echo.heard] == [f"command {n}" for n in range(5)]
    assert answers.to(notes[5])[0]["text"] == (
        "Too many commands at once: the next ones are ignored until a minute has passed."
    )
    assert answers.to(notes[6]) == []


async def test_logbook_describes_the_command(hass: HomeAssistant) -> None:
    """The logbook shows who asked what, and the answer."""
    described: dict[str, Any] = {}

    def describe(domain: str, event_type: str, describer: Any) -> None:
        described[event_type] = (domain, describer)

    async_describe_events(hass, describe)
    domain, describer = described[EVENT_ASSIST]
    event = Event(
        EVENT_ASSIST,
        {
            "account": "@alice@misskey.example",
            "user": "@bob@misskey.example",
            "text": "lights off",
            "answer": "Turned off the lights",
            "conversation_id": "c",
            "note_id": "n",
        },
    )
    assert domain == DOMAIN
    assert describer(event) == {
        "name": "@alice@misskey.example ← @bob@misskey.example",
        "message": "“lights off” → “Turned off the lights”",
    }


@pytest.mark.parametrize(
    ("accounts", "listen", "error"),
    [
        (
            ["bob@misskey.example"],
            True,
            {CONF_ASSIST_ACCOUNTS: "invalid_assist_account"},
        ),
        (["@bob"], True, {CONF_ASSIST_ACCOUNTS: "invalid_assist_account"}),
        (["@bob@misskey.example"], False, {"base": "assist_needs_listen"}),
    ],
)
async def test_options_form_errors(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    misskey: MisskeyServer,
    accounts: list[str],
    listen: bool,
    error: dict[str, str],
) -> None:
    """Accounts must be @user@host, and Assist needs listening; then the options are saved."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    base = {
        CONF_DEFAULT_VISIBILITY: "home",
        CONF_DEFAULT_LOCAL_ONLY: False,
        CONF_CATCH_UP_WINDOW: 15,
        CONF_ASSIST_SCOPE: "direct",
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {**base, CONF_LISTEN: listen, CONF_ASSIST_ACCOUNTS: accounts},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == error

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **base,
            CONF_LISTEN: True,
            CONF_ASSIST_ACCOUNTS: [" @bob@misskey.example ", ""],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert mock_config_entry.options == {
        **base,
        CONF_LISTEN: True,
        CONF_ASSIST_ACCOUNTS: ["@bob@misskey.example"],
    }
    await hass.async_block_till_done()


async def test_answer_that_cannot_be_posted_is_logged_once(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Misskey refusing the answer is logged once and shows in diagnostics; the event fires."""
    agent_id, echo = agent
    echo.delay = 0.1
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)

    for n in range(2):
        await direct(as_bob, misskey.user, f"lights off {n}")
        misskey.fail_next("notes/create", "server_error")
        await until(lambda n=n: len(answers.events) == n + 1)
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("custom_components")
    ]
    assert [r.name for r in warnings] == ["custom_components.misskey.assist"]
    assert "could not answer note" in warnings[0].getMessage()
    diagnostics = entry.runtime_data.assist.diagnostics()
    assert diagnostics["commands"] == 2
    assert diagnostics["last_error"].startswith("could not answer note")
    assert answers.events[1].data["answer"] == "heard: lights off 1"

    again = await direct(as_bob, misskey.user, "lights on")
    await answers.wait(again)
    await until(lambda: len(answers.events) == 3)
    assert "the posting works again" in caplog.text


async def test_diagnostics_keep_the_accounts_private(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    """Diagnostics say how many accounts may talk to Assist, not which."""
    entry = assist_entry(mock_config_entry, [f"@bob@{host(misskey)}"])
    await set_up(hass, misskey, entry)

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["options"][CONF_ASSIST_ACCOUNTS] == "**REDACTED**"
    assert diagnostics["assist"] == {
        "allowed_accounts": 1,
        "agent": None,
        "scope": ["direct"],
        "commands": 0,
        "answered_too_late": 0,
        "over_rate": 0,
        "live_conversations": 0,
        "last_error": None,
    }


async def test_conversation_set_up_at_the_first_command(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Without conversation configured, the first command sets it up; textless notes are no commands."""
    # Always set up in Home Assistant (conversation needs its exposed entities).
    assert await async_setup_component(hass, "homeassistant", {})
    entry = assist_entry(mock_config_entry, [f"@bob@{host(misskey)}"])
    await set_up(hass, misskey, entry)
    listener = entry.runtime_data.listener
    answers = Answers(hass, misskey)
    assert "conversation" not in hass.config.components

    poll = await post_as(
        as_bob,
        visibility="specified",
        visibleUserIds=[misskey.user.id],
        poll={"choices": ["on", "off"]},
    )
    await until(lambda: listener.delivered >= 1)
    answer = await answers.wait(
        await direct(as_bob, misskey.user, "turn off the kitchen light")
    )
    assert "conversation" in hass.config.components
    # Home Assistant's own agent, which knows no kitchen light here.
    assert answer["text"]
    assert answers.to(poll) == []


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ja", "コマンドが多すぎます: 1分経つまで次のものは無視します。"),
        # Not translated: English.
        (
            "fr",
            (
                "Too many commands at once: the next ones are ignored until a "
                "minute has passed."
            ),
        ),
    ],
)
async def test_answers_in_home_assistant_language(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    language: str,
    text: str,
) -> None:
    """The notes carry no language: Assist hears, and answers, in Home Assistant's."""
    hass.config.language = language
    agent_id, echo = agent
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)
    with patch("custom_components.misskey.assist.ASSIST_RATE_COMMANDS", 1):
        await answers.wait(await direct(as_bob, misskey.user, "one"))
        slow = await answers.wait(await direct(as_bob, misskey.user, "two"))
    assert echo.heard[0].language == language
    assert slow["text"] == text


async def test_long_answer_is_cut_to_the_note_length(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
) -> None:
    """An answer longer than the server allows is cut, not refused."""
    agent_id, echo = agent
    echo.answer = "x" * (misskey.max_note_text_length + 10)
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)

    answer = await answers.wait(await direct(as_bob, misskey.user, "tell me all"))
    assert len(answer["text"]) == misskey.max_note_text_length
    assert answer["text"].endswith("…")


async def test_rate_window_frees_up(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
) -> None:
    """Once the window has passed, commands run again (and may be told to slow down again)."""
    agent_id, echo = agent
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)
    with (
        patch("custom_components.misskey.assist.ASSIST_RATE_COMMANDS", 1),
        patch("custom_components.misskey.assist.ASSIST_RATE_WINDOW", 0.3),
    ):
        await answers.wait(await direct(as_bob, misskey.user, "one"))
        await answers.wait(await direct(as_bob, misskey.user, "two"))
        await asyncio.sleep(0.3)
        await answers.wait(await direct(as_bob, misskey.user, "three"))
        slow = await answers.wait(await direct(as_bob, misskey.user, "four"))
    assert [e.text for e in echo.heard] == ["one", "three"]
    assert slow["text"].startswith("Too many commands")


async def test_conversations_unreadable_or_unwritable(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Store that cannot be read or written costs follow-ups, never the answer."""
    agent_id, echo = agent
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)
    store = entry.runtime_data.assist._store
    with (
        patch.object(
            store, "async_load", side_effect=HomeAssistantError("disk on fire")
        ),
        patch.object(store, "async_save", side_effect=OSError("disk full")),
    ):
        answer = await answers.wait(await direct(as_bob, misskey.user, "hello"))
        await until(lambda: answers.events)
    assert answer["text"] == "heard: hello"
    assert "Could not read the Assist conversations" in caplog.text
    assert "could not write its conversations down: disk full" in caplog.text

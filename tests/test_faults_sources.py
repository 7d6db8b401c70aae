"""Sources and Assist: every fault of their calls ends in recovery, re-authentication or a clear message.

The tables: each fault as the test server plays it, against the calls the
sources and Assist make on their own, and what the user then sees:

- a source's catch-up after a reconnect (``antennas/notes``,
  ``notes/user-list-timeline``, ``channels/timeline``,
  ``notes/search-by-tag``): the note made while the socket was down fires
  once, at the latest after the next reconnect; a refused credential starts
  re-authentication;
- polling an account nobody follows (``users/notes``): the next poll
  delivers the note, once; a refused credential starts re-authentication;
- Assist's answer (``notes/create``): posted once (a 429 is waited out), or
  logged once and shown in its diagnostics, the ``misskey_assist`` event
  firing all the same; a refused credential starts re-authentication;
- the source form's lists (``antennas/list``, ``users/lists/list``,
  ``channels/followed``, ``users/show``): a translated abort or form error.

Whatever the outcome, the log holds at most one warning for the outage, no
traceback, and never the credential.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass, field
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.misskey  # noqa: F401
from custom_components.misskey.api import MisskeyClient
from custom_components.misskey.const import CONF_ASSIST_AGENT
from homeassistant.components import conversation
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component

from .conftest import HANG_TIMEOUT
from .listening import Events, post_as, reconnect, set_up, until
from .misskey_server import MisskeyServer, User
from .test_assist import Answers, EchoAgent, assist_entry, direct, host
from .test_faults import (
    AUTHENTICATION_FAILED,
    PERMISSION_DENIED,
    api_error,
    reauth_flows,
)
from .test_sources import follow_source, start_flow, subentry_title

pytestmark = pytest.mark.usefixtures("fast_listener", "fast_requests")

RATE_LIMITED = api_error("RATE_LIMIT_EXCEEDED", "Rate limit exceeded.")


@pytest.fixture
def fast_requests() -> Generator[None]:
    """Give up on an unanswered request after HANG_TIMEOUT; try a bare 429 again in 0.2 s."""
    with (
        patch("custom_components.misskey.api.transport.DEFAULT_TIMEOUT", HANG_TIMEOUT),
        patch("custom_components.misskey.api.gate.PROBE_AFTER", (0.2, 0.4, 1)),
    ):
        yield


@dataclass(frozen=True)
class Fault:
    """A fault as the server plays it: ``fail_next``'s kind and arguments."""

    name: str
    kind: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def arm(self, misskey: MisskeyServer, endpoint: str) -> None:
        """Answer the next call to ``endpoint`` with this fault."""
        misskey.fail_next(endpoint, self.kind, **self.kwargs)


# fmt: off
F401 = Fault("401", "json", {"status": 401, "body": AUTHENTICATION_FAILED})
F403 = Fault("403 permission denied", "json", {"status": 403, "body": PERMISSION_DENIED})
F429 = Fault("429 with Retry-After", "rate_limit", {"retry_after": 0.3})
F429_BARE = Fault("429 without Retry-After", "json", {"status": 429, "body": RATE_LIMITED})
F5XX = Fault("5xx", "server_error")
RESET = Fault("connection reset", "drop")
STALL = Fault("stall", "hang", {"delay": 30})
HTML = Fault("malformed (HTML with 200)", "html", {"status": 200})
NOT_A_LIST = Fault("malformed (JSON not a list)", "json", {"status": 200, "body": {"x": 1}})
# fmt: on


def check_log(caplog: pytest.LogCaptureFixture, entry: MockConfigEntry) -> None:
    """At most one warning for the fault, no traceback, never the credential."""
    ours = [r for r in caplog.records if r.name.startswith("custom_components")]
    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    # The sockets the tests cut are the listener's outages, not the fault's.
    assert len([w for w in warnings if not w.startswith("Lost the connection")]) <= 1, (
        warnings
    )
    assert not any(r.exc_info for r in ours)
    assert entry.data["i"] not in caplog.text


def warned(caplog: pytest.LogCaptureFixture) -> bool:
    """Return whether the integration logged a warning."""
    return any(
        r.levelno >= logging.WARNING
        and r.name.startswith("custom_components")
        and not r.getMessage().startswith("Lost the connection")
        for r in caplog.records
    )


# --- 1. a source's catch-up after a reconnect ---------------------------------------

# The kind of source, and the timeline its catch-up reads.
CATCH_UP_KINDS = (
    ("antenna", "antennas/notes"),
    ("list", "notes/user-list-timeline"),
    ("channel", "channels/timeline"),
    ("hashtag", "notes/search-by-tag"),
)
# Each fault of reading a timeline, and its outcome: "reauth" (a refused
# credential), else "recovers".
TIMELINE_FAULTS = [
    (F401, "reauth"),
    (F403, "recovers"),
    (F429, "recovers"),
    (F429_BARE, "recovers"),
    (F5XX, "recovers"),
    (RESET, "recovers"),
    (STALL, "recovers"),
    (HTML, "recovers"),
    (NOT_A_LIST, "recovers"),
]
CATCH_UP = [
    pytest.param(kind, endpoint, fault, outcome, id=f"{kind} catch-up: {fault.name}")
    for kind, endpoint in CATCH_UP_KINDS
    for fault, outcome in TIMELINE_FAULTS
]


async def follow_kind(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    entry: MockConfigEntry,
    bob: User,
    kind: str,
) -> tuple[Events, dict[str, Any]]:
    """Follow a source of ``kind`` that bob's notes reach; return its events and how bob posts."""
    hub = misskey.sources
    if kind == "antenna":
        antenna = hub.add_antenna(misskey.user, "Quakes", keywords=[["quake"]])
        return await follow_source(hass, entry, kind, antenna.id, "Quakes"), {}
    if kind == "list":
        user_list = hub.add_list(misskey.user, "Family", [bob])
        return await follow_source(hass, entry, kind, user_list.id, "Family"), {}
    if kind == "channel":
        channel = hub.add_channel(bob, "Trains", followers=[misskey.user])
        events = await follow_source(hass, entry, kind, channel.id, "Trains")
        return events, {"channelId": channel.id}
    return await follow_source(hass, entry, kind, "quake", "#quake"), {}


@pytest.mark.parametrize(("kind", "endpoint", "fault", "outcome"), CATCH_UP)
async def test_catch_up_fault(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    bob: User,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    endpoint: str,
    fault: Fault,
    outcome: str,
) -> None:
    """The note made while dropped fires once, at the latest after the next reconnect."""
    await set_up(hass, misskey, mock_config_entry)
    events, where = await follow_kind(hass, misskey, mock_config_entry, bob, kind)
    listener = mock_config_entry.runtime_data.listener
    caplog.clear()

    fault.arm(misskey, endpoint)
    misskey.streams.hold()
    misskey.streams.drop()
    await until(lambda: not listener.connected)
    missed = await post_as(as_bob, text="quake #quake missed", **where)
    misskey.streams.release()
    await until(lambda: listener.connected and not misskey.faults[endpoint])
    if outcome == "reauth":
        await until(lambda: reauth_flows(hass))
    # The catch-up has ended: delivered, or said why not.
    await until(lambda: events.fired or warned(caplog), timeout=HANG_TIMEOUT * 5)

    # At the latest, the next connection catches up.
    misskey.streams.drop()
    await until(lambda: not listener.connected)
    await until(lambda: listener.connected)
    await events.wait(1)
    live = await post_as(as_bob, text="quake #quake live", **where)
    await events.wait(2)
    assert events.note_ids() == [missed["id"], live["id"]]
    assert bool(reauth_flows(hass)) is (outcome == "reauth")
    check_log(caplog, mock_config_entry)


# --- 2. polling an account nobody follows -----------------------------------------------

POLLING = TIMELINE_FAULTS


@pytest.mark.parametrize(
    ("fault", "outcome"), POLLING, ids=[f"account poll: {f.name}" for f, _ in POLLING]
)
async def test_poll_fault(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    carol: User,
    as_carol: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    outcome: str,
) -> None:
    """A poll that fails is said once; the next one delivers the note, once."""
    await set_up(hass, misskey, mock_config_entry)
    with patch(
        "custom_components.misskey.source_listener.SOURCE_POLL_INTERVAL",
        timedelta(seconds=0.05),
    ):
        # The running poll loop sleeps the interval it read: start it anew.
        await reconnect(misskey, mock_config_entry)
        events = await follow_source(
            hass, mock_config_entry, "account", "@carol", subentry_title(misskey)
        )
        caplog.clear()
        fault.arm(misskey, "users/notes")
        note = await post_as(as_carol, text="one")
        await events.wait(1)
        polls = len(misskey.calls("users/notes"))
        await until(lambda: len(misskey.calls("users/notes")) > polls + 3)
    assert events.note_ids() == [note["id"]]
    assert not misskey.faults["users/notes"]
    assert bool(reauth_flows(hass)) is (outcome == "reauth")
    check_log(caplog, mock_config_entry)


# --- 2b. how a followed account's notes arrive -------------------------------------------

# Outcome: "waited" (a 429, waited out), "said" (logged once), "reauth" (said,
# and re-authentication); the account is heard as before either way.
DELIVERY = [
    (F401, "reauth"),
    (F403, "said"),
    (F429, "waited"),
    (F429_BARE, "waited"),
    (F5XX, "said"),
    (RESET, "said"),
    (STALL, "said"),
    (HTML, "said"),
]


@pytest.mark.parametrize(
    ("fault", "outcome"),
    DELIVERY,
    ids=[f"account delivery: {f.name}" for f, _ in DELIVERY],
)
async def test_delivery_fault(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    bob: User,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    outcome: str,
) -> None:
    """users/show failing at a connection: said once; the account is heard as before.

    The next connection asks again.
    """
    misskey.sources.follow(misskey.user, bob)
    await set_up(hass, misskey, mock_config_entry)
    title = f"@bob@{host(misskey)}"
    events = await follow_source(hass, mock_config_entry, "account", title, title)
    listener = mock_config_entry.runtime_data.listener

    def delivery() -> str:
        (source,) = listener.sources.diagnostics().values()
        return str(source["delivery"])

    assert delivery() == "home_timeline"
    caplog.clear()
    shows = len(misskey.calls("users/show"))
    fault.arm(misskey, "users/show")
    await reconnect(misskey, mock_config_entry)
    await until(lambda: not misskey.faults["users/show"])
    if outcome == "waited":
        # The 429, then the same call again.
        await until(lambda: len(misskey.calls("users/show")) >= shows + 2)
    else:
        await until(lambda: warned(caplog), timeout=HANG_TIMEOUT * 5)
    assert warned(caplog) is (outcome != "waited")
    assert delivery() == "home_timeline"
    assert bool(reauth_flows(hass)) is (outcome == "reauth")

    # The next connection asks again.
    await reconnect(misskey, mock_config_entry)
    await until(lambda: delivery() == "home_timeline")
    note = await post_as(as_bob, text="still heard")
    await events.wait(1)
    assert events.note_ids() == [note["id"]]
    check_log(caplog, mock_config_entry)


async def test_sources_that_stop_say_so(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bug that ends the sources' work beside the connection is logged, with its traceback.

    The next connection starts it again: a note made meanwhile fires once.
    """
    await set_up(hass, misskey, mock_config_entry)
    events = await follow_source(hass, mock_config_entry, "hashtag", "quake", "#quake")
    listener = mock_config_entry.runtime_data.listener
    caplog.clear()
    with patch.object(
        listener.sources, "async_catch_up", side_effect=RuntimeError("a bug")
    ):
        await reconnect(misskey, mock_config_entry)
        await until(lambda: "following the sources" in caplog.text)
    (error,) = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith("custom_components")
    ]
    assert error.exc_info is not None
    meanwhile = await post_as(as_bob, text="#quake meanwhile")
    await reconnect(misskey, mock_config_entry)
    await events.wait(1)
    assert events.note_ids() == [meanwhile["id"]]


# --- 3. Assist's answer -------------------------------------------------------------------

# Outcome: "posted" (once), "logged" (never posted), "reauth" (logged, and re-authentication).
ASSIST = [
    (F401, "reauth"),
    (F403, "logged"),
    (F429, "posted"),
    (F429_BARE, "posted"),
    (F5XX, "logged"),
    (RESET, "logged"),
    (STALL, "logged"),
    (HTML, "logged"),
]


@pytest.mark.parametrize(
    ("fault", "outcome"), ASSIST, ids=[f"assist answer: {f.name}" for f, _ in ASSIST]
)
async def test_assist_answer_fault(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    agent: tuple[str, EchoAgent],
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    outcome: str,
) -> None:
    """The event fires; the answer is posted once, or said once; never twice."""
    agent_id, echo = agent
    echo.delay = 0.1
    entry = assist_entry(
        mock_config_entry, [f"@bob@{host(misskey)}"], **{CONF_ASSIST_AGENT: agent_id}
    )
    await set_up(hass, misskey, entry)
    answers = Answers(hass, misskey)
    caplog.clear()

    note = await direct(as_bob, misskey.user, "lights off")
    calls = len(misskey.calls("notes/create"))
    fault.arm(misskey, "notes/create")
    await until(lambda: answers.events, timeout=HANG_TIMEOUT * 5)
    await hass.async_block_till_done()

    assert answers.events[0].data["answer"] == "heard: lights off"
    assert len(answers.to(note)) == (1 if outcome == "posted" else 0)
    assert len(misskey.calls("notes/create")) - calls == (
        2 if outcome == "posted" else 1
    )
    diagnostics = entry.runtime_data.assist.diagnostics()
    if outcome == "posted":
        assert diagnostics["last_error"] is None
    else:
        assert diagnostics["last_error"].startswith("could not answer note")
        assert warned(caplog)
    assert bool(reauth_flows(hass)) is (outcome == "reauth")
    check_log(caplog, entry)


@pytest.fixture
async def agent(hass: HomeAssistant) -> AsyncGenerator[tuple[str, EchoAgent]]:
    """Register a test agent; return its ID."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    owner = MockConfigEntry(domain="test")
    owner.add_to_hass(hass)
    echo = EchoAgent()
    conversation.async_set_agent(hass, owner, echo)
    yield owner.entry_id, echo
    conversation.async_unset_agent(hass, owner)


# --- 4. the source form's lists ----------------------------------------------------------

FORM = [
    pytest.param(kind, endpoint, fault, id=f"form {endpoint}: {fault.name}")
    for kind, endpoint in (
        ("antenna", "antennas/list"),
        ("list", "users/lists/list"),
        ("channel", "channels/followed"),
        ("account", "users/show"),
    )
    for fault in (F401, F5XX, RESET, STALL, HTML)
]


@pytest.mark.parametrize(("kind", "endpoint", "fault"), FORM)
async def test_form_fault(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    bob: User,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    endpoint: str,
    fault: Fault,
) -> None:
    """The form says it could not reach the server, or that the credential is refused."""
    hub = misskey.sources
    hub.add_antenna(misskey.user, "Quakes", keywords=[["quake"]])
    hub.add_list(misskey.user, "Family", [bob])
    hub.add_channel(bob, "Trains", followers=[misskey.user])
    await set_up(hass, misskey, mock_config_entry)
    caplog.clear()
    fault.arm(misskey, endpoint)

    result = await start_flow(hass, mock_config_entry)
    if kind == "account":
        assert result["type"] is FlowResultType.FORM
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"kind": "account"}
        )
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"], {"account": "@bob"}
        )
    if fault is F401:
        # Said, and re-authentication asked for.
        assert result["type"] is FlowResultType.ABORT, result
        assert result["reason"] == "authentication_failed"
    elif kind == "account":
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "cannot_connect"}
    else:
        assert result["type"] is FlowResultType.ABORT, result
        assert result["reason"] == "cannot_connect"
    assert not misskey.faults[endpoint]
    assert bool(reauth_flows(hass)) is (fault is F401)
    await hass.async_block_till_done()
    check_log(caplog, mock_config_entry)

"""Hearing the account through Home Assistant: events live, caught up, never twice."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
import logging
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.api import MisskeyClient
from custom_components.misskey.const import (
    CONF_CATCH_UP_WINDOW,
    CONF_CREDENTIAL,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    CONF_LISTEN,
    DOMAIN,
)
from custom_components.misskey.data import listener_store
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import (
    EVENT_HOMEASSISTANT_STARTED,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
import homeassistant.util.dt as dt_util

from .conftest import listener_tasks
from .listening import Events, entity_id, post_as, set_up, until, without_catch_up
from .misskey_server import (
    CHERRYPICK,
    MISSKEY,
    MISSKEY_13,
    SHARKEY,
    MisskeyServer,
    Request,
    User,
    new_id,
)
from .misskey_stream import now_iso

pytestmark = pytest.mark.usefixtures("fast_listener")


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13, CHERRYPICK])
async def test_mention_reaches_entity(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
) -> None:
    """A mention fires the mentions entity with what an automation needs to answer."""
    await set_up(hass, misskey, mock_config_entry)
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    note = await post_as(as_bob, text="@alice lights off", cw="home")
    await mentions.wait(1)

    host = misskey.url.removeprefix("http://")
    event_type, attributes = mentions.fired[0]
    assert event_type == "mention"
    assert attributes["note_id"] == note["id"]
    assert attributes["note_url"] == f"{misskey.url}/notes/{note['id']}"
    assert attributes["text"] == "@alice lights off"
    assert attributes["cw"] == "home"
    assert attributes["visibility"] == "public"
    assert attributes["user"] == f"@bob@{host}"
    assert attributes["user_id"] == bob.id
    assert dt_util.parse_datetime(attributes["created_at"]) is not None
    assert "reaction" not in attributes


@pytest.mark.parametrize("variant", [MISSKEY, CHERRYPICK])
async def test_every_kind_reaches_its_entity(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
) -> None:
    """Each kind of notification fires the entity a person expects it on."""
    await set_up(hass, misskey, mock_config_entry)
    entities = {
        key: Events(hass, entity_id(hass, mock_config_entry, "event", key))
        for key in ("mentions", "direct_messages", "new_followers", "note_activity")
    }
    alice = misskey.user
    own = misskey.notes[
        (
            await hass.services.async_call(
                DOMAIN,
                "post",
                {"text": "Garage open", "poll": {"choices": ["a", "b"]}},
                blocking=True,
                return_response=True,
            )
        )["id"]  # type: ignore[index]
    ]

    reply = await post_as(as_bob, text="closing it", replyId=own["id"])
    direct = await post_as(
        as_bob, text="dinner at 7", visibility="specified", visibleUserIds=[alice.id]
    )
    await as_bob.request("following/create", {"userId": alice.id}, authenticated=True)
    await as_bob.request(
        "notes/reactions/create",
        {"noteId": own["id"], "reaction": "👍"},
        authenticated=True,
    )
    renote = await post_as(as_bob, renoteId=own["id"])
    quote = await post_as(as_bob, text="look", renoteId=own["id"])
    await misskey.end_poll(own["id"])
    await as_bob.request(
        "chat/messages/create-to-user",
        {"toUserId": alice.id, "text": "hi"},
        authenticated=True,
    )
    locked = misskey.add_user("dave")
    alice.is_locked = True
    await MisskeyClient(
        async_get_clientsession(hass), misskey.url, locked.native_token
    ).request("following/create", {"userId": alice.id}, authenticated=True)

    await entities["mentions"].wait(1)
    await entities["direct_messages"].wait(2)
    await entities["new_followers"].wait(2)
    await entities["note_activity"].wait(4)

    assert [t for t, _ in entities["mentions"].fired] == ["reply"]
    assert entities["mentions"].note_ids() == [reply["id"]]
    direct_types = [
        (t, a.get("note_id"), a.get("text"))
        for t, a in entities["direct_messages"].fired
    ]
    assert direct_types[0] == ("direct", direct["id"], "dinner at 7")
    assert direct_types[1][0] == "direct"
    assert direct_types[1][2] == "hi"
    assert entities["direct_messages"].fired[1][1]["user_id"] == bob.id
    assert [(t, a["user_id"]) for t, a in entities["new_followers"].fired] == [
        ("follow", bob.id),
        ("follow_request_received", locked.id),
    ]
    activity = entities["note_activity"].fired
    assert [t for t, _ in activity] == ["reaction", "renote", "quote", "poll_ended"]
    assert activity[0][1]["reaction"] == "👍"
    # A reaction is about the account's own note.
    assert activity[0][1]["note_id"] == own["id"]
    assert activity[1][1]["note_id"] == renote["id"]
    assert activity[2][1]["note_id"] == quote["id"]
    assert activity[3][1]["note_id"] == own["id"]
    assert "user" not in activity[3][1]


async def test_missed_while_dropped_arrive_once(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Mentions made while the socket was down arrive after reconnecting, once each."""
    await set_up(hass, misskey, mock_config_entry)
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    streaming = entity_id(hass, mock_config_entry, "binary_sensor", "streaming")
    first = await post_as(as_bob, text="@alice one")
    await mentions.wait(1)
    assert hass.states.get(streaming).state == STATE_ON

    with patch("custom_components.misskey.listener.RECONNECT_MIN_DELAY", 1):
        misskey.streams.drop()
        await until(lambda: hass.states.get(streaming).state == STATE_OFF)
        missed = [await post_as(as_bob, text=f"@alice missed {n}") for n in range(3)]
        await misskey.streams.wait_joined(misskey.user)
    await mentions.wait(4)
    live = await post_as(as_bob, text="@alice live")
    # Events are heard in order: once a later one is, any repeat of those
    # before it would have been too.
    later = await post_as(as_bob, text="@alice later")
    await mentions.wait(6)

    assert mentions.note_ids() == [
        first["id"],
        *(note["id"] for note in missed),
        live["id"],
        later["id"],
    ]
    assert hass.states.get(streaming).state == STATE_ON
    # The catch-up left them unread.
    assert all(
        call.body["markAsRead"] is False for call in misskey.calls("i/notifications")
    )


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
async def test_restart_replays_nothing_old_and_loses_nothing_new(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """After a restart, notifications inside the window arrive; older ones never fire."""
    before = await post_as(as_bob, text="@alice before set-up")
    await set_up(hass, misskey, mock_config_entry)
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    delivered = await post_as(as_bob, text="@alice while up")
    await mentions.wait(1)

    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    old = await post_as(as_bob, text="@alice lights off")
    # Three days pass while Home Assistant is off.
    misskey.streams.notifications[misskey.user.id][-1]["createdAt"] = (
        dt_util.utcnow() - timedelta(days=3)
    ).isoformat()
    new = await post_as(as_bob, text="@alice lights on")

    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await mentions.wait(2)
    # Caught up oldest first, then live: once a later mention is heard, the
    # catch-up is over.
    later = await post_as(as_bob, text="@alice later")
    await mentions.wait(3)

    # Nothing from before the first set-up, the old one skipped, the new one once.
    assert mentions.note_ids() == [delivered["id"], new["id"], later["id"]]
    assert before["id"] not in mentions.note_ids()
    assert old["id"] not in mentions.note_ids()


async def test_record_written_before_the_event_is_acted_on(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    hass_storage: dict[str, Any],
) -> None:
    """An automation's answer reaches Misskey only after the event was written down.

    What is written down does not fire again after a power cut
    (tests/e2e/test_power_cut.py, where the disk decides when it is done).
    """
    await set_up(hass, misskey, mock_config_entry)
    mentions = entity_id(hass, mock_config_entry, "event", "mentions")
    key = listener_store(hass, mock_config_entry.entry_id).key
    written: list[str | None] = []

    def answered(request: Request) -> None:
        # The account's own note (bob's mention comes with bob's token).
        if (
            request.endpoint == "notes/create"
            and request.body.get("i") == (mock_config_entry.data[CONF_CREDENTIAL])
        ):
            written.append(hass_storage[key]["data"]["last_notification_id"])

    misskey.on_request = answered
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "mode": "queued",
                "triggers": {
                    "trigger": "state",
                    "entity_id": mentions,
                    "not_from": STATE_UNAVAILABLE,
                    "not_to": STATE_UNAVAILABLE,
                },
                "actions": {
                    "action": f"{DOMAIN}.post",
                    "data": {
                        "config_entry_id": mock_config_entry.entry_id,
                        "text": "Done",
                    },
                },
            }
        },
    )
    await post_as(as_bob, text="@alice lights off")
    await until(lambda: written)
    (notification,) = misskey.streams.notifications[misskey.user.id]
    assert written == [notification["id"]]


async def test_catch_up_window_from_options(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A window of 0 skips everything missed; live events still fire."""
    entry = without_catch_up(mock_config_entry)
    await set_up(hass, misskey, entry)
    mentions = Events(hass, entity_id(hass, entry, "event", "mentions"))
    with patch("custom_components.misskey.listener.RECONNECT_MIN_DELAY", 1):
        misskey.streams.drop()
        await until(lambda: not misskey.streams.joined(misskey.user))
        await post_as(as_bob, text="@alice missed")
        await misskey.streams.wait_joined(misskey.user)
    # Caught up (nothing, with a window of 0) before it counts as connected;
    # what comes after is live, and is heard after anything caught up.
    await until(lambda: entry.runtime_data.listener.connected)
    live = await post_as(as_bob, text="@alice live")
    await mentions.wait(1)
    assert mentions.note_ids() == [live["id"]]


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
async def test_revoked_credential_starts_reauth(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    variant: str,
) -> None:
    """A credential the stream refuses starts re-authentication, as a refused post does.

    Misskey 12 leaves the upgrade unanswered: the API then tells why.
    """
    await set_up(hass, misskey, mock_config_entry)
    misskey.revoke()
    misskey.streams.drop()
    await until(
        lambda: any(
            flow["context"]["source"] == SOURCE_REAUTH
            for flow in hass.config_entries.flow.async_progress()
        )
    )
    if variant == MISSKEY_13:
        assert misskey.calls("i")[-1].body["i"] == mock_config_entry.data["i"]
    upgrades = misskey.streams.upgrades
    await asyncio.sleep(0.3)
    # It stops trying: a revoked credential does not come back by itself.
    assert misskey.streams.upgrades == upgrades
    streaming = entity_id(hass, mock_config_entry, "binary_sensor", "streaming")
    assert hass.states.get(streaming).state == STATE_OFF


@pytest.mark.parametrize("status", [200, 400, 404, 426])
async def test_refused_upgrade_falls_back_to_polling(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    """A proxy that refuses WebSockets: notifications are polled and still delivered."""
    misskey.streams.refuse_status = status
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    await until(lambda: misskey.calls("i/notifications"))

    note = await post_as(as_bob, text="@alice are you there")
    await mentions.wait(1)
    # Two more polls answered after it was heard: neither repeats it.
    polls = len(misskey.calls("i/notifications"))
    await until(lambda: len(misskey.calls("i/notifications")) >= polls + 3)
    assert mentions.note_ids() == [note["id"]]
    assert all(c.body["markAsRead"] is False for c in misskey.calls("i/notifications"))
    streaming = entity_id(hass, mock_config_entry, "binary_sensor", "streaming")
    assert hass.states.get(streaming).state == STATE_OFF
    listener = mock_config_entry.runtime_data.listener
    assert listener.diagnostics()["mode"] == "polling"
    assert listener.diagnostics()["refused_status"] == status
    assert "does not accept WebSocket connections" in caplog.text
    # The streaming URL holds the credential: it never reaches the log.
    assert mock_config_entry.data["i"] not in caplog.text
    assert mock_config_entry.data["i"] not in str(listener.diagnostics())

    # The proxy is fixed: streaming is tried again and used.
    misskey.streams.refuse_status = None
    await misskey.streams.wait_joined(misskey.user)
    await until(lambda: hass.states.get(streaming).state == STATE_ON)


@pytest.mark.usefixtures("stall_heartbeat")
async def test_stalled_connection_is_noticed(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A socket that stays open but answers nothing is replaced, and nothing is lost."""
    await set_up(hass, misskey, mock_config_entry)
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    (stalled,) = misskey.streams.joined(misskey.user)
    misskey.streams.stall()
    note = await post_as(as_bob, text="@alice while stalled")
    # Pings after a second of silence go unanswered: a new connection catches up.
    await mentions.wait(1)
    assert mentions.note_ids() == [note["id"]]
    assert misskey.streams.joined(misskey.user) != [stalled]


async def test_server_down_logs_once(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the server is down: one warning, one line when it is back, no traceback."""
    await set_up(hass, misskey, mock_config_entry)
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    caplog.clear()
    caplog.set_level(logging.INFO, "custom_components.misskey")
    await misskey.go_down()
    upgrades = misskey.streams.upgrades
    listener = mock_config_entry.runtime_data.listener
    # Several tries fail while it is down; they make one warning.
    tries = listener.reconnects
    await until(lambda: listener.reconnects >= tries + 5)
    assert misskey.streams.upgrades == upgrades  # none reached it while down
    await misskey.come_back()
    await until(lambda: mock_config_entry.runtime_data.listener.connected)
    note = await post_as(as_bob, text="@alice back")
    await mentions.wait(1)

    records = [
        r for r in caplog.records if r.name.startswith("custom_components.misskey")
    ]
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "Lost the connection" in warnings[0].getMessage()
    assert sum("again" in r.getMessage() for r in records) == 1
    assert not any(r.exc_info for r in caplog.records)
    assert mock_config_entry.data["i"] not in caplog.text
    assert mentions.note_ids() == [note["id"]]


async def test_unread_notifications(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Unread notifications count up live and drop to 0 when read."""
    await post_as(as_bob, text="@alice before")
    await set_up(hass, misskey, mock_config_entry)
    unread = entity_id(hass, mock_config_entry, "sensor", "unread_notifications")
    assert hass.states.get(unread).state == "1"

    await post_as(as_bob, text="@alice one")
    await post_as(as_bob, text="@alice two")
    await until(lambda: hass.states.get(unread).state == "3")

    owner = MisskeyClient(
        async_get_clientsession(hass), misskey.url, misskey.user.native_token
    )
    await owner.request("notifications/mark-all-as-read", authenticated=True)
    await until(lambda: hass.states.get(unread).state == "0")


async def test_listening_off(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
) -> None:
    """The options flow turns listening off: no connection, no event entities."""
    await set_up(hass, misskey, mock_config_entry)
    mentions = entity_id(hass, mock_config_entry, "event", "mentions")

    result = await hass.config_entries.options.async_init(mock_config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_LISTEN: False, CONF_CATCH_UP_WINDOW: 30}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The form keeps the other options as they were.
    assert mock_config_entry.options == {
        CONF_DEFAULT_VISIBILITY: "home",
        CONF_DEFAULT_LOCAL_ONLY: False,
        CONF_LISTEN: False,
        CONF_CATCH_UP_WINDOW: 30,
    }
    await hass.async_block_till_done()

    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert not misskey.streams.joined(misskey.user)
    assert er.async_get(hass).async_get(mentions) is None
    assert hass.states.get(mentions) is None
    # The unread count still comes from the account.
    unread = entity_id(hass, mock_config_entry, "sensor", "unread_notifications")
    assert hass.states.get(unread).state == "0"


async def test_old_account_hears_live_but_does_not_catch_up(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    legacy_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Channel main needs only read:account: events work before re-authorization."""
    await set_up(hass, misskey, legacy_config_entry)
    mentions = Events(hass, entity_id(hass, legacy_config_entry, "event", "mentions"))
    note = await post_as(as_bob, text="@alice hi")
    await mentions.wait(1)
    assert mentions.note_ids() == [note["id"]]
    assert not misskey.calls("i/notifications")
    assert legacy_config_entry.runtime_data.listener.diagnostics()["catch_up"] is False


async def test_waits_until_home_assistant_started(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """At start-up, nothing is delivered before automations listen; then it all is."""
    hass.set_state(CoreState.starting)
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    # Everything the set-up started has run: the listener has not.
    assert not listener_tasks(hass)
    assert not misskey.streams.upgrades

    hass.set_state(CoreState.running)
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
    assert listener_tasks(hass)
    await misskey.streams.wait_joined(misskey.user)
    note = await post_as(as_bob, text="@alice hello")
    await mentions.wait(1)
    assert mentions.note_ids() == [note["id"]]


async def test_refused_upgrade_without_notifications_permission(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    legacy_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without WebSockets and without read:notifications nothing can be heard: it says so."""
    misskey.streams.refuse_status = 404
    legacy_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(legacy_config_entry.entry_id)
    await hass.async_block_till_done()
    listener = legacy_config_entry.runtime_data.listener
    await until(lambda: listener.refused_status == 404)
    assert listener.diagnostics()["mode"] == "refused"
    assert not misskey.calls("i/notifications")
    assert "has not allowed reading notifications" in caplog.text
    streaming = entity_id(hass, legacy_config_entry, "binary_sensor", "streaming")
    assert hass.states.get(streaming).state == STATE_OFF
    # Nothing can arrive: the event entities say so.
    mentions = entity_id(hass, legacy_config_entry, "event", "mentions")
    assert hass.states.get(mentions).state == STATE_UNAVAILABLE


async def test_server_refuses_reading_notifications(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """If Misskey refuses i/notifications after all, live events go on without catch-up."""
    app = misskey.tokens[-1]
    app.permission.remove("read:notifications")
    await set_up(hass, misskey, mock_config_entry)
    listener = mock_config_entry.runtime_data.listener
    await until(lambda: listener.connected)
    assert listener.diagnostics()["catch_up"] is False
    assert "has not allowed Home Assistant to read notifications" in caplog.text
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    note = await post_as(as_bob, text="@alice still here")
    await mentions.wait(1)
    assert mentions.note_ids() == [note["id"]]


async def test_refused_upgrade_warns_once(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Polling for hours logs one warning, not one per new try of the WebSocket."""
    misskey.streams.refuse_status = 404
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    # STREAM_RETRY_INTERVAL is 0.5 s here: the WebSocket is tried three times.
    await until(lambda: misskey.streams.upgrades >= 3)
    warnings = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("custom_components")
    ]
    assert ["does not accept WebSocket" in r.getMessage() for r in warnings] == [True]

    misskey.streams.refuse_status = None
    await until(lambda: mock_config_entry.runtime_data.listener.connected)
    back = [r for r in caplog.records if "Listening to" in r.getMessage()]
    assert [r.levelno for r in back] == [logging.INFO]


async def test_a_bug_of_ours_does_not_end_listening(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected exception is logged once with its traceback; listening goes on."""
    await set_up(hass, misskey, mock_config_entry)
    listener = mock_config_entry.runtime_data.listener
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    catch_up = listener._async_catch_up
    calls = 0

    async def broken(live_since: datetime) -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RuntimeError("a bug")
        await catch_up(live_since)

    with patch.object(listener, "_async_catch_up", broken):
        misskey.streams.drop()
        note = await post_as(as_bob, text="@alice meanwhile")
        await mentions.wait(1)
    assert mentions.note_ids() == [note["id"]]
    errors = [
        r
        for r in caplog.records
        if r.levelno >= logging.ERROR and r.name.startswith("custom_components")
    ]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert listener.running


async def test_listener_that_stops_says_so(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Were the supervising loop ever to end, the entities and the log would say so."""
    with patch(
        "custom_components.misskey.listener.MisskeyListener._async_run",
        side_effect=RuntimeError("the end"),
    ):
        mock_config_entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
        await hass.async_block_till_done()
    listener = mock_config_entry.runtime_data.listener
    await until(lambda: not listener.running)
    assert "Stopped listening to" in caplog.text
    streaming = entity_id(hass, mock_config_entry, "binary_sensor", "streaming")
    mentions = entity_id(hass, mock_config_entry, "event", "mentions")
    assert hass.states.get(streaming).state == STATE_UNAVAILABLE
    assert hass.states.get(mentions).state == STATE_UNAVAILABLE
    assert listener.diagnostics()["mode"] == "stopped"


async def test_polled_with_the_server_clock_behind(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Polled, a catch-up window of 0, Misskey's clock 2 s behind: still heard.

    Only what came before the first poll (or while polls failed) was missed;
    later notifications are delivered whatever time Misskey says they have.
    """
    misskey.streams.refuse_status = 404
    misskey.clock_skew = -2.0
    entry = without_catch_up(mock_config_entry)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    mentions = Events(hass, entity_id(hass, entry, "event", "mentions"))
    await until(lambda: len(misskey.calls("i/notifications")) >= 2)
    note = await post_as(as_bob, text="@alice made while polled")
    await mentions.wait(1)
    assert mentions.note_ids() == [note["id"]]


async def test_live_one_that_looks_missed_still_fires(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    bob: User,
) -> None:
    """A notification in the catch-up that also comes live fires once, window 0 or not.

    Made as the connection was made, it is in the catch-up's page, older by
    Misskey's clock than the reconnect (skipped, with a window of 0), and then
    comes live on the socket: that copy fires.
    """
    entry = without_catch_up(mock_config_entry)
    await set_up(hass, misskey, entry)
    mentions = Events(hass, entity_id(hass, entry, "event", "mentions"))
    loop = asyncio.get_running_loop()
    made: list[dict[str, Any]] = []
    sent: list[asyncio.Task[None]] = []

    def mention_during_the_catch_up(request: Request) -> None:
        if request.endpoint != "i/notifications" or misskey.on_request is None:
            return
        misskey.on_request = None
        # In the page this request reads, dated a second before it by
        # Misskey's clock, and sent live once it is answered.
        note = {"id": new_id(), "text": "@alice now", "visibility": "public"}
        notification = {
            "id": new_id(),
            "createdAt": now_iso(-1.0),
            "type": "mention",
            "userId": bob.id,
            "user": bob.pack(),
            "note": note,
        }
        made.append(note)
        misskey.streams.notifications[misskey.user.id].append(notification)
        sent.append(
            loop.create_task(
                misskey.streams.publish_main(
                    misskey.user.id, "notification", notification
                )
            )
        )

    misskey.on_request = mention_during_the_catch_up
    misskey.streams.drop()
    await mentions.wait(1)
    (note,) = made
    assert mentions.note_ids() == [note["id"]]

"""Sources: antennas, lists, channels, hashtags and accounts, through Home Assistant.

The form adds a source as a subentry of the account; its notes fire the
source's event entity, live on the account's one connection, caught up after
a dropped socket or a restart, never the account's own, never twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.api import MisskeyClient
from custom_components.misskey.const import (
    APP_PERMISSIONS,
    CONF_PERMISSIONS,
    DOMAIN,
    SUBENTRY_SOURCE,
)
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.config_entries import SOURCE_USER, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component

from .listening import (
    Events,
    entity_id,
    post_as,
    reconnect,
    set_up,
    until,
    without_catch_up,
)
from .misskey_server import MISSKEY, MISSKEY_13, SHARKEY, MisskeyServer, User

pytestmark = pytest.mark.usefixtures("fast_listener")


async def start_flow(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Open the form that adds a source."""
    result: dict[str, Any] = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_SOURCE), context={"source": SOURCE_USER}
    )
    return result


async def add_source(
    hass: HomeAssistant, entry: MockConfigEntry, kind: str, value: str
) -> dict[str, Any]:
    """Go through the form: the kind, then which one; return the last answer."""
    result = await start_flow(hass, entry)
    assert result["type"] is FlowResultType.FORM, result
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"kind": kind}
    )
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == kind
    answer: dict[str, Any] = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {kind: value}
    )
    return answer


def subentry(entry: MockConfigEntry, title: str) -> ConfigSubentry:
    """Return the source subentry with ``title``."""
    found = [s for s in entry.subentries.values() if s.title == title]
    assert len(found) == 1, [s.title for s in entry.subentries.values()]
    return found[0]


def source_entity(hass: HomeAssistant, entry: MockConfigEntry, title: str) -> str:
    """Return the event entity of a source."""
    sub = subentry(entry, title)
    found = er.async_get(hass).async_get_entity_id(
        "event", DOMAIN, f"{entry.unique_id}_source_{sub.subentry_id}"
    )
    assert found is not None
    return found


async def follow_source(
    hass: HomeAssistant, entry: MockConfigEntry, kind: str, value: str, title: str
) -> Events:
    """Add a source and return its events, once its place is marked."""
    result = await add_source(hass, entry, kind, value)
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["title"] == title
    await hass.async_block_till_done()
    sub = subentry(entry, title)
    listener = entry.runtime_data.listener
    await until(lambda: sub.subentry_id in listener.sources.cursors)
    return Events(hass, source_entity(hass, entry, title))


@pytest.mark.parametrize(
    ("variant", "kinds"),
    [
        (MISSKEY, ["antenna", "list", "channel", "hashtag", "account"]),
        (SHARKEY, ["antenna", "list", "channel", "hashtag", "account"]),
        (MISSKEY_13, ["antenna", "list", "hashtag", "account"]),
    ],
)
async def test_form_offers_what_the_server_has(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    kinds: list[str],
) -> None:
    """Misskey 12 has no channels: the form does not offer them."""
    await set_up(hass, misskey, mock_config_entry)
    result = await start_flow(hass, mock_config_entry)
    assert result["step_id"] == "user"
    selector = result["data_schema"].schema["kind"]
    assert selector.config["options"] == kinds


async def test_pick_lists_the_accounts_own_by_name(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    bob: User,
) -> None:
    """Antennas, lists and channels are the account's own, offered by ID, named as on Misskey."""
    hub = misskey.sources
    mine = hub.add_antenna(misskey.user, "Quakes", keywords=[["震度"]])
    hub.add_antenna(bob, "Bob's")
    followed = hub.add_channel(bob, "Trains", followers=[misskey.user])
    liked = hub.add_channel(bob, "Weather", favorites=[misskey.user])
    hub.add_channel(bob, "Other")
    await set_up(hass, misskey, mock_config_entry)

    result = await start_flow(hass, mock_config_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"kind": "antenna"}
    )
    assert result["data_schema"].schema["antenna"].config["options"] == [
        {"value": mine.id, "label": "Quakes"}
    ]
    result = await start_flow(hass, mock_config_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"kind": "channel"}
    )
    assert result["data_schema"].schema["channel"].config["options"] == [
        {"value": followed.id, "label": "Trains"},
        {"value": liked.id, "label": "Weather"},
    ]
    # No list: nothing to pick, said so.
    result = await start_flow(hass, mock_config_entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {"kind": "list"}
    )
    assert result == result | {"type": FlowResultType.ABORT, "reason": "no_list"}


async def test_same_source_twice_is_refused(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    bob: User,
) -> None:
    """A hashtag in another case or without #, or an account again, is refused."""
    await set_up(hass, misskey, mock_config_entry)
    assert (await add_source(hass, mock_config_entry, "hashtag", "#Quake"))[
        "type"
    ] is FlowResultType.CREATE_ENTRY
    again = await add_source(hass, mock_config_entry, "hashtag", "quake")
    assert again["type"] is FlowResultType.ABORT
    assert again["reason"] == "already_configured"
    host = misskey.url.removeprefix("http://")
    first = await add_source(hass, mock_config_entry, "account", f"@bob@{host}")
    assert first["type"] is FlowResultType.CREATE_ENTRY
    assert first["title"] == f"@bob@{host}"
    again = await add_source(hass, mock_config_entry, "account", "bob")
    assert again["reason"] == "already_configured"
    assert len(mock_config_entry.subentries) == 2


async def test_bad_input_is_a_form_error(
    hass: HomeAssistant, misskey: MisskeyServer, mock_config_entry: MockConfigEntry
) -> None:
    """A hashtag with spaces, or an account nobody has, is said in the form."""
    await set_up(hass, misskey, mock_config_entry)
    result = await add_source(hass, mock_config_entry, "hashtag", "two words")
    assert result["errors"] == {"hashtag": "invalid_hashtag"}
    result = await add_source(hass, mock_config_entry, "account", "@nobody")
    assert result["errors"] == {"account": "no_such_account"}
    result = await add_source(hass, mock_config_entry, "account", "@a@b@c")
    assert result["errors"] == {"account": "invalid_account"}


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY])
async def test_each_kind_fires_with_its_attributes(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    bob: User,
    as_bob: MisskeyClient,
) -> None:
    """A note in an antenna, a list, a channel, with a hashtag, by a followed account."""
    hub = misskey.sources
    antenna = hub.add_antenna(misskey.user, "Quakes", keywords=[["震度"]])
    user_list = hub.add_list(misskey.user, "Family", [bob])
    channel = hub.add_channel(bob, "Trains", followers=[misskey.user])
    hub.follow(misskey.user, bob)
    host = misskey.url.removeprefix("http://")
    await set_up(hass, misskey, mock_config_entry)
    entry = mock_config_entry
    quakes = await follow_source(hass, entry, "antenna", antenna.id, "Quakes")
    family = await follow_source(hass, entry, "list", user_list.id, "Family")
    trains = await follow_source(hass, entry, "channel", channel.id, "Trains")
    tag = await follow_source(hass, entry, "hashtag", "#Weather", "#Weather")
    account = await follow_source(
        hass, entry, "account", f"@bob@{host}", f"@bob@{host}"
    )

    note = await post_as(as_bob, text="震度3 #weather", cw="quake", visibility="home")
    in_channel = await post_as(as_bob, text="Delayed", channelId=channel.id)
    await quakes.wait(1)
    await family.wait(1)
    await tag.wait(1)
    await account.wait(1)
    await trains.wait(1)

    event_type, attributes = quakes.fired[0]
    assert event_type == "note"
    attributes = {
        key: value
        for key, value in attributes.items()
        if key not in ("friendly_name", "event_types")
    }
    assert attributes == {
        "note_id": note["id"],
        "note_url": f"{misskey.url}/notes/{note['id']}",
        "text": "震度3 #weather",
        "text_excerpt": "震度3 #weather",
        "cw": "quake",
        "visibility": "home",
        "user": f"@bob@{host}",
        "user_id": bob.id,
        "created_at": note["createdAt"],
        "files": [],
        "reply_to": None,
        "renote_of": None,
        "tags": ["weather"],
        "delivery": "streaming",
    }
    # The home timeline brings bob's channel note too (the account follows
    # the channel): not an account source's, as users/notes leaves it out.
    later = await post_as(as_bob, text="later")
    await account.wait(2)
    assert family.note_ids() == [note["id"], later["id"]]
    assert tag.note_ids() == [note["id"]]
    # Channel notes are on no list, and not on the user's timeline.
    assert trains.note_ids() == [in_channel["id"]]
    assert account.note_ids() == [note["id"], later["id"]]
    assert account.fired[0][1]["delivery"] == "home_timeline"
    # One connection for all.
    assert misskey.streams.upgrades == 1


async def test_account_not_followed_is_polled(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    carol: User,
    as_carol: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Nobody follows carol: her notes are asked for now and then, each once."""
    await set_up(hass, misskey, mock_config_entry)
    with patch(
        "custom_components.misskey.source_listener.SOURCE_POLL_INTERVAL",
        timedelta(seconds=0.05),
    ):
        await reconnect(misskey, mock_config_entry)
        events = await follow_source(
            hass, mock_config_entry, "account", "@carol", subentry_title(misskey)
        )
        # A poll that fails is said once; the next one catches up.
        misskey.fail_next("users/notes", "server_error", count=2)
        first = await post_as(as_carol, text="one")
        second = await post_as(as_carol, text="two")
        await events.wait(2)
        await until(lambda: len(misskey.calls("users/notes")) > 6)
    assert events.note_ids() == [first["id"], second["id"]]
    assert events.fired[0][1]["delivery"] == "polling"
    assert [
        r.levelname
        for r in caplog.records
        if "Could not catch up on @carol" in r.message
    ] == ["WARNING", "DEBUG"]
    assert "Caught up on @carol" in caplog.text


def subentry_title(misskey: MisskeyServer) -> str:
    """Return carol's name as the form names her."""
    return f"@carol@{misskey.url.removeprefix('http://')}"


async def test_own_notes_never_fire(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
) -> None:
    """An automation that posts with the hashtag it follows does not hear itself."""
    await set_up(hass, misskey, mock_config_entry)
    tag = await follow_source(hass, mock_config_entry, "hashtag", "alarm", "#alarm")
    await hass.services.async_call(
        DOMAIN,
        "post",
        {"config_entry_id": mock_config_entry.entry_id, "text": "#alarm answered"},
        blocking=True,
    )
    theirs = await post_as(as_bob, text="#alarm ring")
    await tag.wait(1)
    # Caught up after a reconnect, still not.
    await reconnect(misskey, mock_config_entry)
    later = await post_as(as_bob, text="#alarm again")
    await tag.wait(2)
    assert tag.note_ids() == [theirs["id"], later["id"]]


async def test_too_old_to_catch_up_but_heard_live_fires(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A note in the catch-up that is too old by Misskey's clock, but came live too: fires once.

    Misskey's clock 2 s behind and a catch-up window of 0: a note made as the
    connection came back is older than the connection by the server's time,
    so the catch-up skips it; its live copy still fires, as for notifications.
    """
    misskey.clock_skew = -2.0
    entry = without_catch_up(mock_config_entry)
    await set_up(hass, misskey, entry)
    tag = await follow_source(hass, entry, "hashtag", "quake", "#quake")
    searches = len(misskey.calls("notes/search-by-tag"))
    # The catch-up is answered after the note is made, and so holds it.
    misskey.fail_next("notes/search-by-tag", "slow", delay=0.5)
    misskey.streams.drop()
    await until(lambda: len(misskey.calls("notes/search-by-tag")) > searches)
    note = await post_as(as_bob, text="quake #quake")
    await tag.wait(1)
    await until(lambda: entry.runtime_data.listener.sources.skipped_old == 1)
    assert tag.note_ids() == [note["id"]]


async def test_missed_while_dropped_arrive_once(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Notes made while the socket was down arrive after reconnecting, once, oldest first."""
    antenna = misskey.sources.add_antenna(misskey.user, "Quakes", keywords=[["quake"]])
    await set_up(hass, misskey, mock_config_entry)
    quakes = await follow_source(
        hass, mock_config_entry, "antenna", antenna.id, "Quakes"
    )
    tag = await follow_source(hass, mock_config_entry, "hashtag", "quake", "#quake")
    first = await post_as(as_bob, text="quake #quake one")
    await quakes.wait(1)
    await tag.wait(1)

    misskey.streams.hold()
    misskey.streams.drop()
    listener = mock_config_entry.runtime_data.listener
    await until(lambda: not listener.connected)
    missed = [await post_as(as_bob, text=f"quake #quake missed {n}") for n in range(3)]
    misskey.streams.release()
    await misskey.streams.wait_joined(misskey.user)
    live = await post_as(as_bob, text="quake #quake live")
    await quakes.wait(5)
    await tag.wait(5)
    expected = [first["id"], *(n["id"] for n in missed), live["id"]]
    assert quakes.note_ids() == expected
    assert tag.note_ids() == expected


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
async def test_missed_while_stopped_arrive_once(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
) -> None:
    """After a restart, each source catches up since its last note, once."""
    user_list = misskey.sources.add_list(misskey.user, "Family", [bob])
    await set_up(hass, misskey, mock_config_entry)
    family = await follow_source(
        hass, mock_config_entry, "list", user_list.id, "Family"
    )
    before = await post_as(as_bob, text="before")
    await family.wait(1)

    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    while_away = [await post_as(as_bob, text=f"away {n}") for n in range(2)]
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await family.wait(3)
    later = await post_as(as_bob, text="later")
    await family.wait(4)
    assert family.note_ids() == [
        before["id"],
        *(n["id"] for n in while_away),
        later["id"],
    ]


async def test_adding_and_removing_keeps_the_connection(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A source joins and leaves its channel on the open socket; the others hear on."""
    await set_up(hass, misskey, mock_config_entry)
    one = await follow_source(hass, mock_config_entry, "hashtag", "one", "#one")
    first = await post_as(as_bob, text="#one first")
    await one.wait(1)
    two = await follow_source(hass, mock_config_entry, "hashtag", "two", "#two")
    both = await post_as(as_bob, text="#one #two both")
    await one.wait(2)
    await two.wait(1)

    entity_two = source_entity(hass, mock_config_entry, "#two")
    hass.config_entries.async_remove_subentry(
        mock_config_entry, subentry(mock_config_entry, "#two").subentry_id
    )
    await hass.async_block_till_done()
    (connection,) = misskey.streams.joined(misskey.user)
    await until(lambda: len(connection.channels) == 1)
    after = await post_as(as_bob, text="#one #two after")
    await one.wait(3)

    assert one.note_ids() == [first["id"], both["id"], after["id"]]
    assert two.note_ids() == [both["id"]]
    assert hass.states.get(entity_two) is None
    assert misskey.streams.upgrades == 1
    assert mock_config_entry.state.recoverable
    assert [m["type"] for m in connection.received] == [
        "connect",
        "connect",
        "connect",
        "disconnect",
    ]


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13])
async def test_deleted_antenna_is_a_repair_that_removes_it(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """An antenna deleted on Misskey: a repair issue, whose fix removes the source.

    Sharkey and Misskey 12 still answer the join of a deleted antenna;
    its timeline tells.
    """
    assert await async_setup_component(hass, "repairs", {})
    antenna = misskey.sources.add_antenna(misskey.user, "Quakes", keywords=[["quake"]])
    await set_up(hass, misskey, mock_config_entry)
    await follow_source(hass, mock_config_entry, "antenna", antenna.id, "Quakes")
    tag = await follow_source(hass, mock_config_entry, "hashtag", "quake", "#quake")
    sub = subentry(mock_config_entry, "Quakes")
    del misskey.sources.antennas[antenna.id]

    misskey.streams.drop()
    issue_id = f"source_gone_{mock_config_entry.entry_id}_{sub.subentry_id}"
    registry = ir.async_get(hass)
    await until(lambda: registry.async_get_issue(DOMAIN, issue_id) is not None)
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "source_gone"
    assert issue.translation_placeholders == {
        "source": "Quakes",
        "kind": "antenna",
        "account": mock_config_entry.title,
    }
    # Nothing can come from it any more.
    gone = source_entity(hass, mock_config_entry, "Quakes")
    await until(lambda: hass.states.get(gone).state == "unavailable")
    # Asked once, not at every reconnect.
    calls = len(misskey.calls("antennas/notes"))
    await reconnect(misskey, mock_config_entry)
    note = await post_as(as_bob, text="quake #quake")
    await tag.wait(1)
    assert tag.note_ids() == [note["id"]]
    assert len(misskey.calls("antennas/notes")) == calls

    manager = repairs_flow_manager(hass)
    assert manager is not None
    result = await manager.async_init(DOMAIN, data={"issue_id": issue_id})
    assert result["step_id"] == "confirm"
    result = await manager.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert sub.subentry_id not in mock_config_entry.subentries
    assert registry.async_get_issue(DOMAIN, issue_id) is None
    assert hass.states.get(gone) is None
    listener = mock_config_entry.runtime_data.listener
    await until(lambda: listener.connected)


async def test_sources_are_polled_without_websockets(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """Behind a proxy that refuses WebSockets, sources are asked for now and then."""
    await set_up(hass, misskey, mock_config_entry)
    tag = await follow_source(hass, mock_config_entry, "hashtag", "quake", "#quake")
    listener = mock_config_entry.runtime_data.listener
    with patch(
        "custom_components.misskey.listener.SOURCE_POLL_INTERVAL",
        timedelta(seconds=0.05),
    ):
        misskey.streams.refuse_status = 404
        misskey.streams.drop()
        await until(lambda: listener.mode == "polling")
        notes = [await post_as(as_bob, text=f"#quake {n}") for n in range(2)]
        await tag.wait(2)
        await until(lambda: len(misskey.calls("notes/search-by-tag")) > 3)
    assert tag.note_ids() == [n["id"] for n in notes]


async def test_a_failing_timeline_delays_only_its_source(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A source whose catch-up fails is logged once; the others and main catch up."""
    antenna = misskey.sources.add_antenna(misskey.user, "Quakes", keywords=[["quake"]])
    await set_up(hass, misskey, mock_config_entry)
    quakes = await follow_source(
        hass, mock_config_entry, "antenna", antenna.id, "Quakes"
    )
    tag = await follow_source(hass, mock_config_entry, "hashtag", "quake", "#quake")
    listener = mock_config_entry.runtime_data.listener

    misskey.fail_next("notes/search-by-tag", "server_error", count=1)
    misskey.streams.hold()
    misskey.streams.drop()
    await until(lambda: not listener.connected)
    missed = await post_as(as_bob, text="quake #quake missed")
    misskey.streams.release()
    await until(lambda: listener.connected)
    await quakes.wait(1)
    await until(lambda: "Could not catch up on #quake" in caplog.text)
    assert quakes.note_ids() == [missed["id"]]
    assert tag.note_ids() == []
    assert [
        r.levelname
        for r in caplog.records
        if "Could not catch up on #quake" in r.message
    ] == ["WARNING"]
    # The next connection catches it up, once.
    misskey.streams.drop()
    await until(lambda: not listener.connected)
    await until(lambda: listener.connected)
    await tag.wait(1)
    live = await post_as(as_bob, text="quake #quake live")
    await tag.wait(2)
    assert tag.note_ids() == [missed["id"], live["id"]]
    assert quakes.note_ids() == [missed["id"], live["id"]]


async def test_no_sources_while_not_listening(
    hass: HomeAssistant, misskey: MisskeyServer, mock_config_entry: MockConfigEntry
) -> None:
    """An account that does not listen cannot hear sources: the form says so."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, options={**mock_config_entry.options, "listen": False}
    )
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    result = await start_flow(hass, mock_config_entry)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_listening"


async def test_removed_source_is_forgotten(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    hass_storage: dict[str, Any],
) -> None:
    """The Store keeps the last note of each source, and forgets a removed one."""
    await set_up(hass, misskey, mock_config_entry)
    tag = await follow_source(hass, mock_config_entry, "hashtag", "quake", "#quake")
    note = await post_as(as_bob, text="#quake")
    await tag.wait(1)
    sub = subentry(mock_config_entry, "#quake")
    key = f"{DOMAIN}.{mock_config_entry.entry_id}"
    await until(
        lambda: (
            hass_storage.get(key, {}).get("data", {}).get("sources")
            == {sub.subentry_id: note["id"]}
        )
    )
    hass.config_entries.async_remove_subentry(mock_config_entry, sub.subentry_id)
    await hass.async_block_till_done()
    await until(lambda: hass_storage[key]["data"]["sources"] == {})

    # Removed while the account was not loaded: forgotten at the next start.
    again = await follow_source(hass, mock_config_entry, "hashtag", "again", "#again")
    del again
    sub = subentry(mock_config_entry, "#again")
    await until(lambda: sub.subentry_id in hass_storage[key]["data"]["sources"])
    assert await hass.config_entries.async_unload(mock_config_entry.entry_id)
    hass.config_entries.async_remove_subentry(mock_config_entry, sub.subentry_id)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    await until(lambda: hass_storage[key]["data"]["sources"] == {})


async def test_channels_need_read_channels(
    hass: HomeAssistant, misskey: MisskeyServer, mock_config_entry: MockConfigEntry
) -> None:
    """An account set up before read:channels was asked: no channels, and the repair asks."""
    granted = [p for p in APP_PERMISSIONS if p != "read:channels"]
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        mock_config_entry, data={**mock_config_entry.data, CONF_PERMISSIONS: granted}
    )
    await set_up_added(hass, misskey, mock_config_entry)
    result = await start_flow(hass, mock_config_entry)
    assert result["data_schema"].schema["kind"].config["options"] == [
        "antenna",
        "list",
        "hashtag",
        "account",
    ]
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"missing_permissions_{mock_config_entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders["permissions"] == "read:channels"
    assert misskey.calls("channels/followed") == []


async def set_up_added(
    hass: HomeAssistant, misskey: MisskeyServer, entry: MockConfigEntry
) -> None:
    """Set up an entry already added to Home Assistant, and wait until it listens."""
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await misskey.streams.wait_joined(misskey.user)
    await until(lambda: entry.runtime_data.listener.connected)


async def test_account_events_do_not_wait_for_sources(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A source slow to catch up delays only its own notes, which keep their order."""
    await set_up(hass, misskey, mock_config_entry)
    tag = await follow_source(hass, mock_config_entry, "hashtag", "quake", "#quake")
    mentions = Events(hass, entity_id(hass, mock_config_entry, "event", "mentions"))
    listener = mock_config_entry.runtime_data.listener

    misskey.streams.hold()
    misskey.streams.drop()
    await until(lambda: not listener.connected)
    missed = await post_as(as_bob, text="#quake missed")
    # Its timeline asks to wait: the catch-up waits it out.
    misskey.fail_next("notes/search-by-tag", "rate_limit", retry_after=4)
    misskey.streams.release()
    await until(lambda: listener.connected)
    mention = await post_as(as_bob, text="@alice are you there?")
    await mentions.wait(1)
    live = await post_as(as_bob, text="#quake live")
    assert mentions.note_ids() == [mention["id"]]
    assert tag.note_ids() == []
    await tag.wait(2)
    assert tag.note_ids() == [missed["id"], live["id"]]

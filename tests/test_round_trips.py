"""What the integration reports, its actions take back: accounts and reactions.

An automation compares an event's ``user`` with ``misskey.get_account``'s
``acct``, mutes or answers the user an event names, and reacts with the
reaction it heard. Each of these failed once on a local account or a custom
emoji.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.api import MisskeyClient
from custom_components.misskey.const import DOMAIN
from homeassistant.components.notify import ATTR_MESSAGE, ATTR_TARGET
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util import slugify

from .listening import Events, entity_id, post_as, set_up
from .misskey_server import (
    CHERRYPICK,
    MISSKEY,
    MISSKEY_13,
    SHARKEY,
    MisskeyServer,
    User,
)

pytestmark = pytest.mark.usefixtures("fast_listener")


async def act(hass: HomeAssistant, service: str, **data: Any) -> Any:
    """Call a misskey action; return its response if it has one."""
    return await hass.services.async_call(
        DOMAIN,
        service,
        data,
        blocking=True,
        return_response=service in ("get_account", "post"),
    )


async def heard_user(
    hass: HomeAssistant, entry: MockConfigEntry, client: MisskeyClient
) -> str:
    """Have ``client``'s user mention the account; return the event's ``user``."""
    mentions = Events(hass, entity_id(hass, entry, "event", "mentions"))
    await post_as(client, text="@alice hello")
    await mentions.wait(1)
    user: str = mentions.fired[0][1]["user"]
    return user


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13, CHERRYPICK])
async def test_local_account_round_trip(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
) -> None:
    """The event's user is get_account's acct, and every action takes it back."""
    await set_up(hass, misskey, mock_config_entry)
    host = misskey.url.removeprefix("http://")
    user = await heard_user(hass, mock_config_entry, as_bob)
    assert user == f"@bob@{host}"

    account = await act(hass, "get_account", account=user)
    assert (account["acct"], account["host"], account["id"]) == (user, host, bob.id)
    # The account itself is spelled the same way, as its entry's title is.
    own = await act(hass, "get_account")
    assert own["acct"] == mock_config_entry.title == f"@alice@{host}"

    await act(hass, "mute_account", account=account["acct"])
    assert (misskey.user.id, bob.id) in misskey.mutes
    await act(hass, "unmute_account", account=user)
    assert (misskey.user.id, bob.id) not in misskey.mutes

    note = await act(hass, "post", text="Thanks!", recipients=user)
    assert misskey.notes[note["id"]]["visibleUserIds"] == [bob.id]
    await hass.services.async_call(
        "notify",
        f"{DOMAIN}_{slugify(mock_config_entry.title)}",
        {ATTR_MESSAGE: "Thanks again", ATTR_TARGET: [account["acct"]]},
        blocking=True,
    )
    last = list(misskey.notes.values())[-1]
    assert (last["text"], last["visibleUserIds"]) == ("Thanks again", [bob.id])


async def test_remote_account_round_trip(
    hass: HomeAssistant, misskey: MisskeyServer, mock_config_entry: MockConfigEntry
) -> None:
    """A remote user, with the dots and hyphens other servers allow in a name."""
    carol = misskey.add_user("carol-x.y", host="remote.example")
    await set_up(hass, misskey, mock_config_entry)
    as_carol = MisskeyClient(
        async_get_clientsession(hass), misskey.url, carol.native_token
    )
    user = await heard_user(hass, mock_config_entry, as_carol)
    assert user == "@carol-x.y@remote.example"

    account = await act(hass, "get_account", account=user)
    assert (account["acct"], account["host"], account["id"]) == (
        user,
        "remote.example",
        carol.id,
    )
    await act(hass, "mute_account", account=user)
    assert (misskey.user.id, carol.id) in misskey.mutes


@pytest.mark.parametrize("variant", [MISSKEY, SHARKEY, MISSKEY_13, CHERRYPICK])
async def test_react_with_the_reaction_heard(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
    bob: User,
) -> None:
    """A custom emoji is reported as :name@.:, and misskey.react takes it back."""
    await set_up(hass, misskey, mock_config_entry)
    activity = Events(
        hass, entity_id(hass, mock_config_entry, "event", "note_activity")
    )
    own = await act(hass, "post", text="Garage open")
    await as_bob.request(
        "notes/reactions/create",
        {"noteId": own["id"], "reaction": ":blobcat:"},
        authenticated=True,
    )
    await activity.wait(1)
    reaction = activity.fired[0][1]["reaction"]
    assert reaction == ":blobcat@.:"

    bobs = await post_as(as_bob, text="Look")
    await act(hass, "react", note=bobs["id"], reaction=reaction)
    # Sent as Misskey's own client sends it, which every version takes.
    assert misskey.calls("notes/reactions/create")[-1].body["reaction"] == ":blobcat:"
    assert misskey.reactions[(bobs["id"], misskey.user.id)] == ":blobcat@.:"


async def test_react_with_a_remote_custom_emoji(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    as_bob: MisskeyClient,
) -> None:
    """A remote user's :name@host: reacts with this server's emoji of that name."""
    await set_up(hass, misskey, mock_config_entry)
    bobs = await post_as(as_bob, text="Look")
    await act(hass, "react", note=bobs["id"], reaction=":blobcat@remote.example:")
    assert misskey.calls("notes/reactions/create")[-1].body["reaction"] == ":blobcat:"

    with pytest.raises(ServiceValidationError) as err:
        await act(hass, "react", note=bobs["id"], reaction=":party@remote.example:")
    assert err.value.translation_key == "unknown_remote_custom_emoji"
    assert err.value.translation_placeholders == {
        "reaction": ":party@remote.example:",
        "name": ":party:",
        "host": "remote.example",
    }

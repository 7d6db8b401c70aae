"""Tests for the account actions, against the test server over HTTP."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import (
    DOMAIN,
    MAX_MUTE_DURATION,
    SERVICE_GET_ACCOUNT,
    SERVICE_MUTE_ACCOUNT,
    SERVICE_UNMUTE_ACCOUNT,
    SERVICE_UPDATE_PROFILE,
)
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import ATTR_CONFIG_ENTRY_ID, STATE_OFF, STATE_ON, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import entity_registry as er
import homeassistant.util.dt as dt_util

from .conftest import HANG_TIMEOUT
from .misskey_server import (
    CHERRYPICK,
    FIREFISH,
    MISSKEY_13,
    SHARKEY,
    MisskeyServer,
    User,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(1000)


async def call(
    hass: HomeAssistant,
    service: str,
    entry: MockConfigEntry | None = None,
    *,
    response: bool = False,
    **data: Any,
) -> Any:
    """Call a misskey action; return its response when asked for."""
    if entry is not None:
        data[ATTR_CONFIG_ENTRY_ID] = entry.entry_id
    return await hass.services.async_call(
        DOMAIN, service, data, blocking=True, return_response=response
    )


def sent(misskey: MisskeyServer, endpoint: str) -> dict[str, Any]:
    """Return the parameters the endpoint received last, without the credential."""
    body = dict(misskey.calls(endpoint)[-1].body)
    body.pop("i")
    return body


def no_reauth(hass: HomeAssistant) -> bool:
    """Return whether no re-authentication was started."""
    return not [
        flow
        for flow in hass.config_entries.flow.async_progress()
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


@pytest.fixture
def bob(misskey: MisskeyServer) -> User:
    """Return another local user, with a profile to look at."""
    return misskey.add_user(
        "bob",
        name="Bob",
        description="Hello",
        is_cat=True,
        followers_count=3,
        notes_count=12,
        fields=[{"name": "Site", "value": "https://bob.example"}],
    )


# --- get_account -----------------------------------------------------------------


async def test_get_account(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
) -> None:
    """@user finds a local account; the response has the profile and the relation."""
    misskey.mutes[(misskey.user.id, bob.id)] = None
    response = await call(
        hass, SERVICE_GET_ACCOUNT, init_integration, response=True, account="@bob"
    )
    assert sent(misskey, "users/show") == {"username": "bob", "host": None}
    host = misskey.url.removeprefix("http://")
    assert response == {
        "id": bob.id,
        "username": "bob",
        # As events spell him: this server's host for a local account.
        "host": host,
        "acct": f"@bob@{host}",
        "name": "Bob",
        "description": "Hello",
        "url": f"{misskey.url}/@bob",
        "avatar_url": f"https://example.invalid/avatar/{bob.id}.png",
        "banner_url": None,
        "location": None,
        "birthday": None,
        "lang": None,
        "followers_count": 3,
        "following_count": 0,
        "notes_count": 12,
        "is_bot": False,
        "is_cat": True,
        "is_locked": False,
        "is_silenced": False,
        "is_suspended": False,
        "moved_to": None,
        "created_at": "2024-01-01T00:00:00.000Z",
        "fields": [{"name": "Site", "value": "https://bob.example"}],
        "is_following": False,
        "is_followed": False,
        "is_muted": True,
        "is_blocking": False,
    }


async def test_get_account_remote_and_own_host(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """@user@host asks for that host; this server's own host is a local account."""
    carol = misskey.add_user("carol", host="remote.example")
    response = await call(
        hass,
        SERVICE_GET_ACCOUNT,
        response=True,
        account="@Carol@remote.example",
    )
    assert sent(misskey, "users/show") == {
        "username": "Carol",
        "host": "remote.example",
    }
    assert (response["id"], response["acct"]) == (carol.id, "@carol@remote.example")
    # A remote account's page is on its own server; Misskey does not say here.
    assert response["url"] is None

    own = misskey.url.removeprefix("http://")
    response = await call(
        hass, SERVICE_GET_ACCOUNT, response=True, account=f"alice@{own}"
    )
    assert sent(misskey, "users/show") == {"username": "alice", "host": None}
    assert response["id"] == misskey.user.id


async def test_get_own_account(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Without an account, the account itself, by its ID."""
    response = await call(hass, SERVICE_GET_ACCOUNT, response=True)
    assert sent(misskey, "users/show") == {"userId": misskey.user.id}
    assert response["username"] == "alice"
    assert response["is_muted"] is None


@pytest.mark.parametrize("variant", ["misskey", SHARKEY, MISSKEY_13])
async def test_get_unknown_account(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    variant: str,
) -> None:
    """404 (2026, Sharkey) or 400 (Misskey 12) NO_SUCH_USER: a clear error."""
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass, SERVICE_GET_ACCOUNT, response=True, account="@nobody@remote.example"
        )
    assert err.value.translation_key == "account_not_found"
    assert err.value.translation_placeholders == {"account": "@nobody@remote.example"}
    assert str(err.value) == (
        "The server does not know the account @nobody@remote.example"
    )
    (request,) = misskey.calls("users/show")
    assert request.body["username"] == "nobody"


async def test_get_account_errors(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Not an account name: refused unsent. A failed remote lookup says why."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_GET_ACCOUNT, response=True, account="not an account!")
    assert err.value.translation_key == "invalid_account"
    assert not misskey.calls("users/show")

    misskey.fail_next(
        "users/show",
        "json",
        status=500,
        body={
            "error": {
                "message": "Failed to resolve remote user.",
                "code": "FAILED_TO_RESOLVE_REMOTE_USER",
                "id": "ef7b9be4-9cba-4e6f-ab41-90ed171c7d3c",
                "kind": "server",
            }
        },
    )
    with pytest.raises(HomeAssistantError) as err:
        await call(
            hass, SERVICE_GET_ACCOUNT, response=True, account="@dan@gone.example"
        )
    assert err.value.translation_key == "account_lookup_failed"
    assert (
        "FAILED_TO_RESOLVE_REMOTE_USER" in err.value.translation_placeholders["error"]
    )


# --- mute_account / unmute_account ---------------------------------------------------


@pytest.mark.parametrize("variant", ["misskey", SHARKEY, CHERRYPICK])
async def test_mute_for_a_time_and_unmute(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The duration becomes expiresAt in epoch ms; unmute deletes the mute."""
    await call(
        hass,
        SERVICE_MUTE_ACCOUNT,
        init_integration,
        account="@bob",
        duration={"hours": 2},
    )
    expected = int((dt_util.utcnow() + timedelta(hours=2)).timestamp() * 1000)
    assert sent(misskey, "mute/create") == {"userId": bob.id, "expiresAt": expected}
    assert misskey.mutes == {(misskey.user.id, bob.id): expected}

    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob")
    assert err.value.translation_key == "already_muted"
    assert err.value.translation_placeholders == {"account": "@bob"}

    await call(hass, SERVICE_UNMUTE_ACCOUNT, account="@bob")
    assert sent(misskey, "mute/delete") == {"userId": bob.id}
    assert misskey.mutes == {}
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_UNMUTE_ACCOUNT, account="@bob")
    assert err.value.translation_key == "not_muted"


async def test_mute_for_good(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
) -> None:
    """Without a duration, no expiresAt: the mute lasts."""
    await call(hass, SERVICE_MUTE_ACCOUNT, account="bob")
    assert sent(misskey, "mute/create") == {"userId": bob.id}
    assert misskey.mutes == {(misskey.user.id, bob.id): None}


async def test_mute_refusals_before_sending(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Itself, an unknown account or a zero duration: nothing is muted."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@alice")
    assert err.value.translation_key == "mute_self"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@nobody")
    assert err.value.translation_key == "account_not_found"
    with pytest.raises(Exception, match="duration"):
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@alice", duration=0)
    assert not misskey.calls("mute/create")


@pytest.mark.parametrize(
    "duration",
    [
        {"days": 3650, "seconds": 1},
        {"days": 100_000},
        {"days": 10**9},  # beyond what a timedelta holds
        {"hours": 1e300},
        10**20,
        float("inf"),
        "99999999:00:00",
    ],
)
async def test_mute_longer_than_ten_years_is_refused(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
    duration: Any,
) -> None:
    """A mute over 10 years is refused with a translated message, before any request."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob", duration=duration)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == "mute_duration_too_long"
    assert err.value.translation_placeholders == {"days": "3650"}
    assert not misskey.calls("users/show")
    assert not misskey.calls("mute/create")
    assert not misskey.mutes


async def test_mute_for_ten_years(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
    freezer: FrozenDateTimeFactory,
) -> None:
    """10 years is the longest mute, and is sent."""
    assert timedelta(days=3650) == MAX_MUTE_DURATION
    await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob", duration={"days": 3650})
    expected = int((dt_util.utcnow() + timedelta(days=3650)).timestamp() * 1000)
    assert sent(misskey, "mute/create") == {"userId": bob.id, "expiresAt": expected}


@pytest.mark.parametrize("variant", [MISSKEY_13])
async def test_old_misskey_mutes_only_for_good(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
) -> None:
    """Misskey 12.26 would ignore expiresAt and mute for good: refused unsent."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob", duration=60)
    assert err.value.translation_key == "mute_duration_not_supported"
    assert err.value.translation_placeholders == {"version": "12.26.0"}
    assert not misskey.calls("users/show")
    assert not misskey.mutes

    await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob")
    assert misskey.mutes == {(misskey.user.id, bob.id): None}


async def test_mute_without_permission(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    legacy_config_entry: MockConfigEntry,
    bob: User,
) -> None:
    """An account set up before write:mutes was asked for: refused, naming it."""
    legacy_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(legacy_config_entry.entry_id)
    await hass.async_block_till_done()
    for service in (SERVICE_MUTE_ACCOUNT, SERVICE_UNMUTE_ACCOUNT):
        with pytest.raises(ServiceValidationError) as err:
            await call(hass, service, account="@bob")
        assert err.value.translation_key == "missing_permission"
        assert err.value.translation_placeholders == {
            "account": legacy_config_entry.title,
            "permission": "write:mutes",
        }
    assert not misskey.calls("users/show")


@pytest.mark.parametrize("variant", ["misskey", MISSKEY_13])
async def test_server_refuses_permission(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
    variant: str,
) -> None:
    """403 (400 on Misskey 12) PERMISSION_DENIED names the permission; no reauth."""
    misskey.tokens[-1].permission.remove("write:mutes")
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob")
    assert err.value.translation_key == "missing_permission"
    assert err.value.translation_placeholders["permission"] == "write:mutes"
    assert not misskey.mutes
    await hass.async_block_till_done()
    assert no_reauth(hass)


async def test_mute_rate_limited(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
) -> None:
    """mute/create allows 20 an hour: a short wait is waited out, a long one said."""
    misskey.fail_next("mute/create", "rate_limit", retry_after=0.05)
    await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob")
    assert len(misskey.calls("mute/create")) == 2
    assert (misskey.user.id, bob.id) in misskey.mutes

    misskey.mutes.clear()
    misskey.limit("mute/create", 0, 3600)
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob")
    assert err.value.translation_key == "action_rate_limited"
    assert not misskey.mutes


async def test_authentication_failure_starts_reauth(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A revoked credential is the one case that asks to sign in again."""
    misskey.revoke()
    with pytest.raises(HomeAssistantError) as err:
        await call(hass, SERVICE_UNMUTE_ACCOUNT, account="@alice")
    assert err.value.translation_key == "authentication_failed"
    await hass.async_block_till_done()
    assert not no_reauth(hass)


# --- update_profile -------------------------------------------------------------------


def entity_state(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str:
    """Return the state of one of the account's binary sensors."""
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.BINARY_SENSOR, DOMAIN, f"{entry.unique_id}_{key}"
    )
    assert entity_id is not None
    state = hass.states.get(entity_id)
    assert state is not None
    return state.state


@pytest.mark.parametrize("variant", ["misskey", SHARKEY, CHERRYPICK])
async def test_update_profile(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Every part reaches i/update; the entities show the new profile at once."""
    assert entity_state(hass, init_integration, "cat") == STATE_OFF
    calls = len(misskey.calls("i"))
    response = await call(
        hass,
        SERVICE_UPDATE_PROFILE,
        init_integration,
        response=True,
        name="  Home Assistant ",
        description="Posts what the house does.",
        location="Kitchen",
        birthday="2000-01-02",
        lang="ja-JP",
        is_locked=True,
        is_bot=True,
        is_cat=True,
        fields=[
            {"name": "Temperature", "value": "21 °C"},
            {"name": " Door ", "value": "closed"},
        ],
    )
    assert sent(misskey, "i/update") == {
        "name": "Home Assistant",
        "description": "Posts what the house does.",
        "location": "Kitchen",
        "birthday": "2000-01-02",
        "lang": "ja-JP",
        "isLocked": True,
        "isBot": True,
        "isCat": True,
        "fields": [
            {"name": "Temperature", "value": "21 °C"},
            {"name": "Door", "value": "closed"},
        ],
    }
    user = misskey.user
    assert (user.name, user.location, user.lang, user.is_cat) == (
        "Home Assistant",
        "Kitchen",
        "ja-JP",
        True,
    )
    assert response["name"] == "Home Assistant"
    assert response["fields"] == [
        {"name": "Temperature", "value": "21 °C"},
        {"name": "Door", "value": "closed"},
    ]
    # i/update answered with the account: no second read was needed.
    assert len(misskey.calls("i")) == calls
    assert entity_state(hass, init_integration, "cat") == STATE_ON
    assert entity_state(hass, init_integration, "bot") == STATE_ON
    assert entity_state(hass, init_integration, "locked") == STATE_ON


async def test_update_profile_clears(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Empty texts clear (null); an empty list removes the fields; no response unasked."""
    misskey.user.description = "old"
    misskey.user.fields = [{"name": "a", "value": "b"}]
    assert (
        await call(
            hass,
            SERVICE_UPDATE_PROFILE,
            description="",
            birthday="",
            lang="",
            fields=[],
            delete_avatar=True,
            delete_banner=True,
        )
        is None
    )
    assert sent(misskey, "i/update") == {
        "description": None,
        "birthday": None,
        "lang": None,
        "fields": [],
        "avatarId": None,
        "bannerId": None,
    }
    assert (misskey.user.description, misskey.user.fields) == (None, [])


@pytest.mark.parametrize(
    ("data", "key", "placeholders"),
    [
        ({}, "nothing_to_update", {}),
        (
            {"name": "x" * 51},
            "profile_text_too_long",
            {"field": "name", "length": "51", "max": "50"},
        ),
        (
            {"description": "x" * 1501},
            "profile_text_too_long",
            {"field": "description", "length": "1501", "max": "1500"},
        ),
        (
            {"location": "x" * 51},
            "profile_text_too_long",
            {"field": "location", "length": "51", "max": "50"},
        ),
        (
            {"fields": [{"name": str(i), "value": "v"} for i in range(17)]},
            "too_many_fields",
            {"count": "17", "max": "16"},
        ),
        (
            {"fields": [{"name": "a", "value": "b"}, {"name": " ", "value": "c"}]},
            "profile_field_blank",
            {"index": "2"},
        ),
    ],
)
async def test_update_profile_refused_unsent(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    data: dict[str, Any],
    key: str,
    placeholders: dict[str, str],
) -> None:
    """What Misskey would refuse or silently drop is refused before sending."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_UPDATE_PROFILE, **data)
    assert err.value.translation_key == key
    assert err.value.translation_placeholders == placeholders
    assert not misskey.calls("i/update")


async def test_update_profile_schema(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """An avatar and its removal together, or a bad date, fail the schema."""
    with pytest.raises(Exception, match="avatar or delete_avatar"):
        await call(
            hass,
            SERVICE_UPDATE_PROFILE,
            avatar={"url": "https://example.com/a.png"},
            delete_avatar=True,
        )
    with pytest.raises(Exception, match="date"):
        await call(hass, SERVICE_UPDATE_PROFILE, birthday="2000-13-45")
    assert not misskey.calls("i/update")


@pytest.mark.parametrize("variant", [MISSKEY_13])
async def test_update_profile_on_misskey_12(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Misskey 12.26: 500 characters of bio, 1 to 4 fields, no language."""
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_UPDATE_PROFILE, description="x" * 501)
    assert err.value.translation_placeholders["max"] == "500"
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            SERVICE_UPDATE_PROFILE,
            fields=[{"name": str(i), "value": "v"} for i in range(5)],
        )
    assert err.value.translation_placeholders == {"count": "5", "max": "4"}
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_UPDATE_PROFILE, lang="ja-JP")
    assert err.value.translation_key == "lang_not_supported"
    assert not misskey.calls("i/update")

    # It refuses an empty list; one empty field is how it clears them.
    misskey.user.fields = [{"name": "a", "value": "b"}]
    await call(hass, SERVICE_UPDATE_PROFILE, fields=[])
    assert sent(misskey, "i/update") == {"fields": [{"name": "", "value": ""}]}
    assert misskey.user.fields == []


async def test_update_profile_server_refusals(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A prohibited name (422) and an unknown language (INVALID_PARAM) are explained."""
    misskey.prohibited_name_words = ["admin"]
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_UPDATE_PROFILE, name="The admin")
    assert err.value.translation_key == "name_prohibited"
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_UPDATE_PROFILE, lang="xx-YY")
    assert err.value.translation_key == "invalid_parameter"
    assert err.value.translation_placeholders == {
        "param": "lang/enum",
        "reason": "must be equal to one of the allowed values",
    }
    assert misskey.user.name == "Alice"


async def test_update_profile_needs_write_account(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    legacy_config_entry: MockConfigEntry,
) -> None:
    """Without write:account granted nothing is sent."""
    legacy_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(legacy_config_entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await call(hass, SERVICE_UPDATE_PROFILE, name="x")
    assert err.value.translation_placeholders["permission"] == "write:account"
    assert not misskey.calls("i/update")


@pytest.fixture
def image_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Return a folder Home Assistant may read, with an avatar in it."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    (tmp_path / "avatar.png").write_bytes(PNG)
    return tmp_path


async def test_update_avatar_and_banner(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    image_dir: Path,
) -> None:
    """The images go to the drive, then their IDs to i/update."""
    (image_dir / "banner.png").write_bytes(PNG + b"banner")
    response = await call(
        hass,
        SERVICE_UPDATE_PROFILE,
        response=True,
        avatar={"path": str(image_dir / "avatar.png")},
        banner={"path": str(image_dir / "banner.png"), "name": "top.png"},
    )
    avatar, banner = misskey.files.values()
    assert (avatar.name, avatar.type, avatar.size) == (
        "avatar.png",
        "image/png",
        len(PNG),
    )
    assert banner.name == "top.png"
    assert sent(misskey, "i/update") == {"avatarId": avatar.id, "bannerId": banner.id}
    assert response["avatar_url"] == f"https://example.invalid/files/{avatar.id}"
    assert response["banner_url"] == f"https://example.invalid/files/{banner.id}"


async def test_avatar_not_an_image(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    image_dir: Path,
) -> None:
    """An image that is not one is refused: by its name unsent, by its bytes after.

    A file the server finds not to be an image is deleted again.
    """
    (image_dir / "notes.txt").write_text("not a picture")
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass, SERVICE_UPDATE_PROFILE, avatar={"path": str(image_dir / "notes.txt")}
        )
    assert err.value.translation_key == "attachment_type_not_accepted"
    assert err.value.translation_placeholders["type"] == "text/plain"
    assert not misskey.calls("drive/files/create")

    (image_dir / "picture").write_text("still not a picture")
    with pytest.raises(HomeAssistantError) as err:
        await call(
            hass, SERVICE_UPDATE_PROFILE, avatar={"path": str(image_dir / "picture")}
        )
    assert err.value.translation_key == "attachment_rejected_type"
    # The default role may not upload application/octet-stream at all.
    assert not misskey.files
    assert not misskey.calls("i/update")

    # A role that may: then i/update finds it is no image, and it is deleted.
    assert misskey.policies is not None
    misskey.policies["uploadableFileTypes"] = ["*"]
    await init_integration.runtime_data.coordinator.async_refresh()
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass, SERVICE_UPDATE_PROFILE, avatar={"path": str(image_dir / "picture")}
        )
    assert err.value.translation_key == "avatar_not_an_image"
    assert len(misskey.calls("drive/files/create")) == 2
    assert not misskey.files


async def test_refused_update_deletes_the_avatar(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    image_dir: Path,
) -> None:
    """When i/update refuses, the image uploaded for it does not stay in the drive."""
    misskey.prohibited_name_words = ["admin"]
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass,
            SERVICE_UPDATE_PROFILE,
            name="admin",
            avatar={"path": str(image_dir / "avatar.png")},
        )
    assert err.value.translation_key == "name_prohibited"
    assert len(misskey.calls("drive/files/create")) == 1
    assert len(misskey.calls("drive/files/delete")) == 1
    assert not misskey.files
    assert misskey.user.avatar_id is None


async def test_lost_answer_keeps_the_avatar(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    image_dir: Path,
) -> None:
    """When the answer is lost, the profile may show the image: it is kept."""
    init_integration.runtime_data.coordinator.client.request_timeout = HANG_TIMEOUT
    misskey.fail_next("i/update", "hang", delay=30, after=True)
    with pytest.raises(HomeAssistantError) as err:
        await call(
            hass, SERVICE_UPDATE_PROFILE, avatar={"path": str(image_dir / "avatar.png")}
        )
    assert err.value.translation_key == "profile_update_failed"
    (drive_file,) = misskey.files.values()
    assert misskey.user.avatar_id == drive_file.id


async def test_role_may_not_change_images(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    image_dir: Path,
) -> None:
    """CanUpdateBioMedia false: refused before the upload; the server agrees."""
    assert misskey.policies is not None
    misskey.policies["canUpdateBioMedia"] = False
    coordinator = init_integration.runtime_data.coordinator
    await coordinator.async_refresh()
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass, SERVICE_UPDATE_PROFILE, avatar={"path": str(image_dir / "avatar.png")}
        )
    assert err.value.translation_key == "bio_media_not_allowed"
    assert not misskey.calls("drive/files/create")

    # Read before the role changed: the server's RESTRICTED_BY_ROLE says it.
    misskey.policies["canUpdateBioMedia"] = True
    await coordinator.async_refresh()
    misskey.policies["canUpdateBioMedia"] = False
    with pytest.raises(ServiceValidationError) as err:
        await call(
            hass, SERVICE_UPDATE_PROFILE, avatar={"path": str(image_dir / "avatar.png")}
        )
    assert err.value.translation_key == "bio_media_not_allowed"
    assert not misskey.files


@pytest.mark.parametrize(
    "variant", ["misskey", MISSKEY_13, SHARKEY, FIREFISH, CHERRYPICK]
)
async def test_account_actions_on_every_variant(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    bob: User,
) -> None:
    """Look up, mute, unmute and a profile change work the same everywhere."""
    response = await call(hass, SERVICE_GET_ACCOUNT, response=True, account="@bob")
    assert response["id"] == bob.id
    await call(hass, SERVICE_MUTE_ACCOUNT, account="@bob")
    assert misskey.muting(misskey.user, bob)
    await call(hass, SERVICE_UNMUTE_ACCOUNT, account="@bob")
    assert not misskey.muting(misskey.user, bob)
    await call(hass, SERVICE_UPDATE_PROFILE, name="New name", is_bot=True)
    assert (misskey.user.name, misskey.user.is_bot) == ("New name", True)
    assert entity_state(hass, init_integration, "bot") == STATE_ON

"""The account actions: look accounts up, mute and unmute them, update the own profile."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
import homeassistant.util.dt as dt_util
from homeassistant.util.json import JsonValueType

from .api import (
    Account,
    DriveFile,
    MisskeyCannotConnectError,
    MisskeyClient,
    MisskeyConnectionError,
    MisskeyResponseError,
)
from .const import (
    ATTR_AVATAR,
    ATTR_BANNER,
    ATTR_BIRTHDAY,
    ATTR_DELETE_AVATAR,
    ATTR_DELETE_BANNER,
    ATTR_DESCRIPTION,
    ATTR_FIELDS,
    ATTR_FILE_NAME,
    ATTR_IS_BOT,
    ATTR_IS_CAT,
    ATTR_IS_LOCKED,
    ATTR_LANG,
    ATTR_LOCATION,
    ATTR_VALUE,
    MAX_DESCRIPTION_LENGTH,
    MAX_DESCRIPTION_LENGTH_BEFORE_12_108,
    MAX_LOCATION_LENGTH,
    MAX_MUTE_DURATION,
    MAX_NAME_LENGTH,
    MAX_PROFILE_FIELDS,
    MAX_PROFILE_FIELDS_BEFORE_12_108,
    PERMISSION_WRITE_ACCOUNT,
    PERMISSION_WRITE_DRIVE,
    PERMISSION_WRITE_MUTES,
)
from .errors import async_call, require_permission, validation_error
from .limits import AccountLimits
from .post import async_import_media, parse_acct

# Misskey's avatars and banners must be images (AVATAR_NOT_AN_IMAGE).
IMAGE_TYPES = ["image/*"]

# Profile options and the i/update parameters they become; an empty text clears.
_TEXT_PARAMS = {
    ATTR_FILE_NAME: ("name", MAX_NAME_LENGTH),
    ATTR_DESCRIPTION: ("description", MAX_DESCRIPTION_LENGTH),
    ATTR_LOCATION: ("location", MAX_LOCATION_LENGTH),
}
_FLAG_PARAMS = {
    ATTR_IS_LOCKED: "isLocked",
    ATTR_IS_BOT: "isBot",
    ATTR_IS_CAT: "isCat",
}
# i/update's refusals users can act on.
_PROFILE_ERRORS = {
    "YOUR_NAME_CONTAINS_PROHIBITED_WORDS": "name_prohibited",
    "RESTRICTED_BY_ROLE": "bio_media_not_allowed",
    "AVATAR_NOT_AN_IMAGE": "avatar_not_an_image",
    "BANNER_NOT_AN_IMAGE": "banner_not_an_image",
}


def account_response(
    limits: AccountLimits, account: Account
) -> dict[str, JsonValueType]:
    """Return the profile as the account actions answer it.

    The account is spelled as events spell their ``user`` (notification.acct):
    ``@user@host``, with this server's host for a local account, so the two
    compare equal, and every action takes it back.
    """
    host = account.host or limits.host
    fields: list[JsonValueType] = [
        {"name": item.name, "value": item.value} for item in account.fields
    ]
    raw = account.raw
    return {
        "id": account.id,
        "username": account.username,
        "host": host,
        "acct": f"@{account.username}@{host}",
        "name": account.name,
        "description": account.description,
        # A local account has no url in Misskey's answer; its page is this.
        "url": account.url
        or (f"{limits.url}/@{account.username}" if not account.host else None),
        "avatar_url": account.avatar_url,
        "banner_url": account.banner_url,
        "location": account.location,
        "birthday": account.birthday,
        "lang": account.lang,
        "followers_count": account.followers_count,
        "following_count": account.following_count,
        "notes_count": account.notes_count,
        "is_bot": account.is_bot,
        "is_cat": account.is_cat,
        "is_locked": account.is_locked,
        "is_silenced": account.is_silenced,
        "is_suspended": account.is_suspended,
        "moved_to": account.moved_to,
        "created_at": account.created_at,
        "fields": fields,
        # How the account relates to this one; absent for the account itself.
        "is_following": raw.get("isFollowing"),
        "is_followed": raw.get("isFollowed"),
        "is_muted": raw.get("isMuted"),
        "is_blocking": raw.get("isBlocking"),
    }


async def async_get_account(
    client: MisskeyClient, limits: AccountLimits, account: str | None
) -> Account:
    """Look an account up by ``@user`` or ``@user@host``; None is the account itself."""
    if account is None:
        return await async_call(
            client,
            limits,
            lambda: client.user_by_id(limits.account_id),
            "account_lookup_failed",
            account=limits.title,
        )
    if (parsed := parse_acct(account, limits.host)) is None:
        raise validation_error("invalid_account", account=account)
    return await async_call(
        client,
        limits,
        lambda: client.user(*parsed),
        "account_lookup_failed",
        account=account,
        known={"NO_SUCH_USER": "account_not_found"},
    )


async def async_mute_account(
    client: MisskeyClient,
    limits: AccountLimits,
    account: str,
    duration: timedelta | None,
) -> None:
    """Mute an account, for ``duration`` or for good."""
    if duration is not None and duration > MAX_MUTE_DURATION:
        raise validation_error("mute_duration_too_long", days=MAX_MUTE_DURATION.days)
    require_permission(limits, PERMISSION_WRITE_MUTES)
    if duration is not None and limits.before_12_108:
        # It would ignore expiresAt and mute for good.
        raise validation_error("mute_duration_not_supported", version=limits.version)
    user = await async_get_account(client, limits, account)
    if user.id == limits.account_id:
        raise validation_error("mute_self")
    expires_at = dt_util.utcnow() + duration if duration is not None else None
    await async_call(
        client,
        limits,
        lambda: client.mute(user.id, expires_at),
        "mute_failed",
        permission=PERMISSION_WRITE_MUTES,
        account=account,
        known={"ALREADY_MUTING": "already_muted", "MUTEE_IS_YOURSELF": "mute_self"},
    )


async def async_unmute_account(
    client: MisskeyClient, limits: AccountLimits, account: str
) -> None:
    """Stop muting an account."""
    require_permission(limits, PERMISSION_WRITE_MUTES)
    user = await async_get_account(client, limits, account)
    await async_call(
        client,
        limits,
        lambda: client.unmute(user.id),
        "unmute_failed",
        permission=PERMISSION_WRITE_MUTES,
        account=account,
        known={"NOT_MUTING": "not_muted"},
    )


async def async_update_profile(
    hass: HomeAssistant,
    client: MisskeyClient,
    limits: AccountLimits,
    options: Mapping[str, Any],
) -> Account:
    """Change the account's profile; new avatar and banner images go to its drive first.

    An update Misskey refuses deletes the images uploaded for it.
    """
    require_permission(limits, PERMISSION_WRITE_ACCOUNT)
    params = profile_params(limits, options)
    images = [
        (param, options[option])
        for option, param in ((ATTR_AVATAR, "avatarId"), (ATTR_BANNER, "bannerId"))
        if options.get(option)
    ]
    if not params and not images:
        raise validation_error("nothing_to_update")
    files: list[DriveFile] = []
    if images:
        require_permission(limits, PERMISSION_WRITE_DRIVE)
        if limits.can_update_bio_media is False:
            raise validation_error("bio_media_not_allowed")
        media = await async_import_media(hass)
        files = await media.async_upload_attachments(
            hass, client, limits, [source for _, source in images], accept=IMAGE_TYPES
        )
        for (param, _), drive_file in zip(images, files, strict=True):
            params[param] = drive_file.id
    try:
        return await async_call(
            client,
            limits,
            lambda: client.update_profile(params),
            "profile_update_failed",
            permission=PERMISSION_WRITE_ACCOUNT,
            known=_PROFILE_ERRORS,
        )
    except HomeAssistantError as err:
        # When the answer was lost, the profile may show them already.
        if files and not _outcome_unknown(err.__cause__):
            await media.async_delete_files(client, files)
        raise


def profile_params(limits: AccountLimits, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return i/update's parameters; refuse what the server would refuse or drop."""
    params: dict[str, Any] = {}
    for option, (param, limit) in _TEXT_PARAMS.items():
        if (value := options.get(option)) is None:
            continue
        if param == "description" and limits.before_12_108:
            limit = MAX_DESCRIPTION_LENGTH_BEFORE_12_108
        # Misskey trims the name and clears it when blank; an empty text
        # clears any of them (null), as their minimum length is 1.
        value = value.strip() if param == "name" else value
        if len(value) > limit:
            raise validation_error(
                "profile_text_too_long", field=option, length=len(value), max=limit
            )
        params[param] = value or None
    if ATTR_BIRTHDAY in options:
        birthday: date | None = options[ATTR_BIRTHDAY]
        params["birthday"] = birthday.isoformat() if birthday else None
    if ATTR_LANG in options:
        if not limits.lang_supported:
            raise validation_error("lang_not_supported")
        params["lang"] = options[ATTR_LANG] or None
    for option, param in _FLAG_PARAMS.items():
        if (flag := options.get(option)) is not None:
            params[param] = flag
    if (fields := options.get(ATTR_FIELDS)) is not None:
        params["fields"] = _profile_fields(limits, fields)
    if options.get(ATTR_DELETE_AVATAR):
        params["avatarId"] = None
    if options.get(ATTR_DELETE_BANNER):
        params["bannerId"] = None
    return params


def _profile_fields(
    limits: AccountLimits, fields: list[Mapping[str, str]]
) -> list[dict[str, str]]:
    """Return the extra fields; Misskey would silently drop blank ones."""
    old_api = limits.before_12_108
    limit = MAX_PROFILE_FIELDS_BEFORE_12_108 if old_api else MAX_PROFILE_FIELDS
    if len(fields) > limit:
        raise validation_error("too_many_fields", count=len(fields), max=limit)
    result: list[dict[str, str]] = []
    for index, item in enumerate(fields, 1):
        name, value = item[ATTR_FILE_NAME].strip(), item[ATTR_VALUE].strip()
        if not name or not value:
            raise validation_error("profile_field_blank", index=index)
        result.append({"name": name, "value": value})
    if not result and old_api:
        # Misskey before 12.108 takes 1 to 4 fields and drops empty ones:
        # one empty field is how it clears them.
        result.append({"name": "", "value": ""})
    return result


def _outcome_unknown(err: BaseException | None) -> bool:
    """Return whether the request left but its answer did not come back."""
    if isinstance(err, MisskeyCannotConnectError):
        return False
    return isinstance(err, (MisskeyConnectionError, MisskeyResponseError))

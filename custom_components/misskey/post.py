"""Posting a note: validate, upload, create; and the errors users read.

``async_post_note`` is the whole path, top to bottom. Every check before the
first request is a function of the note and the account's limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
import re
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from yarl import URL

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.importlib import async_import_module
import homeassistant.util.dt as dt_util

from .api import (
    DriveFile,
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyClient,
    MisskeyError,
    MisskeyInvalidParamError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    MisskeyServerError,
    Note,
    ScheduledNote,
)
from .const import (
    ATTR_CHANNEL,
    ATTR_CHOICES,
    ATTR_CW,
    ATTR_DURATION,
    ATTR_ENDS_AT,
    ATTR_LOCAL_ONLY,
    ATTR_MEDIA,
    ATTR_MULTIPLE,
    ATTR_POLL,
    ATTR_REACTION_ACCEPTANCE,
    ATTR_RECIPIENTS,
    ATTR_RENOTE,
    ATTR_REPLY_TO,
    ATTR_SENSITIVE,
    ATTR_VISIBILITY,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    DEFAULT_LOCAL_ONLY,
    DEFAULT_VISIBILITY,
    DOMAIN,
    MAX_POLL_CHOICE_LENGTH,
    MAX_POLL_CHOICES,
    PERMISSION_WRITE_NOTES,
    RATE_LIMIT_MAX_WAIT,
    REACTION_ACCEPTANCES,
)
from .errors import (
    cannot_connect,
    credential_refused,
    invalid_parameter,
    permission_refused,
    rate_limited_error,
    reauth_on_refusal,
    suspended_error,
    validation_error,
)
from .limits import SCHEDULING_DRAFTS, AccountLimits
from .schedule import Schedule, async_check_schedule_room, validate_schedule

if TYPE_CHECKING:
    from .data import MisskeyConfigEntry

# A user as recipients and the account actions take them: @user or @user@host,
# as events spell it (the host may have a port or be an IPv6 address; a remote
# user's name may have the dots and hyphens other fediverse servers allow).
# (Patterns, compiled and cached by re at their first use, not at every start.)
ACCT: Final = (
    r"@?(?P<username>\w[\w.-]*)"
    r"(?:@(?P<host>(?:[\w.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?))?"
)
_NOTE_ID: Final = r"[0-9A-Za-z]+"
# A mention as MFM finds one: not inside a word, a user name, maybe a host.
_MENTION: Final = (
    r"(?<![0-9A-Za-z])@([0-9A-Za-z_]+(?:-[0-9A-Za-z_]+)*)"
    r"(?:@([0-9A-Za-z.-]*[0-9A-Za-z](?::[0-9]+)?))?"
)

# reaction_acceptance as the selector offers it and as Misskey spells it, each to
# Misskey's value.
REACTION_ACCEPTANCE_VALUES: Final[dict[str, str | None]] = {
    **REACTION_ACCEPTANCES,
    **{value: value for value in REACTION_ACCEPTANCES.values() if value is not None},
}

# notes/create errors users can act on; the rest are reported with Misskey's own words.
NAMED_NOTE_ERRORS: Final = frozenset(
    {
        "NO_SUCH_REPLY_TARGET",
        "NO_SUCH_RENOTE_TARGET",
        "NO_SUCH_CHANNEL",
        "NO_SUCH_FILE",
        "CANNOT_CREATE_ALREADY_EXPIRED_POLL",
        "CONTAINS_PROHIBITED_WORDS",
        "CONTAINS_TOO_MANY_MENTIONS",
        "YOU_HAVE_BEEN_BLOCKED",
        "MAX_LENGTH",
    }
)


# What scheduling refuses, by the translation key users read.
_SCHEDULE_ERRORS: Final = {
    "TOO_MANY_SCHEDULED_NOTES": "scheduled_note_limit_reached",
    "SCHEDULE_NOTE_MAX": "scheduled_note_limit_reached",
    "TOO_MANY_DRAFTS": "too_many_drafts_reached",
    "SCHEDULED_AT_MUST_BE_IN_FUTURE": "scheduled_at_passed",
    "CANNOT_CREATE_ALREADY_EXPIRED_SCHEDULE": "scheduled_at_passed",
}


class NoteOutcomeUnknownError(HomeAssistantError):
    """The request left, but whether Misskey posted the note is not known."""


def compose_text(message: str | None, title: str | None) -> str | None:
    """Put the title on a bold first line, as Misskey notes have no title."""
    if title and message:
        return f"**{title}**\n{message}"
    if title:
        return f"**{title}**"
    return message


async def async_post_note(
    hass: HomeAssistant,
    entry: MisskeyConfigEntry,
    text: str | None,
    options: Mapping[str, Any],
) -> Note | ScheduledNote:
    """Post a note for the entry's account, once: validate, upload, create.

    With ``scheduled_at`` the server posts it later: the answer is then the
    scheduled note, not a note.
    """
    client = entry.runtime_data.client
    limits = entry.runtime_data.coordinator.limits
    with reauth_on_refusal(hass, entry):
        params = note_params(limits, text, options, account_defaults(entry))
        attachments: list[Mapping[str, Any]] = [
            {ATTR_SENSITIVE: options.get(ATTR_SENSITIVE, False), **item}
            for item in options.get(ATTR_MEDIA, [])
        ]
        validate_note(limits, params, attachments=len(attachments))
        schedule = validate_schedule(limits, params, options)
        if schedule is not None:
            await async_check_schedule_room(client, limits, schedule)
        if recipients := options.get(ATTR_RECIPIENTS):
            params["visibleUserIds"] = await _async_resolve_recipients(
                client, limits, recipients
            )
        if not attachments:
            return await _async_create(client, limits, params, schedule)
        media = await async_import_media(hass)
        files: list[DriveFile] = await media.async_upload_attachments(
            hass, client, limits, attachments
        )
        params["fileIds"] = [drive_file.id for drive_file in files]
        try:
            return await _async_create(client, limits, params, schedule)
        except NoteOutcomeUnknownError:
            # The note may exist and show these files: keep them.
            raise
        except HomeAssistantError:
            await media.async_delete_files(client, files)
            raise


async def async_import_media(hass: HomeAssistant) -> ModuleType:
    """Return the module of attachments, imported by the first note that has one.

    It is the largest of the integration, and notes without files, and
    accounts that never post, do not need it at every start.
    """
    return await async_import_module(hass, f"{__package__}.media")


def account_defaults(entry: MisskeyConfigEntry) -> dict[str, Any]:
    """Return what the account's notes are when a call does not say (its options)."""
    return {
        ATTR_VISIBILITY: entry.options.get(CONF_DEFAULT_VISIBILITY, DEFAULT_VISIBILITY),
        ATTR_LOCAL_ONLY: entry.options.get(CONF_DEFAULT_LOCAL_ONLY, DEFAULT_LOCAL_ONLY),
    }


def note_params(
    limits: AccountLimits,
    text: str | None,
    options: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """Return notes/create's parameters for the options users give.

    What the options leave out, ``defaults`` (the account's) decide: every
    note says its visibility. Recipients make a note specified, whatever the
    default. Recipients and attachments need the server, so they are added
    later.
    """
    params: dict[str, Any] = {}
    if text is not None:
        params["text"] = text
    if (cw := options.get(ATTR_CW)) is not None:
        params["cw"] = cw
    visibility: str | None = options.get(ATTR_VISIBILITY)
    if options.get(ATTR_RECIPIENTS):
        if visibility not in (None, "specified"):
            raise validation_error("recipients_need_specified", visibility=visibility)
        visibility = "specified"
    elif visibility is None:
        visibility = defaults[ATTR_VISIBILITY]
        if visibility == "public" and limits.can_public_note is False:
            # Misskey would post it as home. Only a call that asks for public
            # is refused (_validate_role); a default is not asking.
            visibility = "home"
    params["visibility"] = visibility
    local_only: bool | None = options.get(ATTR_LOCAL_ONLY)
    if local_only is None and defaults[ATTR_LOCAL_ONLY]:
        local_only = True
    if local_only is not None:
        params["localOnly"] = local_only
    if (reply_to := options.get(ATTR_REPLY_TO)) is not None:
        params["replyId"] = note_id_from_reference(limits.url, ATTR_REPLY_TO, reply_to)
    if (renote := options.get(ATTR_RENOTE)) is not None:
        params["renoteId"] = note_id_from_reference(limits.url, ATTR_RENOTE, renote)
    if (channel := options.get(ATTR_CHANNEL)) is not None:
        params["channelId"] = channel
    if (acceptance := options.get(ATTR_REACTION_ACCEPTANCE)) is not None:
        params["reactionAcceptance"] = REACTION_ACCEPTANCE_VALUES[acceptance]
    if (poll := options.get(ATTR_POLL)) is not None:
        params["poll"] = _poll(poll)
    return params


def parse_acct(account: str, instance: str) -> tuple[str, str | None] | None:
    """Return the user name and host of ``@user`` or ``@user@host``, or None if it is not one.

    The host is None for a user of ``instance`` (this account's server), as
    Misskey's users/show takes a local user.
    """
    if not (match := re.fullmatch(ACCT, account.strip())):
        return None
    host: str | None = match["host"]
    if host is not None and host.lower() == instance.lower():
        host = None
    return match["username"], host


def note_id_from_reference(instance_url: str, field: str, value: str) -> str:
    """Return the note ID of an ID or of a note URL of the instance."""
    if "://" in value:
        url = URL(value)
        parts = url.path.strip("/").split("/")
        if (
            str(url.origin()) == instance_url
            and len(parts) == 2
            and parts[0] == "notes"
            and re.fullmatch(_NOTE_ID, parts[1])
        ):
            return parts[1]
    elif re.fullmatch(_NOTE_ID, value):
        return value
    raise validation_error(
        "invalid_note_reference", field=field, value=value, instance=instance_url
    )


def _poll(poll: Mapping[str, Any]) -> dict[str, Any]:
    choices: list[str] = poll[ATTR_CHOICES]
    if not 2 <= len(choices) <= MAX_POLL_CHOICES:
        raise validation_error("poll_choices", count=len(choices), max=MAX_POLL_CHOICES)
    if len(set(choices)) != len(choices):
        raise validation_error("poll_choices_unique")
    for choice in choices:
        if not 1 <= len(choice) <= MAX_POLL_CHOICE_LENGTH:
            raise validation_error(
                "poll_choice_length", choice=choice, max=MAX_POLL_CHOICE_LENGTH
            )
    result: dict[str, Any] = {"choices": choices, "multiple": poll[ATTR_MULTIPLE]}
    duration: timedelta | None = poll.get(ATTR_DURATION)
    ends_at: datetime | None = poll.get(ATTR_ENDS_AT)
    if duration is not None:
        result["expiredAfter"] = int(duration.total_seconds() * 1000)
    elif ends_at is not None:
        ends_at = (
            dt_util.as_utc(ends_at)
            if ends_at.tzinfo
            else dt_util.as_utc(ends_at.replace(tzinfo=dt_util.get_default_time_zone()))
        )
        if ends_at <= dt_util.utcnow():
            raise validation_error("poll_ended", ends_at=ends_at.isoformat())
        result["expiresAt"] = int(ends_at.timestamp() * 1000)
    return result


def validate_note(
    limits: AccountLimits, params: Mapping[str, Any], *, attachments: int = 0
) -> None:
    """Refuse, before sending anything, what Misskey would refuse."""
    text: str | None = params.get("text")
    if not (text and text.strip()) and not (
        attachments or params.get("poll") or params.get("renoteId")
    ):
        raise validation_error("empty_note")
    # Misskey counts code points, as Python's len does.
    if text is not None and len(text) > limits.max_note_text_length:
        raise validation_error(
            "text_too_long", length=len(text), max=limits.max_note_text_length
        )
    cw: str | None = params.get("cw")
    if cw is not None and not 1 <= len(cw) <= limits.max_cw_length:
        raise validation_error("cw_too_long", length=len(cw), max=limits.max_cw_length)
    _validate_role(limits, params)


def _validate_role(limits: AccountLimits, params: Mapping[str, Any]) -> None:
    """Refuse what the account's role does not allow.

    Misskey would quietly post a public note as home when the role may not
    post publicly (channel notes excepted), so an explicit public is refused.
    Mentions are counted as MFM finds them; Misskey counts only the users it
    finds, so it may allow a note this refuses only when some named users do
    not exist.
    """
    if (
        limits.can_public_note is False
        and params.get("visibility") == "public"
        and params.get("channelId") is None
    ):
        raise validation_error("public_not_allowed")
    text: str | None = params.get("text")
    # Most notes mention nobody: no need to search them.
    if limits.mention_limit is not None and text and "@" in text:
        mentioned: set[tuple[str, str | None]] = set()
        for user, host in re.findall(_MENTION, text):
            host = host.lower()
            mentioned.add((user.lower(), None if host in ("", limits.host) else host))
        if len(mentioned) > limits.mention_limit:
            raise validation_error(
                "too_many_mentions", count=len(mentioned), max=limits.mention_limit
            )


async def _async_resolve_recipients(
    client: MisskeyClient, limits: AccountLimits, recipients: list[str]
) -> list[str]:
    """Return the user IDs of ``@user`` and ``@user@host`` recipients."""
    user_ids: list[str] = []
    for recipient in recipients:
        if (parsed := parse_acct(recipient, limits.host)) is None:
            raise validation_error("invalid_recipient", recipient=recipient)
        try:
            user = await client.user(*parsed)
        except MisskeyApiError as err:
            if err.code == "NO_SUCH_USER":
                raise validation_error(
                    "recipient_not_found", recipient=recipient
                ) from err
            raise post_error(limits, err) from err
        except MisskeyError as err:
            # Only a lookup failed: nothing was posted.
            raise cannot_connect(err) from err
        user_ids.append(user.id)
    return user_ids


async def _async_create(
    client: MisskeyClient,
    limits: AccountLimits,
    params: Mapping[str, Any],
    schedule: Schedule | None,
) -> Note | ScheduledNote:
    """Post the note now, or have the server post it later, waiting out rate limits.

    A 429 means Misskey did nothing, so the same call is safe to repeat. A
    timeout or a broken connection leaves the outcome unknown: that is
    reported, never retried.
    """
    if schedule is not None:
        return await _async_schedule(client, limits, params, schedule)
    try:
        return await client.create_note(params, max_wait=RATE_LIMIT_MAX_WAIT)
    except MisskeyRateLimitError as err:
        raise rate_limited_error("rate_limited", err) from err
    except MisskeyError as err:
        raise post_error(limits, err) from err


async def _async_schedule(
    client: MisskeyClient,
    limits: AccountLimits,
    params: Mapping[str, Any],
    schedule: Schedule,
) -> ScheduledNote:
    """Have the server post the note later.

    A refused permission names the permission instead of starting
    re-authentication: the credential itself works.
    """
    if schedule.method == SCHEDULING_DRAFTS:
        send = client.create_scheduled_draft
    else:
        send = client.schedule_note
    try:
        return await client.retry_rate_limited(
            lambda: send(params, schedule.at), RATE_LIMIT_MAX_WAIT
        )
    except MisskeyPermissionDeniedError as err:
        raise permission_refused(limits, schedule.permission) from err
    except MisskeyRateLimitError as err:
        raise rate_limited_error("rate_limited", err) from err
    except MisskeyApiError as err:
        if (key := _SCHEDULE_ERRORS.get(err.code or "")) is None:
            raise post_error(limits, err) from err
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key=key
        ) from err
    except MisskeyError as err:
        raise post_error(limits, err) from err


def post_error(limits: AccountLimits, err: MisskeyError) -> HomeAssistantError:
    """Return what a user reads when Misskey did not take a note.

    A refused credential starts re-authentication; a refused permission
    names it, as for every action (the credential itself works).
    """
    if isinstance(err, MisskeyAuthenticationError):
        return credential_refused()
    if isinstance(err, MisskeyPermissionDeniedError):
        return permission_refused(limits, PERMISSION_WRITE_NOTES)
    if isinstance(err, MisskeyAccountSuspendedError):
        return suspended_error(limits)
    if isinstance(err, MisskeyInvalidParamError):
        return invalid_parameter(err)
    if isinstance(err, MisskeyApiError) and err.code in NAMED_NOTE_ERRORS:
        return HomeAssistantError(
            translation_domain=DOMAIN, translation_key=f"note_{str(err.code).lower()}"
        )
    if isinstance(err, MisskeyServerError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="server_error",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, MisskeyApiError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="post_rejected",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, MisskeyCannotConnectError):
        return cannot_connect(err)
    # A timeout, a dropped connection or a garbled answer after the request left.
    return NoteOutcomeUnknownError(
        translation_domain=DOMAIN,
        translation_key="post_outcome_unknown",
        translation_placeholders={"error": str(err)},
    )

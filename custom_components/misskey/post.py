"""Posting a note: the options users give, Misskey's parameters, and errors users read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
import logging
import re
from typing import Any

import probatio
from yarl import URL

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv
import homeassistant.util.dt as dt_util

from .api import (
    DriveFile,
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
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
    ATTR_SCHEDULED_AT,
    ATTR_SENSITIVE,
    ATTR_VISIBILITY,
    DOMAIN,
    MAX_CW_LENGTH,
    MAX_POLL_CHOICE_LENGTH,
    MAX_POLL_CHOICES,
    RATE_LIMIT_MAX_WAIT,
    REACTION_ACCEPTANCES,
    VISIBILITIES,
)
from .coordinator import MisskeyDataUpdateCoordinator
from .errors import suspended_error, validation_error
from .limits import Scheduling, policies
from .media import async_delete_files, async_upload_attachments
from .schedule import Schedule, async_check_schedule_room, validate_schedule

_LOGGER = logging.getLogger(__name__)

# A user as recipients and the account actions take them: @user or @user@host.
ACCT_RE = re.compile(r"@?(?P<username>\w+)(?:@(?P<host>[\w.:-]+))?")
_NOTE_ID_RE = re.compile(r"[0-9A-Za-z]+")
# A mention as MFM finds one: not inside a word, a user name, maybe a host.
_MENTION_RE = re.compile(
    r"(?<![0-9A-Za-z])@([0-9A-Za-z_]+(?:-[0-9A-Za-z_]+)*)"
    r"(?:@([0-9A-Za-z.-]*[0-9A-Za-z](?::[0-9]+)?))?"
)

ATTACHMENT_SCHEMA = probatio.Schema(
    {
        probatio.Exclusive("media_content_id", "source"): cv.string,
        probatio.Exclusive("path", "source"): cv.string,
        probatio.Exclusive("url", "source"): cv.url,
        probatio.Optional("media_content_type"): cv.string,
        probatio.Optional("metadata"): dict,
        probatio.Optional("alt_text"): cv.string,
        probatio.Optional("sensitive"): cv.boolean,
        probatio.Optional("name"): cv.string,
    }
)

POLL_SCHEMA = probatio.Schema(
    {
        probatio.Required(ATTR_CHOICES): probatio.All(cv.ensure_list, [cv.string]),
        probatio.Optional(ATTR_MULTIPLE, default=False): cv.boolean,
        probatio.Exclusive(
            ATTR_DURATION, "end", msg="a poll has a duration or an end time, not both"
        ): cv.positive_time_period,
        probatio.Exclusive(
            ATTR_ENDS_AT, "end", msg="a poll has a duration or an end time, not both"
        ): cv.datetime,
    }
)

# reaction_acceptance as the selector offers it and as Misskey spells it, each to
# Misskey's value.
_REACTION_ACCEPTANCE_VALUES: dict[str, str | None] = {
    **REACTION_ACCEPTANCES,
    **{value: value for value in REACTION_ACCEPTANCES.values() if value is not None},
}

# The options of a note, shared by the misskey.post action and the notify
# service's data, under the same names.
NOTE_OPTIONS: dict[Any, Any] = {
    probatio.Optional(ATTR_CW): cv.string,
    probatio.Optional(ATTR_VISIBILITY): probatio.In(VISIBILITIES),
    probatio.Optional(ATTR_RECIPIENTS): probatio.All(cv.ensure_list, [cv.string]),
    probatio.Optional(ATTR_LOCAL_ONLY): cv.boolean,
    probatio.Optional(ATTR_REPLY_TO): cv.string,
    probatio.Optional(ATTR_RENOTE): cv.string,
    probatio.Optional(ATTR_CHANNEL): cv.string,
    probatio.Optional(ATTR_REACTION_ACCEPTANCE): probatio.In(
        list(_REACTION_ACCEPTANCE_VALUES)
    ),
    probatio.Optional(ATTR_POLL): POLL_SCHEMA,
    probatio.Optional(ATTR_MEDIA): probatio.All(cv.ensure_list, [ATTACHMENT_SCHEMA]),
    probatio.Optional(ATTR_SENSITIVE): cv.boolean,
    probatio.Optional(ATTR_SCHEDULED_AT): cv.datetime,
}

# notes/create errors users can act on; the rest are reported with Misskey's own words.
NAMED_NOTE_ERRORS = frozenset(
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
_SCHEDULE_ERRORS = {
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


def note_params(
    coordinator: MisskeyDataUpdateCoordinator,
    text: str | None,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Return notes/create's parameters for the options users give.

    Recipients and attachments need the server, so they are added later.
    """
    params: dict[str, Any] = {}
    if text is not None:
        params["text"] = text
    if (cw := options.get(ATTR_CW)) is not None:
        params["cw"] = cw
    if (visibility := options.get(ATTR_VISIBILITY)) is not None:
        params["visibility"] = visibility
    if options.get(ATTR_RECIPIENTS):
        if visibility not in (None, "specified"):
            raise validation_error("recipients_need_specified", visibility=visibility)
        params["visibility"] = "specified"
    if (local_only := options.get(ATTR_LOCAL_ONLY)) is not None:
        params["localOnly"] = local_only
    if (reply_to := options.get(ATTR_REPLY_TO)) is not None:
        params["replyId"] = note_id_from_reference(coordinator, ATTR_REPLY_TO, reply_to)
    if (renote := options.get(ATTR_RENOTE)) is not None:
        params["renoteId"] = note_id_from_reference(coordinator, ATTR_RENOTE, renote)
    if (channel := options.get(ATTR_CHANNEL)) is not None:
        params["channelId"] = channel
    if (acceptance := options.get(ATTR_REACTION_ACCEPTANCE)) is not None:
        params["reactionAcceptance"] = _REACTION_ACCEPTANCE_VALUES[acceptance]
    if (poll := options.get(ATTR_POLL)) is not None:
        params["poll"] = _poll(poll)
    return params


def note_id_from_reference(
    coordinator: MisskeyDataUpdateCoordinator, field: str, value: str
) -> str:
    """Return the note ID of an ID or of a note URL of this instance."""
    if "://" in value:
        url = URL(value)
        parts = url.path.strip("/").split("/")
        if (
            str(url.origin()) == coordinator.client.url
            and len(parts) == 2
            and parts[0] == "notes"
            and _NOTE_ID_RE.fullmatch(parts[1])
        ):
            return parts[1]
    elif _NOTE_ID_RE.fullmatch(value):
        return value
    raise validation_error(
        "invalid_note_reference",
        field=field,
        value=value,
        instance=coordinator.client.url,
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
    coordinator: MisskeyDataUpdateCoordinator,
    params: Mapping[str, Any],
    *,
    attachments: int = 0,
) -> None:
    """Refuse, before sending anything, what Misskey would refuse."""
    text: str | None = params.get("text")
    if not (text and text.strip()) and not (
        attachments or params.get("poll") or params.get("renoteId")
    ):
        raise validation_error("empty_note")
    # Misskey counts code points, as Python's len does.
    limit = coordinator.meta.max_note_text_length
    if text is not None and len(text) > limit:
        raise validation_error("text_too_long", length=len(text), max=limit)
    cw: str | None = params.get("cw")
    cw_limit = coordinator.meta.raw.get("maxCwLength", MAX_CW_LENGTH)
    if cw is not None and not 1 <= len(cw) <= cw_limit:
        raise validation_error("cw_too_long", length=len(cw), max=cw_limit)
    _validate_role(coordinator, params)


def _validate_role(
    coordinator: MisskeyDataUpdateCoordinator, params: Mapping[str, Any]
) -> None:
    """Refuse what the account's role does not allow.

    Misskey would quietly post a public note as home when the role may not
    post publicly (channel notes excepted), so an explicit public is refused.
    Mentions are counted as MFM finds them; Misskey counts only the users it
    finds, so it may allow a note this refuses only when some named users do
    not exist.
    """
    if (role := policies(coordinator)) is None:
        return
    if (
        role.can_public_note is False
        and params.get("visibility") == "public"
        and params.get("channelId") is None
    ):
        raise validation_error("public_not_allowed")
    text: str | None = params.get("text")
    if role.mention_limit is not None and text:
        own_host = URL(coordinator.client.url).host_port_subcomponent
        mentioned: set[tuple[str, str | None]] = set()
        for user, host in _MENTION_RE.findall(text):
            host = host.lower()
            mentioned.add((user.lower(), None if host in ("", own_host) else host))
        if len(mentioned) > role.mention_limit:
            raise validation_error(
                "too_many_mentions", count=len(mentioned), max=role.mention_limit
            )


async def async_post_note(
    hass: HomeAssistant,
    coordinator: MisskeyDataUpdateCoordinator,
    text: str | None,
    options: Mapping[str, Any],
) -> Note | ScheduledNote:
    """Validate, resolve recipients, upload attachments, then post the note once.

    With ``scheduled_at`` the server posts it later: the answer is then the
    scheduled note, not a note.
    """
    params = note_params(coordinator, text, options)
    attachments: list[Mapping[str, Any]] = [
        {ATTR_SENSITIVE: options.get(ATTR_SENSITIVE, False), **item}
        for item in options.get(ATTR_MEDIA, [])
    ]
    validate_note(coordinator, params, attachments=len(attachments))
    schedule = validate_schedule(coordinator, params, options)
    if schedule is not None:
        await async_check_schedule_room(coordinator, schedule)
    if recipients := options.get(ATTR_RECIPIENTS):
        params["visibleUserIds"] = await _async_resolve_recipients(
            coordinator, recipients
        )
    files: list[DriveFile] = []
    if attachments:
        files = await async_upload_attachments(hass, coordinator, attachments)
        params["fileIds"] = [drive_file.id for drive_file in files]
    try:
        if schedule is not None:
            return await async_create_scheduled_note(coordinator, params, schedule)
        return await async_create_note(coordinator, params)
    except NoteOutcomeUnknownError:
        # The note may exist and show these files: keep them.
        raise
    except HomeAssistantError:
        await async_delete_files(coordinator, files)
        raise


async def _async_resolve_recipients(
    coordinator: MisskeyDataUpdateCoordinator, recipients: list[str]
) -> list[str]:
    """Return the user IDs of ``@user`` and ``@user@host`` recipients."""
    own_host = URL(coordinator.client.url).host_port_subcomponent
    user_ids: list[str] = []
    for recipient in recipients:
        if not (match := ACCT_RE.fullmatch(recipient.strip())):
            raise validation_error("invalid_recipient", recipient=recipient)
        host = match["host"]
        if host is not None and host.lower() == own_host:
            host = None
        try:
            user = await coordinator.client.user(match["username"], host)
        except MisskeyApiError as err:
            if err.code == "NO_SUCH_USER":
                raise validation_error(
                    "recipient_not_found", recipient=recipient
                ) from err
            raise _post_error(coordinator, err) from err
        except MisskeyError as err:
            # Only a lookup failed: nothing was posted.
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err)},
            ) from err
        user_ids.append(user.id)
    return user_ids


async def async_create_note(
    coordinator: MisskeyDataUpdateCoordinator, params: Mapping[str, Any]
) -> Note:
    """Post a note, waiting out rate limits; never post twice.

    A 429 means Misskey did nothing, so the same call is safe to repeat. A
    timeout or a broken connection leaves the outcome unknown: that is
    reported, never retried.
    """
    try:
        return await coordinator.client.create_note(
            params, max_wait=RATE_LIMIT_MAX_WAIT
        )
    except MisskeyRateLimitError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="rate_limited",
            translation_placeholders={"retry_after": str(round(err.retry_after or 0))},
        ) from err
    except MisskeyError as err:
        raise _post_error(coordinator, err) from err


async def async_create_scheduled_note(
    coordinator: MisskeyDataUpdateCoordinator,
    params: Mapping[str, Any],
    schedule: Schedule,
) -> ScheduledNote:
    """Have the server post a note later, waiting out rate limits; never twice.

    A refused permission names the permission instead of starting
    re-authentication: the credential itself works.
    """
    client = coordinator.client
    if schedule.method is Scheduling.DRAFTS:
        send = client.create_scheduled_draft
    else:
        send = client.schedule_note
    try:
        return await client.retry_rate_limited(
            lambda: send(params, schedule.at), RATE_LIMIT_MAX_WAIT
        )
    except MisskeyPermissionDeniedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="missing_permission",
            translation_placeholders={
                "account": coordinator.config_entry.title,
                "permission": schedule.permission,
            },
        ) from err
    except MisskeyApiError as err:
        if (key := _SCHEDULE_ERRORS.get(err.code or "")) is None:
            raise _scheduled_error(coordinator, err) from err
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key=key
        ) from err
    except MisskeyError as err:
        raise _scheduled_error(coordinator, err) from err


def _scheduled_error(
    coordinator: MisskeyDataUpdateCoordinator, err: MisskeyError
) -> HomeAssistantError:
    if isinstance(err, MisskeyRateLimitError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="rate_limited",
            translation_placeholders={"retry_after": str(round(err.retry_after or 0))},
        )
    return _post_error(coordinator, err)


def _post_error(
    coordinator: MisskeyDataUpdateCoordinator, err: MisskeyError
) -> HomeAssistantError:
    """Return what a user reads when Misskey did not take a note."""
    if isinstance(err, (MisskeyAuthenticationError, MisskeyPermissionDeniedError)):
        coordinator.config_entry.async_start_reauth(coordinator.hass)
        key = (
            "authentication_failed"
            if isinstance(err, MisskeyAuthenticationError)
            else "permission_denied"
        )
        return HomeAssistantError(translation_domain=DOMAIN, translation_key=key)
    if isinstance(err, MisskeyAccountSuspendedError):
        return suspended_error(coordinator)
    if isinstance(err, MisskeyInvalidParamError):
        return validation_error(
            "invalid_parameter",
            param=(err.param or "?").removeprefix("#/properties/"),
            reason=err.reason or err.message or "",
        )
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
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(err)},
        )
    # A timeout, a dropped connection or a garbled answer after the request left.
    return NoteOutcomeUnknownError(
        translation_domain=DOMAIN,
        translation_key="post_outcome_unknown",
        translation_placeholders={"error": str(err)},
    )

"""Scheduled notes: what the server supports and allows, checked before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import homeassistant.util.dt as dt_util

from .api import DRAFTS_PAGE, MisskeyClient, MisskeyError
from .const import (
    ATTR_SCHEDULED_AT,
    MAX_CW_LENGTH,
    PERMISSION_WRITE_ACCOUNT,
    PERMISSION_WRITE_NOTES_SCHEDULE,
)
from .errors import cannot_connect, require_permission, validation_error
from .limits import SCHEDULING_DRAFTS, SCHEDULING_SHARKEY, AccountLimits, Scheduling

# What Sharkey's notes/schedule/create does not take; it would drop them and
# post the note federated and outside the channel.
_SHARKEY_UNSUPPORTED: Final = {"localOnly": "local_only", "channelId": "channel"}


class Schedule:
    """When and how a note is to be posted later."""

    __slots__ = ("at", "method")

    def __init__(self, at: datetime, method: Scheduling) -> None:
        """Post at ``at``, the server's way."""
        self.at = at
        self.method = method

    @property
    def permission(self) -> str:
        """Return the permission the server's way of scheduling needs."""
        if self.method == SCHEDULING_DRAFTS:
            return PERMISSION_WRITE_ACCOUNT
        return PERMISSION_WRITE_NOTES_SCHEDULE


def validate_schedule(
    limits: AccountLimits, params: Mapping[str, Any], options: Mapping[str, Any]
) -> Schedule | None:
    """Return when and how to schedule the note, or None to post it now.

    Refuses a time in the past, a server that cannot schedule, an account that
    did not grant the permission, a content warning or options the server
    would refuse or drop, a poll that would end before the note appears, and a
    role that may schedule nothing.
    """
    value: datetime | None = options.get(ATTR_SCHEDULED_AT)
    if value is None:
        return None
    at = dt_util.as_utc(
        value if value.tzinfo else value.replace(tzinfo=dt_util.get_default_time_zone())
    )
    if at <= dt_util.utcnow():
        raise validation_error("scheduled_at_past", scheduled_at=at.isoformat())
    if (method := limits.scheduling) is None:
        raise validation_error("scheduling_not_supported", instance=limits.url)
    schedule = Schedule(at, method)
    require_permission(limits, schedule.permission)
    # Drafts and Sharkey's scheduled notes take Misskey's 100, whatever
    # maxCwLength the server's notes have.
    if (cw := params.get("cw")) is not None and len(cw) > MAX_CW_LENGTH:
        raise validation_error("cw_too_long", length=len(cw), max=MAX_CW_LENGTH)
    if method == SCHEDULING_SHARKEY:
        for param, option in _SHARKEY_UNSUPPORTED.items():
            if params.get(param):
                raise validation_error("scheduled_option_not_supported", option=option)
    poll: Mapping[str, Any] | None = params.get("poll")
    if poll is not None and (ends := poll.get("expiresAt")) is not None:
        if ends <= at.timestamp() * 1000:
            raise validation_error("poll_ends_before_schedule")
    limit = (
        limits.scheduled_note_limit
        if method == SCHEDULING_DRAFTS
        else limits.schedule_note_max
    )
    if limit == 0:
        raise validation_error("scheduled_note_limit", max=limit)
    return schedule


async def async_check_schedule_room(
    client: MisskeyClient, limits: AccountLimits, schedule: Schedule
) -> None:
    """Refuse a note the role has no room for, by counting the account's drafts.

    Only Misskey's drafts can be counted with the permissions asked for
    (Sharkey's list needs read:notes-schedule); there the server's refusal
    answers. Limits above the 100 drafts one call returns are left to the server.
    """
    if schedule.method != SCHEDULING_DRAFTS:
        return
    try:
        drafts = await client.drafts()
    except MisskeyError as err:
        raise cannot_connect(err) from err
    scheduled = sum(1 for draft in drafts if draft.get("isActuallyScheduled"))
    if _reached(limits.scheduled_note_limit, scheduled):
        raise validation_error("scheduled_note_limit", max=limits.scheduled_note_limit)
    if _reached(limits.note_draft_limit, len(drafts)):
        raise validation_error("too_many_drafts", max=limits.note_draft_limit)


def _reached(limit: int | None, count: int) -> bool:
    return limit is not None and limit <= DRAFTS_PAGE and count >= limit

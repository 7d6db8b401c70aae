"""Scheduled notes: what the server supports and allows, checked before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.exceptions import HomeAssistantError
import homeassistant.util.dt as dt_util

from .api import DRAFTS_PAGE, MisskeyError
from .const import (
    ATTR_SCHEDULED_AT,
    DOMAIN,
    MAX_CW_LENGTH,
    PERMISSION_WRITE_ACCOUNT,
    PERMISSION_WRITE_NOTES_SCHEDULE,
)
from .coordinator import MisskeyDataUpdateCoordinator
from .errors import validation_error
from .limits import Scheduling, policies, scheduling
from .permissions import require_permission

# What Sharkey's notes/schedule/create does not take; it would drop them and
# post the note federated and outside the channel.
_SHARKEY_UNSUPPORTED = {"localOnly": "local_only", "channelId": "channel"}


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """When and how a note is to be posted later."""

    at: datetime
    method: Scheduling

    @property
    def permission(self) -> str:
        """Return the permission the server's way of scheduling needs."""
        if self.method is Scheduling.DRAFTS:
            return PERMISSION_WRITE_ACCOUNT
        return PERMISSION_WRITE_NOTES_SCHEDULE


def validate_schedule(
    coordinator: MisskeyDataUpdateCoordinator,
    params: Mapping[str, Any],
    options: Mapping[str, Any],
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
    method = scheduling(coordinator)
    if method is None:
        raise validation_error(
            "scheduling_not_supported", instance=coordinator.client.url
        )
    schedule = Schedule(at=at, method=method)
    require_permission(coordinator.config_entry, schedule.permission)
    # Drafts and Sharkey's scheduled notes take Misskey's 100, whatever
    # maxCwLength the server's notes have.
    if (cw := params.get("cw")) is not None and len(cw) > MAX_CW_LENGTH:
        raise validation_error("cw_too_long", length=len(cw), max=MAX_CW_LENGTH)
    if method is Scheduling.SHARKEY:
        for param, option in _SHARKEY_UNSUPPORTED.items():
            if params.get(param):
                raise validation_error("scheduled_option_not_supported", option=option)
    poll: Mapping[str, Any] | None = params.get("poll")
    if poll is not None and (ends := poll.get("expiresAt")) is not None:
        if ends <= at.timestamp() * 1000:
            raise validation_error("poll_ends_before_schedule")
    role = policies(coordinator)
    assert role is not None
    limit = (
        role.scheduled_note_limit
        if method is Scheduling.DRAFTS
        else role.schedule_note_max
    )
    if limit == 0:
        raise validation_error("scheduled_note_limit", max=limit)
    return schedule


async def async_check_schedule_room(
    coordinator: MisskeyDataUpdateCoordinator, schedule: Schedule
) -> None:
    """Refuse a note the role has no room for, by counting the account's drafts.

    Only Misskey's drafts can be counted with the permissions asked for
    (Sharkey's list needs read:notes-schedule); there the server's refusal
    answers. Limits above the 100 drafts one call returns are left to the server.
    """
    if schedule.method is not Scheduling.DRAFTS:
        return
    role = policies(coordinator)
    assert role is not None
    try:
        drafts = await coordinator.client.drafts()
    except MisskeyError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(err)},
        ) from err
    scheduled = sum(1 for draft in drafts if draft.get("isActuallyScheduled"))
    if _reached(role.scheduled_note_limit, scheduled):
        raise validation_error("scheduled_note_limit", max=role.scheduled_note_limit)
    if _reached(role.note_draft_limit, len(drafts)):
        raise validation_error("too_many_drafts", max=role.note_draft_limit)


def _reached(limit: int | None, count: int) -> bool:
    return limit is not None and limit <= DRAFTS_PAGE and count >= limit

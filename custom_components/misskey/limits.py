"""What the instance and the account's role allow; where both limit, the stricter wins.

The instance's limits come from ``meta`` (read at set-up), the role's from the
``policies`` of ``i`` (read with the account, every update). Misskey checks
both, but the role's only after a whole upload has arrived, so checking them
here saves sending a file the server will refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .api import RolePolicies
from .coordinator import MisskeyDataUpdateCoordinator

# Misskey's own default maxFileSize, for servers whose meta does not say.
DEFAULT_MAX_FILE_SIZE: Final = 262_144_000
MIB: Final = 1_048_576
# What a client sends for a file of unknown type; the server finds the type
# from the bytes itself, so it says nothing about what the server will decide.
UNKNOWN_TYPE: Final = "application/octet-stream"


class Scheduling(StrEnum):
    """How the server posts a note later."""

    # Misskey 2025.x and later: a draft with scheduledAt and isActuallyScheduled.
    DRAFTS = "drafts"
    # Some Sharkey builds: notes/schedule/create.
    SHARKEY = "sharkey"


@dataclass(frozen=True, kw_only=True)
class UploadLimit:
    """The largest file the account may upload, and whose limit that is."""

    max_size: int
    by_role: bool

    @property
    def max_mib(self) -> str:
        """Return the limit in MiB, as messages show it."""
        return f"{self.max_size / MIB:g}"


def policies(coordinator: MisskeyDataUpdateCoordinator) -> RolePolicies | None:
    """Return the role's policies, or None on a server without roles."""
    return coordinator.data.policies


def _file_policies(coordinator: MisskeyDataUpdateCoordinator) -> RolePolicies | None:
    """Return the policies that limit uploads: moderators are not held to them."""
    if coordinator.data.is_moderator:
        return None
    return policies(coordinator)


def upload_limit(coordinator: MisskeyDataUpdateCoordinator) -> UploadLimit:
    """Return the smaller of the instance's maxFileSize and the role's maxFileSizeMb."""
    instance = coordinator.meta.max_file_size or DEFAULT_MAX_FILE_SIZE
    role = _file_policies(coordinator)
    if role is not None and role.max_file_size_mb is not None:
        by_role = role.max_file_size_mb * MIB
        if by_role < instance:
            return UploadLimit(max_size=by_role, by_role=True)
    return UploadLimit(max_size=instance, by_role=False)


def file_type_allowed(
    coordinator: MisskeyDataUpdateCoordinator, content_type: str
) -> bool:
    """Return whether the role's uploadableFileTypes allow ``content_type``.

    The patterns match as Misskey's DriveService matches them: ``*`` and
    ``*/*`` allow everything, ``image/*`` a prefix, anything else exactly.
    """
    role = _file_policies(coordinator)
    if role is None or role.uploadable_file_types is None:
        return True
    return mime_type_matches(content_type, role.uploadable_file_types)


def mime_type_matches(content_type: str, patterns: list[str]) -> bool:
    """Return whether ``content_type`` matches one of Misskey's type patterns."""
    for pattern in patterns:
        if pattern in ("*", "*/*"):
            return True
        if pattern.endswith("/*"):
            if content_type.startswith(pattern[:-1]):
                return True
        elif content_type == pattern:
            return True
    return False


def scheduling(coordinator: MisskeyDataUpdateCoordinator) -> Scheduling | None:
    """Return how the server schedules notes, or None if it cannot.

    The policy that limits them says which way the server has: no extra
    request is needed to find out.
    """
    role = policies(coordinator)
    if role is None:
        return None
    if role.scheduled_note_limit is not None:
        return Scheduling.DRAFTS
    if role.schedule_note_max is not None:
        return Scheduling.SHARKEY
    return None

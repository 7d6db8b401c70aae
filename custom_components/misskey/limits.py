"""What the account may do: one value every check of a note or an action reads.

Made once per reading of the account (``coordinator.limits``) from the
instance's limits (``meta``, read at set-up), the role's policies (``i``,
every reading) and the permissions the account granted (the entry). Where the
instance and the role both limit, the stricter wins. Misskey checks both, but
the role's only after a whole upload arrived, so checking them here saves
sending a file the server will refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from .api import Account, Meta, instance_host
from .const import MAX_ALT_TEXT_LENGTH, MAX_CW_LENGTH

# Misskey's own default maxFileSize, for servers whose meta does not say.
DEFAULT_MAX_FILE_SIZE: Final = 262_144_000
MIB: Final = 1_048_576
# What a client sends for a file of unknown type; the server finds the type
# from the bytes itself, so it says nothing about what the server will decide.
UNKNOWN_TYPE: Final = "application/octet-stream"

# How the server posts a note later: Misskey 2025.x and later make a draft
# with scheduledAt; some Sharkey builds have notes/schedule/create.
type Scheduling = Literal["drafts", "sharkey"]
SCHEDULING_DRAFTS: Final = "drafts"
SCHEDULING_SHARKEY: Final = "sharkey"


class AccountLimits:
    """What the account may do, as of its last reading. Read-only."""

    __slots__ = (
        "account",
        "account_id",
        "before_12_108",
        "can_public_note",
        "can_update_bio_media",
        "granted",
        "host",
        "lang_supported",
        "max_alt_text_length",
        "max_cw_length",
        "max_note_text_length",
        "max_upload_size",
        "mention_limit",
        "note_draft_limit",
        "permissions",
        "schedule_note_max",
        "scheduled_note_limit",
        "scheduling",
        "title",
        "upload_limited_by_role",
        "uploadable_file_types",
        "url",
        "version",
    )

    def __init__(
        self,
        meta: Meta,
        account: Account,
        granted: Sequence[str],
        *,
        title: str,
        url: str,
    ) -> None:
        """Read the limits of ``account`` on the instance of ``meta`` at ``url``."""
        # What it was made from, to tell when it is out of date.
        self.account = account
        self.granted = granted
        self.permissions = frozenset(granted)
        self.account_id = account.id
        # The account as messages name it, and its instance.
        self.title = title
        self.url = url
        self.host = instance_host(url)
        self.version = meta.version
        self.before_12_108 = meta.before_12_108
        self.max_note_text_length = meta.max_note_text_length
        self.max_cw_length: int = meta.raw.get("maxCwLength", MAX_CW_LENGTH)
        # Sharkey says so; elsewhere drive/files/create's comment takes 512.
        self.max_alt_text_length: int = meta.raw.get(
            "maxAltTextLength", MAX_ALT_TEXT_LENGTH
        )
        # Misskey 12 takes i/update's lang and drops it.
        self.lang_supported = "lang" in account.raw
        role = account.policies
        self.can_public_note = role.can_public_note if role else None
        self.mention_limit = role.mention_limit if role else None
        self.can_update_bio_media = role.can_update_bio_media if role else None
        self.scheduled_note_limit = role.scheduled_note_limit if role else None
        self.note_draft_limit = role.note_draft_limit if role else None
        self.schedule_note_max = role.schedule_note_max if role else None
        # The policy that limits scheduled notes says which way the server
        # has: no request is needed to find out.
        self.scheduling: Scheduling | None = (
            SCHEDULING_DRAFTS
            if self.scheduled_note_limit is not None
            else SCHEDULING_SHARKEY
            if self.schedule_note_max is not None
            else None
        )
        # Moderators are not held to the role's upload limits.
        files = None if account.is_moderator else role
        instance = meta.max_file_size or DEFAULT_MAX_FILE_SIZE
        by_role = (
            files.max_file_size_mb * MIB
            if files is not None and files.max_file_size_mb is not None
            else None
        )
        if by_role is not None and by_role < instance:
            self.max_upload_size, self.upload_limited_by_role = by_role, True
        else:
            self.max_upload_size, self.upload_limited_by_role = instance, False
        self.uploadable_file_types = (
            tuple(files.uploadable_file_types)
            if files is not None and files.uploadable_file_types is not None
            else None
        )

    @property
    def max_upload_mib(self) -> str:
        """Return the largest upload in MiB, as messages show it."""
        return f"{self.max_upload_size / MIB:g}"

    def file_type_allowed(self, content_type: str) -> bool:
        """Return whether the role's uploadableFileTypes allow ``content_type``."""
        types = self.uploadable_file_types
        return types is None or mime_type_matches(content_type, types)


def mime_type_matches(content_type: str, patterns: Sequence[str]) -> bool:
    """Return whether ``content_type`` matches one of Misskey's type patterns.

    The patterns match as Misskey's DriveService matches them: ``*`` and
    ``*/*`` allow everything, ``image/*`` a prefix, anything else exactly.
    """
    for pattern in patterns:
        if pattern in ("*", "*/*"):
            return True
        if pattern.endswith("/*"):
            if content_type.startswith(pattern[:-1]):
                return True
        elif content_type == pattern:
            return True
    return False

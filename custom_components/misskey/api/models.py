"""What Misskey's answers hold, as the client returns them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
import re
from typing import Any

_VERSION_RE = re.compile(r"(\d+)\.(\d+)")


@dataclass(frozen=True, kw_only=True)
class Meta:
    """What ``meta`` says about the instance."""

    name: str | None
    version: str
    uri: str | None
    max_note_text_length: int
    max_file_size: int | None
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def before_12_108(self) -> bool:
        """Return whether the server has the profile and mute API of Misskey before 12.108.

        12.108 raised the profile's extra fields from 1-4 to 0-16 and added
        mutes that expire; older servers ignore ``expiresAt`` and mute forever.
        Forks number their own versions (Firefish 1.x, CherryPick 4.x), so only
        versions 10 to 12 can be that old.
        """
        if not (match := _VERSION_RE.match(self.version)):
            return False
        version = (int(match[1]), int(match[2]))
        return (10, 0) <= version < (12, 108)


@dataclass(frozen=True, kw_only=True)
class RolePolicies:
    """What the account's roles allow, from ``i``'s ``policies`` (Misskey 13 and later).

    A field is None when the server does not have that policy.
    """

    can_public_note: bool | None
    mention_limit: int | None
    # MiB; Sharkey has none (only the instance's maxFileSize applies there).
    max_file_size_mb: int | None
    # MIME types with ``*`` wildcards, as ``image/*``.
    uploadable_file_types: list[str] | None
    can_update_bio_media: bool | None
    # Misskey's scheduled drafts (2025.x and later).
    scheduled_note_limit: int | None
    note_draft_limit: int | None
    # notes/schedule/create of the Sharkey builds that have it.
    schedule_note_max: int | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolePolicies:
        """Build the policies from Misskey's object."""
        types = data.get("uploadableFileTypes")
        return cls(
            can_public_note=_bool(data.get("canPublicNote")),
            mention_limit=_int(data.get("mentionLimit")),
            max_file_size_mb=_int(data.get("maxFileSizeMb")),
            uploadable_file_types=[str(t) for t in types]
            if isinstance(types, list)
            else None,
            can_update_bio_media=_bool(data.get("canUpdateBioMedia")),
            scheduled_note_limit=_int(data.get("scheduledNoteLimit")),
            note_draft_limit=_int(data.get("noteDraftLimit")),
            schedule_note_max=_int(data.get("scheduleNoteMax")),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class ProfileField:
    """One of the extra name/value pairs of a profile."""

    name: str
    value: str


@dataclass(frozen=True, kw_only=True)
class App:
    """An app made by ``app/create``."""

    id: str
    secret: str = field(repr=False)
    # What the server stored; it keeps names it does not know.
    permission: list[str]


@dataclass(frozen=True, kw_only=True)
class AuthSession:
    """A session made by ``auth/session/generate``."""

    token: str = field(repr=False)
    url: str


@dataclass(frozen=True, kw_only=True)
class Account:
    """A Misskey account, as ``i``, ``users/show`` or ``auth/session/userkey`` return it.

    A flag is None when the server does not send it (Misskey 12 has no
    ``movedTo``); ``policies`` only come with ``i`` on servers with roles.
    """

    id: str
    username: str
    host: str | None
    name: str | None
    avatar_url: str | None
    followers_count: int | None
    following_count: int | None
    notes_count: int | None
    description: str | None = None
    url: str | None = None
    banner_url: str | None = None
    location: str | None = None
    birthday: str | None = None
    lang: str | None = None
    created_at: str | None = None
    is_bot: bool | None = None
    is_cat: bool | None = None
    is_locked: bool | None = None
    is_silenced: bool | None = None
    is_suspended: bool | None = None
    # Whether the server says where the account moved (None: it does not say).
    moved_to: str | None = None
    is_moderator: bool = False
    fields: list[ProfileField] = field(default_factory=list)
    policies: RolePolicies | None = None
    # Not part of Misskey's user object: the client's users/notes answer,
    # which the caller adds (``i`` has no time of the last note).
    last_note_at: datetime | None = None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        """Build an account from Misskey's user object."""
        fields = data.get("fields")
        policies = data.get("policies")
        return cls(
            id=str(data["id"]),
            username=str(data["username"]),
            host=data.get("host"),
            name=data.get("name"),
            avatar_url=data.get("avatarUrl"),
            followers_count=data.get("followersCount"),
            following_count=data.get("followingCount"),
            notes_count=data.get("notesCount"),
            description=data.get("description"),
            url=data.get("url"),
            banner_url=data.get("bannerUrl"),
            location=data.get("location"),
            birthday=data.get("birthday"),
            lang=data.get("lang"),
            created_at=data.get("createdAt"),
            is_bot=_bool(data.get("isBot")),
            is_cat=_bool(data.get("isCat")),
            is_locked=_bool(data.get("isLocked")),
            is_silenced=_bool(data.get("isSilenced")),
            is_suspended=_bool(data.get("isSuspended")),
            moved_to=data.get("movedTo"),
            # Moderators and administrators are not held to their role's
            # upload limits (Misskey's DriveService).
            is_moderator=bool(data.get("isModerator") or data.get("isAdmin")),
            fields=[
                ProfileField(name=str(item["name"]), value=str(item["value"]))
                for item in fields
                if isinstance(item, Mapping) and "name" in item and "value" in item
            ]
            if isinstance(fields, list)
            else [],
            policies=RolePolicies.from_json(policies)
            if isinstance(policies, Mapping)
            else None,
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class UserKey:
    """The outcome of an accepted session."""

    access_token: str = field(repr=False)
    account: Account


@dataclass(frozen=True, kw_only=True)
class Note:
    """A note made by ``notes/create``."""

    id: str
    created_at: str
    text: str | None
    cw: str | None
    visibility: str
    local_only: bool
    file_ids: list[str]
    url: str
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def created(self) -> datetime | None:
        """Return when the note was created, or None if the server did not say."""
        return _datetime(self.created_at)

    @classmethod
    def from_json(cls, note: Mapping[str, Any], instance_url: str) -> Note:
        """Build a note from Misskey's object; a local note's page is on the instance."""
        return cls(
            id=str(note["id"]),
            created_at=str(note.get("createdAt", "")),
            text=note.get("text"),
            cw=note.get("cw"),
            visibility=str(note.get("visibility", "public")),
            local_only=bool(note.get("localOnly", False)),
            file_ids=[str(file_id) for file_id in note.get("fileIds", [])],
            url=str(note.get("url") or f"{instance_url}/notes/{note['id']}"),
            raw=note,
        )


@dataclass(frozen=True, kw_only=True)
class DriveFile:
    """A file in the account's drive, as ``drive/files/create`` returns it."""

    id: str
    name: str
    type: str
    size: int
    url: str | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriveFile:
        """Build a drive file from Misskey's object."""
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            type=str(data.get("type", "application/octet-stream")),
            size=int(data.get("size", 0)),
            url=data.get("url"),
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class Notification:
    """A notification of the account, from ``i/notifications`` or the stream.

    ``note`` is the note it is about: the mention, reply, renote or quote
    itself, or the reacted note for a reaction.
    """

    id: str
    type: str
    created_at: str
    user: Mapping[str, Any] | None
    note: Mapping[str, Any] | None
    reaction: str | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notification:
        """Build a notification from Misskey's object."""
        user = data.get("user")
        note = data.get("note")
        reaction = data.get("reaction")
        return cls(
            id=str(data["id"]),
            type=str(data.get("type", "")),
            created_at=str(data.get("createdAt", "")),
            user=user if isinstance(user, Mapping) else None,
            note=note if isinstance(note, Mapping) else None,
            reaction=reaction if isinstance(reaction, str) else None,
            raw=data,
        )


@dataclass(frozen=True, kw_only=True)
class ScheduledNote:
    """A note the server will post later.

    ``id`` is the draft's ID on Misskey; None where the server does not return
    one (Sharkey's ``notes/schedule/create`` answers with an empty body).
    """

    id: str | None
    scheduled_at: datetime
    file_ids: list[str]
    raw: Mapping[str, Any] = field(repr=False)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None

"""What Misskey's answers hold, as the client returns them.

Plain classes, read-only by convention: a dataclass costs about a millisecond
to define at import, and Home Assistant imports these at every start.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
import re
from typing import Any, ClassVar

_VERSION = r"(\d+)\.(\d+)"


class Model:
    """A value with named fields, compared and shown field by field."""

    __slots__ = ()
    # Not shown: what Misskey sent as it is, and secrets.
    _hidden: ClassVar[frozenset[str]] = frozenset({"raw"})

    def __eq__(self, other: object) -> bool:
        """Return whether ``other`` is of the same class with the same fields."""
        names: tuple[str, ...] = self.__slots__
        return type(other) is type(self) and all(
            getattr(self, name) == getattr(other, name) for name in names
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        """Show the fields, but what Misskey sent whole and secrets."""
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in names
            if name not in self._hidden
        )
        return f"{type(self).__name__}({fields})"


class Meta(Model):
    """What ``meta`` says about the instance."""

    __slots__ = (
        "max_file_size",
        "max_note_text_length",
        "name",
        "raw",
        "uri",
        "version",
    )

    def __init__(
        self,
        *,
        name: str | None,
        version: str,
        uri: str | None,
        max_note_text_length: int,
        max_file_size: int | None,
        raw: Mapping[str, Any],
    ) -> None:
        """Hold the instance's metadata."""
        self.name = name
        self.version = version
        self.uri = uri
        self.max_note_text_length = max_note_text_length
        self.max_file_size = max_file_size
        self.raw = raw

    @property
    def before_12_108(self) -> bool:
        """Return whether the server has the profile and mute API of Misskey before 12.108.

        12.108 raised the profile's extra fields from 1-4 to 0-16 and added
        mutes that expire; older servers ignore ``expiresAt`` and mute forever.
        Forks number their own versions (Firefish 1.x, CherryPick 4.x), so only
        versions 10 to 12 can be that old.
        """
        if not (match := re.match(_VERSION, self.version)):
            return False
        version = (int(match[1]), int(match[2]))
        return (10, 0) <= version < (12, 108)


class RolePolicies(Model):
    """What the account's roles allow, from ``i``'s ``policies`` (Misskey 13 and later).

    A field is None when the server does not have that policy.
    """

    __slots__ = (
        "can_public_note",
        "can_update_bio_media",
        "max_file_size_mb",
        "mention_limit",
        "note_draft_limit",
        "raw",
        "schedule_note_max",
        "scheduled_note_limit",
        "uploadable_file_types",
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        """Read the policies from Misskey's object."""
        types = data.get("uploadableFileTypes")
        self.can_public_note = _bool(data.get("canPublicNote"))
        self.mention_limit = _int(data.get("mentionLimit"))
        # MiB; Sharkey has none (only the instance's maxFileSize applies there).
        self.max_file_size_mb = _int(data.get("maxFileSizeMb"))
        # MIME types with ``*`` wildcards, as ``image/*``.
        self.uploadable_file_types = (
            [str(t) for t in types] if isinstance(types, list) else None
        )
        self.can_update_bio_media = _bool(data.get("canUpdateBioMedia"))
        # Misskey's scheduled drafts (2025.x and later).
        self.scheduled_note_limit = _int(data.get("scheduledNoteLimit"))
        self.note_draft_limit = _int(data.get("noteDraftLimit"))
        # notes/schedule/create of the Sharkey builds that have it.
        self.schedule_note_max = _int(data.get("scheduleNoteMax"))
        self.raw = data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RolePolicies:
        """Build the policies from Misskey's object."""
        return cls(data)


class ProfileField(Model):
    """One of the extra name/value pairs of a profile."""

    __slots__ = ("name", "value")

    def __init__(self, *, name: str, value: str) -> None:
        """Hold the pair."""
        self.name = name
        self.value = value


class App(Model):
    """An app made by ``app/create``."""

    __slots__ = ("id", "permission", "secret")
    _hidden = frozenset({"secret"})

    def __init__(self, *, id: str, secret: str, permission: list[str]) -> None:
        """Hold the app; ``permission`` is what the server stored (it keeps unknown names)."""
        self.id = id
        self.secret = secret
        self.permission = permission


class AuthSession(Model):
    """A session made by ``auth/session/generate``."""

    __slots__ = ("token", "url")
    _hidden = frozenset({"token"})

    def __init__(self, *, token: str, url: str) -> None:
        """Hold the session."""
        self.token = token
        self.url = url


class Account(Model):
    """A Misskey account, as ``i``, ``users/show`` or ``auth/session/userkey`` return it.

    A flag is None when the server does not send it (Misskey 12 has no
    ``movedTo``); ``policies`` only come with ``i`` on servers with roles.
    ``last_note_at`` is not Misskey's: ``i`` has no time of the last note, so
    whoever read it from ``users/notes`` sets it.
    """

    __slots__ = (
        "avatar_url",
        "banner_url",
        "birthday",
        "created_at",
        "description",
        "fields",
        "followers_count",
        "following_count",
        "host",
        "id",
        "is_bot",
        "is_cat",
        "is_locked",
        "is_moderator",
        "is_silenced",
        "is_suspended",
        "lang",
        "last_note_at",
        "location",
        "moved_to",
        "name",
        "notes_count",
        "policies",
        "raw",
        "url",
        "username",
    )

    def __init__(self, data: Mapping[str, Any]) -> None:
        """Read the account from Misskey's user object."""
        fields = data.get("fields")
        policies = data.get("policies")
        self.id = str(data["id"])
        self.username = str(data["username"])
        self.host: str | None = data.get("host")
        self.name: str | None = data.get("name")
        self.avatar_url: str | None = data.get("avatarUrl")
        self.followers_count: int | None = data.get("followersCount")
        self.following_count: int | None = data.get("followingCount")
        self.notes_count: int | None = data.get("notesCount")
        self.description: str | None = data.get("description")
        self.url: str | None = data.get("url")
        self.banner_url: str | None = data.get("bannerUrl")
        self.location: str | None = data.get("location")
        self.birthday: str | None = data.get("birthday")
        self.lang: str | None = data.get("lang")
        self.created_at: str | None = data.get("createdAt")
        self.is_bot = _bool(data.get("isBot"))
        self.is_cat = _bool(data.get("isCat"))
        self.is_locked = _bool(data.get("isLocked"))
        self.is_silenced = _bool(data.get("isSilenced"))
        self.is_suspended = _bool(data.get("isSuspended"))
        # Where the account moved, if the server says (None: it does not say).
        self.moved_to: str | None = data.get("movedTo")
        # Moderators and administrators are not held to their role's upload
        # limits (Misskey's DriveService).
        self.is_moderator = bool(data.get("isModerator") or data.get("isAdmin"))
        self.fields = (
            [
                ProfileField(name=str(item["name"]), value=str(item["value"]))
                for item in fields
                if isinstance(item, Mapping) and "name" in item and "value" in item
            ]
            if isinstance(fields, list)
            else []
        )
        self.policies = (
            RolePolicies(policies) if isinstance(policies, Mapping) else None
        )
        self.last_note_at: datetime | None = None
        self.raw = data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        """Build an account from Misskey's user object."""
        return cls(data)


class UserKey(Model):
    """The outcome of an accepted session."""

    __slots__ = ("access_token", "account")
    _hidden = frozenset({"access_token"})

    def __init__(self, *, access_token: str, account: Account) -> None:
        """Hold the access token and whose it is."""
        self.access_token = access_token
        self.account = account


class Note(Model):
    """A note made by ``notes/create``."""

    __slots__ = (
        "created_at",
        "cw",
        "file_ids",
        "id",
        "local_only",
        "raw",
        "text",
        "url",
        "visibility",
    )

    def __init__(self, note: Mapping[str, Any], instance_url: str) -> None:
        """Read Misskey's note object; a local note's page is on the instance."""
        self.id = str(note["id"])
        self.created_at = str(note.get("createdAt", ""))
        self.text: str | None = note.get("text")
        self.cw: str | None = note.get("cw")
        self.visibility = str(note.get("visibility", "public"))
        self.local_only = bool(note.get("localOnly", False))
        self.file_ids = [str(file_id) for file_id in note.get("fileIds", [])]
        self.url = str(note.get("url") or f"{instance_url}/notes/{note['id']}")
        self.raw = note

    @property
    def created(self) -> datetime | None:
        """Return when the note was created, or None if the server did not say."""
        return _datetime(self.created_at)

    @classmethod
    def from_json(cls, note: Mapping[str, Any], instance_url: str) -> Note:
        """Build a note from Misskey's object."""
        return cls(note, instance_url)


class DriveFile(Model):
    """A file in the account's drive, as ``drive/files/create`` returns it."""

    __slots__ = ("id", "name", "raw", "size", "type", "url")

    def __init__(self, data: Mapping[str, Any]) -> None:
        """Read Misskey's drive file object."""
        self.id = str(data["id"])
        self.name = str(data.get("name", ""))
        self.type = str(data.get("type", "application/octet-stream"))
        self.size = int(data.get("size", 0))
        self.url: str | None = data.get("url")
        self.raw = data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriveFile:
        """Build a drive file from Misskey's object."""
        return cls(data)


class Notification(Model):
    """A notification of the account, from ``i/notifications`` or the stream.

    ``note`` is the note it is about: the mention, reply, renote or quote
    itself, or the reacted note for a reaction.
    """

    __slots__ = ("created_at", "id", "note", "raw", "reaction", "type", "user")

    def __init__(self, data: Mapping[str, Any]) -> None:
        """Read Misskey's notification object."""
        user = data.get("user")
        note = data.get("note")
        reaction = data.get("reaction")
        self.id = str(data["id"])
        self.type = str(data.get("type", ""))
        self.created_at = str(data.get("createdAt", ""))
        self.user: Mapping[str, Any] | None = (
            user if isinstance(user, Mapping) else None
        )
        self.note: Mapping[str, Any] | None = (
            note if isinstance(note, Mapping) else None
        )
        self.reaction = reaction if isinstance(reaction, str) else None
        self.raw = data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notification:
        """Build a notification from Misskey's object."""
        return cls(data)


class ScheduledNote(Model):
    """A note the server will post later.

    ``id`` is the draft's ID on Misskey; None where the server does not return
    one (Sharkey's ``notes/schedule/create`` answers with an empty body).
    """

    __slots__ = ("file_ids", "id", "raw", "scheduled_at")

    def __init__(
        self,
        *,
        id: str | None,
        scheduled_at: datetime,
        file_ids: list[str],
        raw: Mapping[str, Any],
    ) -> None:
        """Hold what the server scheduled."""
        self.id = id
        self.scheduled_at = scheduled_at
        self.file_ids = file_ids
        self.raw = raw


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

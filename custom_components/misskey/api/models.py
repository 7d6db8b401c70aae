"""What Misskey's answers hold, as the client returns them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Meta:
    """What ``meta`` says about the instance."""

    name: str | None
    version: str
    uri: str | None
    max_note_text_length: int
    max_file_size: int | None
    raw: Mapping[str, Any] = field(repr=False)


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
    """A Misskey account, as ``i`` or ``auth/session/userkey`` returns it."""

    id: str
    username: str
    host: str | None
    name: str | None
    avatar_url: str | None
    followers_count: int | None
    following_count: int | None
    notes_count: int | None
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        """Build an account from Misskey's user object."""
        return cls(
            id=str(data["id"]),
            username=str(data["username"]),
            host=data.get("host"),
            name=data.get("name"),
            avatar_url=data.get("avatarUrl"),
            followers_count=data.get("followersCount"),
            following_count=data.get("followingCount"),
            notes_count=data.get("notesCount"),
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

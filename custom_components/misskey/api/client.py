"""Asynchronous client for the Misskey API: one method for each endpoint used.

How a call travels (JSON over POST, time limits, rate limits, uploads) is the
transport's (transport.py); here is what each endpoint takes and answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
import hashlib
from typing import Any, Final

from .errors import MisskeyResponseError, MisskeyServerError
from .models import (
    Account,
    App,
    AuthSession,
    Meta,
    Note,
    Notification,
    ScheduledNote,
    UserKey,
)
from .transport import Transport

DEFAULT_MAX_NOTE_TEXT_LENGTH: Final = 3000
# The most notes/drafts/list returns at once.
DRAFTS_PAGE: Final = 100

NOTES_CREATE: Final = "notes/create"


def credential_from_access_token(access_token: str, app_secret: str) -> str:
    """Return the ``i`` a legacy app uses: sha256 of the access token and app secret."""
    return hashlib.sha256((access_token + app_secret).encode()).hexdigest()


class MisskeyClient(Transport):
    """A client for one Misskey instance, optionally signed in with ``i``.

    Each method is one endpoint: what to send, and what its answer means.
    """

    async def meta(self) -> Meta:
        """Return the instance's metadata; raise MisskeyResponseError if it is no Misskey."""
        data = await self.request("meta", {"detail": False})
        if not isinstance(data, Mapping) or not isinstance(data.get("version"), str):
            raise MisskeyResponseError("meta: the answer has no version")
        if not any(key in data for key in ("uri", "maxNoteTextLength")):
            raise MisskeyResponseError("meta: the answer is not Misskey's")
        length = data.get("maxNoteTextLength")
        size = data.get("maxFileSize")
        return Meta(
            name=data.get("name"),
            version=data["version"],
            uri=data.get("uri"),
            max_note_text_length=length
            if isinstance(length, int)
            else DEFAULT_MAX_NOTE_TEXT_LENGTH,
            max_file_size=size if isinstance(size, int) else None,
            raw=data,
        )

    async def create_app(
        self,
        name: str,
        description: str,
        permission: list[str],
        callback_url: str | None = None,
    ) -> App:
        """Register an app and return its ID and secret."""
        data = await self.request(
            "app/create",
            {
                "name": name,
                "description": description,
                "permission": permission,
                "callbackUrl": callback_url,
            },
        )
        granted = data.get("permission") if isinstance(data, Mapping) else None
        return App(
            id=str(_field(data, "app/create", "id")),
            secret=str(_field(data, "app/create", "secret")),
            permission=[str(name) for name in granted]
            if isinstance(granted, list)
            else list(permission),
        )

    async def generate_session(self, app_secret: str) -> AuthSession:
        """Start an authorization session for the app."""
        data = await self.request("auth/session/generate", {"appSecret": app_secret})
        return AuthSession(
            token=str(_field(data, "auth/session/generate", "token")),
            url=str(_field(data, "auth/session/generate", "url")),
        )

    async def user_key(self, app_secret: str, token: str) -> UserKey:
        """Return the access token of a session the user has allowed.

        Raises MisskeySessionPendingError while the user has not decided yet.
        """
        data = await self.request(
            "auth/session/userkey", {"appSecret": app_secret, "token": token}
        )
        return UserKey(
            access_token=str(_field(data, "auth/session/userkey", "accessToken")),
            account=Account.from_json(_field(data, "auth/session/userkey", "user")),
        )

    async def account(self) -> Account:
        """Return the signed-in account."""
        data = await self.request("i", authenticated=True)
        if not isinstance(data, Mapping) or "id" not in data or "username" not in data:
            raise MisskeyResponseError("i: the answer is not an account")
        return Account.from_json(data)

    async def notifications(
        self, *, since_id: str | None = None, limit: int = 100
    ) -> list[Notification]:
        """Return notifications, oldest first, after ``since_id`` if given.

        They stay unread: ``markAsRead`` defaults to true on the server and
        would clear the user's badge. Misskey sends ``sinceId`` pages oldest
        first and others newest first; both come back oldest first here.
        """
        # Paged and ordered as a timeline is.
        items = await self.timeline(
            "i/notifications", {"markAsRead": False}, since_id=since_id, limit=limit
        )
        return [Notification.from_json(item) for item in items]

    async def user(self, username: str, host: str | None = None) -> Account:
        """Return a user by name; ``host`` None is a user of this instance."""
        data = await self.request(
            "users/show", {"username": username, "host": host}, authenticated=True
        )
        if not isinstance(data, Mapping) or "id" not in data or "username" not in data:
            raise MisskeyResponseError("users/show: the answer is not a user")
        return Account.from_json(data)

    async def react(self, note_id: str, reaction: str) -> None:
        """React to a note; another reaction of the account replaces its earlier one."""
        await self.request(
            "notes/reactions/create",
            {"noteId": note_id, "reaction": reaction},
            authenticated=True,
        )

    async def delete_note(self, note_id: str) -> None:
        """Delete a note of the account."""
        await self.request("notes/delete", {"noteId": note_id}, authenticated=True)

    async def custom_emoji_exists(self, name: str) -> bool | None:
        """Return whether the instance has a custom emoji; None if it cannot tell.

        Misskey answers an unknown name with a 500 whose cause is
        ``EntityNotFoundError``. Misskey 12 has no ``emoji`` endpoint: its
        plain 404 is a MisskeyResponseError, as a fork's Fastify 404 would be.
        """
        try:
            await self.request("emoji", {"name": name})
        except MisskeyServerError as err:
            cause = err.info.get("e")
            if (
                isinstance(cause, Mapping)
                and cause.get("code") == "EntityNotFoundError"
            ):
                return False
            raise
        except MisskeyResponseError:
            return None
        return True

    async def delete_file(self, file_id: str) -> None:
        """Delete a file from the account's drive."""
        await self.request(
            "drive/files/delete", {"fileId": file_id}, authenticated=True
        )

    async def create_note(
        self, params: Mapping[str, Any], *, max_wait: float = 0.0
    ) -> Note:
        """Post a note; ``params`` are ``notes/create``'s, in Misskey's spelling.

        A 429 is waited out for up to ``max_wait`` seconds in all (see
        retry_rate_limited); a timeout or a broken connection is never retried.
        """
        if max_wait:
            data = await self.retry_rate_limited(
                lambda: self.request(NOTES_CREATE, params, authenticated=True),
                max_wait,
            )
        else:
            data = await self.request(NOTES_CREATE, params, authenticated=True)
        note = _field(data, "notes/create", "createdNote")
        if not isinstance(note, Mapping) or "id" not in note:
            raise MisskeyResponseError("notes/create: the answer has no note")
        return Note.from_json(note, self.url)

    async def user_by_id(self, user_id: str) -> Account:
        """Return a user by ID."""
        data = await self.request("users/show", {"userId": user_id}, authenticated=True)
        return _account(data, "users/show")

    async def latest_note(self, user_id: str) -> Note | None:
        """Return the user's newest note (replies, renotes and channel notes too).

        Signed in, so the account's own followers-only and direct notes count.
        Misskey 12 ignores the parameters it does not know; its defaults
        already include replies and renotes.
        """
        data = await self.request(
            "users/notes",
            {
                "userId": user_id,
                "limit": 1,
                "withReplies": True,
                "withRenotes": True,
                "withChannelNotes": True,
            },
            authenticated=True,
        )
        if not isinstance(data, list):
            raise MisskeyResponseError("users/notes: the answer is not a list")
        if not data:
            return None
        if not isinstance(data[0], Mapping) or "id" not in data[0]:
            raise MisskeyResponseError("users/notes: the answer has no note")
        return Note.from_json(data[0], self.url)

    async def mute(self, user_id: str, expires_at: datetime | None = None) -> None:
        """Mute a user, until ``expires_at`` or for good.

        Misskey before 12.108 ignores ``expiresAt`` and mutes for good.
        """
        params: dict[str, Any] = {"userId": user_id}
        if expires_at is not None:
            params["expiresAt"] = _epoch_ms(expires_at)
        await self.request("mute/create", params, authenticated=True)

    async def unmute(self, user_id: str) -> None:
        """Stop muting a user."""
        await self.request("mute/delete", {"userId": user_id}, authenticated=True)

    async def update_profile(self, params: Mapping[str, Any]) -> Account:
        """Change the signed-in account's profile (``i/update``); return the account."""
        data = await self.request("i/update", params, authenticated=True)
        return _account(data, "i/update")

    async def drafts(self) -> list[Mapping[str, Any]]:
        """Return up to DRAFTS_PAGE of the account's drafts (Misskey 2025.x and later).

        Scheduled ones have ``isActuallyScheduled``.
        """
        data = await self.request(
            "notes/drafts/list", {"limit": DRAFTS_PAGE}, authenticated=True
        )
        if not isinstance(data, list):
            raise MisskeyResponseError("notes/drafts/list: the answer is not a list")
        return [draft for draft in data if isinstance(draft, Mapping)]

    async def create_scheduled_draft(
        self, params: Mapping[str, Any], scheduled_at: datetime
    ) -> ScheduledNote:
        """Have Misskey post a note at ``scheduled_at``: a draft it posts itself.

        ``params`` are ``notes/create``'s, which ``notes/drafts/create`` shares.
        """
        data = await self.request(
            "notes/drafts/create",
            {
                **params,
                "scheduledAt": _epoch_ms(scheduled_at),
                "isActuallyScheduled": True,
            },
            authenticated=True,
        )
        draft = _field(data, "notes/drafts/create", "createdDraft")
        if not isinstance(draft, Mapping) or "id" not in draft:
            raise MisskeyResponseError("notes/drafts/create: the answer has no draft")
        return ScheduledNote(
            id=str(draft["id"]),
            scheduled_at=scheduled_at,
            file_ids=[str(file_id) for file_id in draft.get("fileIds", [])],
            raw=draft,
        )

    async def schedule_note(
        self, params: Mapping[str, Any], scheduled_at: datetime
    ) -> ScheduledNote:
        """Have a Sharkey build with ``notes/schedule/create`` post a note later.

        It answers with an empty string, so the scheduled note's ID is unknown.
        """
        await self.request(
            "notes/schedule/create",
            {**params, "scheduleNote": {"scheduledAt": _epoch_ms(scheduled_at)}},
            authenticated=True,
        )
        return ScheduledNote(
            id=None,
            scheduled_at=scheduled_at,
            file_ids=list(params.get("fileIds", [])),
            raw={},
        )

    async def named_items(
        self, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str]]:
        """Return (ID, name) of what a list endpoint answers: antennas, lists, channels."""
        data = await self.request(endpoint, dict(params or {}), authenticated=True)
        if not isinstance(data, list):
            raise MisskeyResponseError(f"{endpoint}: the answer is not a list")
        return [
            (str(item["id"]), str(item.get("name") or item["id"]))
            for item in data
            if isinstance(item, Mapping) and "id" in item
        ]

    async def timeline(
        self,
        endpoint: str,
        params: Mapping[str, Any],
        *,
        since_id: str | None = None,
        limit: int = 100,
    ) -> list[Mapping[str, Any]]:
        """Return notes of a timeline endpoint, oldest first, after ``since_id`` if given.

        Misskey sends ``sinceId`` pages oldest first, Misskey 12 and some
        timelines newest first; both come back oldest first here.
        """
        body: dict[str, Any] = {**params, "limit": limit}
        if since_id is not None:
            body["sinceId"] = since_id
        data = await self.request(endpoint, body, authenticated=True)
        if not isinstance(data, list):
            raise MisskeyResponseError(f"{endpoint}: the answer is not a list")
        notes = [item for item in data if isinstance(item, Mapping) and "id" in item]
        # Misskey's IDs sort by time as strings; its own sinceId compares them so.
        return sorted(notes, key=lambda note: str(note["id"]))


def _account(data: Any, endpoint: str) -> Account:
    if not isinstance(data, Mapping) or "id" not in data or "username" not in data:
        raise MisskeyResponseError(f"{endpoint}: the answer is not a user")
    return Account.from_json(data)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _field(data: Any, endpoint: str, name: str) -> Any:
    if not isinstance(data, Mapping) or name not in data:
        raise MisskeyResponseError(f"{endpoint}: the answer has no {name}")
    return data[name]

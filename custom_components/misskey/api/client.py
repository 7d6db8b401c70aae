"""Asynchronous client for the Misskey API.

Every call is a POST with a JSON body, and the credential travels in the body
field ``i`` because the ``Authorization`` header only exists from Misskey 13.14.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from datetime import datetime
import hashlib
import ipaddress
import json
import logging
import re
from typing import Any, Final

import aiohttp
from yarl import URL

from .errors import (
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyConnectionError,
    MisskeyRateLimitError,
    MisskeyResponseError,
    MisskeyServerError,
    MisskeyTimeoutError,
    decode_answer,
)
from .gate import RateLimitGate, Turn
from .models import (
    Account,
    App,
    AuthSession,
    DriveFile,
    Meta,
    Note,
    Notification,
    ScheduledNote,
    UserKey,
)
from .upload import StreamPayload, UploadData, UploadStream

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_MAX_NOTE_TEXT_LENGTH: Final = 3000
# An upload may take minutes; it fails only when it stops making progress
# for this long (no chunk sent, or no answer after the last one).
DEFAULT_UPLOAD_TIMEOUT: Final = 60.0
# The most notes/drafts/list returns at once.
DRAFTS_PAGE: Final = 100

NOTES_CREATE: Final = "notes/create"
DRIVE_FILES_CREATE: Final = "drive/files/create"

_HOSTNAME_RE: Final = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# A fediverse handle, @user@host or user@host; the host may have a port.
_HANDLE_RE: Final = re.compile(r"@?[A-Za-z0-9_.-]+@(?P<host>[^@/\s]+)/?")


class _Waiting:
    """A call of retry_rate_limited: until when its requests may wait, its turn."""

    __slots__ = ("deadline", "turn")

    def __init__(self, deadline: float, turn: Turn | None) -> None:
        self.deadline = deadline
        # Taken before the call, for its request to ``endpoint``.
        self.turn = turn


_WAITING: ContextVar[_Waiting | None] = ContextVar("misskey_waiting", default=None)


def credential_from_access_token(access_token: str, app_secret: str) -> str:
    """Return the ``i`` a legacy app uses: sha256 of the access token and app secret."""
    return hashlib.sha256((access_token + app_secret).encode()).hexdigest()


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def scheme_assumed(raw: str) -> bool:
    """Tell whether normalize_url chose https because no scheme was typed."""
    return "://" not in raw


def normalize_url(raw: str) -> str:
    """Return the instance URL as scheme, host and port, or raise ValueError.

    ``misskey.io``, ``https://misskey.io/`` and ``https://misskey.io/@someone``
    all become ``https://misskey.io``, and so do the handles ``@me@misskey.io``
    and ``me@misskey.io`` that people copy from a profile: without a scheme,
    ``user@host`` can only be a handle. With one it is a URL's user name and
    password, which is refused.
    """
    text = raw.strip()
    if not text:
        raise ValueError("empty URL")
    if scheme_assumed(text):
        if handle := _HANDLE_RE.fullmatch(text):
            text = handle["host"]
        elif text.startswith("@"):
            raise ValueError("a handle without its server")
        text = f"https://{text}"
    try:
        url = URL(text)
    except ValueError as err:
        raise ValueError("not a URL") from err
    if url.scheme not in ("http", "https"):
        raise ValueError("only http and https are supported")
    host = url.raw_host
    if not host or not (_HOSTNAME_RE.fullmatch(host) or _is_ip_address(host)):
        raise ValueError("not a host name")
    if url.user is not None or url.password is not None:
        raise ValueError("credentials in the URL are not supported")
    return str(URL.build(scheme=url.scheme, host=host, port=url.explicit_port)).rstrip(
        "/"
    )


def instance_host(url: str) -> str:
    """Return the host (and a non-default port) that names an instance."""
    return URL(url).host_port_subcomponent or url


class MisskeyClient:
    """A client for one Misskey instance, optionally signed in with ``i``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        credential: str | None = None,
        *,
        request_timeout: float | None = None,
        upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT,
        json_loads: Callable[[bytes], Any] = json.loads,
    ) -> None:
        """Use the caller's aiohttp session; the client never closes it.

        ``json_loads`` decodes each answer (an application may have a faster
        one than the standard library's).
        """
        self._session = session
        self._json_loads = json_loads
        self.url = url.rstrip("/")
        self._credential = credential
        self.request_timeout = (
            DEFAULT_TIMEOUT if request_timeout is None else request_timeout
        )
        self.upload_timeout = upload_timeout
        self._gate = RateLimitGate()

    def close(self) -> None:
        """Stop the account's gate, as when its entry is unloaded.

        Every call waiting for its turn (a 429 held, or calls in flight ahead
        of it) raises MisskeyClientClosedError at once, and so does every later
        call; nothing more is sent. Requests already sent finish. The aiohttp
        session is the caller's and stays open.
        """
        self._gate.close()

    async def retry_rate_limited[T](
        self,
        call: Callable[[], Awaitable[T]],
        max_wait: float,
        *,
        endpoint: str | None = None,
    ) -> T:
        """Await ``call()``, again after each 429, for ``max_wait`` seconds in all.

        Only for calls that are safe to repeat: a call Misskey refused with 429
        did nothing. Any other error ends the call. The requests ``call`` makes
        with this client wait their turn in the account's gate, and
        MisskeyRateLimitError is raised once a turn would come too late.
        With ``endpoint``, the turn of the call's request to it is taken before
        ``call`` is awaited: a source it opens is not held open meanwhile.
        """
        deadline = asyncio.get_running_loop().time() + max_wait
        while True:
            turn = None
            if endpoint is not None:
                turn = await self._gate[endpoint].enter(deadline)
            token = _WAITING.set(_Waiting(deadline, turn))
            try:
                return await call()
            except MisskeyRateLimitError as err:
                # Waiting would take too long: the server's own answer says why.
                if (
                    err.endpoint is None
                    or self._gate[err.endpoint].ready_at() > deadline
                ):
                    raise
                _LOGGER.debug(
                    "%s: rate limited for %.3f s; waiting for a turn",
                    err.endpoint,
                    err.retry_after or 0,
                )
            finally:
                _WAITING.reset(token)
                if turn is not None:
                    turn.lane.leave(turn)

    async def _turn(self, endpoint: str) -> Turn:
        """Return the turn of a request: the one taken for it, or one it waits for.

        Within retry_rate_limited it waits as long as its deadline; else only
        while calls are in flight, not for the server's limit: while the gate
        holds the endpoint it raises MisskeyRateLimitError at once.
        """
        waiting = _WAITING.get()
        if waiting is not None and (turn := waiting.turn) is not None:
            if turn.index < 0 and turn.lane.endpoint == endpoint:
                return turn
        lane = self._gate[endpoint]
        return await lane.enter(
            waiting.deadline if waiting is not None else lane.loop.time()
        )

    async def request(
        self,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        *,
        authenticated: bool = False,
    ) -> Any:
        """Call an endpoint and return its decoded answer (None for 204)."""
        body = dict(params or {})
        if authenticated:
            if self._credential is None:
                raise MisskeyAuthenticationError(
                    401, "CREDENTIAL_REQUIRED", "no credential"
                )
            body["i"] = self._credential
        with await self._turn(endpoint) as turn:
            try:
                # aiohttp's total timeout (connecting, sending, reading the
                # answer): it times every request anyway, a second timer
                # would only cost.
                response = await self._session.post(
                    f"{self.url}/api/{endpoint}",
                    json=body,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                )
                async with response:
                    answer = await response.read()
                turn.remaining = _remaining(response.headers)
            except TimeoutError:
                raise MisskeyTimeoutError(
                    f"{endpoint}: no answer in {self.request_timeout} s"
                ) from None
            except aiohttp.ClientConnectorError as err:
                raise MisskeyCannotConnectError(
                    f"{endpoint}: {type(err).__name__}: {err}"
                ) from None
            except aiohttp.ClientError as err:
                raise MisskeyConnectionError(
                    f"{endpoint}: {type(err).__name__}: {err}"
                ) from None
            return decode_answer(
                endpoint, response.status, response.headers, answer, self._json_loads
            )

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
        params: dict[str, Any] = {"limit": limit, "markAsRead": False}
        if since_id is not None:
            params["sinceId"] = since_id
        data = await self.request("i/notifications", params, authenticated=True)
        if not isinstance(data, list):
            raise MisskeyResponseError("i/notifications: the answer is not a list")
        notifications = [
            Notification.from_json(item)
            for item in data
            if isinstance(item, Mapping) and "id" in item
        ]
        # Misskey's IDs sort by time as strings; its own sinceId compares them so.
        return sorted(notifications, key=lambda notification: notification.id)

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

    async def upload_file(
        self,
        *,
        name: str,
        data: UploadData,
        content_type: str | None = None,
        comment: str | None = None,
        is_sensitive: bool = False,
        size: int | None = None,
    ) -> DriveFile:
        """Upload a file to the account's drive (``drive/files/create``) and return it.

        ``data`` is sent as it is read, a chunk at a time, and never held whole:
        bytes, an async iterable of bytes, or a binary file object (read in the
        default executor). With ``size`` the request has a Content-Length and
        the data must be exactly that long, else MisskeyUploadSourceError;
        without it the request is chunked. An exception that ``data`` raises
        aborts the upload and propagates unchanged, so a caller can stop an
        upload from inside its own stream (for example when a download grows
        past a limit).

        ``comment`` is the alt text. The fields go before the file part
        because Misskey only reads the fields that precede it.

        There is no overall time limit, as a large file may take minutes: the
        upload fails with MisskeyTimeoutError when no chunk could be sent, or
        no answer came after the last one, for ``upload_timeout`` seconds.
        MisskeyFileTooLargeError: the server refused the size (413).
        """
        if self._credential is None:
            raise MisskeyAuthenticationError(
                401, "CREDENTIAL_REQUIRED", "no credential"
            )
        endpoint = DRIVE_FILES_CREATE
        fields = {"i": self._credential, "name": name}
        if comment is not None:
            fields["comment"] = comment
        fields["isSensitive"] = "true" if is_sensitive else "false"
        fields["force"] = "true"
        loop = asyncio.get_running_loop()
        stream: UploadStream | None = None
        with await self._turn(endpoint) as turn:
            try:
                async with asyncio.timeout(self.upload_timeout) as deadline:
                    stream = UploadStream(
                        data,
                        size,
                        lambda: deadline.reschedule(loop.time() + self.upload_timeout),
                    )
                    form = aiohttp.MultipartWriter("form-data")
                    for key, value in fields.items():
                        form.append(value).set_content_disposition(
                            "form-data", name=key
                        )
                    form.append_payload(
                        StreamPayload(
                            stream.chunks(),
                            size=size,
                            content_type=content_type or "application/octet-stream",
                        )
                    ).set_content_disposition("form-data", name="file", filename=name)
                    response = await self._session.post(
                        f"{self.url}/api/{endpoint}",
                        data=form,
                        allow_redirects=False,
                        # No total: the session's default (5 min) would cut off
                        # slow uploads; the progress deadline above limits them.
                        timeout=aiohttp.ClientTimeout(
                            total=None,
                            sock_connect=self.request_timeout,
                            sock_read=self.upload_timeout,
                        ),
                    )
                    async with response:
                        answer = await response.read()
                turn.remaining = _remaining(response.headers)
            except TimeoutError:
                if stream is not None and stream.error is not None:
                    raise stream.error from None
                raise MisskeyTimeoutError(
                    f"{endpoint}: no progress in {self.upload_timeout} s"
                ) from None
            except aiohttp.ClientError as err:
                if stream is not None and stream.error is not None:
                    raise stream.error from None
                if isinstance(err, aiohttp.ClientConnectorError):
                    raise MisskeyCannotConnectError(
                        f"{endpoint}: {type(err).__name__}: {err}"
                    ) from None
                raise MisskeyConnectionError(
                    f"{endpoint}: {type(err).__name__}: {err}"
                ) from None
            result = decode_answer(
                endpoint, response.status, response.headers, answer, self._json_loads
            )
        if not isinstance(result, Mapping) or "id" not in result:
            raise MisskeyResponseError(f"{endpoint}: the answer is not a drive file")
        return DriveFile.from_json(result)

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


def _account(data: Any, endpoint: str) -> Account:
    if not isinstance(data, Mapping) or "id" not in data or "username" not in data:
        raise MisskeyResponseError(f"{endpoint}: the answer is not a user")
    return Account.from_json(data)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _remaining(headers: Mapping[str, str]) -> int | None:
    """Return how many more calls Sharkey says it takes now (X-RateLimit-Remaining)."""
    if (value := headers.get("X-RateLimit-Remaining")) is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _field(data: Any, endpoint: str, name: str) -> Any:
    if not isinstance(data, Mapping) or name not in data:
        raise MisskeyResponseError(f"{endpoint}: the answer has no {name}")
    return data[name]

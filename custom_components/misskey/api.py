"""Asynchronous client for the Misskey API.

It knows nothing of Home Assistant, so it could live in a library of its own.
Every call is a POST with a JSON body, and the credential travels in the body
field ``i`` because the ``Authorization`` header only exists from Misskey 13.14.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
import hashlib
import ipaddress
import json
import logging
import re
import time
from typing import IO, Any, Final

import aiohttp
from aiohttp.payload import AsyncIterablePayload
from yarl import URL

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_MAX_NOTE_TEXT_LENGTH: Final = 3000
# An upload may take minutes; it fails only when it stops making progress
# for this long (no chunk sent, or no answer after the last one).
DEFAULT_UPLOAD_TIMEOUT: Final = 60.0
UPLOAD_CHUNK_SIZE: Final = 64 * 1024

# Misskey ≤ 13.13 and Firefish answer a bad credential with 403 instead of 401;
# only the error code tells the two cases apart.
_AUTHENTICATION_CODES: Final = frozenset(
    {"AUTHENTICATION_FAILED", "CREDENTIAL_REQUIRED"}
)
_HOSTNAME_RE: Final = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


class MisskeyError(Exception):
    """Base class of every error the client raises."""


class MisskeyConnectionError(MisskeyError):
    """The server could not be reached."""


class MisskeyCannotConnectError(MisskeyConnectionError):
    """No connection could be made, so the request was not carried out."""


class MisskeyTimeoutError(MisskeyConnectionError):
    """The server did not answer in time; the request may have been carried out."""


class MisskeyResponseError(MisskeyError):
    """The server answered with something that is not Misskey's API."""


class MisskeyApiError(MisskeyError):
    """Misskey answered with an error object."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str | None = None,
        error_id: str | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep the fields of Misskey's error body."""
        super().__init__(f"{code or 'HTTP_' + str(status)}: {message or 'no message'}")
        self.status = status
        self.code = code
        self.message = message
        self.error_id = error_id
        self.info: Mapping[str, Any] = info or {}


class MisskeyAuthenticationError(MisskeyApiError):
    """The credential is missing, wrong or revoked."""


class MisskeyPermissionDeniedError(MisskeyApiError):
    """The credential lacks the permission the endpoint needs."""


class MisskeyRateLimitError(MisskeyApiError):
    """The server refused the call for now; it did nothing."""

    retry_after: float | None = None


class MisskeySessionPendingError(MisskeyApiError):
    """The user has not allowed access yet."""


class MisskeyNoSuchSessionError(MisskeyApiError):
    """The session is unknown, belongs to another app, or was already used."""


class MisskeyNoSuchAppError(MisskeyApiError):
    """The app secret is unknown."""


class MisskeyInvalidParamError(MisskeyApiError):
    """A parameter was refused; ``param`` and ``reason`` say which and why."""

    @property
    def param(self) -> str | None:
        """Return the name of the refused parameter."""
        param = self.info.get("param")
        return str(param) if param is not None else None

    @property
    def reason(self) -> str | None:
        """Return why the parameter was refused."""
        reason = self.info.get("reason")
        return str(reason) if reason is not None else None


class MisskeyServerError(MisskeyApiError):
    """The server failed to carry out the call."""


class MisskeyFileTooLargeError(MisskeyApiError):
    """The server refused an upload as larger than its ``maxFileSize``."""


class MisskeyUploadSourceError(MisskeyError):
    """The data to upload did not have the size the caller declared."""


_ERRORS_BY_CODE: Final[dict[str, type[MisskeyApiError]]] = {
    **dict.fromkeys(_AUTHENTICATION_CODES, MisskeyAuthenticationError),
    "PERMISSION_DENIED": MisskeyPermissionDeniedError,
    "RATE_LIMIT_EXCEEDED": MisskeyRateLimitError,
    "PENDING_SESSION": MisskeySessionPendingError,
    "NO_SUCH_SESSION": MisskeyNoSuchSessionError,
    "NO_SUCH_APP": MisskeyNoSuchAppError,
    "INVALID_PARAM": MisskeyInvalidParamError,
    "INTERNAL_ERROR": MisskeyServerError,
    "MAX_FILE_SIZE_EXCEEDED": MisskeyFileTooLargeError,
}


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


async def retry_rate_limited[T](call: Callable[[], Awaitable[T]], max_wait: float) -> T:
    """Await ``call()``, repeating it after each 429 for at most ``max_wait`` s in all.

    A call Misskey refused with 429 did nothing, so repeating it cannot do
    anything twice. The last MisskeyRateLimitError is raised once waiting
    longer would exceed ``max_wait``.
    """
    waited = 0.0
    while True:
        try:
            return await call()
        except MisskeyRateLimitError as err:
            wait = err.retry_after if err.retry_after is not None else 1.0
            if waited + wait > max_wait:
                raise
            _LOGGER.debug("Rate limited; trying again in %s s", wait)
            await asyncio.sleep(wait)
            waited += wait


def credential_from_access_token(access_token: str, app_secret: str) -> str:
    """Return the ``i`` a legacy app uses: sha256 of the access token and app secret."""
    return hashlib.sha256((access_token + app_secret).encode()).hexdigest()


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def normalize_url(raw: str) -> str:
    """Return the instance URL as scheme, host and port, or raise ValueError.

    ``misskey.io``, ``https://misskey.io/`` and ``https://misskey.io/@someone``
    all become ``https://misskey.io``.
    """
    text = raw.strip()
    if not text:
        raise ValueError("empty URL")
    if "://" not in text:
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


class MisskeyClient:
    """A client for one Misskey instance, optionally signed in with ``i``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        credential: str | None = None,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
        upload_timeout: float = DEFAULT_UPLOAD_TIMEOUT,
    ) -> None:
        """Use the caller's aiohttp session; the client never closes it."""
        self._session = session
        self.url = url.rstrip("/")
        self._credential = credential
        self.request_timeout = request_timeout
        self.upload_timeout = upload_timeout

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
        try:
            async with asyncio.timeout(self.request_timeout):
                response = await self._session.post(
                    f"{self.url}/api/{endpoint}", json=body, allow_redirects=False
                )
                async with response:
                    text = await response.text(errors="replace")
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
        return _decode(endpoint, response, text)

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
        return App(
            id=str(_field(data, "app/create", "id")),
            secret=str(_field(data, "app/create", "secret")),
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

    async def user(self, username: str, host: str | None = None) -> Account:
        """Return a user by name; ``host`` None is a user of this instance."""
        data = await self.request(
            "users/show", {"username": username, "host": host}, authenticated=True
        )
        if not isinstance(data, Mapping) or "id" not in data or "username" not in data:
            raise MisskeyResponseError("users/show: the answer is not a user")
        return Account.from_json(data)

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
        endpoint = "drive/files/create"
        fields = {"i": self._credential, "name": name}
        if comment is not None:
            fields["comment"] = comment
        fields["isSensitive"] = "true" if is_sensitive else "false"
        fields["force"] = "true"
        loop = asyncio.get_running_loop()
        stream: _UploadStream | None = None
        try:
            async with asyncio.timeout(self.upload_timeout) as deadline:
                stream = _UploadStream(
                    data,
                    size,
                    lambda: deadline.reschedule(loop.time() + self.upload_timeout),
                )
                form = aiohttp.MultipartWriter("form-data")
                for key, value in fields.items():
                    form.append(value).set_content_disposition("form-data", name=key)
                form.append_payload(
                    _StreamPayload(
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
                    text = await response.text(errors="replace")
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
        result = _decode(endpoint, response, text)
        if not isinstance(result, Mapping) or "id" not in result:
            raise MisskeyResponseError(f"{endpoint}: the answer is not a drive file")
        return DriveFile.from_json(result)

    async def create_note(self, params: Mapping[str, Any]) -> Note:
        """Post a note; ``params`` are ``notes/create``'s, in Misskey's spelling."""
        data = await self.request("notes/create", params, authenticated=True)
        note = _field(data, "notes/create", "createdNote")
        if not isinstance(note, Mapping) or "id" not in note:
            raise MisskeyResponseError("notes/create: the answer has no note")
        return Note(
            id=str(note["id"]),
            created_at=str(note.get("createdAt", "")),
            text=note.get("text"),
            cw=note.get("cw"),
            visibility=str(note.get("visibility", "public")),
            local_only=bool(note.get("localOnly", False)),
            file_ids=[str(file_id) for file_id in note.get("fileIds", [])],
            url=str(note.get("url") or f"{self.url}/notes/{note['id']}"),
            raw=note,
        )


type UploadData = bytes | AsyncIterable[bytes] | IO[bytes]


class _UploadStream:
    """Feeds an upload a chunk at a time and remembers why the data stopped."""

    def __init__(
        self, data: UploadData, size: int | None, on_progress: Callable[[], None]
    ) -> None:
        self._data = data
        self._size = size
        self._on_progress = on_progress
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        sent = 0
        try:
            async for chunk in _read_chunks(self._data):
                if not chunk:
                    continue
                sent += len(chunk)
                self._check_size(sent, final=False)
                self._on_progress()
                yield chunk
            self._check_size(sent, final=True)
            self._on_progress()
        except Exception as err:
            self.error = err
            raise

    def _check_size(self, sent: int, *, final: bool) -> None:
        if self._size is None:
            return
        if sent > self._size:
            raise MisskeyUploadSourceError(
                f"the data is longer than the declared {self._size} bytes"
            )
        if final and sent != self._size:
            raise MisskeyUploadSourceError(
                f"the data has {sent} bytes, not the declared {self._size}"
            )


async def _read_chunks(data: UploadData) -> AsyncIterator[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), UPLOAD_CHUNK_SIZE):
            yield bytes(view[start : start + UPLOAD_CHUNK_SIZE])
    elif isinstance(data, AsyncIterable):
        async for chunk in data:
            yield chunk
    else:
        loop = asyncio.get_running_loop()
        while chunk := await loop.run_in_executor(None, data.read, UPLOAD_CHUNK_SIZE):
            yield chunk


class _StreamPayload(AsyncIterablePayload):
    """A streamed body part whose size may be known in advance."""

    def __init__(
        self, value: AsyncIterable[bytes], *, size: int | None, content_type: str
    ) -> None:
        super().__init__(value, content_type=content_type)
        self._size = size


def _field(data: Any, endpoint: str, name: str) -> Any:
    if not isinstance(data, Mapping) or name not in data:
        raise MisskeyResponseError(f"{endpoint}: the answer has no {name}")
    return data[name]


def _decode(endpoint: str, response: aiohttp.ClientResponse, text: str) -> Any:
    status = response.status
    if status == 204:
        return None
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if 200 <= status < 300:
        if data is None:
            raise MisskeyResponseError(
                f"{endpoint}: the answer is not JSON (HTTP {status})"
            )
        return data
    error = _error_object(data)
    if error is None:
        if status == 401:
            raise MisskeyAuthenticationError(status, None, "HTTP 401")
        if status == 413:
            # The web framework refuses an over-large body with no Misskey error.
            raise MisskeyFileTooLargeError(status, None, "HTTP 413")
        if status == 429:
            raise _rate_limited(
                response, MisskeyRateLimitError(status, None, "HTTP 429")
            )
        if status >= 500:
            raise MisskeyServerError(status, None, f"HTTP {status}")
        raise MisskeyResponseError(f"{endpoint}: HTTP {status} without a Misskey error")
    code = error.get("code")
    code = str(code) if code is not None else None
    info = error.get("info")
    cls = _ERRORS_BY_CODE.get(code or "")
    if cls is None:
        if status == 401:
            cls = MisskeyAuthenticationError
        elif status == 413:
            cls = MisskeyFileTooLargeError
        elif status == 429:
            cls = MisskeyRateLimitError
        elif status >= 500 or error.get("kind") == "server":
            cls = MisskeyServerError
        else:
            cls = MisskeyApiError
    err = cls(
        status,
        code,
        str(error["message"]) if error.get("message") is not None else None,
        str(error["id"]) if error.get("id") is not None else None,
        info if isinstance(info, Mapping) else None,
    )
    if isinstance(err, MisskeyRateLimitError):
        _rate_limited(response, err)
    raise err


def _error_object(data: Any) -> Mapping[str, Any] | None:
    """Return the error fields, wrapped in ``error`` (Misskey) or not (Firefish, Fastify)."""
    if not isinstance(data, Mapping):
        return None
    if isinstance(error := data.get("error"), Mapping):
        return error
    if isinstance(data.get("code"), str):
        return data
    return None


def _rate_limited(
    response: aiohttp.ClientResponse, err: MisskeyRateLimitError
) -> MisskeyRateLimitError:
    retry_after: float | None = None
    try:
        retry_after = float(response.headers["Retry-After"])
    except KeyError, ValueError:
        # resetMs is when the limit resets (epoch milliseconds), not a duration:
        # Misskey derives its Retry-After as resetMs - now.
        reset_ms = err.info.get("resetMs")
        if isinstance(reset_ms, (int, float)):
            retry_after = max(float(reset_ms) / 1000 - time.time(), 0.0)
    err.retry_after = retry_after
    return err

"""How calls reach Misskey: the transport under the client, knowing no endpoint.

Every call is a POST with a JSON body, and the credential travels in the body
field ``i`` because the ``Authorization`` header only exists from Misskey 13.14.
Each has a time limit, and waits its turn in the account's rate-limit gate
(gate.py); uploads stream as multipart forms. Answers become Python values or
the client's errors (errors.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
import json
import logging
from typing import Any, Final

import aiohttp

from .errors import (
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyConnectionError,
    MisskeyRateLimitError,
    MisskeyResponseError,
    MisskeyTimeoutError,
    decode_answer,
)
from .gate import RateLimitGate, Turn
from .models import DriveFile
from .upload import StreamPayload, UploadData, UploadStream

_LOGGER = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 10.0
# An upload may take minutes; it fails only when it stops making progress
# for this long (no chunk sent, or no answer after the last one).
DEFAULT_UPLOAD_TIMEOUT: Final = 60.0

DRIVE_FILES_CREATE: Final = "drive/files/create"


class _Waiting:
    """A call of retry_rate_limited: until when its requests may wait, its turn."""

    __slots__ = ("deadline", "turn")

    def __init__(self, deadline: float, turn: Turn | None) -> None:
        self.deadline = deadline
        # Taken before the call, for its request to ``endpoint``.
        self.turn = turn


_WAITING: ContextVar[_Waiting | None] = ContextVar("misskey_waiting", default=None)


class Transport:
    """How calls reach one Misskey instance, optionally signed in with ``i``."""

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
        self._client_timeout = aiohttp.ClientTimeout(total=self.request_timeout)
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

    def _timeout(self) -> aiohttp.ClientTimeout:
        """Return the time limit of a call (made again when request_timeout changes)."""
        if self._client_timeout.total != self.request_timeout:
            self._client_timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        return self._client_timeout

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
                    timeout=self._timeout(),
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


def _remaining(headers: Mapping[str, str]) -> int | None:
    """Return how many more calls Sharkey says it takes now (X-RateLimit-Remaining)."""
    if (value := headers.get("X-RateLimit-Remaining")) is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None

"""Errors the Misskey client raises, and how Misskey's answers map to them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import json
import math
import time
from typing import Any, Final

from multidict import CIMultiDictProxy

# Misskey ≤ 13.13 and Firefish answer a bad credential with 403 instead of 401;
# only the error code tells the two cases apart.
_AUTHENTICATION_CODES: Final = frozenset(
    {"AUTHENTICATION_FAILED", "CREDENTIAL_REQUIRED"}
)


class MisskeyError(Exception):
    """Base class of every error the client raises."""


class MisskeyConnectionError(MisskeyError):
    """The server could not be reached."""


class MisskeyCannotConnectError(MisskeyConnectionError):
    """No connection could be made, so the request was not carried out."""


class MisskeyClientClosedError(MisskeyCannotConnectError):
    """The client was closed (its account unloaded) before the call was sent."""

    def __init__(self, endpoint: str) -> None:
        """Name the endpoint the call was for."""
        super().__init__(f"{endpoint}: the client was closed; nothing was sent")


class MisskeyTimeoutError(MisskeyConnectionError):
    """The server did not answer in time; the request may have been carried out."""


class MisskeyResponseError(MisskeyError):
    """The server answered with something that is not Misskey's API.

    ``status``: the HTTP status, when the answer was not what a call answers
    (a 404 without Misskey's error is a route the server does not have).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        """Keep the message, and the status if the answer had one."""
        super().__init__(message)
        self.status = status


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


class MisskeyAccountSuspendedError(MisskeyApiError):
    """The server's moderators suspended the account: it can do nothing until lifted."""


class MisskeyPermissionDeniedError(MisskeyApiError):
    """The credential lacks the permission the endpoint needs."""


class MisskeyRateLimitError(MisskeyApiError):
    """The server refused the call for now; it did nothing.

    ``retry_after``: seconds until a call may go again; ``clear_after``: until
    the limit is wholly clear (Sharkey); ``limit``: calls the window allows
    (Misskey). None where the server did not say.
    """

    retry_after: float | None = None
    clear_after: float | None = None
    limit: int | None = None
    # The endpoint refused (set by the client's gate).
    endpoint: str | None = None

    def again(self, retry_after: float) -> MisskeyRateLimitError:
        """Return this refusal anew, for a call the gate holds back ``retry_after`` s."""
        err = MisskeyRateLimitError(
            self.status, self.code, self.message, self.error_id, self.info
        )
        vars(err).update(vars(self), retry_after=max(retry_after, 0.0))
        return err


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


class MisskeyStreamRefusedError(MisskeyError):
    """The server, or a proxy before it, does not let us use the streaming API."""

    def __init__(self, status: int | None, message: str | None = None) -> None:
        """Keep the HTTP status that answered the upgrade, if any."""
        super().__init__(message or f"streaming: upgrade refused (HTTP {status})")
        self.status = status


class MisskeyUploadSourceError(MisskeyError):
    """The data to upload did not have the size the caller declared."""


_ERRORS_BY_CODE: Final[dict[str, type[MisskeyApiError]]] = {
    **dict.fromkeys(_AUTHENTICATION_CODES, MisskeyAuthenticationError),
    "PERMISSION_DENIED": MisskeyPermissionDeniedError,
    "YOUR_ACCOUNT_SUSPENDED": MisskeyAccountSuspendedError,
    "RATE_LIMIT_EXCEEDED": MisskeyRateLimitError,
    "PENDING_SESSION": MisskeySessionPendingError,
    "NO_SUCH_SESSION": MisskeyNoSuchSessionError,
    "NO_SUCH_APP": MisskeyNoSuchAppError,
    "INVALID_PARAM": MisskeyInvalidParamError,
    "INTERNAL_ERROR": MisskeyServerError,
    "MAX_FILE_SIZE_EXCEEDED": MisskeyFileTooLargeError,
}


def decode_answer(
    endpoint: str,
    status: int,
    headers: CIMultiDictProxy[str],
    body: bytes,
    json_loads: Callable[[bytes], Any] = json.loads,
) -> Any:
    """Return the decoded answer of a call, or raise the error it carries."""
    if status == 204:
        return None
    try:
        data = json_loads(body) if body else None
    except ValueError:
        data = None
    if 200 <= status < 300:
        if data is None:
            raise MisskeyResponseError(
                f"{endpoint}: the answer is not JSON (HTTP {status})", status
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
                headers, MisskeyRateLimitError(status, None, "HTTP 429")
            )
        if status >= 500:
            raise MisskeyServerError(status, None, f"HTTP {status}")
        raise MisskeyResponseError(
            f"{endpoint}: HTTP {status} without a Misskey error", status
        )
    code = error.get("code")
    code = str(code) if code is not None else None
    info = error.get("info")
    cls = _ERRORS_BY_CODE.get(code or "")
    if code == "ACCESS_DENIED" and _suspended(info):
        # Misskey 12 says so only in words.
        cls = MisskeyAccountSuspendedError
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
        _rate_limited(headers, err)
    raise err


def _suspended(info: Any) -> bool:
    """Return whether Misskey 12's ACCESS_DENIED says the account is suspended."""
    return isinstance(info, Mapping) and "suspended" in str(info.get("reason", ""))


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
    headers: CIMultiDictProxy[str], err: MisskeyRateLimitError
) -> MisskeyRateLimitError:
    """Read when to retry from what the variant sends.

    Sharkey: X-RateLimit-Reset (seconds, to the millisecond) and
    X-RateLimit-Clear; its info.resetMs is a duration. Misskey: Retry-After in
    whole seconds, rounded up, and info.resetMs, the moment the window frees
    (epoch milliseconds, from which Misskey derives Retry-After), and
    info.total. Misskey 12: nothing.
    """
    retry_after = _seconds(headers.get("X-RateLimit-Reset"))
    if retry_after is None:
        retry_after = _seconds(headers.get("Retry-After"))
        reset_ms = err.info.get("resetMs")
        if isinstance(reset_ms, (int, float)) and not isinstance(reset_ms, bool):
            # (+1: Misskey rounds the moment down to the millisecond.)
            until_reset = max((float(reset_ms) + 1) / 1000 - time.time(), 0.0)
            # The precise moment, unless our clock disagrees with the server's
            # by more than Retry-After's rounding.
            if retry_after is None or (
                retry_after - 1.05 <= until_reset <= retry_after + 0.05
            ):
                retry_after = until_reset
    err.retry_after = retry_after
    err.clear_after = _seconds(headers.get("X-RateLimit-Clear"))
    total = err.info.get("total")
    if isinstance(total, int) and not isinstance(total, bool) and total > 0:
        err.limit = total
    return err


def _seconds(value: str | None) -> float | None:
    """Return a header's number of seconds; None if absent or not a number (a date)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None

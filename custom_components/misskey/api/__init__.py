"""A client for Misskey's API that knows nothing of Home Assistant.

It could live in a library of its own: the HTTP client, its errors, the
objects it returns, and uploads that stream.
"""

from .client import (
    DEFAULT_MAX_NOTE_TEXT_LENGTH,
    DEFAULT_TIMEOUT,
    DEFAULT_UPLOAD_TIMEOUT,
    MisskeyClient,
    credential_from_access_token,
    instance_host,
    normalize_url,
    retry_rate_limited,
    scheme_assumed,
)
from .errors import (
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyConnectionError,
    MisskeyError,
    MisskeyFileTooLargeError,
    MisskeyInvalidParamError,
    MisskeyNoSuchAppError,
    MisskeyNoSuchSessionError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    MisskeyResponseError,
    MisskeyServerError,
    MisskeySessionPendingError,
    MisskeyStreamRefusedError,
    MisskeyTimeoutError,
    MisskeyUploadSourceError,
)
from .models import (
    Account,
    App,
    AuthSession,
    DriveFile,
    Meta,
    Note,
    Notification,
    UserKey,
)
from .stream import MisskeyStream, StreamEvent
from .upload import UPLOAD_CHUNK_SIZE, UploadData

__all__ = [
    "DEFAULT_MAX_NOTE_TEXT_LENGTH",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UPLOAD_TIMEOUT",
    "UPLOAD_CHUNK_SIZE",
    "Account",
    "App",
    "AuthSession",
    "DriveFile",
    "Meta",
    "MisskeyApiError",
    "MisskeyAuthenticationError",
    "MisskeyCannotConnectError",
    "MisskeyClient",
    "MisskeyConnectionError",
    "MisskeyError",
    "MisskeyFileTooLargeError",
    "MisskeyInvalidParamError",
    "MisskeyNoSuchAppError",
    "MisskeyNoSuchSessionError",
    "MisskeyPermissionDeniedError",
    "MisskeyRateLimitError",
    "MisskeyResponseError",
    "MisskeyServerError",
    "MisskeySessionPendingError",
    "MisskeyStream",
    "MisskeyStreamRefusedError",
    "MisskeyTimeoutError",
    "MisskeyUploadSourceError",
    "Note",
    "Notification",
    "StreamEvent",
    "UploadData",
    "UserKey",
    "credential_from_access_token",
    "instance_host",
    "normalize_url",
    "retry_rate_limited",
    "scheme_assumed",
]

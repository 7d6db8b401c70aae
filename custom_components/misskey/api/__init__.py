"""A client for Misskey's API that knows nothing of Home Assistant.

It could live in a library of its own: the endpoints (client), how calls
travel (transport) and wait out rate limits (gate), the errors, the objects
the calls return, uploads that stream, and the streaming API.
"""

from .address import instance_host, normalize_url, scheme_assumed
from .client import (
    DEFAULT_MAX_NOTE_TEXT_LENGTH,
    DRAFTS_PAGE,
    NOTES_CREATE,
    MisskeyClient,
    credential_from_access_token,
)
from .errors import (
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyClientClosedError,
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
    ProfileField,
    RolePolicies,
    ScheduledNote,
    UserKey,
)
from .transport import DEFAULT_TIMEOUT, DEFAULT_UPLOAD_TIMEOUT, DRIVE_FILES_CREATE
from .upload import UPLOAD_CHUNK_SIZE, UploadData

__all__ = [
    "DEFAULT_MAX_NOTE_TEXT_LENGTH",
    "DEFAULT_TIMEOUT",
    "DEFAULT_UPLOAD_TIMEOUT",
    "DRAFTS_PAGE",
    "DRIVE_FILES_CREATE",
    "NOTES_CREATE",
    "UPLOAD_CHUNK_SIZE",
    "Account",
    "App",
    "AuthSession",
    "DriveFile",
    "Meta",
    "MisskeyAccountSuspendedError",
    "MisskeyApiError",
    "MisskeyAuthenticationError",
    "MisskeyCannotConnectError",
    "MisskeyClient",
    "MisskeyClientClosedError",
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
    "MisskeyStreamRefusedError",
    "MisskeyTimeoutError",
    "MisskeyUploadSourceError",
    "Note",
    "Notification",
    "ProfileField",
    "RolePolicies",
    "ScheduledNote",
    "UploadData",
    "UserKey",
    "credential_from_access_token",
    "instance_host",
    "normalize_url",
    "scheme_assumed",
]


def __getattr__(name: str) -> object:
    """Return the streaming client on first use: an account that only posts needs none."""
    if name in ("MisskeyStream", "StreamEvent"):
        from . import stream  # noqa: PLC0415

        return getattr(stream, name)
    raise AttributeError(name)

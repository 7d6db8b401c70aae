"""Attachments of a note, streamed to the account's drive.

Sources are camera snapshots, image entities, media sources, local files and URLs.
Files and downloads are never held whole in memory: they are read a chunk at a
time (files in the executor) and each chunk is sent on as soon as it is read.
Only camera and image snapshots, which are small, arrive as bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
import contextlib
import errno
import mimetypes
import os
from pathlib import Path
import stat
from typing import IO, Any, Final

import aiohttp
from yarl import URL

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import (
    DRIVE_FILES_CREATE,
    DriveFile,
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyClient,
    MisskeyError,
    MisskeyFileTooLargeError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    UploadData,
)
from .const import (
    ATTR_ALT_TEXT,
    ATTR_FILE_NAME,
    ATTR_MEDIA_CONTENT_ID,
    ATTR_PATH,
    ATTR_SENSITIVE,
    ATTR_URL,
    DOMAIN,
    MAX_ATTACHMENTS,
    PERMISSION_WRITE_DRIVE,
    RATE_LIMIT_MAX_WAIT,
)
from .errors import credential_refused, permission_refused, suspended_error
from .limits import UNKNOWN_TYPE, AccountLimits, mime_type_matches

CHUNK_SIZE: Final = 64 * 1024
# A download fails when the other end sends nothing for this long.
DOWNLOAD_TIMEOUT: Final = 30.0
# As many redirects as aiohttp would follow by itself.
MAX_REDIRECTS: Final = 10
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})

_SOURCES: Final = (ATTR_MEDIA_CONTENT_ID, ATTR_PATH, ATTR_URL)
_CAMERA_PREFIX: Final = "media-source://camera/"
_IMAGE_PREFIX: Final = "media-source://image/"
_SNAPSHOT_EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/avif": ".avif",
}


async def async_upload_attachments(
    hass: HomeAssistant,
    client: MisskeyClient,
    limits: AccountLimits,
    attachments: list[Mapping[str, Any]],
    *,
    accept: list[str] | None = None,
) -> list[DriveFile]:
    """Upload a note's attachments to the account's drive; return them in order.

    Each attachment is a mapping with exactly one source:

    - ``media_content_id``: a media selector value. ``media-source://camera/<entity>``
      is a camera snapshot, ``media-source://image/<entity>`` an image entity's
      image; any other media source must resolve to a local file.
    - ``path``: a local file in a folder of ``allowlist_external_dirs``.
    - ``url``: an http(s) URL under ``allowlist_external_urls``, downloaded with
      Home Assistant's shared session.

    and optionally ``alt_text`` (Misskey's ``comment``), ``sensitive`` (bool)
    and ``name`` (the file name in the drive; else the source's own name).

    Everything that can be checked without reading a source (the number of
    attachments, one source each, the alt text's length, allowed paths and URLs)
    is checked for all of them before the first upload. Files and downloads are
    streamed, never read whole, and refused as soon as they exceed the
    server's ``maxFileSize`` or the role's ``maxFileSizeMb``, whichever is
    smaller. A source whose type the role may not upload (``uploadableFileTypes``)
    or that ``accept`` (type patterns such as ``image/*``) excludes is refused
    before any of its bytes are sent.

    Either every file is uploaded or none is kept: when an attachment fails,
    the files already uploaded by this call are deleted before the error is
    raised. When the note then cannot be posted, the caller deletes the
    returned files with ``async_delete_files``.

    Raises ServiceValidationError for input to fix (too many attachments, not
    exactly one source, alt text too long, a path or URL not allowed, a file
    larger or of a type the server or the role does not accept) and
    HomeAssistantError when a source cannot
    be read or the upload fails. The messages name the attachment by its
    1-based index and its source.
    """
    if len(attachments) > MAX_ATTACHMENTS:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="too_many_attachments",
            translation_placeholders={
                "count": str(len(attachments)),
                "max": str(MAX_ATTACHMENTS),
            },
        )
    checked = [
        await _async_check(hass, limits, index, attachment, accept)
        for index, attachment in enumerate(attachments, 1)
    ]
    uploaded: list[DriveFile] = []
    try:
        for attachment in checked:
            # One at a time, so that the list holds what to delete on failure.
            drive_file = await _async_upload(hass, client, limits, attachment, accept)
            uploaded.append(drive_file)
    except BaseException:
        await async_delete_files(client, uploaded)
        raise
    return uploaded


async def async_delete_files(client: MisskeyClient, files: list[DriveFile]) -> None:
    """Delete uploaded files of a note that was not posted; failures are ignored.

    A file left behind only takes space in the account's drive, so a failed
    deletion must not hide the error that made it necessary.
    """
    for drive_file in files:
        with contextlib.suppress(MisskeyError):
            await client.delete_file(drive_file.id)


class _Attachment:
    """An attachment whose input was checked."""

    __slots__ = ("alt_text", "index", "kind", "name", "sensitive", "value")

    def __init__(
        self,
        *,
        index: int,
        kind: str,
        value: str,
        alt_text: str | None,
        sensitive: bool,
        name: str | None,
    ) -> None:
        """Hold the checked input; ``kind`` is the source's key."""
        self.index = index
        self.kind = kind
        self.value = value
        self.alt_text = alt_text
        self.sensitive = sensitive
        self.name = name

    @property
    def source(self) -> str:
        """Return the source as messages show it: a URL without query or user."""
        if self.kind != ATTR_URL:
            return self.value
        try:
            url = URL(self.value)
        except ValueError:
            # Not a URL at all (the error says so); still without its query.
            return self.value.partition("?")[0].partition("#")[0]
        return _shown(url)

    def error(
        self, key: str, *, validation: bool = False, **placeholders: str
    ) -> HomeAssistantError:
        """Return the error users read, naming this attachment."""
        cls = ServiceValidationError if validation else HomeAssistantError
        return cls(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders={
                "index": str(self.index),
                "source": self.source,
                **placeholders,
            },
        )


class _SourceError(Exception):
    """Reading a source failed; raised from inside a stream to stop the upload."""

    def __init__(self, key: str, *, validation: bool = False, **placeholders: str):
        super().__init__(key)
        self.key = key
        self.validation = validation
        self.placeholders = placeholders


class _Source:
    """A source opened for reading."""

    __slots__ = ("content_type", "data", "name", "size")

    def __init__(
        self, *, name: str, content_type: str | None, size: int | None, data: UploadData
    ) -> None:
        """Hold what the upload needs of it."""
        self.name = name
        self.content_type = content_type
        self.size = size
        self.data = data


async def _async_check(
    hass: HomeAssistant,
    limits: AccountLimits,
    index: int,
    attachment: Mapping[str, Any],
    accept: list[str] | None,
) -> _Attachment:
    """Check what can be checked without reading the source.

    A local file's size and type (from its name) are known without reading
    it, so a file the server or the role would refuse stops the whole note
    before any attachment is sent.
    """
    sources = [key for key in _SOURCES if attachment.get(key) not in (None, "")]
    if len(sources) != 1:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="attachment_source",
            translation_placeholders={"index": str(index)},
        )
    kind = sources[0]
    value = attachment[kind]
    if isinstance(value, Mapping):
        # The whole value of a media selector.
        value = value.get(ATTR_MEDIA_CONTENT_ID, "")
    alt_text = attachment.get(ATTR_ALT_TEXT) or None
    checked = _Attachment(
        index=index,
        kind=kind,
        value=str(value),
        alt_text=alt_text,
        sensitive=bool(attachment.get(ATTR_SENSITIVE, False)),
        name=attachment.get(ATTR_FILE_NAME) or None,
    )
    alt_text_limit = limits.max_alt_text_length
    if alt_text is not None and len(alt_text) > alt_text_limit:
        raise checked.error(
            "alt_text_too_long",
            validation=True,
            length=str(len(alt_text)),
            max=str(alt_text_limit),
        )
    if kind == ATTR_PATH:
        if not await hass.async_add_executor_job(
            hass.config.is_allowed_path, checked.value
        ):
            raise checked.error("path_not_allowed", validation=True)
        size = await hass.async_add_executor_job(_file_size, checked.value)
        try:
            if size is not None and size > limits.max_upload_size:
                raise _too_large(limits)
            _check_type(limits, mimetypes.guess_type(checked.value)[0], accept)
        except _SourceError as err:
            raise checked.error(
                err.key, validation=err.validation, **err.placeholders
            ) from None
    if kind == ATTR_URL:
        try:
            scheme = URL(checked.value).scheme
        except ValueError:
            scheme = ""
        if scheme not in ("http", "https"):
            raise checked.error("url_invalid", validation=True)
        if not hass.config.is_allowed_external_url(checked.value):
            raise checked.error("url_not_allowed", validation=True)
    return checked


async def _async_upload(
    hass: HomeAssistant,
    client: MisskeyClient,
    limits: AccountLimits,
    attachment: _Attachment,
    accept: list[str] | None,
) -> DriveFile:
    """Read one attachment's source and stream it to the drive.

    A 429 is waited out like a note's: the source is opened again for each try,
    as the refused upload consumed it and Misskey kept nothing, and only once
    the account's gate lets the upload go.
    """

    async def upload() -> DriveFile:
        async with _async_open(hass, attachment, limits) as source:
            if source.size is not None and source.size > limits.max_upload_size:
                raise _too_large(limits)
            _check_type(limits, source.content_type, accept)
            return await client.upload_file(
                name=attachment.name or source.name,
                data=source.data,
                content_type=source.content_type,
                comment=attachment.alt_text,
                is_sensitive=attachment.sensitive,
                size=source.size,
            )

    try:
        return await client.retry_rate_limited(
            upload, RATE_LIMIT_MAX_WAIT, endpoint=DRIVE_FILES_CREATE
        )
    except _SourceError as err:
        raise attachment.error(
            err.key, validation=err.validation, **err.placeholders
        ) from err
    except MisskeyFileTooLargeError as err:
        raise attachment.error("attachment_rejected_too_large") from err
    except MisskeyAuthenticationError as err:
        raise credential_refused() from err
    except MisskeyPermissionDeniedError as err:
        raise permission_refused(limits, PERMISSION_WRITE_DRIVE) from err
    except MisskeyAccountSuspendedError as err:
        raise suspended_error(limits) from err
    except MisskeyRateLimitError as err:
        wait = err.retry_after if err.retry_after is not None else 60
        raise attachment.error(
            "attachment_rate_limited", retry_after=str(round(wait))
        ) from err
    except MisskeyError as err:
        if isinstance(err, MisskeyApiError) and err.code == "UNALLOWED_FILE_TYPE":
            # The server found the type from the bytes, not from the name.
            raise attachment.error("attachment_rejected_type") from err
        raise attachment.error("attachment_upload_failed", error=str(err)) from err


def _too_large(limits: AccountLimits) -> _SourceError:
    return _SourceError(
        "attachment_too_large_for_role"
        if limits.upload_limited_by_role
        else "attachment_too_large",
        validation=True,
        max=limits.max_upload_mib,
    )


def _check_type(
    limits: AccountLimits,
    content_type: str | None,
    accept: list[str] | None,
) -> None:
    """Refuse a type the role may not upload, or the caller does not accept.

    A source of unknown type is let through: the server finds the type from
    the bytes, and its refusal is reported then.
    """
    if content_type is None or content_type == UNKNOWN_TYPE:
        return
    if not limits.file_type_allowed(content_type):
        raise _SourceError(
            "attachment_type_not_allowed", validation=True, type=content_type
        )
    if accept is not None and not mime_type_matches(content_type, accept):
        raise _SourceError(
            "attachment_type_not_accepted",
            validation=True,
            type=content_type,
            accept=", ".join(accept),
        )


@contextlib.asynccontextmanager
async def _async_open(
    hass: HomeAssistant, attachment: _Attachment, limits: AccountLimits
) -> AsyncIterator[_Source]:
    """Open the attachment's source; close it again afterwards."""
    if attachment.kind == ATTR_PATH:
        async with _async_open_file(hass, Path(attachment.value)) as source:
            yield source
    elif attachment.kind == ATTR_URL:
        async with _async_open_url(hass, attachment.value, limits) as source:
            yield source
    else:
        async with _async_open_media(hass, attachment.value) as source:
            yield source


@contextlib.asynccontextmanager
async def _async_open_media(
    hass: HomeAssistant, media_content_id: str
) -> AsyncIterator[_Source]:
    """Take a snapshot, or open the local file a media source resolves to."""
    if media_content_id.startswith(_CAMERA_PREFIX):
        entity_id = media_content_id.removeprefix(_CAMERA_PREFIX)
        content, content_type = await _async_snapshot(hass, entity_id, camera=True)
    elif media_content_id.startswith(_IMAGE_PREFIX):
        entity_id = media_content_id.removeprefix(_IMAGE_PREFIX)
        content, content_type = await _async_snapshot(hass, entity_id, camera=False)
    else:
        if "media_source" not in hass.config.components:
            raise _SourceError("media_unavailable", error="Media Source not loaded")
        # Imported here, where it is loaded already: importing it with this
        # module would bring in the frontend and more (~0.1 s at start-up)
        # for Home Assistants that do not use media sources.
        from homeassistant.components.media_source import async_resolve_media  # noqa: PLC0415

        try:
            media = await async_resolve_media(hass, media_content_id, None)
        except HomeAssistantError as err:
            raise _SourceError("media_unavailable", error=str(err)) from err
        if media.path is None:
            raise _SourceError("media_source_not_supported", validation=True)
        async with _async_open_file(hass, media.path, media.mime_type) as source:
            yield source
        return
    extension = _SNAPSHOT_EXTENSIONS.get(content_type, ".jpg")
    yield _Source(
        name=f"{entity_id.partition('.')[2] or entity_id}{extension}",
        content_type=content_type,
        size=len(content),
        data=content,
    )


async def _async_snapshot(
    hass: HomeAssistant, entity_id: str, *, camera: bool
) -> tuple[bytes, str]:
    """Return a camera's snapshot or an image entity's image, and its type."""
    try:
        if camera:
            if "camera" not in hass.config.components:
                raise _SourceError("media_unavailable", error="Camera not loaded")
            # Imported here: the camera integration's requirements are only
            # installed once it is set up, which a camera snapshot implies.
            from homeassistant.components import camera as camera_component  # noqa: PLC0415

            snapshot = await camera_component.async_get_image(hass, entity_id)
            return snapshot.content, snapshot.content_type
        if "image" not in hass.config.components:
            raise _SourceError("media_unavailable", error="Image not loaded")
        # Imported here, where it is loaded already (see media sources above).
        from homeassistant.components import image  # noqa: PLC0415

        picture = await image.async_get_image(hass, entity_id)
    except (HomeAssistantError, KeyError, ImportError) as err:
        raise _SourceError("media_unavailable", error=str(err) or repr(err)) from err
    return picture.content, picture.content_type


@contextlib.asynccontextmanager
async def _async_open_file(
    hass: HomeAssistant, path: Path, content_type: str | None = None
) -> AsyncIterator[_Source]:
    """Open a local file and stream it from the executor."""
    try:
        file, size, guessed_type = await hass.async_add_executor_job(_open_file, path)
    except FileNotFoundError as err:
        raise _SourceError("file_not_found", validation=True) from err
    except OSError as err:
        raise _SourceError("file_unreadable", error=err.strerror or str(err)) from err
    try:
        yield _Source(
            name=path.name,
            content_type=content_type or guessed_type,
            size=size,
            data=_file_chunks(hass, file),
        )
    finally:
        await hass.async_add_executor_job(file.close)


def _file_size(path: str) -> int | None:
    """Return the size of a regular file, or None; opening it reports why not (blocking)."""
    try:
        status = Path(path).stat()
    except OSError:
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _open_file(path: Path) -> tuple[IO[bytes], int, str | None]:
    """Open a regular file; return it, its size and its guessed type (blocking)."""
    file = path.open("rb")
    try:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Not a regular file", str(path))
    except OSError:
        file.close()
        raise
    return file, status.st_size, mimetypes.guess_type(path.name)[0]


async def _file_chunks(hass: HomeAssistant, file: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await hass.async_add_executor_job(file.read, CHUNK_SIZE):
            yield chunk
    except OSError as err:
        raise _SourceError("file_unreadable", error=err.strerror or str(err)) from err


@contextlib.asynccontextmanager
async def _async_open_url(
    hass: HomeAssistant, url: str, limits: AccountLimits
) -> AsyncIterator[_Source]:
    """Start a download and stream its body, stopping it past the limit."""
    response, final_url = await _async_get_following_redirects(hass, URL(url))
    async with response:
        if response.status >= 400:
            raise _SourceError(
                "url_fetch_failed", error=f"HTTP {response.status} {response.reason}"
            )
        size = response.content_length
        if response.headers.get("Content-Encoding", "identity") != "identity":
            size = None
        if size is not None and size > limits.max_upload_size:
            raise _too_large(limits)
        name = final_url.name or "file"
        content_type = (
            response.content_type if "Content-Type" in response.headers else None
        )
        yield _Source(
            name=name,
            content_type=content_type,
            size=size,
            data=_download_chunks(response, limits),
        )


async def _async_get_following_redirects(
    hass: HomeAssistant, url: URL
) -> tuple[aiohttp.ClientResponse, URL]:
    """GET ``url``, following redirects that stay within the allowed URLs.

    Every hop is checked before it is requested: a redirect out of
    ``allowlist_external_urls`` must not reach the host it points to at all
    (it could be a service on the local network that the URL's owner should
    not be able to make Home Assistant call).
    """
    session = async_get_clientsession(hass)
    for hop in range(MAX_REDIRECTS + 1):
        if not hass.config.is_allowed_external_url(str(url)):
            if not hop:
                raise _SourceError("url_not_allowed", validation=True)
            raise _SourceError(
                "url_redirect_not_allowed", validation=True, target=_shown(url)
            )
        try:
            response = await session.get(
                url,
                allow_redirects=False,
                # Compressed bodies would be decompressed: their length is unknown.
                headers={"Accept-Encoding": "identity"},
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=DOWNLOAD_TIMEOUT,
                    sock_read=DOWNLOAD_TIMEOUT,
                ),
            )
        except (aiohttp.ClientError, TimeoutError) as err:
            raise _SourceError("url_fetch_failed", error=_describe(err)) from err
        location = response.headers.get("Location")
        if response.status not in _REDIRECT_STATUSES or location is None:
            return response, url
        response.release()
        try:
            url = url.join(URL(location))
        except ValueError as err:
            raise _SourceError(
                "url_fetch_failed", error=f"invalid redirect to {location!r}"
            ) from err
    raise _SourceError("url_fetch_failed", error=f"more than {MAX_REDIRECTS} redirects")


def _shown(url: URL) -> str:
    """Return a URL as messages show it: without query or user, which may be secret."""
    return str(url.with_user(None).with_query(None).with_fragment(None))


async def _download_chunks(
    response: aiohttp.ClientResponse, limits: AccountLimits
) -> AsyncIterator[bytes]:
    received = 0
    try:
        async for chunk in response.content.iter_chunked(CHUNK_SIZE):
            received += len(chunk)
            if received > limits.max_upload_size:
                raise _too_large(limits)
            yield chunk
    except (aiohttp.ClientError, TimeoutError) as err:
        raise _SourceError("url_fetch_failed", error=_describe(err)) from err


def _describe(err: Exception) -> str:
    if isinstance(err, TimeoutError):
        return "no data in time"
    return str(err) or type(err).__name__

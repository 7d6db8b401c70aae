"""Tests of attachments: sources read by Home Assistant, streamed to the test server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
import gzip
import hashlib
import os
from pathlib import Path
import sys
import types
from typing import Any

from aiohttp import web
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockModule,
    mock_integration,
    mock_platform,
    setup_test_component_platform,
)

from custom_components.misskey import media
from custom_components.misskey.api import (
    MisskeyFileTooLargeError,
    MisskeyTimeoutError,
    MisskeyUploadSourceError,
)
from custom_components.misskey.const import DOMAIN, SERVICE_POST
from custom_components.misskey.media import async_upload_attachments
from homeassistant.components.image import ImageEntity
from homeassistant.components.media_source import (
    MediaSource,
    MediaSourceItem,
    PlayMedia,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.setup import async_setup_component

from .conftest import HANG_TIMEOUT, authorize
from .listening import WAIT
from .misskey_server import MisskeyServer

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(300 * 1024)


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> MockConfigEntry:
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _upload(
    hass: HomeAssistant, entry: MockConfigEntry, attachments: list[dict[str, Any]]
) -> Any:
    data = entry.runtime_data
    return await async_upload_attachments(
        hass, data.client, data.coordinator.limits, attachments
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def allowed_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Return a folder Home Assistant may read files from."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return tmp_path


@pytest.fixture
async def file_server(hass: HomeAssistant, socket_enabled: None) -> AsyncGenerator[str]:
    """Serve files over HTTP on loopback; return the base URL (allowed)."""

    async def fixed(request: web.Request) -> web.Response:
        size = int(request.query.get("size", 0))
        body = PNG if not size else b"\0" * size
        return web.Response(body=body, content_type="image/png")

    async def streamed(request: web.Request) -> web.StreamResponse:
        # Chunked, so there is no Content-Length to refuse the file by.
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(int(request.query["chunks"])):
            await response.write(b"\1" * 65536)
        await response.write_eof()
        return response

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/files/photo.png", fixed)
    app.router.add_get("/files/stream.bin", streamed)
    app.router.add_get("/files/missing.png", missing)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hass.config.allowlist_external_urls = {f"{base}/files/"}
    yield base
    await runner.cleanup()


async def test_upload_file_from_allowed_dir(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A file is streamed with its alt text and flag; the fields precede the file."""
    (allowed_dir / "photo.png").write_bytes(PNG)

    files = await _upload(
        hass,
        init_integration,
        [
            {
                "path": str(allowed_dir / "photo.png"),
                "alt_text": "A cat on the sofa",
                "sensitive": True,
            }
        ],
    )

    assert len(files) == 1
    stored = misskey.files[files[0].id]
    assert stored.sha256 == _sha256(PNG)
    assert stored.size == len(PNG) == files[0].size
    assert stored.name == "photo.png"
    assert stored.type == "image/png"
    assert stored.comment == "A cat on the sofa"
    assert stored.is_sensitive is True
    (call,) = misskey.calls("drive/files/create")
    assert call.parts == ["i", "name", "comment", "isSensitive", "force", "file"]
    assert call.body["force"] == "true"


async def test_upload_with_own_name_and_no_alt_text(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A given name wins; no alt text sends no comment."""
    (allowed_dir / "a.bin").write_bytes(b"hello")

    (drive_file,) = await _upload(
        hass, init_integration, [{"path": str(allowed_dir / "a.bin"), "name": "b.txt"}]
    )

    stored = misskey.files[drive_file.id]
    assert (stored.name, stored.comment, stored.is_sensitive) == ("b.txt", None, False)
    assert "comment" not in misskey.calls("drive/files/create")[0].parts


@pytest.mark.parametrize(
    ("attachment", "key"),
    [
        ({}, "attachment_source"),
        ({"path": "/a", "url": "http://127.0.0.1/a"}, "attachment_source"),
        ({"path": "/etc/hostname"}, "path_not_allowed"),
        ({"url": "ftp://127.0.0.1/a.png"}, "url_invalid"),
        ({"url": "http://[::1/a.png?token=secret"}, "url_invalid"),
        ({"url": "http://example.invalid/a.png"}, "url_not_allowed"),
        (
            {
                "media_content_id": "media-source://camera/camera.x",
                "alt_text": "x" * 513,
            },
            "alt_text_too_long",
        ),
    ],
)
async def test_invalid_attachment_uploads_nothing(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
    attachment: dict[str, Any],
    key: str,
) -> None:
    """Input errors name the attachment and come before any upload."""
    (allowed_dir / "ok.png").write_bytes(PNG)

    with pytest.raises(ServiceValidationError) as err:
        await _upload(
            hass, init_integration, [{"path": str(allowed_dir / "ok.png")}, attachment]
        )

    assert err.value.translation_key == key
    assert err.value.translation_placeholders["index"] == "2"
    assert "secret" not in str(err.value.translation_placeholders)
    assert misskey.calls("drive/files/create") == []


async def test_too_many_attachments(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """More than 16 attachments are refused before anything is uploaded."""
    (allowed_dir / "ok.png").write_bytes(PNG)

    with pytest.raises(ServiceValidationError) as err:
        await _upload(
            hass, init_integration, [{"path": str(allowed_dir / "ok.png")}] * 17
        )

    assert err.value.translation_key == "too_many_attachments"
    assert err.value.translation_placeholders == {"count": "17", "max": "16"}
    assert misskey.calls("drive/files/create") == []


async def test_missing_file_deletes_uploaded_ones(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A missing second file removes the first from the drive again."""
    (allowed_dir / "ok.png").write_bytes(PNG)
    missing = str(allowed_dir / "missing.png")

    with pytest.raises(ServiceValidationError) as err:
        await _upload(
            hass,
            init_integration,
            [{"path": str(allowed_dir / "ok.png")}, {"path": missing}],
        )

    assert err.value.translation_key == "file_not_found"
    assert err.value.translation_placeholders == {"index": "2", "source": missing}
    assert len(misskey.calls("drive/files/create")) == 1
    assert len(misskey.calls("drive/files/delete")) == 1
    assert misskey.files == {}


async def test_server_refuses_size_deletes_uploaded_ones(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A 413 names the attachment, deletes the earlier files, and hides the credential."""
    (allowed_dir / "small.png").write_bytes(PNG[:100])
    (allowed_dir / "big.png").write_bytes(PNG[:5000])
    # Lower than what meta said at set-up, so only the server can refuse it.
    misskey.max_file_size = 1000

    with pytest.raises(HomeAssistantError) as err:
        await _upload(
            hass,
            init_integration,
            [
                {"path": str(allowed_dir / "small.png")},
                {"path": str(allowed_dir / "big.png")},
            ],
        )

    assert err.value.translation_key == "attachment_rejected_too_large"
    assert err.value.translation_placeholders == {
        "index": "2",
        "source": str(allowed_dir / "big.png"),
    }
    assert misskey.files == {}
    assert len(misskey.calls("drive/files/create")) == 2
    assert len(misskey.calls("drive/files/delete")) == 1
    credential = init_integration.data["i"]
    assert credential not in str(err.value)
    assert credential not in repr(err.value.__cause__)


async def test_server_error_names_the_attachment(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """Any other refusal is reported with the server's words."""
    (allowed_dir / "a.png").write_bytes(PNG)
    misskey.fail_next("drive/files/create", "server_error")

    with pytest.raises(HomeAssistantError) as err:
        await _upload(hass, init_integration, [{"path": str(allowed_dir / "a.png")}])

    assert err.value.translation_key == "attachment_upload_failed"
    assert err.value.translation_placeholders["index"] == "1"
    assert "INTERNAL_ERROR" in err.value.translation_placeholders["error"]


async def test_upload_from_url(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    file_server: str,
) -> None:
    """A download is streamed on to the drive under the URL's file name."""
    (drive_file,) = await _upload(
        hass,
        init_integration,
        [{"url": f"{file_server}/files/photo.png?token=secret", "alt_text": "Alt"}],
    )

    stored = misskey.files[drive_file.id]
    assert (stored.sha256, stored.size) == (_sha256(PNG), len(PNG))
    assert (stored.name, stored.type, stored.comment) == (
        "photo.png",
        "image/png",
        "Alt",
    )


async def test_url_error_hides_query(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    file_server: str,
) -> None:
    """A failed download is reported without the URL's query (it may hold a token)."""
    with pytest.raises(HomeAssistantError) as err:
        await _upload(
            hass, init_integration, [{"url": f"{file_server}/files/missing.png?t=s"}]
        )

    assert err.value.translation_key == "url_fetch_failed"
    assert err.value.translation_placeholders["source"] == (
        f"{file_server}/files/missing.png"
    )
    assert "404" in err.value.translation_placeholders["error"]


@pytest.mark.parametrize(
    ("path", "uploads"),
    [
        # Content-Length says too large: refused before the upload starts.
        ("/files/photo.png?size=3000000", 0),
        # No Content-Length: the upload is stopped once too many bytes came.
        ("/files/stream.bin?chunks=40", None),
    ],
)
async def test_url_too_large(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    file_server: str,
    path: str,
    uploads: int | None,
) -> None:
    """A download larger than the server's maxFileSize is not uploaded."""
    misskey.max_file_size = 2 * 1024 * 1024
    entry = await _setup(hass, mock_config_entry)

    with pytest.raises(ServiceValidationError) as err:
        await _upload(hass, entry, [{"url": f"{file_server}{path}"}])

    assert err.value.translation_key == "attachment_too_large"
    assert err.value.translation_placeholders["max"] == "2"
    assert misskey.files == {}
    if uploads is not None:
        assert len(misskey.calls("drive/files/create")) == uploads


async def test_local_file_too_large_for_meta(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A file whose size is known is refused before the upload starts."""
    misskey.max_file_size = 1000
    entry = await _setup(hass, mock_config_entry)
    (allowed_dir / "big.png").write_bytes(b"z" * 1001)

    with pytest.raises(ServiceValidationError) as err:
        await _upload(hass, entry, [{"path": str(allowed_dir / "big.png")}])

    assert err.value.translation_key == "attachment_too_large"
    assert misskey.calls("drive/files/create") == []


async def test_local_media_source(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """A media source item that is a local file is streamed from disk."""
    (tmp_path / "garden.png").write_bytes(PNG)
    hass.config.media_dirs = {"local": str(tmp_path)}
    assert await async_setup_component(hass, "media_source", {})

    (drive_file,) = await _upload(
        hass,
        init_integration,
        [{"media_content_id": "media-source://media_source/local/garden.png"}],
    )

    stored = misskey.files[drive_file.id]
    assert (stored.name, stored.sha256) == ("garden.png", _sha256(PNG))


async def test_unknown_media_source(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A media source that cannot be resolved names the attachment."""
    assert await async_setup_component(hass, "media_source", {})

    with pytest.raises(HomeAssistantError) as err:
        await _upload(
            hass,
            init_integration,
            [{"media_content_id": "media-source://nothing/here"}],
        )

    assert err.value.translation_key == "media_unavailable"
    assert err.value.translation_placeholders["source"] == "media-source://nothing/here"


@pytest.fixture
def camera_module() -> Any:
    """Import the camera integration, whose image resizing library may be absent."""
    if "turbojpeg" not in sys.modules:
        try:
            import turbojpeg  # noqa: F401, PLC0415
        except ImportError:
            # Only used to resize snapshots, which these tests never do.
            stub = types.ModuleType("turbojpeg")
            stub.TurboJPEG = object  # type: ignore[attr-defined]
            sys.modules["turbojpeg"] = stub
    from homeassistant.components import camera  # noqa: PLC0415

    return camera


async def test_camera_snapshot(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    camera_module: Any,
) -> None:
    """A camera's snapshot is uploaded as a JPEG named after the camera."""
    jpeg = b"\xff\xd8\xff\xe0" + os.urandom(2048) + b"\xff\xd9"

    class FrontDoor(camera_module.Camera):  # type: ignore[misc]
        _attr_name = "Front door"

        async def async_camera_image(
            self, width: int | None = None, height: int | None = None
        ) -> bytes:
            return jpeg

    setup_test_component_platform(hass, "camera", [FrontDoor()])
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()

    (drive_file,) = await _upload(
        hass,
        init_integration,
        [
            {
                "media_content_id": "media-source://camera/camera.front_door",
                "media_content_type": "image/jpeg",
                "alt_text": "Who is at the door",
            }
        ],
    )

    stored = misskey.files[drive_file.id]
    assert (stored.name, stored.type) == ("front_door.jpg", "image/jpeg")
    assert (stored.sha256, stored.comment) == (_sha256(jpeg), "Who is at the door")


async def test_large_file_streams_end_to_end(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A 100 MiB file arrives whole; it is never read into memory at once."""
    # A role that may upload it (the default allows 30 MiB).
    misskey.policies["maxFileSizeMb"] = 200
    await init_integration.runtime_data.coordinator.async_refresh()
    size = 100 * 1024 * 1024
    header = b"\x00\x00\x00\x18ftypmp42"
    with (allowed_dir / "video.mp4").open("wb") as file:
        file.write(header)
        file.truncate(size)
    digest = hashlib.sha256(header)
    zeros = bytes(1024 * 1024)
    digest.update(zeros[len(header) :])
    for _ in range(99):
        digest.update(zeros)

    (drive_file,) = await _upload(
        hass, init_integration, [{"path": str(allowed_dir / "video.mp4")}]
    )

    stored = misskey.files[drive_file.id]
    assert (stored.size, stored.sha256) == (size, digest.hexdigest())
    assert misskey.calls("drive/files/create")[0].headers["Content-Length"]


async def test_client_upload_stalls_then_times_out(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """Without an answer after the last chunk the upload fails after upload_timeout."""
    client = init_integration.runtime_data.coordinator.client
    client.upload_timeout = 0.2
    misskey.fail_next("drive/files/create", "hang")

    with pytest.raises(MisskeyTimeoutError):
        await client.upload_file(name="a.png", data=PNG)


async def test_client_empty_413_and_size_mismatch(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """The framework's empty 413 is a file-too-large error; a short stream is refused."""
    client = init_integration.runtime_data.coordinator.client
    misskey.fail_next("drive/files/create", "status", status=413)

    with pytest.raises(MisskeyFileTooLargeError):
        await client.upload_file(name="a.png", data=PNG)
    with pytest.raises(MisskeyUploadSourceError):
        await client.upload_file(name="a.png", data=PNG, size=len(PNG) + 1)
    assert misskey.files == {}


async def test_upload_without_drive_permission(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """Misskey refusing write:drive names it; the credential works: no re-authentication."""
    entry = MockConfigEntry(
        domain=mock_config_entry.domain,
        unique_id=mock_config_entry.unique_id,
        data={
            **mock_config_entry.data,
            "i": authorize(misskey, ["read:account", "write:notes"]),
        },
    )
    await _setup(hass, entry)
    (allowed_dir / "a.png").write_bytes(PNG)

    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            SERVICE_POST,
            {"text": "x", "media": [{"path": str(allowed_dir / "a.png")}]},
            blocking=True,
        )

    assert err.value.translation_key == "missing_permission"
    assert err.value.translation_placeholders == {
        "account": entry.title,
        "permission": "write:drive",
    }
    assert not any(entry.async_get_active_flows(hass, {"reauth"}))


# --- What users meet through misskey.post: each failure names the attachment,
# --- keeps nothing in the drive and posts no note.


async def _post(hass: HomeAssistant, media: list[dict[str, Any]]) -> None:
    await hass.services.async_call(
        DOMAIN, SERVICE_POST, {"text": "With media", "media": media}, blocking=True
    )


def _assert_nothing_kept(misskey: MisskeyServer) -> None:
    assert misskey.files == {}
    assert misskey.notes == {}


async def test_image_entity(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
) -> None:
    """An image entity's image is posted byte for byte, named after the entity."""
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(4096)

    class Doorbell(ImageEntity):
        _attr_name = "Doorbell"
        _attr_content_type = "image/png"

        async def async_image(self) -> bytes | None:
            return png

    setup_test_component_platform(hass, "image", [Doorbell(hass)])
    assert await async_setup_component(hass, "image", {"image": {"platform": "test"}})
    await hass.async_block_till_done()

    response = await hass.services.async_call(
        DOMAIN,
        SERVICE_POST,
        {
            "text": "Someone rang",
            "media": [
                {
                    "media_content_id": "media-source://image/image.doorbell",
                    "media_content_type": "image/png",
                    "alt_text": "The doorbell camera",
                }
            ],
        },
        blocking=True,
        return_response=True,
    )

    (stored,) = misskey.files.values()
    assert (stored.name, stored.type) == ("doorbell.png", "image/png")
    assert (stored.sha256, stored.size) == (_sha256(png), len(png))
    assert stored.comment == "The doorbell camera"
    assert response is not None
    assert response["file_ids"] == [stored.id]
    (note,) = misskey.notes.values()
    assert note["fileIds"] == [stored.id]

    # The whole value of a media selector is accepted as well.
    (drive_file,) = await _upload(
        hass,
        init_integration,
        [
            {
                "media_content_id": {
                    "media_content_id": "media-source://image/image.doorbell"
                }
            }
        ],
    )
    assert misskey.files[drive_file.id].sha256 == _sha256(png)

    # An image entity that does not exist is named in the error.
    with pytest.raises(HomeAssistantError) as err:
        await _post(hass, [{"media_content_id": "media-source://image/image.nothing"}])
    assert err.value.translation_key == "media_unavailable"
    assert err.value.translation_placeholders["source"] == (
        "media-source://image/image.nothing"
    )


@pytest.mark.parametrize(
    ("media_content_id", "error"),
    [
        ("media-source://camera/camera.front_door", "Camera not loaded"),
        ("media-source://image/image.doorbell", "Image not loaded"),
        ("media-source://media_source/local/garden.png", "Media Source not loaded"),
    ],
)
async def test_media_integration_not_loaded(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
    media_content_id: str,
    error: str,
) -> None:
    """A snapshot or media source whose integration is not set up is reported."""
    (allowed_dir / "ok.png").write_bytes(PNG)

    with pytest.raises(HomeAssistantError) as err:
        await _post(
            hass,
            [
                {"path": str(allowed_dir / "ok.png")},
                {"media_content_id": media_content_id},
            ],
        )

    assert err.value.translation_key == "media_unavailable"
    assert err.value.translation_placeholders == {
        "index": "2",
        "source": media_content_id,
        "error": error,
    }
    assert len(misskey.calls("drive/files/create")) == 1
    _assert_nothing_kept(misskey)


async def test_media_source_without_local_file(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
) -> None:
    """A media source that only resolves to a URL cannot be attached."""

    class Radio(MediaSource):
        async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
            return PlayMedia("https://radio.invalid/stream.mp3", "audio/mpeg")

    async def async_get_media_source(hass: HomeAssistant) -> MediaSource:
        return Radio("radio_source")

    platform = types.ModuleType("radio_source.media_source")
    platform.async_get_media_source = async_get_media_source  # type: ignore[attr-defined]
    mock_integration(hass, MockModule("radio_source"))
    mock_platform(hass, "radio_source.media_source", platform)
    assert await async_setup_component(hass, "media_source", {})
    assert await async_setup_component(hass, "radio_source", {})

    with pytest.raises(ServiceValidationError) as err:
        await _post(hass, [{"media_content_id": "media-source://radio_source/station"}])

    assert err.value.translation_key == "media_source_not_supported"
    assert err.value.translation_placeholders == {
        "index": "1",
        "source": "media-source://radio_source/station",
    }
    _assert_nothing_kept(misskey)


async def test_unreadable_files(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A folder or a pipe is not a file to attach; the error says why."""
    (allowed_dir / "ok.png").write_bytes(PNG)
    (allowed_dir / "folder.png").mkdir()
    os.mkfifo(allowed_dir / "pipe.png")
    # Keep a writer open, so that opening the pipe for reading does not block.
    writer = os.open(allowed_dir / "pipe.png", os.O_RDWR | os.O_NONBLOCK)
    try:
        for name, error in (
            ("folder.png", "Is a directory"),
            ("pipe.png", "Not a regular file"),
        ):
            with pytest.raises(HomeAssistantError) as err:
                await _post(
                    hass,
                    [
                        {"path": str(allowed_dir / "ok.png")},
                        {"path": str(allowed_dir / name)},
                    ],
                )
            assert err.value.translation_key == "file_unreadable"
            assert err.value.translation_placeholders == {
                "index": "2",
                "source": str(allowed_dir / name),
                "error": error,
            }
    finally:
        os.close(writer)
    assert len(misskey.calls("drive/files/create")) == 2
    _assert_nothing_kept(misskey)


@pytest.fixture
def proc_folder(hass: HomeAssistant) -> str:
    """Return this process's /proc proc_folder, allowed as a source of attachments."""
    path = f"/proc/{os.getpid()}"
    hass.config.allowlist_external_dirs = {path}
    return path


async def test_file_fails_while_read(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    proc_folder: str,
) -> None:
    """A read error in the middle of a file stops the upload and names the file."""
    # Reading a process's memory from address 0 fails with EIO.

    with pytest.raises(HomeAssistantError) as err:
        await _post(hass, [{"path": f"{proc_folder}/mem"}])

    assert err.value.translation_key == "file_unreadable"
    assert err.value.translation_placeholders == {
        "index": "1",
        "source": f"{proc_folder}/mem",
        "error": "Input/output error",
    }
    _assert_nothing_kept(misskey)


async def test_file_longer_than_its_size(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    proc_folder: str,
) -> None:
    """A file that has more bytes than its size said (it grew) is not kept."""
    # Files of /proc say they are empty and then have content.

    with pytest.raises(HomeAssistantError) as err:
        await _post(hass, [{"path": f"{proc_folder}/status"}])

    assert err.value.translation_key == "attachment_upload_failed"
    assert err.value.translation_placeholders["source"] == f"{proc_folder}/status"
    assert "declared 0 bytes" in err.value.translation_placeholders["error"]
    _assert_nothing_kept(misskey)


@dataclass
class OutsideServer:
    """A server outside the allowed URLs, which counts what reaches it."""

    url: str
    requests: list[str] = field(default_factory=list)


@pytest.fixture
async def outside(socket_enabled: None) -> AsyncGenerator[OutsideServer]:
    """Serve a file on loopback under no allowed URL (say, a router's admin page)."""
    server = OutsideServer("")

    async def anything(request: web.Request) -> web.Response:
        server.requests.append(request.path_qs)
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/{path:.*}", anything)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


@pytest.fixture
def hops() -> list[str]:
    """Return the requests that the redirecting downloads received."""
    return []


@pytest.fixture
async def download_faults(
    hass: HomeAssistant, file_server: str, outside: OutsideServer, hops: list[str]
) -> AsyncGenerator[str]:
    """Serve downloads that go wrong, under the allowed URLs of ``file_server``."""
    released = asyncio.Event()

    async def redirect(request: web.Request) -> web.Response:
        # An allowed hop first (relative), then out of the allowed URLs.
        hops.append(request.path_qs)
        if "step" not in request.query:
            raise web.HTTPMovedPermanently("redirect.png?step=1")
        raise web.HTTPFound(f"{outside.url}/admin/photo.png?token=secret")

    async def loop(request: web.Request) -> web.Response:
        hops.append(request.path_qs)
        raise web.HTTPTemporaryRedirect("loop.png")

    async def moved(request: web.Request) -> web.Response:
        hops.append(request.path_qs)
        raise web.HTTPSeeOther("gzipped.png")

    async def cut_off(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 10 * 65536
        await response.prepare(request)
        await response.write(b"\1" * 65536)
        assert request.transport is not None
        request.transport.close()
        return response

    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 10 * 65536
        await response.prepare(request)
        await response.write(b"\1" * 65536)
        async with asyncio.timeout(WAIT):
            await released.wait()
        return response

    async def gzipped(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(PNG),
            headers={"Content-Encoding": "gzip", "Content-Type": "image/png"},
        )

    app = web.Application()
    app.router.add_get("/files/redirect.png", redirect)
    app.router.add_get("/files/loop.png", loop)
    app.router.add_get("/files/moved.png", moved)
    app.router.add_get("/files/cut.png", cut_off)
    app.router.add_get("/files/stalls.png", stalls)
    app.router.add_get("/files/gzipped.png", gzipped)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hass.config.allowlist_external_urls = {f"{base}/files/", f"{file_server}/files/"}
    yield base
    released.set()
    await runner.cleanup()


@pytest.mark.parametrize(
    ("path", "key", "error"),
    [
        ("/files/loop.png", "url_fetch_failed", "more than 10 redirects"),
        ("/files/cut.png", "url_fetch_failed", "Response payload is not completed"),
        ("/files/stalls.png", "url_fetch_failed", "no data in time"),
    ],
)
async def test_download_fails(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    download_faults: str,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    key: str,
    error: str | None,
) -> None:
    """A download led away, cut off or stalled names the URL; nothing is kept."""
    monkeypatch.setattr(media, "DOWNLOAD_TIMEOUT", HANG_TIMEOUT)

    with pytest.raises(HomeAssistantError) as err:
        await _post(
            hass,
            [
                {"url": f"{download_faults}/files/gzipped.png"},
                {"url": f"{download_faults}{path}?token=secret"},
            ],
        )

    assert err.value.translation_key == key
    placeholders = dict(err.value.translation_placeholders)
    assert placeholders.pop("index") == "2"
    assert placeholders.pop("source") == f"{download_faults}{path}"
    if error is not None:
        assert error in placeholders.pop("error")
    assert placeholders == {}
    # The first file was uploaded, then deleted again.
    assert len(misskey.calls("drive/files/delete")) == 1
    _assert_nothing_kept(misskey)


async def test_redirect_out_of_allowed_urls_is_not_followed(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    download_faults: str,
    outside: OutsideServer,
    hops: list[str],
) -> None:
    """A redirect out of allowlist_external_urls is refused before it is requested."""
    with pytest.raises(ServiceValidationError) as err:
        await _post(hass, [{"url": f"{download_faults}/files/redirect.png?t=s"}])

    assert err.value.translation_key == "url_redirect_not_allowed"
    assert err.value.translation_placeholders == {
        "index": "1",
        "source": f"{download_faults}/files/redirect.png",
        # Without its query, which may hold a token.
        "target": f"{outside.url}/admin/photo.png",
    }
    # The allowed hop was followed, the one out of the allowed URLs not.
    assert hops == ["/files/redirect.png?t=s", "/files/redirect.png?step=1"]
    assert outside.requests == []
    assert misskey.calls("drive/files/create") == []
    _assert_nothing_kept(misskey)


async def test_redirect_within_allowed_urls_is_followed(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    download_faults: str,
    hops: list[str],
) -> None:
    """A redirect that stays within the allowed URLs gives the file it leads to."""
    await _post(hass, [{"url": f"{download_faults}/files/moved.png"}])

    (stored,) = misskey.files.values()
    assert (stored.sha256, stored.name) == (_sha256(PNG), "gzipped.png")
    assert hops == ["/files/moved.png"]


async def test_redirect_loop_stops(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    download_faults: str,
    hops: list[str],
) -> None:
    """A redirect loop ends after the first request and ten redirects."""
    with pytest.raises(HomeAssistantError):
        await _post(hass, [{"url": f"{download_faults}/files/loop.png"}])
    assert len(hops) == 11


async def test_download_server_down(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    refused_port: int,
) -> None:
    """A URL nobody answers at is reported with the connection error."""
    url = f"http://127.0.0.1:{refused_port}/files/photo.png"
    hass.config.allowlist_external_urls = {url}

    with pytest.raises(HomeAssistantError) as err:
        await _post(hass, [{"url": url}])

    assert err.value.translation_key == "url_fetch_failed"
    assert err.value.translation_placeholders["source"] == url
    assert "Cannot connect" in err.value.translation_placeholders["error"]
    assert misskey.calls("drive/files/create") == []
    _assert_nothing_kept(misskey)


async def test_compressed_download(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    download_faults: str,
) -> None:
    """A compressed download, whose length is unknown, arrives decompressed."""
    await _post(hass, [{"url": f"{download_faults}/files/gzipped.png"}])

    (stored,) = misskey.files.values()
    assert (stored.sha256, stored.size) == (_sha256(PNG), len(PNG))
    assert (stored.name, stored.type) == ("gzipped.png", "image/png")
    (note,) = misskey.notes.values()
    assert note["fileIds"] == [stored.id]


async def test_upload_rate_limited_too_long(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A 429 asking to wait longer than a minute is reported, not waited out."""
    (allowed_dir / "a.png").write_bytes(PNG)
    (allowed_dir / "b.png").write_bytes(PNG)
    misskey.fail_next("drive/files/create", "rate_limit", retry_after=120)
    misskey.fail_next("drive/files/create", "rate_limit", retry_after=120)

    with pytest.raises(HomeAssistantError) as err:
        await _post(
            hass,
            [
                {"path": str(allowed_dir / "a.png")},
                {"path": str(allowed_dir / "b.png")},
            ],
        )

    assert err.value.translation_key == "attachment_rate_limited"
    assert err.value.translation_placeholders == {
        "index": "1",
        "source": str(allowed_dir / "a.png"),
        "retry_after": "120",
    }
    assert len(misskey.calls("drive/files/create")) == 1
    _assert_nothing_kept(misskey)

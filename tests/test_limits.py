"""The role's limits (``policies`` of ``i``) next to the instance's: the stricter wins.

Misskey checks the role's upload limits only after the whole file arrived
(413 MAX_FILE_SIZE_EXCEEDED, UNALLOWED_FILE_TYPE); the integration stops such
a file before sending a byte of it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from aiohttp import web
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import DOMAIN, SERVICE_POST
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .misskey_server import CHERRYPICK, MISSKEY_13, SHARKEY, MisskeyServer

MIB = 1024 * 1024
PNG_HEADER = b"\x89PNG\r\n\x1a\n"


async def post(hass: HomeAssistant, **data: Any) -> dict[str, Any]:
    """Call misskey.post and return its response."""
    response = await hass.services.async_call(
        DOMAIN, SERVICE_POST, data, blocking=True, return_response=True
    )
    assert response is not None
    return response


async def set_policies(
    misskey: MisskeyServer, entry: MockConfigEntry, **policies: Any
) -> None:
    """Change the role on the server and read the account again."""
    assert misskey.policies is not None
    misskey.policies |= policies
    await entry.runtime_data.coordinator.async_refresh()


def png(path: Path, size: int) -> Path:
    """Write a PNG of ``size`` bytes (a header, then zeros) without using memory."""
    with path.open("wb") as file:
        file.write(PNG_HEADER)
        file.truncate(size)
    return path


@pytest.fixture
def allowed_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Return a folder Home Assistant may read files from."""
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    return tmp_path


@pytest.fixture
async def file_server(hass: HomeAssistant, socket_enabled: None) -> AsyncGenerator[str]:
    """Serve files of a given size and type on loopback; return the allowed base URL."""

    async def sized(request: web.Request) -> web.Response:
        size = int(request.query["size"])
        return web.Response(
            body=PNG_HEADER + bytes(size - len(PNG_HEADER)),
            content_type=request.query.get("type", "image/png"),
        )

    async def streamed(request: web.Request) -> web.StreamResponse:
        # Chunked: no Content-Length to refuse the file by.
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(PNG_HEADER)
        for _ in range(int(request.query["chunks"])):
            await response.write(bytes(65536))
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/files/sized.png", sized)
    app.router.add_get("/files/stream.png", streamed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    hass.config.allowlist_external_urls = {f"{base}/files/"}
    yield base
    await runner.cleanup()


async def test_role_size_stops_a_file_before_upload(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """MaxFileSizeMb below meta's maxFileSize: a larger file is never sent.

    With two attachments, the first is not uploaded either.
    """
    await set_policies(misskey, init_integration, maxFileSizeMb=1)
    small = png(allowed_dir / "small.png", 1000)
    big = png(allowed_dir / "big.png", MIB + 1)

    with pytest.raises(ServiceValidationError) as err:
        await post(hass, media=[{"path": str(small)}, {"path": str(big)}])

    assert err.value.translation_key == "attachment_too_large_for_role"
    assert err.value.translation_placeholders == {
        "index": "2",
        "source": str(big),
        "max": "1",
    }
    assert str(err.value) == (
        f"Attachment 2 ({big}) is larger than the 1 MiB this account's role may upload"
    )
    assert not misskey.calls("drive/files/create")
    assert not misskey.calls("notes/create")

    # Exactly the limit is fine.
    exact = png(allowed_dir / "exact.png", MIB)
    response = await post(hass, media=[{"path": str(exact)}])
    (drive_file,) = misskey.files.values()
    assert drive_file.size == MIB
    assert response["file_ids"] == [drive_file.id]


async def test_role_size_stops_a_download(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    file_server: str,
) -> None:
    """A URL over the role's size: refused on Content-Length, else cut off."""
    await set_policies(misskey, init_integration, maxFileSizeMb=1)
    with pytest.raises(ServiceValidationError) as err:
        await post(
            hass, media=[{"url": f"{file_server}/files/sized.png?size={2 * MIB}"}]
        )
    assert err.value.translation_key == "attachment_too_large_for_role"
    assert not misskey.calls("drive/files/create")

    with pytest.raises(ServiceValidationError) as err:
        await post(hass, media=[{"url": f"{file_server}/files/stream.png?chunks=40"}])
    assert err.value.translation_key == "attachment_too_large_for_role"
    assert not misskey.files
    assert not misskey.notes


async def test_server_refuses_what_the_role_no_longer_allows(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A role lowered since the last read: Misskey takes the whole file, then 413."""
    misskey.policies = (misskey.policies or {}) | {"maxFileSizeMb": 1}
    big = png(allowed_dir / "big.png", 2 * MIB)

    with pytest.raises(HomeAssistantError) as err:
        await post(hass, media=[{"path": str(big)}])

    assert err.value.translation_key == "attachment_rejected_too_large"
    (upload,) = misskey.calls("drive/files/create")
    assert upload.file is not None
    assert upload.file.size == 2 * MIB
    assert not misskey.files


async def test_instance_limit_when_stricter(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """Meta's maxFileSize below the role's: the instance's limit and words."""
    misskey.max_file_size = MIB // 2
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    big = png(allowed_dir / "big.png", MIB)

    with pytest.raises(ServiceValidationError) as err:
        await post(hass, media=[{"path": str(big)}])

    assert err.value.translation_key == "attachment_too_large"
    assert err.value.translation_placeholders["max"] == "0.5"
    assert not misskey.calls("drive/files/create")


async def test_role_file_types(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
    file_server: str,
) -> None:
    """A type the role may not upload is refused unsent, by name or download type.

    The default role takes text, JSON, images, video and audio.
    """
    picture = png(allowed_dir / "a.png", 1000)
    (allowed_dir / "report.pdf").write_bytes(b"%PDF-1.7\n")

    with pytest.raises(ServiceValidationError) as err:
        await post(
            hass,
            media=[{"path": str(picture)}, {"path": str(allowed_dir / "report.pdf")}],
        )
    assert err.value.translation_key == "attachment_type_not_allowed"
    assert err.value.translation_placeholders == {
        "index": "2",
        "source": str(allowed_dir / "report.pdf"),
        "type": "application/pdf",
    }
    assert not misskey.calls("drive/files/create")

    url = f"{file_server}/files/sized.png?size=100&type=application/zip"
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, media=[{"url": url}])
    assert err.value.translation_placeholders["type"] == "application/zip"
    assert not misskey.calls("drive/files/create")

    # A role that allows them.
    await set_policies(misskey, init_integration, uploadableFileTypes=["*/*"])
    await post(hass, media=[{"path": str(allowed_dir / "report.pdf")}])
    (drive_file,) = misskey.files.values()
    assert drive_file.type == "application/pdf"


async def test_server_finds_the_type(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """A file of unknown type is sent; Misskey's verdict from its bytes is explained."""
    (allowed_dir / "data.bin").write_bytes(b"hello")
    with pytest.raises(HomeAssistantError) as err:
        await post(hass, media=[{"path": str(allowed_dir / "data.bin")}])
    assert err.value.translation_key == "attachment_rejected_type"
    assert len(misskey.calls("drive/files/create")) == 1
    assert not misskey.files


async def test_moderators_are_not_limited_by_role(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """Misskey does not hold moderators to their role's upload limits; nor do we."""
    misskey.user.is_moderator = True
    await set_policies(misskey, init_integration, maxFileSizeMb=1)
    big = png(allowed_dir / "big.png", 2 * MIB)
    (allowed_dir / "report.pdf").write_bytes(b"%PDF-1.7\n")

    await post(
        hass, media=[{"path": str(big)}, {"path": str(allowed_dir / "report.pdf")}]
    )
    assert [f.type for f in misskey.files.values()] == ["image/png", "application/pdf"]


@pytest.mark.parametrize("variant", [SHARKEY])
async def test_sharkey_role_has_no_file_limits(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """Sharkey's policies have no maxFileSizeMb or uploadableFileTypes: meta's limit."""
    big = png(allowed_dir / "big.png", 31 * MIB)
    (allowed_dir / "report.pdf").write_bytes(b"%PDF-1.7\n")
    await post(
        hass, media=[{"path": str(big)}, {"path": str(allowed_dir / "report.pdf")}]
    )
    assert len(misskey.files) == 2


@pytest.mark.parametrize("variant", ["misskey", SHARKEY, CHERRYPICK])
async def test_public_note_when_the_role_may_not(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """A role without canPublicNote: an explicit public note is refused, not made home.

    Left out, the server's home answers; channel notes stay public.
    """
    await set_policies(misskey, init_integration, canPublicNote=False)
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="Hi", visibility="public")
    assert err.value.translation_key == "public_not_allowed"
    assert not misskey.calls("notes/create")

    response = await post(hass, text="Hi")
    assert response["visibility"] == "home"

    misskey.channels.add("chan1")
    response = await post(hass, text="Hi", visibility="public", channel="chan1")
    assert response["visibility"] == "public"


@pytest.mark.parametrize("variant", ["misskey", SHARKEY, CHERRYPICK])
async def test_mention_limit(
    hass: HomeAssistant, misskey: MisskeyServer, init_integration: MockConfigEntry
) -> None:
    """MentionLimit counts each mentioned user once; addresses are no mentions."""
    for name in ("bob", "carol", "dave"):
        misskey.add_user(name)
    await set_policies(misskey, init_integration, mentionLimit=2)
    with pytest.raises(ServiceValidationError) as err:
        await post(hass, text="@bob @carol and @dave")
    assert err.value.translation_key == "too_many_mentions"
    assert err.value.translation_placeholders == {"count": "3", "max": "2"}
    assert not misskey.calls("notes/create")

    own = misskey.url.removeprefix("http://")
    await post(hass, text=f"@bob @Bob @bob@{own} @carol, write to me@example.com")
    assert len(misskey.notes) == 1


@pytest.mark.parametrize("variant", [MISSKEY_13])
async def test_no_roles_no_role_limits(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """Misskey 12 has no roles: any type and size up to meta's limit goes."""
    big = png(allowed_dir / "big.png", 31 * MIB)
    (allowed_dir / "report.pdf").write_bytes(b"%PDF-1.7\n")
    await post(
        hass,
        text="@a @b @c",
        visibility="public",
        media=[{"path": str(big)}, {"path": str(allowed_dir / "report.pdf")}],
    )
    assert len(misskey.files) == 2


async def test_exact_file_type(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    allowed_dir: Path,
) -> None:
    """application/json is allowed by name, not by a wildcard; Misskey agrees."""
    (allowed_dir / "state.json").write_text('{"door": "open"}')
    await post(hass, media=[{"path": str(allowed_dir / "state.json")}])
    (drive_file,) = misskey.files.values()
    assert drive_file.type == "application/json"

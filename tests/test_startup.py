"""Start-up cost: loading the integration imports only what it needs.

Home Assistant imports the integration (with its notify and config_flow
platforms) at every start. The media sources, image entities and cameras that
attachments can come from are imported only when a note uses them, and then
only if Home Assistant has loaded them already; else loading the integration
would import the frontend, Pillow and the Bluetooth libraries (about 0.17 s on
a fast machine, several times that on a small board).
"""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.media import async_upload_attachments
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .misskey_server import MisskeyServer

ROOT = Path(__file__).resolve().parents[1]

# What loading the integration must not import: Home Assistant loads these only
# for the integrations that need them.
HEAVY = (
    "homeassistant.components.camera",
    "homeassistant.components.frontend",
    "homeassistant.components.image",
    "homeassistant.components.media_source",
    "homeassistant.helpers.config_entry_oauth2_flow",
    "habluetooth",
    "bleak",
    "PIL",
)


def test_loading_imports_nothing_heavy() -> None:
    """Importing the integration as Home Assistant does pulls in none of HEAVY."""
    code = (
        "import sys\n"
        "import homeassistant.components.http, homeassistant.components.notify\n"
        "before = set(sys.modules)\n"
        "import custom_components.misskey, custom_components.misskey.notify\n"
        "import custom_components.misskey.config_flow\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=50,
    )
    imported = done.stdout.split()

    assert "custom_components.misskey.post" in imported
    # The streaming client is imported by the first account that listens, and
    # attachments by the first note that has one.
    assert "custom_components.misskey.listener" not in imported
    assert "custom_components.misskey.api.stream" not in imported
    assert "custom_components.misskey.media" not in imported
    # Assist, and Home Assistant's conversation integration, by an account
    # that lists someone allowed to talk to it.
    assert "custom_components.misskey.assist" not in imported
    assert "homeassistant.components.conversation" not in imported
    assert [
        name
        for name in imported
        if any(name == heavy or name.startswith(f"{heavy}.") for heavy in HEAVY)
    ] == []


@pytest.mark.parametrize(
    ("media_content_id", "error"),
    [
        ("media-source://media_source/local/garden.png", "Media Source not loaded"),
        ("media-source://image/image.garden", "Image not loaded"),
        ("media-source://camera/camera.front_door", "Camera not loaded"),
    ],
)
async def test_media_of_an_integration_not_loaded(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    media_content_id: str,
    error: str,
) -> None:
    """A media source, image or camera that is not set up is unavailable."""
    with pytest.raises(HomeAssistantError) as err:
        await async_upload_attachments(
            hass,
            init_integration.runtime_data.client,
            init_integration.runtime_data.coordinator.limits,
            [{"media_content_id": media_content_id}],
        )

    assert err.value.translation_key == "media_unavailable"
    assert err.value.translation_placeholders == {
        "index": "1",
        "source": media_content_id,
        "error": error,
    }
    assert misskey.calls("drive/files/create") == []

"""Talking to the house from Misskey, in a real Home Assistant: the thread as the sender sees it.

A real Home Assistant in a process of its own, with its own conversation agent
and a kitchen light (a template light, exposed to Assist as new lights are),
and the test Misskey server. The account is added and given Assist's options
through the options flow over the REST API; bob sends "turn off the kitchen
light" as a direct note; the light goes off and the answer comes back in the
thread, for bob alone. The browser shows the thread on the server's note page
(with MISSKEY_HA_SCREENSHOTS=docs it becomes docs/assist-thread.png).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .harness import (
    ARTIFACTS,
    FakeMisskeyThread,
    HomeAssistantProcess,
    add_account,
    doc_screenshot,
    http_request,
    until,
)

if TYPE_CHECKING:
    from pathlib import Path

    from playwright.sync_api import Browser

    from tests.misskey_server import MisskeyServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CONFIGURATION = """default_config:

logger:
  default: info
  logs:
    custom_components.misskey: debug

template:
  - light:
      - name: Kitchen light
        unique_id: kitchen_light
        turn_on:
          - event: kitchen_on
        turn_off:
          - event: kitchen_off
"""


def test_direct_note_answered_in_the_thread(
    tmp_path: Path, fake_misskey: FakeMisskeyThread, browser: Browser
) -> None:
    """Bob's direct note turns the light off; the answer is in his thread, for him."""
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "configuration.yaml").write_text(CONFIGURATION)
    hass = HomeAssistantProcess(config_dir, log_path=ARTIFACTS / "assist.log")
    hass.start()
    try:
        hass.onboard()
        hass.wait_running()
        entry = add_account(hass, fake_misskey)
        host = fake_misskey.url.removeprefix("http://")
        bob = fake_misskey.call(
            lambda server: server.add_user("bob", name="Bob"), fake_misskey.server
        )
        alice_id = fake_misskey.call(lambda server: server.user.id, fake_misskey.server)
        flows = "/api/config/config_entries/options/flow"
        step = hass.api("POST", flows, {"handler": entry["entry_id"]})
        step = hass.api(
            "POST",
            f"{flows}/{step['flow_id']}",
            {
                "default_visibility": "home",
                "default_local_only": False,
                "listen": True,
                "catch_up_window": 15,
                "assist_accounts": [f"@bob@{host}"],
                "assist_scope": "direct",
            },
        )
        assert step["type"] == "create_entry", step
        hass.api(
            "POST", "/api/services/light/turn_on", {"entity_id": "light.kitchen_light"}
        )
        states = hass.api("GET", "/api/states")
        streaming = next(
            s["entity_id"] for s in states if s["entity_id"].endswith("_streaming")
        )
        until(
            "streaming after the reload",
            lambda: hass.api("GET", f"/api/states/{streaming}")["state"] == "on",
            timeout=60,
        )

        command = http_request(
            "POST",
            f"{fake_misskey.url}/api/notes/create",
            json_body={
                "i": bob.native_token,
                "text": "@alice turn off the kitchen light",
                "visibility": "specified",
                "visibleUserIds": [alice_id],
            },
        )["createdNote"]

        def answers(server: MisskeyServer) -> list[dict[str, Any]]:
            return [
                dict(n) for n in server.notes.values() if n["replyId"] == command["id"]
            ]

        (answer,) = until(
            "the answer",
            lambda: fake_misskey.call(answers, fake_misskey.server),
            timeout=60,
        )
        assert answer["text"] == "Turned off the light"
        assert answer["visibility"] == "specified"
        assert answer["visibleUserIds"] == [bob.id]
        light = hass.api("GET", "/api/states/light.kitchen_light")
        assert light["state"] == "off"

        context = browser.new_context(viewport={"width": 1000, "height": 420})
        page = context.new_page()
        page.goto(f"{fake_misskey.url}/notes/{answer['id']}")
        page.get_by_text("Turned off the light").wait_for()
        doc_screenshot(page, "assist-thread")
        context.close()
    finally:
        hass.stop()

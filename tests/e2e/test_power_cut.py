"""A power cut right after an event: Home Assistant starts again and the event does not fire twice.

A real Home Assistant in a process of its own, the test Misskey server, and the
README's automation that answers "lights off" mentions in their thread. Home
Assistant is killed (SIGKILL) as soon as the answer reached the server and the
listener's record of the last event it delivered is on disk (on a loaded
machine the write may take longer than the answer; that the write starts
before anything the event triggers can run is tests/test_listener.py's
test_record_written_before_the_event_is_acted_on). Started again, it catches
up on what it missed: the mention made while it was dead is answered once, the
one answered before the kill is not answered again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from .harness import ARTIFACTS, FakeMisskeyThread, HomeAssistantProcess, http_request
from .test_events_browser import AUTOMATION, add_account, until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.misskey_server import MisskeyServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_killed_after_an_event_does_not_fire_it_again(
    tmp_path: Path, fake_misskey: FakeMisskeyThread
) -> None:
    """Killed right after an automation answered a mention: once, and once after."""
    hass = HomeAssistantProcess(
        tmp_path / "config", log_path=ARTIFACTS / "power-cut.log"
    )
    hass.start()
    try:
        hass.onboard()
        hass.wait_running()
        entry = add_account(hass, fake_misskey)
        # Home Assistant writes its config entries a moment later; the test
        # is about the listener's own record, not that one.
        entries = hass.config_dir / ".storage" / "core.config_entries"
        until("the entry on disk", lambda: entry["entry_id"] in entries.read_text())
        states = hass.api("GET", "/api/states")
        title = entry["title"]
        mentions, streaming = (
            next(
                s["entity_id"]
                for s in states
                if s["attributes"].get("friendly_name", "").startswith(f"{title} ")
                and s["entity_id"].endswith(suffix)
            )
            for suffix in ("_mentions", "_streaming")
        )
        config = hass.config_dir / "configuration.yaml"
        config.write_text(
            config.read_text()
            + AUTOMATION.format(mentions=mentions, entry_id=entry["entry_id"])
        )
        hass.api("POST", "/api/services/automation/reload", {})
        until(
            "streaming",
            lambda: hass.api("GET", f"/api/states/{streaming}")["state"] == "on",
        )
        bob = fake_misskey.call(
            lambda server: server.add_user("bob", name="Bob"), fake_misskey.server
        )

        def mention(text: str) -> str:
            answer = http_request(
                "POST",
                f"{fake_misskey.url}/api/notes/create",
                json_body={"i": bob.native_token, "text": text},
            )
            return str(answer["createdNote"]["id"])

        def answers(note_id: str) -> list[dict[str, Any]]:
            def find(server: MisskeyServer) -> list[dict[str, Any]]:
                return [n for n in server.notes.values() if n["replyId"] == note_id]

            return list(fake_misskey.call(find, fake_misskey.server))

        def recorded() -> Any:
            """Return the last notification the listener wrote down, if it did."""
            path = hass.config_dir / ".storage" / f"misskey.{entry['entry_id']}"
            try:
                return json.loads(path.read_text())["data"]["last_notification_id"]
            except FileNotFoundError, ValueError, KeyError:
                return None

        first = mention("@alice lights off, please")
        notification = fake_misskey.call(
            lambda server: server.streams.notifications[server.user.id][-1]["id"],
            fake_misskey.server,
        )
        until("the answer", lambda: answers(first), timeout=30)
        until("the record on disk", lambda: recorded() == notification)
        hass.kill()

        second = mention("@alice lights off again")
        hass.start()
        hass.wait_running()
        until("the second answer", lambda: answers(second), timeout=60)
        until(
            "streaming",
            lambda: hass.api("GET", f"/api/states/{streaming}")["state"] == "on",
        )
        # Events fire in order and the automation (mode: queued) answers one
        # at a time: once a later mention is answered, a repeated answer to
        # either would have been posted before it.
        third = mention("@alice lights off at last")
        until("the third answer", lambda: answers(third), timeout=60)
        assert len(answers(first)) == 1
        assert len(answers(second)) == 1
    finally:
        hass.stop()

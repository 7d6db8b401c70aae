"""Hearing Misskey in a real Home Assistant: an automation answers a mention in its thread.

Against the test Misskey server: the account is added over the REST API (as
in the polling test), an automation like the README's "Hearing the account"
one (on the event.received trigger) answers mentions that contain "lights off", and another user of the
server mentions the account. The answer must land in the thread, once; the
event entity's history is the README's picture (docs/events-history.png with
MISSKEY_HA_SCREENSHOTS=docs).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from .harness import (
    FakeMisskeyThread,
    HomeAssistantProcess,
    add_account,
    doc_screenshot,
    http_request,
    until,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from tests.misskey_server import MisskeyServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

AUTOMATION = """
automation:
  - id: misskey_lights_off
    alias: Lights off from Misskey
    mode: queued
    triggers:
      - trigger: event.received
        target:
          entity_id: {mentions}
        options:
          event_type: [mention, reply]
    conditions:
      - condition: template
        value_template: "{{{{ 'lights off' in (trigger.to_state.attributes.text or '') }}}}"
    actions:
      - action: misskey.post
        data:
          config_entry_id: {entry_id}
          text: "Done, {{{{ trigger.to_state.attributes.user }}}}: the lights are off."
          reply_to: "{{{{ trigger.to_state.attributes.note_url }}}}"
"""


def test_automation_answers_a_mention(
    hass_process: HomeAssistantProcess, page: Page, fake_misskey: FakeMisskeyThread
) -> None:
    """A mention fires the event entity; the automation replies in the thread, once."""
    from playwright.sync_api import expect  # noqa: PLC0415

    entry = add_account(hass_process, fake_misskey)
    title = entry["title"]

    def own(suffix: str) -> str:
        states = hass_process.api("GET", "/api/states")
        (entity_id,) = [
            s["entity_id"]
            for s in states
            if s["attributes"].get("friendly_name", "").startswith(f"{title} ")
            and s["entity_id"].endswith(suffix)
        ]
        return str(entity_id)

    mentions = until("the mentions entity", lambda: own("_mentions"))
    streaming = own("_streaming")
    until(
        "streaming",
        lambda: hass_process.api("GET", f"/api/states/{streaming}")["state"] == "on",
    )
    config = hass_process.config_dir / "configuration.yaml"
    original = config.read_text()
    config.write_text(
        original + AUTOMATION.format(mentions=mentions, entry_id=entry["entry_id"])
    )
    try:
        hass_process.api("POST", "/api/services/automation/reload", {})
        bob = fake_misskey.call(
            lambda server: server.add_user("bob", name="Bob"), fake_misskey.server
        )

        def post_as_bob(text: str) -> dict[str, Any]:
            answer = http_request(
                "POST",
                f"{fake_misskey.url}/api/notes/create",
                json_body={"i": bob.native_token, "text": text},
            )
            return dict(answer["createdNote"])

        post_as_bob("@alice good morning")
        mention = post_as_bob("@alice lights off, please")

        def replies(note_id: str) -> list[dict[str, Any]]:
            def find(server: MisskeyServer) -> list[dict[str, Any]]:
                return [
                    dict(note)
                    for note in server.notes.values()
                    if note["replyId"] == note_id
                ]

            return list(fake_misskey.call(find, fake_misskey.server))

        (answer,) = until("the answer", lambda: replies(mention["id"]))
        assert answer["user"]["username"] == "alice"
        host = fake_misskey.url.removeprefix("http://")
        assert answer["text"] == f"Done, @bob@{host}: the lights are off."

        state = hass_process.api("GET", f"/api/states/{mentions}")
        assert state["attributes"]["event_type"] == "mention"
        assert state["attributes"]["note_id"] == mention["id"]

        # The entity's history as the user reads it: Activity, filtered to it.
        page.set_viewport_size({"width": 1000, "height": 640})
        page.goto(f"{hass_process.base_url}/logbook?entity_id={mentions}")
        entries = page.get_by_text(re.compile(r"→\s*Mention$"))
        expect(entries).to_have_count(2, timeout=30_000)
        page.wait_for_timeout(1000)
        doc_screenshot(page, "events-history")

        # Answered once: events fire in order and the automation (mode:
        # queued) answers one at a time, so once a later mention is answered,
        # a second answer to the first would have been posted before it.
        later = post_as_bob("@alice lights off, now")
        until("the later answer", lambda: replies(later["id"]))
        assert len(replies(mention["id"])) == 1

    finally:
        config.write_text(original)
        hass_process.api("POST", "/api/services/automation/reload", {})

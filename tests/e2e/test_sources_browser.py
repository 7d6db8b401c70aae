"""Following a hashtag from the UI, in a real browser and a real Home Assistant.

The account's card on the integration's page > Add source > Hashtag > the
hashtag; the source's event entity then fires for a note with it, on the
connection the account already has. What the form shows is the translations'
text, so a key missing there shows here as a raw key. With
MISSKEY_HA_SCREENSHOTS=docs the kind's form becomes docs/source-kind.png.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .harness import (
    FakeMisskeyThread,
    HomeAssistantProcess,
    doc_screenshot,
    http_request,
    screenshot,
    until,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_follow_a_hashtag_from_the_ui(
    hass_process: HomeAssistantProcess,
    page: Page,
    fake_misskey: FakeMisskeyThread,
    entry: dict[str, Any],
) -> None:
    """Add source > Hashtag > #weather; a note with #weather fires its event entity."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.set_viewport_size({"width": 1000, "height": 640})
    page.goto(f"{hass_process.base_url}/config/integrations/integration/misskey")
    expect(page.get_by_text(entry["title"]).first).to_be_visible(timeout=30_000)
    # The subentry type's button (config_subentries.source.initiate_flow.user);
    # with other accounts set up (by the tests before), it asks whose.
    page.get_by_role("button", name="Add source").click()
    form = page.get_by_text("Follow a source")
    ours = page.get_by_role("button", name=entry["title"], exact=True)
    expect(form.or_(ours)).to_be_visible(timeout=30_000)
    if ours.is_visible():
        ours.click()

    # Step "user": which kind (a list of the kinds this server has).
    expect(form).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Kind of source")).to_be_visible()
    page.get_by_role("radio", name="Hashtag").check()
    doc_screenshot(page, "source-kind")
    page.get_by_role("button", name="Submit").click()

    # Step "hashtag".
    field = page.locator("input[name='hashtag']")
    expect(field).to_be_visible(timeout=30_000)
    field.fill("#Weather")
    screenshot(page, "source-2-hashtag")
    page.get_by_role("button", name="Submit").click()
    finish = page.get_by_role("button", name="Finish")
    expect(finish).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Created configuration for #Weather.")).to_be_visible()
    finish.click()
    expect(finish).to_be_hidden()

    # The source's event entity, named after the subentry.
    def source_entity() -> str | None:
        for state in hass_process.api("GET", "/api/states"):
            if state["entity_id"].startswith("event.") and "#Weather" in state[
                "attributes"
            ].get("friendly_name", ""):
                return str(state["entity_id"])
        return None

    entity_id = until("the source's event entity", source_entity)
    # The source shows under the account, with its device.
    expect(page.get_by_text("Misskey hashtag")).to_be_visible(timeout=30_000)
    screenshot(page, "source-3-entry")

    bob = fake_misskey.call(
        lambda server: server.add_user("bob", name="Bob"), fake_misskey.server
    )
    note = http_request(
        "POST",
        f"{fake_misskey.url}/api/notes/create",
        json_body={"i": bob.native_token, "text": "Rain all day #weather"},
    )["createdNote"]

    def fired() -> dict[str, Any] | None:
        state = hass_process.api("GET", f"/api/states/{entity_id}")
        if state["attributes"].get("note_id") == note["id"]:
            return dict(state)
        return None

    state = until("the note's event", fired, timeout=60)
    assert state["attributes"]["event_type"] == "note"
    assert state["attributes"]["text_excerpt"] == "Rain all day #weather"

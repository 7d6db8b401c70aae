"""The Misskey set-up and posting, in a real browser and a real Home Assistant.

Two ways through the set-up, against the test Misskey server:

- the user's path in the UI: Add integration > Misskey > server URL > Open
  website > Allow on Misskey's page, which sends the browser back to Home
  Assistant's callback; then notes through notify.send_message and the legacy
  notify.misskey_* service over the REST API;
- the polling path: the flow started over the REST API under a host name Home
  Assistant does not know, so it registers no callback URL, and Allow pressed in
  another browser that cannot reach Home Assistant; the flow still finishes.

With MISSKEY_HA_SCREENSHOTS=docs the first test also writes the README's
pictures to docs/ (see harness.doc_screenshot).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from .harness import (
    FakeMisskeyThread,
    HomeAssistantProcess,
    doc_screenshot,
    http_request,
    screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from tests.misskey_server import MisskeyServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# The size of the README's pictures.
DOC_VIEWPORT = {"width": 1000, "height": 640}


def notes(fake_misskey: FakeMisskeyThread) -> list[dict[str, Any]]:
    """Return the notes on the fake Misskey, oldest first."""

    def read(server: MisskeyServer) -> list[dict[str, Any]]:
        return [dict(note) for note in server.notes.values()]

    return fake_misskey.call(read, fake_misskey.server)  # type: ignore[no-any-return]


def entry_of(hass_process: HomeAssistantProcess, title: str) -> dict[str, Any]:
    """Return the Misskey config entry with this title."""
    entries = hass_process.api("GET", "/api/config/config_entries/entry?domain=misskey")
    matches = [entry for entry in entries if entry["title"] == title]
    assert len(matches) == 1, entries
    return matches[0]  # type: ignore[no-any-return]


def account_title(fake_misskey: FakeMisskeyThread) -> str:
    """Return the title the set-up gives the fake Misskey's account."""
    return f"@alice@{fake_misskey.url.removeprefix('http://')}"


def test_add_misskey_through_the_ui_and_post(
    hass_process: HomeAssistantProcess, page: Page, fake_misskey: FakeMisskeyThread
) -> None:
    """URL form > Open website > Allow > entry; then notes by both notify services."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.set_viewport_size(DOC_VIEWPORT)
    page.goto(f"{hass_process.base_url}/config/integrations/dashboard")
    page.get_by_role("button", name="Add integration").click()
    page.get_by_placeholder("Search for a brand name").fill("Misskey")
    page.get_by_text("Misskey", exact=True).first.click()

    # Step "user": the server address.
    expect(page.get_by_text("Misskey server", exact=True)).to_be_visible(timeout=30_000)
    url_field = page.locator("input[name='url']")
    url_field.fill(fake_misskey.url)
    doc_screenshot(page, "setup-1-server")
    page.get_by_role("button", name="Submit").click()

    # External step: the frontend shows "Open website" for Misskey's page (and,
    # in frontend 20260930.5, no dialog title: step.authorize.title is unused).
    open_website = page.locator("ha-button[href]", has_text="Open website")
    expect(open_website).to_be_visible(timeout=30_000)
    expect(
        page.get_by_text(f"sign in to {fake_misskey.url.removeprefix('http://')}")
    ).to_be_visible()
    doc_screenshot(page, "setup-2-open-website")
    with page.context.expect_page() as popup_info:
        open_website.click()
    popup = popup_info.value
    popup.wait_for_load_state()
    popup.set_viewport_size({"width": DOC_VIEWPORT["width"], "height": 480})
    expect(popup.get_by_role("button", name="Allow")).to_be_visible()
    expect(popup.get_by_text("Compose or delete notes")).to_be_visible()
    doc_screenshot(popup, "setup-3-misskey-allow")
    # Allow sends the browser to Home Assistant's callback (built from the
    # HA-Frontend-Base header the frontend sent), whose page closes the window.
    with popup.expect_event("close", timeout=30_000):
        popup.get_by_role("button", name="Allow").click()

    # Home Assistant notices by itself; the dialog moves on to naming the new
    # device (frontend 20260930.5 shows "Name and assign" after a created entry).
    finish = page.get_by_role("button", name="Skip and finish")
    expect(finish).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Misskey account", exact=True)).to_be_visible()
    screenshot(page, "flow-4-done")
    finish.click()
    expect(finish).to_be_hidden()

    title = account_title(fake_misskey)
    entry = entry_of(hass_process, title)
    assert entry["state"] == "loaded"
    # The app was made with Home Assistant's callback, which the browser followed.
    callbacks = fake_misskey.call(
        lambda server: [app.callback_url for app in server.apps.values()],
        fake_misskey.server,
    )
    assert callbacks == [f"{hass_process.base_url}/api/misskey/authorized"]

    page.goto(f"{hass_process.base_url}/config/integrations/integration/misskey")
    expect(page.get_by_text(title).first).to_be_visible(timeout=30_000)
    doc_screenshot(page, "setup-4-entry")

    # notify.send_message on the account's entity.
    states = hass_process.api("GET", "/api/states")
    entity_ids = [
        state["entity_id"]
        for state in states
        if state["entity_id"].startswith("notify.")
        and state["attributes"].get("friendly_name") == title
    ]
    assert len(entity_ids) == 1, [s["entity_id"] for s in states]
    hass_process.api(
        "POST",
        "/api/services/notify/send_message",
        {
            "entity_id": entity_ids[0],
            "title": "Laundry",
            "message": "The washing machine is done.",
        },
    )
    # The legacy notify service, one per account: notify.misskey_<title slug>.
    services = hass_process.api("GET", "/api/services")
    notify_services = next(s["services"] for s in services if s["domain"] == "notify")
    legacy = [name for name in notify_services if name.startswith("misskey_")]
    assert len(legacy) == 1, sorted(notify_services)
    hass_process.api(
        "POST",
        f"/api/services/notify/{legacy[0]}",
        {"message": "Someone is at the door.", "data": {"visibility": "followers"}},
    )

    posted = notes(fake_misskey)
    # A new account posts home unless a call says otherwise.
    assert [(note["text"], note["visibility"]) for note in posted] == [
        ("**Laundry**\nThe washing machine is done.", "home"),
        ("Someone is at the door.", "followers"),
    ]
    # What the user sees on Misskey.
    note_page = page.context.new_page()
    note_page.set_viewport_size({"width": DOC_VIEWPORT["width"], "height": 400})
    note_page.goto(f"{fake_misskey.url}/notes/{posted[0]['id']}")
    expect(note_page.get_by_text("The washing machine is done.")).to_be_visible()
    doc_screenshot(note_page, "note-posted")
    note_page.goto(f"{fake_misskey.url}/")
    expect(note_page.locator("#notes li")).to_have_count(2)
    note_page.close()


def test_add_misskey_by_polling_alone(
    hass_process: HomeAssistantProcess,
    browser: Browser,
    fake_misskey: FakeMisskeyThread,
) -> None:
    """No callback URL and a browser that cannot reach Home Assistant: polling finishes."""
    from playwright.sync_api import expect  # noqa: PLC0415

    assert hass_process.credentials is not None
    # Home Assistant builds a callback URL only from the frontend's header or an
    # address it knows; under an unknown host name (say, an unconfigured proxy)
    # it has neither, so Misskey will not send the browser back.
    headers = {
        "Authorization": f"Bearer {hass_process.credentials.token}",
        "Host": "home.invalid",
    }
    flows = f"{hass_process.base_url}/api/config/config_entries/flow"
    step = http_request(
        "POST", flows, json_body={"handler": "misskey"}, headers=headers
    )
    assert (step["type"], step["step_id"]) == ("form", "user")
    step = http_request(
        "POST",
        f"{flows}/{step['flow_id']}",
        json_body={"url": fake_misskey.url},
        headers=headers,
    )
    assert (step["type"], step["step_id"]) == ("external", "authorize")
    flow_id = step["flow_id"]
    callbacks = fake_misskey.call(
        lambda server: [app.callback_url for app in server.apps.values()],
        fake_misskey.server,
    )
    assert callbacks == [None]

    # Allow, on "another device": a browser that is not signed in to Home
    # Assistant and could not reach it.
    context = browser.new_context()
    try:
        context.route(f"{hass_process.base_url}/**", lambda route: route.abort())
        misskey_page = context.new_page()
        misskey_page.goto(step["url"])
        misskey_page.get_by_role("button", name="Allow").click()
        expect(misskey_page.get_by_text("Access allowed")).to_be_visible()
    finally:
        context.close()

    # As the open dialog does, ask for the flow until it is done; Home Assistant
    # polls Misskey every AUTHORIZE_POLL_INTERVAL (3 s).
    deadline = time.monotonic() + 30
    while True:
        step = http_request("GET", f"{flows}/{flow_id}", headers=headers)
        if step["type"] == "create_entry":
            break
        assert step["type"] in ("external", "external_done"), step
        assert time.monotonic() < deadline, f"flow still at {step}"
        time.sleep(0.5)
    assert step["title"] == account_title(fake_misskey)
    assert entry_of(hass_process, step["title"])["state"] == "loaded"

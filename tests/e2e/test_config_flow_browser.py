"""The Misskey set-up, clicked through in a real browser against a fake Misskey."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from .harness import FakeMisskeyThread, HomeAssistantProcess, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def fake_misskey() -> Generator[FakeMisskeyThread]:
    """Run a fake Misskey on loopback, reachable by the browser and by hass."""
    pytest.importorskip("tests.misskey_server")
    server = FakeMisskeyThread()
    server.start()
    yield server
    server.stop()


def test_add_misskey_through_the_ui(
    hass_process: HomeAssistantProcess, page: Page, fake_misskey: FakeMisskeyThread
) -> None:
    """Add integration > Misskey > server > Open website > Allow > entry loaded."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.goto(f"{hass_process.base_url}/config/integrations/dashboard")
    page.get_by_role("button", name="Add integration").click()
    page.get_by_placeholder("Search for a brand name").fill("Misskey")
    page.get_by_text("Misskey", exact=True).first.click()

    # Step "user": the server address.
    expect(page.get_by_text("Misskey server", exact=True)).to_be_visible(timeout=30_000)
    screenshot(page, "flow-1-user")
    page.locator("input[name='url']").fill(fake_misskey.url)
    page.get_by_role("button", name="Submit").click()

    # External step: the frontend shows "Open website" for Misskey's page (and,
    # in frontend 20260930.5, no dialog title: step.authorize.title is unused).
    expect(page.locator("ha-button[href]", has_text="Open website")).to_be_visible(
        timeout=30_000
    )
    expect(
        page.get_by_text(f"sign in to {fake_misskey.url.removeprefix('http://')}")
    ).to_be_visible()
    screenshot(page, "flow-2-authorize")
    with page.context.expect_page() as popup_info:
        page.locator("ha-button[href]", has_text="Open website").click()
    popup = popup_info.value
    popup.wait_for_load_state()
    expect(popup.get_by_role("button", name="Allow")).to_be_visible()
    screenshot(popup, "flow-3-misskey-authorize-page")
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

    entries = hass_process.api("GET", "/api/config/config_entries/entry?domain=misskey")
    assert [(entry["domain"], entry["state"]) for entry in entries] == [
        ("misskey", "loaded")
    ]

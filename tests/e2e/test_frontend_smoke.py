"""Smoke test: a real browser logs in to a real Home Assistant with Misskey loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .harness import HomeAssistantProcess, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_integrations_page_renders(
    hass_process: HomeAssistantProcess, page: Page
) -> None:
    """The integrations dashboard renders with its "Add integration" button."""
    from playwright.sync_api import expect  # noqa: PLC0415

    page.goto(f"{hass_process.base_url}/config/integrations")
    page.wait_for_url("**/config/integrations/**")
    add_integration = page.get_by_role("button", name="Add integration")
    expect(add_integration).to_be_visible(timeout=30_000)
    # Onboarding set up Sun (default_config) among others; its card is there.
    expect(page.get_by_text("Sun", exact=True)).to_be_visible()
    # The page fades in under a "Loading..." screen; wait until that is gone.
    expect(page.get_by_text("Loading...")).to_be_hidden(timeout=30_000)
    screenshot(page, "integrations")

    # Every requirement was there already: requirements_dev.txt matches this HA.
    log = hass_process.log_text()
    assert "Unable to install package" not in log
    assert "Attempting install of" not in log

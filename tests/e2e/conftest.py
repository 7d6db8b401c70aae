"""Fixtures for the browser tests: one Home Assistant and one Chromium per session.

Run these with scripts/e2e. They start real processes and open real sockets, so
they must run without pytest-homeassistant-custom-component's plugin (`-p
no:homeassistant`), whose per-test set-up blocks sockets, and without
tests/conftest.py (`--confcutdir tests/e2e`), whose autouse fixture needs that
plugin.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
import json
import shutil
import time
from typing import TYPE_CHECKING, Any

import pytest

from .harness import (
    ARTIFACTS,
    FakeMisskeyThread,
    HomeAssistantProcess,
    add_account,
    launch_browser,
    login,
    screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Skip the browser tests when the Home Assistant test plugin is active."""
    if not config.pluginmanager.has_plugin("homeassistant"):
        return
    skip = pytest.mark.skip(
        reason="needs -p no:homeassistant (its socket blocking and fixtures get "
        "in the way); run scripts/e2e"
    )
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Remember each phase's report on the item, for screenshots on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def hass_process(
    tmp_path_factory: pytest.TempPathFactory,
) -> Generator[HomeAssistantProcess]:
    """Run an onboarded Home Assistant with this checkout's integration."""
    ARTIFACTS.mkdir(exist_ok=True)
    process = HomeAssistantProcess(
        tmp_path_factory.mktemp("hass") / "config",
        log_path=ARTIFACTS / "home-assistant.log",
    )
    started = time.monotonic()
    process.start()
    try:
        http_up = time.monotonic()
        process.onboard()
        onboarded = time.monotonic()
        process.wait_running()
        running = time.monotonic()
        (ARTIFACTS / "timings.json").write_text(
            json.dumps(
                {
                    "hass_http_up_s": round(http_up - started, 2),
                    "onboarding_s": round(onboarded - http_up, 2),
                    "until_running_s": round(running - started, 2),
                },
                indent=2,
            )
        )
        yield process
    finally:
        process.stop()
        if process.log_path and process.config_dir.exists():
            # Keep the stored state (config entries, registries) for a look later.
            shutil.copytree(
                process.config_dir / ".storage",
                ARTIFACTS / "storage",
                dirs_exist_ok=True,
            )


@pytest.fixture(scope="session")
def playwright() -> Generator[Playwright]:
    """Playwright's driver (a Node.js process shipped in the wheel)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Generator[Browser]:
    """Headless system Chromium."""
    browser = launch_browser(playwright)
    yield browser
    browser.close()


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    browser: Browser,
    hass_process: HomeAssistantProcess,
) -> Generator[Page]:
    """Open a fresh browser context, logged in through the login page."""
    assert hass_process.credentials is not None
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    login(
        page,
        hass_process.base_url,
        hass_process.credentials.username,
        hass_process.credentials.password,
    )
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        screenshot(page, f"FAILED-{request.node.name}")
    context.close()


@pytest.fixture
def fake_misskey() -> Generator[FakeMisskeyThread]:
    """Run a fake Misskey on loopback, reachable by the browser and by hass."""
    pytest.importorskip("tests.misskey_server")
    server = FakeMisskeyThread()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def entry(
    hass_process: HomeAssistantProcess, fake_misskey: FakeMisskeyThread
) -> Iterator[dict[str, Any]]:
    """Add the fake Misskey's account; remove it afterwards.

    The tests after one that uses this add accounts of their own and count on
    theirs being the only one (its card, its notify service).
    """
    entry: dict[str, Any] = add_account(hass_process, fake_misskey)
    yield entry
    hass_process.api("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")

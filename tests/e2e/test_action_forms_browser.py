"""The actions in the action editor: forms, not YAML, and a note posted from them.

In Settings → Tools → Actions (UI mode), every field of every Misskey action
is a form; misskey.post's attachments are a list of forms and its poll a form.
A note posted from them, with a file picked in the media browser (local media)
and a poll, arrives on the test Misskey server with its attachment. The
pictures for the docs: the attachment's form, the post form with a poll and an
attachment, and the attachment's form in Japanese (MISSKEY_HA_SCREENSHOTS=docs).
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import TYPE_CHECKING, Any
import zlib

import pytest

from .harness import (
    FakeMisskeyThread,
    HomeAssistantProcess,
    doc_screenshot,
    login,
    until,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

    from tests.misskey_server import MisskeyServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Wide enough for the post form's date and time fields.
VIEWPORT = {"width": 1280, "height": 800}
ACTIONS = (
    "post",
    "react",
    "delete_note",
    "get_account",
    "mute_account",
    "unmute_account",
    "update_profile",
)


def picture(width: int = 320, height: int = 240) -> bytes:
    """Return a PNG (a colour gradient): the file to pick in the media browser."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(
        b"\0"
        + b"".join(
            bytes((x * 255 // width, y * 255 // height, 180)) for x in range(width)
        )
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def action_page(page: Page, hass_process: HomeAssistantProcess, action: str) -> None:
    """Open Settings → Tools → Actions with the Misskey action chosen."""
    page.goto(f"{hass_process.base_url}/config/tools/action?service=misskey.{action}")
    page.locator("ha-service-control ha-settings-row").first.wait_for()


def field(page: Page, name: str) -> Locator:
    """Return the row of the action's field with this label."""
    return page.locator("ha-service-control ha-settings-row").filter(
        has=page.get_by_text(name, exact=True)
    )


def test_post_from_the_forms(
    hass_process: HomeAssistantProcess,
    page: Page,
    browser: Browser,
    fake_misskey: FakeMisskeyThread,
    entry: dict[str, Any],
) -> None:
    """Attachments and poll are forms; the note they make arrives with its file."""
    from playwright.sync_api import expect  # noqa: PLC0415

    media = hass_process.config_dir / "media"
    media.mkdir(exist_ok=True)
    png = picture()
    (media / "front-door.png").write_bytes(png)
    page.set_viewport_size(VIEWPORT)

    # No action has a field shown as YAML (an object selector without fields).
    for action in ACTIONS:
        action_page(page, hass_process, action)
        assert page.locator("ha-service-control ha-yaml-editor").count() == 0, action

    action_page(page, hass_process, "post")
    account = field(page, "Account")
    account.locator("ha-checkbox").click()
    account.locator("ha-config-entry-picker").click()
    page.get_by_text(entry["title"], exact=True).click()
    text = field(page, "Text")
    text.locator("ha-checkbox").click()
    text.locator("textarea").fill("Someone is at the door.")

    # An attachment: the file from the media browser, and its alt text.
    attachments = field(page, "Attachments")
    attachments.get_by_role("button", name="Add").click()
    form = page.locator("dialog-form").last
    expect(form.get_by_text("File", exact=True)).to_be_visible()
    form.get_by_text("Pick media", exact=True).click()
    page.locator("div.title", has_text="My media").click()
    page.locator("div.title", has_text="front-door.png").click()
    expect(form.get_by_text("front-door.png")).to_be_visible()
    form.locator("textarea[name='alt_text']").fill(
        "The front door camera:\nthe postman with a parcel"
    )
    doc_screenshot(page, "action-attachment")
    form.get_by_role("button", name="Add", exact=True).click()
    expect(form).to_be_hidden()
    # Listed by the file, described by its alt text.
    expect(attachments.get_by_text("front-door.png", exact=True)).to_be_visible()
    expect(attachments.get_by_text("The front door camera:")).to_be_visible()

    # A poll: two choices, open for an hour.
    poll = field(page, "Poll")
    poll.get_by_role("button", name="Add").click()
    form = page.locator("dialog-form").last
    for choice in ("Open the door", "Let it ring"):
        form.get_by_role("button", name="Add Choice").click()
        form.locator("ha-selector-text input").last.fill(choice)
    form.locator("ha-selector-duration input[name='hours']").fill("1")
    form.get_by_role("button", name="Add", exact=True).click()
    expect(form).to_be_hidden()
    expect(poll.get_by_text("Open the door, Let it ring")).to_be_visible()
    poll.scroll_into_view_if_needed()
    page.mouse.wheel(0, 200)
    page.wait_for_timeout(500)
    doc_screenshot(page, "action-forms")

    page.get_by_role("button", name="Perform action").click()

    def posted(server: MisskeyServer) -> list[dict[str, Any]]:
        return [dict(note) for note in server.notes.values()]

    (note,) = until("the note", lambda: fake_misskey.call(posted, fake_misskey.server))
    assert note["text"] == "Someone is at the door."
    assert [choice["text"] for choice in note["poll"]["choices"]] == [
        "Open the door",
        "Let it ring",
    ]
    assert note["poll"]["expiredAfter"] == 3_600_000
    (file_id,) = note["fileIds"]

    def stored(server: MisskeyServer) -> tuple[Any, ...]:
        drive_file = server.files[file_id]
        return drive_file.name, drive_file.comment, drive_file.sha256

    assert fake_misskey.call(stored, fake_misskey.server) == (
        "front-door.png",
        "The front door camera:\nthe postman with a parcel",
        hashlib.sha256(png).hexdigest(),
    )

    # The same form in Japanese.
    assert hass_process.credentials is not None
    context = browser.new_context(viewport=VIEWPORT)
    try:
        japanese = context.new_page()
        login(
            japanese,
            hass_process.base_url,
            hass_process.credentials.username,
            hass_process.credentials.password,
        )
        japanese.evaluate(
            f"localStorage.setItem('selectedLanguage', {json.dumps(json.dumps('ja'))})"
        )
        action_page(japanese, hass_process, "post")
        expect(field(japanese, "アンケート")).to_be_visible()
        field(japanese, "添付ファイル").get_by_role("button").first.click()
        form = japanese.locator("dialog-form").last
        for label in ("ファイル", "キャプション", "センシティブ", "ファイル名"):
            expect(form.get_by_text(label, exact=True).first).to_be_visible()
        doc_screenshot(japanese, "action-attachment-ja")
    finally:
        context.close()

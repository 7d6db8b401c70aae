"""Posting and uploading: every fault ends in a note posted once, or a clear message and no note.

The table: each fault as the test server plays it, against posting a note
(``notes/create``) and uploading its attachment (``drive/files/create``), and
what the automation that called ``misskey.post`` then sees: the note posted
(once: a 429 is waited out, nothing else is ever sent again), or a translated
error and what the server holds afterwards. A refused credential also starts
re-authentication. The log holds no traceback and never the credential.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
import logging
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import DOMAIN, SERVICE_POST
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .conftest import HANG_TIMEOUT, until_pool_closed
from .misskey_server import MISSKEY, MISSKEY_13, MisskeyServer

NOTES_CREATE = "notes/create"
DRIVE_FILES_CREATE = "drive/files/create"


@pytest.fixture(autouse=True)
def fast_faults() -> Generator[None]:
    """Give up on an unanswered request after HANG_TIMEOUT; try a bare 429 again in 0.2 s."""
    with (
        patch("custom_components.misskey.api.transport.DEFAULT_TIMEOUT", HANG_TIMEOUT),
        patch("custom_components.misskey.api.gate.PROBE_AFTER", (0.2, 0.4, 1)),
    ):
        yield


Arm = Callable[[MisskeyServer, str], Any]


def fault(kind: str, **kwargs: Any) -> Arm:
    """Answer the next call to the endpoint with a fault."""
    return lambda server, endpoint: server.fail_next(endpoint, kind, **kwargs)


def revoke(server: MisskeyServer, endpoint: str) -> None:
    """Revoke the credential, as the user does in Misskey's settings."""
    server.revoke()


def without_permission(server: MisskeyServer, endpoint: str) -> None:
    """Take the permission the endpoint needs from the app."""
    needed = "write:notes" if endpoint == NOTES_CREATE else "write:drive"
    server.tokens[-1].permission.remove(needed)


def suspend(server: MisskeyServer, endpoint: str) -> None:
    """Have the server's moderators suspend the account."""
    server.user.is_suspended = True


async def go_down(server: MisskeyServer, endpoint: str) -> None:
    """Stop the server (a while ago: the client's kept-alive connections are gone)."""
    await server.go_down()


@dataclass(frozen=True)
class Row:
    """A fault, and what the automation sees: an error key, or None for a note posted."""

    fault: str
    arm: Arm
    key: str | None
    # Notes on the server afterwards, and calls to the endpoint in all.
    notes: int = 0
    calls: int = 1
    reauth: bool = False
    variant: str = MISSKEY
    # Only for one of the endpoints.
    only: str | None = None


ROWS = [
    Row("401", revoke, "authentication_failed", reauth=True),
    Row("403 (permission not granted)", without_permission, "missing_permission"),
    Row("403 (account suspended)", suspend, "account_suspended"),
    Row("429 with Retry-After", fault("rate_limit", retry_after=0.3), None, notes=1, calls=2),
    Row("429 without Retry-After", fault("rate_limit"), None, notes=1, calls=2, variant=MISSKEY_13),
    Row("5xx", fault("server_error"), "server_error", only=NOTES_CREATE),
    Row("5xx", fault("server_error"), "attachment_upload_failed", only=DRIVE_FILES_CREATE),
    Row("connection reset", fault("drop"), "post_outcome_unknown", only=NOTES_CREATE),
    Row("connection reset, after the server posted", fault("drop", after=True), "post_outcome_unknown", notes=1, only=NOTES_CREATE),
    Row("connection reset", fault("drop"), "attachment_upload_failed", only=DRIVE_FILES_CREATE),
    Row("stall", fault("hang", delay=30), "post_outcome_unknown", only=NOTES_CREATE),
    Row("stall", fault("hang", delay=30), "attachment_upload_failed", only=DRIVE_FILES_CREATE),
    Row("malformed answer", fault("html", status=200), "post_outcome_unknown", only=NOTES_CREATE),
    Row("malformed answer, after the server posted", fault("html", status=200, after=True), "post_outcome_unknown", notes=1, only=NOTES_CREATE),
    Row("malformed answer", fault("html", status=200), "attachment_upload_failed", only=DRIVE_FILES_CREATE),
    Row("server down", go_down, "cannot_connect", calls=0, only=NOTES_CREATE),
    Row("server down", go_down, "attachment_upload_failed", calls=0, only=DRIVE_FILES_CREATE),
]  # fmt: skip
CASES = [
    pytest.param(endpoint, row, id=f"{state}: {row.fault}")
    for state, endpoint in (
        ("posting", NOTES_CREATE),
        ("uploading", DRIVE_FILES_CREATE),
    )
    for row in ROWS
    if row.only in (None, endpoint)
]


@pytest.fixture
def variant(request: pytest.FixtureRequest) -> str:
    """Play the variant the row names."""
    row: Row = request.node.callspec.params["row"]
    return row.variant


@pytest.mark.parametrize(("endpoint", "row"), CASES)
async def test_fault(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    init_integration: MockConfigEntry,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    endpoint: str,
    row: Row,
) -> None:
    """The note is posted once, or the automation reads why not; nothing twice."""
    data: dict[str, Any] = {"text": "the doorbell rang"}
    if endpoint == DRIVE_FILES_CREATE:
        picture = tmp_path / "door.png"
        picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(2048))
        hass.config.allowlist_external_dirs = {str(tmp_path)}
        data["media"] = [{"path": str(picture)}]
        init_integration.runtime_data.coordinator.client.upload_timeout = HANG_TIMEOUT
    if (armed := row.arm(misskey, endpoint)) is not None:
        await armed
    if row.arm is go_down:
        await until_pool_closed(hass)
    caplog.clear()

    if row.key is None:
        response = await hass.services.async_call(
            DOMAIN, SERVICE_POST, data, blocking=True, return_response=True
        )
        assert response is not None
        assert response["text"] == "the doorbell rang"
    else:
        with pytest.raises(HomeAssistantError) as exc:
            await hass.services.async_call(
                DOMAIN, SERVICE_POST, data, blocking=True, return_response=True
            )
        assert exc.value.translation_key == row.key
        assert init_integration.data["i"] not in str(exc.value)

    assert len(misskey.notes) == row.notes
    assert len(misskey.calls(endpoint)) == row.calls
    if endpoint == DRIVE_FILES_CREATE and row.notes == 0:
        # Nothing left behind in the account's drive either.
        assert not misskey.files
    await hass.async_block_till_done()
    reauth = [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]
    assert bool(reauth) is row.reauth
    ours = [r for r in caplog.records if r.name.startswith("custom_components")]
    assert len([r for r in ours if r.levelno >= logging.WARNING]) <= 1
    assert not any(r.exc_info for r in ours)
    assert init_integration.data["i"] not in caplog.text

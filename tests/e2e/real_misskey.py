r"""The whole user path against a real Misskey: set-up, listening, answering, restarts.

Not part of any test run (CI has no real Misskey). A developer with a Misskey
(or Sharkey, or Misskey 12) on loopback runs it with the native tokens of two
accounts there, for example those of ../shared/real-servers/:

    scripts/run --full python -m tests.e2e.real_misskey \\
        --url http://127.0.0.1:3000 --user-token "$(cat bob-token)" \\
        --other-token "$(cat admin-token)"

It starts a real Home Assistant (tests/e2e/harness.py) with an automation that
answers mentions containing "lights off" in the thread, adds the user's account
through the config flow (the user's token presses Allow, as the browser
would), then has the other account mention it: live, and while Home
Assistant is stopped (the restart must deliver each once). It prints what it
saw and exits non-zero when something is wrong.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

from .harness import HomeAssistantProcess, http_request

AUTOMATION = """
automation:
  - id: misskey_answer_mentions
    alias: Answer "lights off" mentions
    # Events caught up after a restart come in a burst: answer each.
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
          text: "Lights are off, {{{{ trigger.to_state.attributes.user }}}}"
          reply_to: "{{{{ trigger.to_state.attributes.note_url }}}}"
          visibility: home
"""


class AnsweringHomeAssistant(HomeAssistantProcess):
    """Home Assistant whose configuration keeps the answering automation."""

    automation = ""

    def write_config(self) -> None:
        """Write the harness's configuration, and the automation once known."""
        super().write_config()
        config = self.config_dir / "configuration.yaml"
        # The harness keeps the file across restarts: add the automation once.
        if self.automation and self.automation not in config.read_text():
            config.write_text(config.read_text() + self.automation)


def say(*parts: object) -> None:
    """Tell the developer what happened."""
    sys.stdout.write(" ".join(str(part) for part in parts) + "\n")
    sys.stdout.flush()


def misskey(url: str, endpoint: str, credential: str | None, **params: Any) -> Any:
    """Call the Misskey API."""
    body = dict(params)
    if credential is not None:
        body["i"] = credential
    return http_request("POST", f"{url}/api/{endpoint}", json_body=body)


def until(what: str, check: Any, timeout: float = 60) -> Any:
    """Wait until ``check()`` returns something true; return it."""
    deadline = time.monotonic() + timeout
    while True:
        if result := check():
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.5)


def add_account(hass: HomeAssistantProcess, url: str, token: str) -> dict[str, Any]:
    """Go through the config flow; the user's token presses Allow."""
    flow = hass.api(
        "POST",
        "/api/config/config_entries/flow",
        {"handler": "misskey"},
        frontend_base=True,
    )
    flow = hass.api(
        "POST",
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"url": url},
        frontend_base=True,
    )
    assert flow["type"] == "external", flow
    session = flow["url"].rsplit("/", 1)[1]
    misskey(url, "auth/accept", token, token=session)

    def finished() -> dict[str, Any] | None:
        result = hass.api("POST", f"/api/config/config_entries/flow/{flow['flow_id']}")
        return result if result["type"] == "create_entry" else None

    return until("the config flow", finished)


def replies_to(url: str, note_id: str, author_id: str) -> list[dict[str, Any]]:
    """Return the replies of an account to a note."""
    replies = misskey(url, "notes/replies", None, noteId=note_id, limit=10)
    return [r for r in replies if r["userId"] == author_id]


def main() -> int:
    """Run the scenario; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user-token", required=True)
    parser.add_argument("--other-token", required=True)
    parser.add_argument("--log", type=Path, help="where Home Assistant logs")
    args = parser.parse_args()
    url, user_token, other_token = (
        args.url.rstrip("/"),
        args.user_token,
        args.other_token,
    )
    user = misskey(url, "i", user_token)
    other = misskey(url, "i", other_token)
    meta = misskey(url, "meta", None)
    say(f"{url}: {meta['version']}; @{user['username']} answers @{other['username']}")

    with tempfile.TemporaryDirectory() as tmp:
        hass = AnsweringHomeAssistant(Path(tmp) / "config", log_path=args.log)
        hass.start()
        try:
            hass.onboard()
            hass.wait_running()
            entry = add_account(hass, url, user_token)["result"]
            host = url.split("://", 1)[1]
            say(f"entry {entry['title']} ({entry['state']})")
            states = hass.api("GET", "/api/states")
            mentions = next(
                s["entity_id"]
                for s in states
                if s["entity_id"].startswith("event.")
                and s["entity_id"].endswith("_mentions")
            )
            streaming = mentions.replace("event.", "binary_sensor.").replace(
                "_mentions", "_streaming"
            )
            hass.automation = AUTOMATION.format(mentions=mentions)
            hass.write_config()
            hass.api("POST", "/api/services/automation/reload", {})
            until(
                "streaming",
                lambda: hass.api("GET", f"/api/states/{streaming}")["state"] == "on",
            )

            started = time.monotonic()
            note = misskey(
                url,
                "notes/create",
                other_token,
                text=f"@{user['username']} lights off please",
            )["createdNote"]
            reply = until(
                "the answer in the thread",
                lambda: replies_to(url, note["id"], user["id"]),
            )
            say(
                f"live: answered in {time.monotonic() - started:.1f} s: "
                f"{reply[0]['text']!r}"
            )
            state = hass.api("GET", f"/api/states/{mentions}")
            assert state["attributes"]["note_url"] == f"{url}/notes/{note['id']}"
            assert state["attributes"]["user"] == f"@{other['username']}@{host}"

            hass.api(
                "POST",
                "/api/services/misskey/react",
                {"note": state["attributes"]["note_url"], "reaction": "👍"},
            )
            shown = misskey(url, "notes/show", user_token, noteId=note["id"])
            say(f"react: {shown.get('myReaction')!r} on the mention")
            assert shown.get("myReaction") == "👍"

            # Away: Home Assistant stops, two mentions arrive, it starts again.
            hass.stop()
            missed = [
                misskey(
                    url,
                    "notes/create",
                    other_token,
                    text=f"@{user['username']} lights off {n} while you were away",
                )["createdNote"]
                for n in range(2)
            ]
            hass.start()
            hass.wait_running()
            answers = until(
                "answers to the missed mentions",
                lambda: (
                    all(replies_to(url, m["id"], user["id"]) for m in missed)
                    and [replies_to(url, m["id"], user["id"]) for m in missed]
                ),
                timeout=90,
            )
            time.sleep(5)
            counts = [len(replies_to(url, m["id"], user["id"])) for m in missed]
            say(f"after restart: {counts} answers to the {len(missed)} missed mentions")
            assert counts == [1, 1], counts
            assert len(replies_to(url, note["id"], user["id"])) == 1, "answered twice"
            del answers

            diagnostics = hass.api(
                "GET", f"/api/diagnostics/config_entry/{entry['entry_id']}"
            )["data"]
            listener = diagnostics["listener"]
            say("listener:", json.dumps(listener, default=str))
            text = json.dumps(diagnostics)
            assert user_token not in text
            errors = [
                line
                for line in hass.log_text().splitlines()
                if "custom_components.misskey" in line
                and (" ERROR " in line or "Traceback" in line)
            ]
            assert not errors, errors
        finally:
            hass.stop()
    say("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

r"""Assist against a real Misskey: a direct note in, Assist's answer out, seen from three sides.

Not part of any test run (CI has no real Misskey). With a Misskey (or Sharkey)
on loopback and the native tokens of two accounts there:

    scripts/run python -m tests.e2e.real_assist --url http://127.0.0.1:3000 \\
        --user-token "$(cat bob-token)" --other-token "$(cat admin-token)"

It runs a Home Assistant test instance (as scripts/bench does) with Home
Assistant's own conversation agent and an exposed template light, sets the
user's account up with the other account allowed to talk to Assist, and has
the other account send "turn off the kitchen light" as a direct note. Then it
checks: the light is off; the other account's ``i/notifications`` has the
answer as a ``reply`` to its note; the answer is ``specified`` to it alone;
and without a credential, ``notes/show`` does not show the answer's text.
It deletes both notes, prints what it saw as JSON and exits non-zero when
something is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from typing import Any

import aiohttp
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.api import instance_host
from custom_components.misskey.const import (
    APP_PERMISSIONS,
    CONF_ASSIST_ACCOUNTS,
    CONF_CATCH_UP_WINDOW,
    CONF_CREDENTIAL,
    CONF_LISTEN,
    CONF_PERMISSIONS,
    DOMAIN,
    EVENT_ASSIST,
)
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.const import CONF_URL
from homeassistant.core import Event, callback
from homeassistant.setup import async_setup_component

from tests.bench import running_hass, set_up

KITCHEN = "light.kitchen_light"


async def api(
    session: aiohttp.ClientSession, url: str, endpoint: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """Call the API; return the status and the JSON answer."""
    async with session.post(f"{url}/api/{endpoint}", json=body) as response:
        text = await response.text()
        return response.status, json.loads(text) if text else None


async def run(url: str, user_token: str, other_token: str) -> dict[str, Any]:
    """Send a command to the user's Home Assistant as the other account; check the answer."""
    seen: dict[str, Any] = {"url": url}
    async with aiohttp.ClientSession() as session:
        _, user = await api(session, url, "i", {"i": user_token})
        _, other = await api(session, url, "i", {"i": other_token})
        host = instance_host(url)
        with tempfile.TemporaryDirectory() as config_dir:
            async with running_hass(config_dir) as hass:
                for component in ("homeassistant", "conversation", "intent"):
                    assert await async_setup_component(hass, component, {})
                assert await async_setup_component(
                    hass,
                    "template",
                    {
                        "template": [
                            {
                                "light": [
                                    {
                                        "name": "Kitchen light",
                                        "turn_on": [{"event": "kitchen_on"}],
                                        "turn_off": [{"event": "kitchen_off"}],
                                    }
                                ]
                            }
                        ]
                    },
                )
                await hass.async_block_till_done()
                async_expose_entity(hass, "conversation", KITCHEN, True)
                await hass.services.async_call(
                    "light", "turn_on", {"entity_id": KITCHEN}, blocking=True
                )
                entry = MockConfigEntry(
                    domain=DOMAIN,
                    title=f"@{user['username']}@{host}",
                    unique_id=f"{user['id']}@{host}",
                    minor_version=3,
                    data={
                        CONF_URL: url,
                        CONF_CREDENTIAL: user_token,
                        CONF_PERMISSIONS: list(APP_PERMISSIONS),
                    },
                    options={
                        CONF_LISTEN: True,
                        CONF_CATCH_UP_WINDOW: 0,
                        CONF_ASSIST_ACCOUNTS: [f"@{other['username']}@{host}"],
                    },
                )
                done: asyncio.Future[Event] = hass.loop.create_future()

                @callback
                def record(event: Event) -> None:
                    if not done.done():
                        done.set_result(event)

                hass.bus.async_listen(EVENT_ASSIST, record)
                await set_up(hass, entry)
                async with asyncio.timeout(30):
                    while not entry.runtime_data.listener.connected:
                        await asyncio.sleep(0.05)
                _, created = await api(
                    session,
                    url,
                    "notes/create",
                    {
                        "i": other_token,
                        "text": f"@{user['username']} turn off the kitchen light",
                        "visibility": "specified",
                        "visibleUserIds": [user["id"]],
                    },
                )
                command = created["createdNote"]
                async with asyncio.timeout(30):
                    event = await done
                seen["event"] = dict(event.data)
                seen["light"] = hass.states.get(KITCHEN).state
        # What the other account's notifications say, seen with its token.
        reply = None
        for _ in range(50):
            _, notifications = await api(
                session,
                url,
                "i/notifications",
                {"i": other_token, "limit": 10, "markAsRead": False},
            )
            reply = next(
                (
                    n
                    for n in notifications
                    if n.get("note", {}).get("replyId") == command["id"]
                ),
                None,
            )
            if reply is not None:
                break
            await asyncio.sleep(0.1)
        assert reply is not None, "no notification of the answer"
        answer = reply["note"]
        seen["notification_type"] = reply["type"]
        seen["answer"] = {
            key: answer.get(key)
            for key in ("text", "visibility", "visibleUserIds", "replyId", "userId")
        }
        # A third view: nobody signed in.
        status, shown = await api(session, url, "notes/show", {"noteId": answer["id"]})
        seen["unauthenticated_notes_show"] = {
            "status": status,
            "error": (shown or {}).get("error", {}).get("code")
            if isinstance(shown, dict)
            else None,
            "text": shown.get("text") if isinstance(shown, dict) else None,
            "isHidden": shown.get("isHidden") if isinstance(shown, dict) else None,
        }
        await api(
            session, url, "notes/delete", {"i": user_token, "noteId": answer["id"]}
        )
        await api(
            session, url, "notes/delete", {"i": other_token, "noteId": command["id"]}
        )
    seen["ok"] = (
        seen["light"] == "off"
        and seen["notification_type"] == "reply"
        and seen["answer"]["visibility"] == "specified"
        and seen["answer"]["visibleUserIds"] == [other["id"]]
        and seen["answer"]["replyId"] == command["id"]
        and seen["unauthenticated_notes_show"]["text"] is None
    )
    return seen


def main() -> None:
    """Run against one server; print what was seen."""
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.real_assist")
    parser.add_argument("--url", required=True)
    parser.add_argument("--user-token", required=True)
    parser.add_argument("--other-token", required=True)
    args = parser.parse_args()
    seen = asyncio.run(run(args.url, args.user_token, args.other_token))
    print(json.dumps(seen, indent=2, ensure_ascii=False))  # noqa: T201
    sys.exit(0 if seen["ok"] else 1)


if __name__ == "__main__":
    main()

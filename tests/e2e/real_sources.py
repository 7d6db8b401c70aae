r"""Sources against a real Misskey: the form, each channel, a restart, own notes, a gone antenna.

Not part of any test run (CI has no real Misskey). With two accounts' native
tokens on a Misskey (or Sharkey, or Misskey 12) on loopback:

    scripts/run --full python -m tests.e2e.real_sources \\
        --url http://127.0.0.1:3000 --user-token "$(cat bob-token)" \\
        --other-token "$(cat admin-token)"

It starts a real Home Assistant (tests/e2e/harness.py), adds the user's
account through the config flow, makes an antenna, a list (with the other
account) and, where the server has channels, a channel on Misskey, and adds
them and a hashtag as sources through the subentry form. The other account
then posts: each source's event entity must fire with the note; the user's
own note with the tag must not. Home Assistant stops, the other account posts
again, and after the start each source must have caught up once. Last, the
antenna is deleted on Misskey: after a restart the log says it is gone. It
prints what it saw and exits non-zero when something is wrong.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
import secrets
import sys
import tempfile
import time
from typing import Any
from urllib.parse import quote

from .harness import HomeAssistantProcess, HttpError
from .real_misskey import add_account, misskey, say, until


def add_source(
    hass: HomeAssistantProcess, entry_id: str, kind: str, value: str
) -> dict[str, Any]:
    """Go through the source form: the kind, then which one."""
    flow = hass.api(
        "POST",
        "/api/config/config_entries/subentries/flow",
        {"handler": [entry_id, "source"]},
    )
    assert flow["step_id"] == "user", flow
    flow = hass.api(
        "POST",
        f"/api/config/config_entries/subentries/flow/{flow['flow_id']}",
        {"kind": kind},
    )
    assert flow["step_id"] == kind, flow
    result = hass.api(
        "POST",
        f"/api/config/config_entries/subentries/flow/{flow['flow_id']}",
        {kind: value},
    )
    assert result["type"] == "create_entry", result
    return result


def source_entities(hass: HomeAssistantProcess) -> dict[str, str]:
    """Return the sources' event entities by friendly name."""
    return {
        s["attributes"].get("friendly_name"): s["entity_id"]
        for s in hass.api("GET", "/api/states")
        if s["entity_id"].startswith("event.")
        and s["attributes"].get("event_types") == ["note"]
    }


def fired(hass: HomeAssistantProcess, entity_id: str, since: str) -> list[str]:
    """Return the note IDs an event entity fired since ``since``, oldest first."""
    history = hass.api(
        "GET",
        f"/api/history/period/{quote(since)}?filter_entity_id={entity_id}"
        "&significant_changes_only=0",
    )
    ids = []
    for state in history[0] if history else []:
        note_id = state["attributes"].get("note_id")
        if (
            note_id
            and state["state"] not in ("unavailable", "unknown")
            and (not ids or ids[-1] != note_id)
        ):
            ids.append(note_id)
    return ids


def main() -> int:
    """Run the scenario; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user-token", required=True)
    parser.add_argument("--other-token", required=True)
    parser.add_argument("--log", type=Path, help="where Home Assistant logs")
    args = parser.parse_args()
    url, token, other_token = args.url.rstrip("/"), args.user_token, args.other_token
    user = misskey(url, "i", token)
    other = misskey(url, "i", other_token)
    meta = misskey(url, "meta", None)
    say(f"{url}: {meta['version']}; @{user['username']} follows @{other['username']}")

    word = "probe" + secrets.token_hex(3)
    tag = "tag" + secrets.token_hex(3)
    antenna = misskey(
        url,
        "antennas/create",
        token,
        name=f"Antenna {word}",
        src="all",
        keywords=[[word]],
        excludeKeywords=[],
        users=[],
        caseSensitive=False,
        withReplies=False,
        withFile=False,
        notify=False,
        localOnly=False,
        excludeBots=False,
        userListId=None,
    )
    user_list = misskey(url, "users/lists/create", token, name=f"List {word}")
    misskey(url, "users/lists/push", token, listId=user_list["id"], userId=other["id"])
    try:
        channel: dict[str, Any] | None = misskey(
            url, "channels/create", other_token, name=f"Channel {word}"
        )
    except HttpError:
        channel = None
    if channel is not None:
        misskey(url, "channels/follow", token, channelId=channel["id"])

    with tempfile.TemporaryDirectory() as tmp:
        hass = HomeAssistantProcess(Path(tmp) / "config", log_path=args.log)
        hass.start()
        try:
            hass.onboard()
            hass.wait_running()
            entry = add_account(hass, url, token)["result"]
            entry_id = entry["entry_id"]
            # Permissions of the account's app: what a new set-up asks.
            kinds = hass.api(
                "POST",
                "/api/config/config_entries/subentries/flow",
                {"handler": [entry_id, "source"]},
            )["data_schema"][0]["selector"]["select"]["options"]
            say("kinds offered:", kinds)
            assert ("channel" in kinds) == (channel is not None), kinds
            add_source(hass, entry_id, "antenna", antenna["id"])
            add_source(hass, entry_id, "list", user_list["id"])
            add_source(hass, entry_id, "hashtag", f"#{tag}")
            if channel is not None:
                add_source(hass, entry_id, "channel", channel["id"])
            entities = until(
                "the sources' entities",
                lambda: (
                    (found := source_entities(hass))
                    and len(found) == 3 + (channel is not None)
                    and found
                ),
            )
            say("entities:", entities)
            # Let each source mark its place.
            time.sleep(3)
            since = datetime.now(UTC).isoformat()

            live = misskey(url, "notes/create", other_token, text=f"{word} #{tag}")[
                "createdNote"
            ]
            own = misskey(url, "notes/create", token, text=f"own {word} #{tag}")[
                "createdNote"
            ]
            in_channel = (
                misskey(
                    url,
                    "notes/create",
                    other_token,
                    text=f"in channel {word}",
                    channelId=channel["id"],
                )["createdNote"]
                if channel is not None
                else None
            )
            antenna_entity = entities[f"Antenna {word}"]
            list_entity = entities[f"List {word}"]
            tag_entity = entities[f"#{tag}"]
            until(
                "the live note on the antenna, list and hashtag",
                lambda: all(
                    live["id"] in fired(hass, e, since)
                    for e in (antenna_entity, list_entity, tag_entity)
                ),
            )
            if in_channel is not None:
                channel_entity = entities[f"Channel {word}"]
                until(
                    "the channel note",
                    lambda: in_channel["id"] in fired(hass, channel_entity, since),
                )
            # The recorder writes every few seconds.
            time.sleep(8)
            for entity in entities.values():
                ids = fired(hass, entity, since)
                say(f"live: {entity} fired {ids}")
                assert own["id"] not in ids, f"{entity} fired the account's own note"
            state = hass.api("GET", f"/api/states/{tag_entity}")
            say(
                "attributes:",
                {k: v for k, v in state["attributes"].items() if k != "text"},
            )
            assert (
                state["attributes"]["user"]
                == f"@{other['username']}@{url.split('://', 1)[1]}"
            )
            assert state["attributes"]["tags"] == [tag]

            hass.stop()
            missed = [
                misskey(
                    url, "notes/create", other_token, text=f"{word} #{tag} away {n}"
                )["createdNote"]
                for n in range(2)
            ]
            hass.start()
            hass.wait_running()
            until(
                "the missed notes on the antenna, list and hashtag",
                lambda: all(
                    m["id"] in fired(hass, e, since)
                    for m in missed
                    for e in (antenna_entity, list_entity, tag_entity)
                ),
                timeout=90,
            )
            time.sleep(5)
            for entity in (antenna_entity, list_entity, tag_entity):
                ids = fired(hass, entity, since)
                say(f"after restart: {entity} fired {ids}")
                expected = [live["id"], *(m["id"] for m in missed)]
                if entity == antenna_entity and in_channel is not None:
                    # The channel note has the keyword: Misskey's antennas take it.
                    expected.insert(1, in_channel["id"])
                assert ids == expected, ids

            misskey(url, "antennas/delete", token, antennaId=antenna["id"])
            hass.stop()
            hass.start()
            hass.wait_running()
            until(
                "the gone antenna in the log",
                lambda: "no longer exists" in hass.log_text(),
                timeout=60,
            )
            say("gone antenna: said in the log, repair issue raised")
            errors = [
                line
                for line in hass.log_text().splitlines()
                if "custom_components.misskey" in line
                and (" ERROR " in line or "Traceback" in line)
            ]
            assert not errors, errors
        finally:
            hass.stop()
            misskey(url, "users/lists/delete", token, listId=user_list["id"])
    say("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())

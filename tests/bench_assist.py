"""Benchmark of Assist: what the integration adds between a command and its answer.

    scripts/bench --only assist [--quick]
    python -m tests.bench_assist assist 200

From the moment a direct note reaches the server (its notes/create call) to
the moment the answer reaches the server (the account's notes/create call),
less the time the conversation agent itself spent (a test agent that answers
at once, timed inside). What remains is the integration's own cost plus Home
Assistant's conversation framework and the two loopback hops (the stream to
Home Assistant, the answer back). The server, the poster and Home Assistant
each run in a process of their own; time.monotonic is one clock for all.
Assist's rate of 5 commands a minute is lifted for the benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from typing import Any
from unittest.mock import patch

import aiohttp
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import (
    CONF_ASSIST_ACCOUNTS,
    CONF_ASSIST_AGENT,
    CONF_CATCH_UP_WINDOW,
    CONF_LISTEN,
    EVENT_ASSIST,
)
from homeassistant.components import conversation
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import intent
from homeassistant.setup import async_setup_component

from .bench import running_hass, set_up
from .bench_listen import listening_entry
from .conftest import authorize
from .misskey_server import MisskeyServer


class TimedAgent(conversation.AbstractConversationAgent):
    """Answers at once; records how long each answer took, by the command's text."""

    def __init__(self) -> None:
        """Nothing timed yet."""
        self.spent: dict[str, float] = {}

    @property
    def supported_languages(self) -> str:
        """Every language."""
        return "*"

    async def async_process(
        self, user_input: conversation.ConversationInput
    ) -> conversation.ConversationResult:
        """Say "done"."""
        start = time.monotonic()
        response = intent.IntentResponse(language=user_input.language)
        response.async_set_speech("done")
        result = conversation.ConversationResult(
            response=response, conversation_id=user_input.conversation_id or "c"
        )
        self.spent[user_input.text] = time.monotonic() - start
        return result


async def serve() -> None:
    """Run a Misskey server that times each notes/create; print the account as JSON.

    When its standard input closes, it prints when each note arrived (and
    what it replies to), then ends.
    """
    server = MisskeyServer()
    server.rate_limits.clear()
    bob = server.add_user("bob")
    arrived: dict[str, tuple[float, str | None]] = {}
    needs_user, permission, create = server._endpoints["notes/create"]

    async def timed(body: dict[str, Any], user: Any) -> Any:
        at = time.monotonic()
        result = await create(body, user)
        arrived[result["createdNote"]["id"]] = (at, body.get("replyId"))
        return result

    server._endpoints["notes/create"] = (needs_user, permission, timed)
    url = await server.start()
    print(  # noqa: T201 - what the benchmark reads
        json.dumps(
            {
                "url": url,
                "alice": {
                    "id": server.user.id,
                    "username": server.user.username,
                    "credential": authorize(server),
                },
                "bob": bob.native_token,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print(json.dumps(arrived), flush=True)  # noqa: T201
    await server.close()


async def poster(url: str, token: str, to: str) -> None:
    """Post a direct note to ``to`` for each line read; print its ID when answered."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        n = 0
        while await loop.run_in_executor(None, sys.stdin.readline):
            async with session.post(
                f"{url}/api/notes/create",
                json={
                    "i": token,
                    "text": f"command {n}",
                    "visibility": "specified",
                    "visibleUserIds": [to],
                },
            ) as response:
                note_id = (await response.json())["createdNote"]["id"]
            print(note_id, flush=True)  # noqa: T201
            n += 1


@contextlib.asynccontextmanager
async def process(*args: str) -> Any:
    """Run ``python -m tests.bench_assist ARGS`` with pipes."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "tests.bench_assist",
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.stdin.close()  # type: ignore[union-attr]
            await proc.wait()


async def bench_assist(config_dir: str, rounds: int) -> dict[str, Any]:
    """Time commands from the note on the server to the answer on the server."""
    async with process("serve") as server, running_hass(config_dir) as hass:
        info = json.loads(await server.stdout.readline())
        alice = info["alice"]
        host = info["url"].removeprefix("http://")
        agent = await _async_agent(hass)
        entry = listening_entry(
            info["url"], alice["id"], alice["username"], alice["credential"]
        )
        entry = MockConfigEntry(
            domain=entry.domain,
            title=entry.title,
            unique_id=entry.unique_id,
            minor_version=entry.minor_version,
            data=dict(entry.data),
            options={
                CONF_LISTEN: True,
                CONF_CATCH_UP_WINDOW: 0,
                CONF_ASSIST_ACCOUNTS: [f"@bob@{host}"],
                CONF_ASSIST_AGENT: agent[0],
            },
        )
        answered: dict[str, asyncio.Future[Event]] = {}

        @callback
        def record(event: Event) -> None:
            answered.setdefault(
                event.data["note_id"], hass.loop.create_future()
            ).set_result(event)

        hass.bus.async_listen(EVENT_ASSIST, record)
        with patch("custom_components.misskey.assist.ASSIST_RATE_COMMANDS", 10**9):
            await set_up(hass, entry)
            async with asyncio.timeout(30):
                while not entry.runtime_data.listener.connected:
                    await asyncio.sleep(0.01)
            texts: dict[str, str] = {}
            async with process("poster", info["url"], info["bob"], alice["id"]) as post:
                for _ in range(rounds + 10):
                    post.stdin.write(b"post\n")
                    note_id = (await post.stdout.readline()).decode().strip()
                    future = answered.setdefault(note_id, hass.loop.create_future())
                    async with asyncio.timeout(10):
                        event = await future
                    texts[note_id] = event.data["text"]
        server.stdin.close()
        arrived = json.loads(await server.stdout.readline())
    answer_at = {
        reply_to: at for at, reply_to in arrived.values() if reply_to is not None
    }
    # The first ten warm up.
    measured = list(texts)[10:]
    total = [(answer_at[n] - arrived[n][0]) * 1000 for n in measured]
    spent = [agent[1].spent[texts[n]] * 1000 for n in measured]
    own = [t - s for t, s in zip(total, spent, strict=True)]
    return {
        "rounds": len(measured),
        "total_ms": statistics.median(total),
        "agent_ms": statistics.median(spent),
        "integration_ms": statistics.median(own),
        "integration_p90_ms": sorted(own)[int(len(own) * 0.9)],
    }


async def _async_agent(hass: HomeAssistant) -> tuple[str, TimedAgent]:
    """Register the timed agent; return its ID and itself."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    owner = MockConfigEntry(domain="bench")
    owner.add_to_hass(hass)
    agent = TimedAgent()
    conversation.async_set_agent(hass, owner, agent)
    return owner.entry_id, agent


def main() -> None:
    """Run the section (or serve, or post); print its figures as JSON."""
    import tempfile  # noqa: PLC0415

    section, *rest = sys.argv[1:]
    if section == "serve":
        asyncio.run(serve())
        return
    if section == "poster":
        asyncio.run(poster(rest[0], rest[1], rest[2]))
        return
    with tempfile.TemporaryDirectory() as config_dir:
        result = asyncio.run(bench_assist(config_dir, int(rest[0])))
    print(json.dumps(result))  # noqa: T201 - what scripts/bench reads


if __name__ == "__main__":
    main()

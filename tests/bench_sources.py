"""Benchmark of sources: what 10 idle sources cost, and how soon a hashtag note fires.

    scripts/bench --only sources [--quick]
    python -m tests.bench_sources idle SECONDS | latency ROUNDS

idle      one account idle for SECONDS with no source, then with 10 (3 antennas,
          2 lists, 2 channels, 2 hashtags, 1 followed account) joined on its
          open connection: CPU time and memory against the same account
          without them
latency   from posting a hashtag note (notes/create sent) to the source's event
          entity, against a bare aiohttp WebSocket client joined to the same
          hashtag channel on the same server in the same run

The server runs in another process, so that only Home Assistant's side is
measured; so do the poster and the bare client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import gc
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import aiohttp
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import DOMAIN, SUBENTRY_SOURCE
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from .bench import running_hass, set_up
from .bench_listen import Heard, idle_figures, listening_entry
from .conftest import authorize
from .misskey_server import MisskeyServer

TAG = "benchtag"


async def serve() -> None:
    """Run a server whose account has antennas, lists and channels; print them as JSON."""
    server = MisskeyServer()
    server.rate_limits.clear()
    bob = server.add_user("bob")
    url = await server.start()
    hub = server.sources
    alice = server.user
    hub.follow(alice, bob)
    sources = [
        *(
            {"kind": "antenna", "antenna": hub.add_antenna(alice, f"A{n}").id}
            for n in range(3)
        ),
        *(
            {"kind": "list", "list": hub.add_list(alice, f"L{n}", [bob]).id}
            for n in range(2)
        ),
        *(
            {
                "kind": "channel",
                "channel": hub.add_channel(bob, f"C{n}", followers=[alice]).id,
            }
            for n in range(2)
        ),
        {"kind": "hashtag", "hashtag": "quiet"},
        {"kind": "hashtag", "hashtag": TAG},
        {"kind": "account", "account": "@bob", "user_id": bob.id},
    ]
    print(  # noqa: T201 - what the benchmark reads
        json.dumps(
            {
                "url": url,
                "account": {
                    "id": alice.id,
                    "username": alice.username,
                    "credential": authorize(server),
                },
                "bob": bob.native_token,
                "sources": sources,
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.close()


@contextlib.asynccontextmanager
async def subprocess_lines(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run ``python -m tests.bench_sources ARGS`` with pipes; end it afterwards."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "tests.bench_sources",
        *args,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.stdin is not None:
            process.stdin.close()
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
        await process.wait()


def add_sources(
    hass: HomeAssistant, entry: MockConfigEntry, sources: list[Any]
) -> None:
    """Add the sources as the form does: subentries of the open account."""
    for source in sources:
        kind = source["kind"]
        hass.config_entries.async_add_subentry(
            entry,
            ConfigSubentry(
                data=source,
                subentry_type=SUBENTRY_SOURCE,
                title=f"{kind} {source[kind]}",
                unique_id=f"{kind}_{source[kind]}",
            ),
        )


async def until_sources_ready(entry: MockConfigEntry, count: int) -> None:
    """Wait until every source has joined and marked its place."""
    listener = entry.runtime_data.listener
    async with asyncio.timeout(60):
        while not (listener.connected and len(listener.sources.cursors) >= count):
            await asyncio.sleep(0.01)


async def bench_idle(config_dir: str, seconds: float) -> dict[str, Any]:
    """CPU and memory of one idle account with 10 sources against none."""
    async with subprocess_lines("serve") as server, running_hass(config_dir) as hass:
        assert server.stdout is not None
        info = json.loads(await server.stdout.readline())
        account = info["account"]
        entry = listening_entry(
            info["url"], account["id"], account["username"], account["credential"]
        )
        await set_up(hass, entry)
        await until_sources_ready(entry, 0)
        off = await idle_figures(hass, seconds)
        gc.collect()
        tracemalloc.start()
        upgrades = entry.runtime_data.listener.reconnects
        add_sources(hass, entry, info["sources"])
        await until_sources_ready(entry, len(info["sources"]))
        on = await idle_figures(hass, seconds)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        reconnects = entry.runtime_data.listener.reconnects - upgrades
    count = len(info["sources"])
    return {
        "sources": count,
        "seconds": seconds,
        "cpu_off_s": off["cpu"],
        "cpu_on_s": on["cpu"],
        "cpu_per_source_ms_per_min": (on["cpu"] - off["cpu"])
        / count
        * (60 / seconds)
        * 1000,
        "rss_delta_kb": (on["rss"] - off["rss"]) / 1024,
        "traced_kb": traced / 1024,
        "reconnects": reconnects,
    }


async def bench_latency(config_dir: str, rounds: int) -> dict[str, Any]:
    """Time from posting a hashtag note to the source's event entity, and to a bare client."""
    async with subprocess_lines("serve") as server, running_hass(config_dir) as hass:
        assert server.stdout is not None
        info = json.loads(await server.stdout.readline())
        url, account = info["url"], info["account"]
        entry = listening_entry(
            url, account["id"], account["username"], account["credential"]
        )
        await set_up(hass, entry)
        tag = [s for s in info["sources"] if s.get("hashtag") == TAG]
        add_sources(hass, entry, tag)
        await until_sources_ready(entry, 1)
        (subentry_id,) = entry.subentries
        entity_id = er.async_get(hass).async_get_entity_id(
            "event", DOMAIN, f"{entry.unique_id}_source_{subentry_id}"
        )
        assert entity_id is not None
        heard = Heard(hass, {entity_id})
        async with (
            subprocess_lines("bare", url, account["credential"]) as bare_process,
            subprocess_lines("poster", url, info["bob"]) as poster,
        ):
            assert bare_process.stdout is not None
            assert poster.stdin is not None and poster.stdout is not None
            await bare_process.stdout.readline()
            bare: dict[str, float] = {}

            async def read_bare() -> None:
                assert bare_process.stdout is not None
                while line := await bare_process.stdout.readline():
                    note_id, at = line.decode().split()
                    bare[note_id] = float(at)
                    heard.changed.set()

            reader = asyncio.create_task(read_bare())
            sent: dict[str, float] = {}
            for _ in range(rounds + 10):
                poster.stdin.write(b"post\n")
                await poster.stdin.drain()
                note_id, start = (await poster.stdout.readline()).decode().split()
                sent[note_id] = float(start)
                await heard.wait_for(
                    lambda note_id=note_id: note_id in heard.times and note_id in bare,
                    10,
                )
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    measured = list(sent)[10:]
    to_entity = [(heard.times[n] - sent[n]) * 1000 for n in measured]
    to_bare = [(bare[n] - sent[n]) * 1000 for n in measured]
    return {
        "rounds": len(measured),
        "entity_ms": statistics.median(to_entity),
        "bare_ms": statistics.median(to_bare),
        "ratio": statistics.median(to_entity) / statistics.median(to_bare),
        "entity_p90_ms": sorted(to_entity)[int(len(to_entity) * 0.9)],
        "bare_p90_ms": sorted(to_bare)[int(len(to_bare) * 0.9)],
        "duplicates": sum(count > 1 for count in heard.counts.values()),
    }


async def bare_client(url: str, credential: str) -> None:
    """Join the hashtag channel with plain aiohttp; print each note and its arrival time."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{url.replace('http', 'ws')}/streaming?i={credential}"
        ) as ws,
    ):
        await ws.send_json(
            {
                "type": "connect",
                "body": {
                    "channel": "hashtag",
                    "id": "b",
                    "params": {"q": [[TAG]]},
                    "pong": True,
                },
            }
        )
        await ws.receive()
        print("ready", flush=True)  # noqa: T201 - what the benchmark reads
        async for message in ws:
            at = time.monotonic()
            body = json.loads(message.data)["body"]
            if body.get("type") == "note":
                print(body["body"]["id"], at, flush=True)  # noqa: T201


async def poster(url: str, token: str) -> None:
    """Post a hashtag note for each line read; print its note and when it was sent."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        n = 0
        while await loop.run_in_executor(None, sys.stdin.readline):
            start = time.monotonic()
            async with session.post(
                f"{url}/api/notes/create", json={"i": token, "text": f"#{TAG} {n}"}
            ) as response:
                note_id = (await response.json())["createdNote"]["id"]
            print(note_id, start, flush=True)  # noqa: T201
            n += 1


def main() -> None:
    """Run one section and print its figures as JSON (or serve, post, be the bare client)."""
    import tempfile  # noqa: PLC0415

    section, *rest = sys.argv[1:]
    if section == "serve":
        asyncio.run(serve())
        return
    if section == "bare":
        asyncio.run(bare_client(rest[0], rest[1]))
        return
    if section == "poster":
        asyncio.run(poster(rest[0], rest[1]))
        return
    with tempfile.TemporaryDirectory() as config_dir:
        if section == "idle":
            result = asyncio.run(bench_idle(config_dir, float(rest[0])))
        else:
            result = asyncio.run(bench_latency(config_dir, int(rest[0])))
    print(json.dumps(result))  # noqa: T201 - what scripts/bench reads


if __name__ == "__main__":
    main()

"""Benchmark of hearing Misskey: latency, idle cost, and an outage.

    scripts/bench --only latency idle outage [--quick]
    python -m tests.bench_listen latency 300 | idle 20 60 | outage 10 100 30

latency   from posting a mention (notes/create sent) to the event entity's state
          change, against a bare aiohttp WebSocket client joined to the same
          account's channel main on the same server in the same run
idle      20 accounts connected and idle for 60 s: CPU time and memory per
          account, against the same 20 accounts with listening off
outage    10 accounts, 100 mentions made during a 30 s and a 3 min outage of the
          server: delivered, lost, doubled; the time from the server's return
          to each account's first event, and connection attempts a minute

The server runs in another process for latency and idle, so that only Home
Assistant's side is measured; for the outage it runs in this process, which
makes the mentions while its port is closed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
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

from custom_components.misskey.const import (
    APP_PERMISSIONS,
    CONF_CREDENTIAL,
    CONF_PERMISSIONS,
    DOMAIN,
)
from homeassistant.const import CONF_URL
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er

from .bench import memory_status, running_hass, set_up
from .conftest import authorize
from .misskey_server import MisskeyServer


def listening_entry(
    url: str, user_id: str, username: str, credential: str
) -> MockConfigEntry:
    """Return an entry for an account that granted every permission."""
    host = url.removeprefix("http://")
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"@{username}@{host}",
        unique_id=f"{user_id}@{host}",
        minor_version=3,
        data={
            CONF_URL: url,
            CONF_CREDENTIAL: credential,
            CONF_PERMISSIONS: list(APP_PERMISSIONS),
        },
    )


def mentions_entity(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """Return the entry's mentions entity."""
    entity_id = er.async_get(hass).async_get_entity_id(
        "event", DOMAIN, f"{entry.unique_id}_mentions"
    )
    assert entity_id is not None
    return entity_id


class Heard:
    """Records when each note ID fired a mentions entity."""

    def __init__(self, hass: HomeAssistant, entity_ids: set[str]) -> None:
        """Listen to state changes of these entities."""
        self.times: dict[str, float] = {}
        self.counts: Counter[str] = Counter()
        self.changed = asyncio.Event()

        @callback
        def record(event: Event[EventStateChangedData]) -> None:
            new, old = event.data["new_state"], event.data["old_state"]
            if (
                event.data["entity_id"] in entity_ids
                and new is not None
                and old is not None
                and (note_id := new.attributes.get("note_id"))
            ):
                self.times.setdefault(note_id, time.monotonic())
                self.counts[note_id] += 1
                self.changed.set()

        hass.bus.async_listen("state_changed", record)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()``, checking at each state change."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


# --- the server in another process --------------------------------------------


async def serve(accounts: int) -> None:
    """Run a Misskey server with accounts for the benchmark; print them as JSON.

    Runs until its standard input closes.
    """
    server = MisskeyServer()
    # Many accounts poll and stream here; the real limit is per account.
    server.rate_limits.clear()
    users = [server.user] + [server.add_user(f"user{n}") for n in range(1, accounts)]
    bob = server.add_user("bob")
    url = await server.start()
    listed = []
    for user in users:
        server.user = user
        listed.append(
            {"id": user.id, "username": user.username, "credential": authorize(server)}
        )
    print(  # noqa: T201 - what the benchmark reads
        json.dumps({"url": url, "accounts": listed, "bob": bob.native_token}),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await server.close()


@contextlib.asynccontextmanager
async def server_process(accounts: int) -> AsyncIterator[dict[str, Any]]:
    """Start the server in another process; yield what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "ignore",
        "-m",
        "tests.bench_listen",
        "serve",
        str(accounts),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stdin is not None
    info: dict[str, Any] = json.loads(await process.stdout.readline())
    try:
        yield info
    finally:
        process.stdin.close()
        await process.wait()


# --- latency --------------------------------------------------------------------


async def bench_latency(config_dir: str, rounds: int) -> dict[str, Any]:
    """Time from posting a mention to the event entity, and to a bare WebSocket client."""
    async with server_process(1) as info, running_hass(config_dir) as hass:
        url, account = info["url"], info["accounts"][0]
        entry = listening_entry(
            url, account["id"], account["username"], account["credential"]
        )
        await set_up(hass, entry)
        heard = Heard(hass, {mentions_entity(hass, entry)})
        # The bare client has a process and an event loop of its own, as Home
        # Assistant has; time.monotonic is the same clock in both.
        bare_process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench_listen",
            "bare",
            url,
            account["credential"],
            stdout=subprocess.PIPE,
        )
        assert bare_process.stdout is not None
        await bare_process.stdout.readline()
        bare: dict[str, float] = {}

        async def read_bare() -> None:
            assert bare_process.stdout is not None
            while line := await bare_process.stdout.readline():
                note_id, at = line.decode().split()
                bare[note_id] = float(at)
                heard.changed.set()

        reader = asyncio.create_task(read_bare())
        # The poster too, so that its answer does not compete with the event.
        poster = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench_listen",
            "poster",
            url,
            info["bob"],
            f"@{account['username']}",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert poster.stdin is not None and poster.stdout is not None
        await _wait_streaming(hass, entry)
        sent: dict[str, float] = {}
        answered: dict[str, float] = {}
        for _ in range(rounds + 10):
            poster.stdin.write(b"post\n")
            await poster.stdin.drain()
            note_id, start, answer = (await poster.stdout.readline()).decode().split()
            sent[note_id], answered[note_id] = float(start), float(answer)
            await heard.wait_for(
                lambda note_id=note_id: note_id in heard.times and note_id in bare,
                10,
            )
        poster.stdin.close()
        await poster.wait()
        bare_process.terminate()
        await bare_process.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
    # The first ten warm up.
    measured = list(sent)[10:]
    to_entity = [(heard.times[n] - sent[n]) * 1000 for n in measured]
    to_bare = [(bare[n] - sent[n]) * 1000 for n in measured]
    after_answer = [(heard.times[n] - answered[n]) * 1000 for n in measured]
    return {
        "rounds": len(measured),
        "entity_ms": statistics.median(to_entity),
        "bare_ms": statistics.median(to_bare),
        "ratio": statistics.median(to_entity) / statistics.median(to_bare),
        "entity_after_answer_ms": statistics.median(after_answer),
        "entity_p90_ms": sorted(to_entity)[int(len(to_entity) * 0.9)],
        "bare_p90_ms": sorted(to_bare)[int(len(to_bare) * 0.9)],
        "duplicates": sum(count > 1 for count in heard.counts.values()),
    }


async def bare_client(url: str, credential: str) -> None:
    """Join main with plain aiohttp; print each notification's note and arrival time."""
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{url.replace('http', 'ws')}/streaming?i={credential}"
        ) as ws,
    ):
        await ws.send_json(
            {
                "type": "connect",
                "body": {"channel": "main", "id": "b", "params": {}, "pong": True},
            }
        )
        await ws.receive()
        print("ready", flush=True)  # noqa: T201 - what the benchmark reads
        async for message in ws:
            at = time.monotonic()
            body = json.loads(message.data)["body"]
            if body["type"] == "notification":
                print(body["body"]["note"]["id"], at, flush=True)  # noqa: T201


async def poster(url: str, token: str, mention: str) -> None:
    """Post a mention for each line read; print its note, when sent and when answered."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as session:
        n = 0
        while await loop.run_in_executor(None, sys.stdin.readline):
            start = time.monotonic()
            async with session.post(
                f"{url}/api/notes/create",
                json={"i": token, "text": f"{mention} {n}"},
            ) as response:
                note_id = (await response.json())["createdNote"]["id"]
            print(note_id, start, time.monotonic(), flush=True)  # noqa: T201
            n += 1


async def _wait_streaming(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    async with asyncio.timeout(30):
        while not entry.runtime_data.listener.connected:
            await asyncio.sleep(0.01)


# --- idle --------------------------------------------------------------------------


async def bench_idle(config_dir: str, accounts: int, seconds: float) -> dict[str, Any]:
    """CPU and memory of idle accounts, listening against not listening."""
    async with server_process(accounts) as info, running_hass(config_dir) as hass:
        url = info["url"]
        entries = [
            listening_entry(url, a["id"], a["username"], a["credential"])
            for a in info["accounts"]
        ]
        quiet = [
            MockConfigEntry(
                domain=DOMAIN,
                title=e.title,
                unique_id=e.unique_id,
                minor_version=3,
                data=dict(e.data),
                options={"listen": False},
            )
            for e in entries
        ]
        for entry in quiet:
            await set_up(hass, entry)
        off = await idle_figures(hass, seconds)
        gc.collect()
        tracemalloc.start()
        for entry in quiet:
            hass.config_entries.async_update_entry(entry, options={"listen": True})
            await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        for entry in quiet:
            await _wait_streaming(hass, entry)
        on = await idle_figures(hass, seconds)
        gc.collect()
        # What listening allocated and still holds.
        traced = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    return {
        "accounts": accounts,
        "seconds": seconds,
        "cpu_off_s": off["cpu"],
        "cpu_on_s": on["cpu"],
        "cpu_core_percent": (on["cpu"] - off["cpu"]) / seconds * 100,
        "cpu_per_account_ms_per_min": (on["cpu"] - off["cpu"])
        / accounts
        * (60 / seconds)
        * 1000,
        "rss_per_account_kb": (on["rss"] - off["rss"]) / accounts / 1024,
        "traced_per_account_kb": traced / accounts / 1024,
    }


async def idle_figures(hass: HomeAssistant, seconds: float) -> dict[str, float]:
    """Return the CPU time spent idle for ``seconds``, and the RSS after."""
    await hass.async_block_till_done()
    gc.collect()
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    cpu = time.process_time() - cpu
    gc.collect()
    return {"cpu": cpu, "rss": memory_status()["VmRSS"]}


# --- outage --------------------------------------------------------------------------


async def bench_outage(
    config_dir: str, accounts: int, mentions: int, seconds: float
) -> dict[str, Any]:
    """Mentions made while the server is away: delivered once each, soon after it is back.

    Several accounts listen, each reconnecting on its own jittered schedule, so
    that one outage gives a median of the time from the server's return to
    each account's first event, and of the connection attempts a minute.
    """
    server = MisskeyServer()
    server.rate_limits.clear()
    bob = server.add_user("bob")
    users = [server.user] + [server.add_user(f"user{n}") for n in range(1, accounts)]
    url = await server.start()
    entries: list[MockConfigEntry] = []
    for user in users:
        server.user = user
        entries.append(listening_entry(url, user.id, user.username, authorize(server)))
    try:
        async with running_hass(config_dir) as hass:
            for entry in entries:
                await set_up(hass, entry)
            for entry in entries:
                await _wait_streaming(hass, entry)
            heard = Heard(hass, {mentions_entity(hass, entry) for entry in entries})
            await server.go_down()
            down = time.monotonic()
            tries = [entry.runtime_data.listener.reconnects for entry in entries]
            made: dict[str, list[str]] = {entry.entry_id: [] for entry in entries}
            for n in range(mentions):
                await asyncio.sleep(seconds / mentions)
                user = users[n % accounts]
                result = await server._notes_create(
                    {"text": f"@{user.username} while away {n}"}, bob
                )
                made[entries[n % accounts].entry_id].append(result["createdNote"]["id"])
            await server.come_back()
            back = time.monotonic()
            tries = [
                entry.runtime_data.listener.reconnects - before
                for entry, before in zip(entries, tries, strict=True)
            ]
            every = [note for notes in made.values() for note in notes]
            await heard.wait_for(lambda: all(n in heard.times for n in every), 600)
            done = time.monotonic()
            # Anything doubled would come now.
            await asyncio.sleep(5)
    finally:
        await server.close()
    firsts = [
        min(heard.times[n] for n in notes) - back for notes in made.values() if notes
    ]
    minutes = (back - down) / 60
    return {
        "accounts": accounts,
        "mentions": mentions,
        "outage_s": back - down,
        "delivered": sum(1 for n in every if n in heard.times),
        "lost": sum(1 for n in every if n not in heard.times),
        "doubled": sum(1 for n in every if heard.counts[n] > 1),
        "in_order": all(
            sorted(notes, key=lambda n: heard.times[n]) == notes
            for notes in made.values()
        ),
        # From the server's return to each account's first event.
        "until_first_median_s": statistics.median(firsts),
        "until_first_max_s": max(firsts),
        "until_all_s": done - back,
        # Connection attempts a minute during the outage, per account.
        "attempts_per_minute_median": statistics.median(t / minutes for t in tries),
        "attempts_per_minute_max": max(t / minutes for t in tries),
    }


def main() -> None:
    """Run one section, print its figures as JSON (or serve, or be the bare client).

    latency ROUNDS | idle ACCOUNTS SECONDS | outage ACCOUNTS MENTIONS SECONDS
    """
    import tempfile  # noqa: PLC0415

    section, *rest = sys.argv[1:]
    if section == "serve":
        asyncio.run(serve(int(rest[0])))
        return
    if section == "bare":
        asyncio.run(bare_client(rest[0], rest[1]))
        return
    if section == "poster":
        asyncio.run(poster(rest[0], rest[1], rest[2]))
        return
    with tempfile.TemporaryDirectory() as config_dir:
        if section == "latency":
            result = asyncio.run(bench_latency(config_dir, int(rest[0])))
        elif section == "idle":
            result = asyncio.run(bench_idle(config_dir, int(rest[0]), float(rest[1])))
        else:
            result = asyncio.run(
                bench_outage(config_dir, int(rest[0]), int(rest[1]), float(rest[2]))
            )
    print(json.dumps(result))  # noqa: T201 - what scripts/bench reads


if __name__ == "__main__":
    main()

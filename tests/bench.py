"""Benchmark of the Misskey integration against the test Misskey server.

    scripts/bench [--quick] [--rounds N] [--burst N] [--size-mb N] [--only SECTION ...]

It runs a Home Assistant test instance (the one pytest-homeassistant-custom-component
builds, outside pytest, so without its debug event loop and socket guard) with the
integration set up for an account on the test Misskey server on loopback, and
measures:

overhead  the time from calling each way of posting (the legacy notify service,
          notify.send_message, misskey.post) until the server has the note,
          against a bare aiohttp ``notes/create`` request to the same server
memory    the peak memory growth while posting a note with a large attachment,
          from a file and from a URL (each in a fresh process, with the server
          in another process, so only Home Assistant's side is counted)
burst     many notes at once while the server answers 429 with Retry-After:
          posted, duplicated, lost, requests per note, and the time against
          the ideal; and the same burst without a limit
startup   the import time of the integration (Home Assistant already imported)
          and the time of async_setup_entry, against a do-nothing integration
          that adds the same entities (tests/bench_reference)
sources   10 sources of one account idle, and a hashtag note's latency to its
          event entity (tests/bench_sources.py)
assist    a direct note on the server to Assist's answer on the server, less the
          conversation agent's own time (tests/bench_assist.py)

It prints a table and writes the figures to e2e-artifacts/bench.json. This file is
not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
import contextlib
import functools
import gc
import json
import math
import os
from pathlib import Path
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from typing import Any
from unittest.mock import patch

import aiohttp
from aiohttp import web
import probatio
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_test_home_assistant,
)

# Imported before Home Assistant looks for it, so this checkout's integration wins.
import custom_components.misskey  # noqa: F401
from custom_components.misskey.const import (
    APP_PERMISSIONS,
    CONF_CREDENTIAL,
    CONF_LISTEN,
    CONF_PERMISSIONS,
    DOMAIN,
)
from custom_components.misskey.coordinator import MisskeyDataUpdateCoordinator
from custom_components.misskey.post import async_post_note
from homeassistant import loader, runner
from homeassistant.components.notify import BaseNotificationService, NotifyEntity
from homeassistant.components.notify.const import DATA_COMPONENT as NOTIFY_COMPONENT
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_URL, Platform
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.setup import async_setup_component
from homeassistant.util import slugify

from .conftest import authorize
from .misskey_server import MISSKEY, SHARKEY, VARIANTS, MisskeyServer

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "e2e-artifacts"
MB = 1024 * 1024
# A do-nothing integration with Misskey's entities: what Home Assistant alone
# spends setting them up. Found through the custom_components namespace package.
REFERENCE_DOMAIN = "misskey_reference"
sys.path.append(str(REPO / "tests" / "bench_reference"))

# Modules a running Home Assistant has imported before it loads this integration
# (its dependencies and the helpers every integration uses).
HA_PRELOADED = (
    "homeassistant.core",
    "homeassistant.config_entries",
    "homeassistant.components.http",
    "homeassistant.components.notify",
    "homeassistant.helpers.config_validation",
    "homeassistant.helpers.entity_platform",
    "homeassistant.helpers.update_coordinator",
    "homeassistant.helpers.aiohttp_client",
    "homeassistant.helpers.device_registry",
    "homeassistant.helpers.service",
    "homeassistant.util.dt",
)
# What Home Assistant imports when it loads the integration: the component and
# the platforms it preloads.
INTEGRATION_MODULES = (
    "custom_components.misskey",
    "custom_components.misskey.notify",
    "custom_components.misskey.config_flow",
)


def percentile(values: list[float], pct: float) -> float:
    """Return the ``pct`` percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]


def memory_status() -> dict[str, int]:
    """Return VmRSS and VmHWM of this process, in bytes."""
    fields: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def reset_high_water_mark() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --- Home Assistant and the account -----------------------------------------


def free_port() -> int:
    """Return a loopback port the OS has just found free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def running_hass(config_dir: str) -> AsyncIterator[HomeAssistant]:
    """Run a Home Assistant test instance that loads this checkout's integration."""
    runner.configure_event_loop(asyncio.get_running_loop())
    async with async_test_home_assistant(config_dir=config_dir) as hass:
        hass.data.pop(loader.DATA_CUSTOM_COMPONENTS)
        hass.config.allowlist_external_dirs = {config_dir}
        # The integration depends on http, which would listen on 0.0.0.0:8123
        # and fail when something (a scripts/develop left running) has it.
        http_config = {"server_host": ["127.0.0.1"], "server_port": free_port()}
        if not await async_setup_component(hass, "http", {"http": http_config}):
            raise RuntimeError("http did not set up")
        try:
            yield hass
        finally:
            for entry in hass.config_entries.async_entries(DOMAIN):
                await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_stop(force=True)


def account_entry(
    url: str, credential: str, number: int = 0, account_id: str = "alice"
) -> MockConfigEntry:
    """Return a config entry for the server's user, as the config flow makes it now.

    Its unique ID starts with the account's ID, as the config flow's does:
    set-up reads the account and its last note at once only when they match.
    A number after the host keeps entries of the same account apart.
    """
    host = url.removeprefix("http://")
    suffix = f"-{number}" if number else ""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"@alice{suffix}@{host}",
        unique_id=f"{account_id}@{host}" + (f"#{number}" if number else ""),
        minor_version=3,
        data={
            CONF_URL: url,
            CONF_CREDENTIAL: credential,
            CONF_PERMISSIONS: list(APP_PERMISSIONS),
        },
    )


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Set up an entry and wait for everything it started."""
    entry.add_to_hass(hass)
    if not await hass.config_entries.async_setup(entry.entry_id):
        raise RuntimeError(f"set-up failed: {entry.state}")
    await hass.async_block_till_done()


def notify_entity_id(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """Return the entry's notify entity."""
    for reg_entry in er.async_entries_for_config_entry(
        er.async_get(hass), entry.entry_id
    ):
        if reg_entry.domain == "notify":
            return reg_entry.entity_id
    raise RuntimeError("no notify entity")


def legacy_service(entry: MockConfigEntry) -> str:
    """Return the name of the entry's legacy notify service."""
    return f"{DOMAIN}_{slugify(entry.title)}"


# --- overhead -----------------------------------------------------------------


type Poster = Callable[[str], Awaitable[Any]]


class ReferenceNotifyEntity(NotifyEntity):
    """A notify entity with no integration behind it: it sends the bare request."""

    _attr_name = "Bench reference"
    _attr_should_poll = False

    def __init__(self, bare: Poster) -> None:
        """Post with the bare request."""
        self._bare = bare

    async def async_send_message(self, message: str, title: str | None = None) -> None:
        """Send the bare request."""
        await self._bare(message)


class ReferenceNotificationService(BaseNotificationService):
    """A legacy notify service with no integration behind it."""

    def __init__(self, bare: Poster) -> None:
        """Post with the bare request."""
        self._bare = bare

    async def async_send_message(self, message: str = "", **kwargs: Any) -> None:
        """Send the bare request."""
        await self._bare(message)


async def posters(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    session: aiohttp.ClientSession,
    server: MisskeyServer,
) -> dict[str, tuple[Poster, str | None]]:
    """Return the ways of posting a text, each with the way it is compared to.

    The bare request comes first. Each way through a Home Assistant service is
    also compared to the same service path with no integration behind it (a
    reference entity or action that sends the bare request), which is what
    Home Assistant itself costs.
    """
    credential = entry.data[CONF_CREDENTIAL]
    account_client = entry.runtime_data.client
    entity_id = notify_entity_id(hass, entry)
    service = legacy_service(entry)

    async def bare(text: str) -> None:
        async with session.post(
            f"{server.url}/api/notes/create", json={"i": credential, "text": text}
        ) as response:
            response.raise_for_status()
            await response.json()

    async def client(text: str) -> None:
        await account_client.create_note({"text": text})

    async def post_note(text: str) -> None:
        await async_post_note(hass, entry, text, {})

    async def notify_service(name: str, text: str) -> None:
        await hass.services.async_call("notify", name, {"message": text}, blocking=True)

    async def send_message_to(target: str, text: str) -> None:
        await hass.services.async_call(
            "notify",
            "send_message",
            {"message": text},
            target={"entity_id": target},
            blocking=True,
        )

    async def call_action(domain: str, text: str) -> None:
        await hass.services.async_call(
            domain, "post", {"text": text}, blocking=True, return_response=True
        )

    async def reference_action(call: ServiceCall) -> ServiceResponse:
        await bare(call.data["text"])
        return {}

    legacy_reference = ReferenceNotificationService(bare)
    await legacy_reference.async_setup(hass, "bench_reference", "bench_reference")
    await legacy_reference.async_register_services()
    hass.services.async_register(
        "bench",
        "post",
        reference_action,
        schema=probatio.Schema({probatio.Required("text"): str}),
        supports_response=SupportsResponse.OPTIONAL,
    )
    reference = ReferenceNotifyEntity(bare)
    await hass.data[NOTIFY_COMPONENT].async_add_entities([reference])
    assert reference.entity_id is not None
    bare_name = "bare aiohttp notes/create"
    legacy_ref = "  (reference: notify service, no integration)"
    send_ref = "  (reference: send_message, no integration)"
    action_ref = "  (reference: action, no integration)"
    return {
        bare_name: (bare, None),
        # The integration's own layers, without Home Assistant's service call.
        "  MisskeyClient.create_note": (client, bare_name),
        "  post.async_post_note": (post_note, bare_name),
        legacy_ref: (functools.partial(notify_service, "bench_reference"), bare_name),
        f"notify.{DOMAIN}_<account>": (
            functools.partial(notify_service, service),
            legacy_ref,
        ),
        send_ref: (functools.partial(send_message_to, reference.entity_id), bare_name),
        "notify.send_message": (
            functools.partial(send_message_to, entity_id),
            send_ref,
        ),
        action_ref: (functools.partial(call_action, "bench"), bare_name),
        f"{DOMAIN}.post": (functools.partial(call_action, DOMAIN), action_ref),
    }


async def bench_overhead(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    server: MisskeyServer,
    rounds: int,
) -> dict[str, Any]:
    """Time each way of posting, interleaved, until the server has the note.

    The bare request goes through Home Assistant's shared session too, as
    the integration's do: what that session adds (its middleware, its
    resolver) is Home Assistant's, not the integration's.
    """
    session = async_get_clientsession(hass)
    ways = await posters(hass, entry, session, server)
    times: dict[str, list[float]] = {name: [] for name in ways}
    warmup = max(5, rounds // 10)
    for number in range(warmup + rounds):
        names = list(ways)
        # Rotate the order so no way always goes first after a pause.
        names = names[number % len(names) :] + names[: number % len(names)]
        for name in names:
            text = f"overhead {number} {name}"
            start = time.perf_counter()
            await ways[name][0](text)
            elapsed = time.perf_counter() - start
            last = next(reversed(server.notes.values()))
            if last["text"] != text:
                raise RuntimeError(f"{name}: the server does not have {text!r}")
            if number >= warmup:
                times[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in times.items()}
    bare = next(iter(ways))
    result: dict[str, Any] = {"rounds": rounds, "ways": {}}
    for name, values in times.items():
        compared_to = ways[name][1]
        result["ways"][name] = {
            "median_ms": medians[name] * 1000,
            "p95_ms": percentile(values, 95) * 1000,
            "ratio": medians[name] / medians[bare],
            "compared_to": compared_to,
            "ratio_to_reference": medians[name] / medians[compared_to]
            if compared_to
            else None,
        }
    return result


# --- burst ----------------------------------------------------------------------


async def bench_burst(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    server: MisskeyServer,
    count: int,
    calls: int,
    per: float,
) -> dict[str, Any]:
    """Post ``count`` notes at once while the server allows ``calls`` per ``per`` s.

    The notes go in turn through the legacy notify service, notify.send_message
    and misskey.post.
    """
    entity_id = notify_entity_id(hass, entry)
    ways: list[Callable[[str], Awaitable[Any]]] = [
        lambda text: hass.services.async_call(
            "notify", legacy_service(entry), {"message": text}, blocking=True
        ),
        lambda text: hass.services.async_call(
            "notify",
            "send_message",
            {"message": text},
            target={"entity_id": entity_id},
            blocking=True,
        ),
        lambda text: hass.services.async_call(
            DOMAIN, "post", {"text": text}, blocking=True, return_response=True
        ),
    ]
    # The same burst with no limit: what the gate costs calls that are never
    # refused (it lets a few of an account's calls be in flight at once).
    start = time.perf_counter()
    await asyncio.gather(
        *(ways[number % len(ways)](f"free {number:04d}") for number in range(count))
    )
    unlimited = time.perf_counter() - start
    server.limit("notes/create", calls, per)
    before = len(server.notes)
    requests_before = len(server.calls("notes/create"))
    texts = [f"burst {number:04d}" for number in range(count)]
    # Let the limiter's window start empty.
    await asyncio.sleep(per)
    start = time.perf_counter()
    results = await asyncio.gather(
        *(ways[number % len(ways)](text) for number, text in enumerate(texts)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - start
    server.rate_limits.pop("notes/create")
    posted = Counter(note["text"] for note in list(server.notes.values())[before:])
    raised = [
        (text, result)
        for text, result in zip(texts, results, strict=True)
        if isinstance(result, BaseException)
    ]
    missing = [text for text in texts if text not in posted]
    lost = {text for text, _ in raised} | set(missing)
    if server.variant == SHARKEY:
        # A bucket of ``calls`` that drains one every ``per / calls`` s.
        ideal = max(count - calls, 0) * per / calls
    else:
        # A window that lets ``calls`` through every ``per`` s.
        ideal = (math.ceil(count / calls) - 1) * per
    requests = len(server.calls("notes/create")) - requests_before
    errors = Counter(
        f"{type(err).__name__}: {err}"
        if isinstance(err, HomeAssistantError)
        else repr(err)
        for _, err in raised
    )
    return {
        "notes": count,
        "limit": f"{calls} per {per:g} s",
        "posted": sum(1 for text in texts if text in posted),
        "duplicated": sum(n - 1 for n in posted.values() if n > 1),
        "raised": len(raised),
        "missing": len(missing),
        "lost": len(lost),
        "errors": dict(errors.most_common(3)),
        "requests": requests,
        "requests_per_note": requests / count,
        "seconds": elapsed,
        "unlimited_seconds": unlimited,
        "ideal_seconds": ideal,
        "ratio": elapsed / ideal if ideal else None,
    }


# --- start-up -------------------------------------------------------------------


def bench_import(runs: int) -> dict[str, Any]:
    """Time a fresh import of the integration in subprocesses, HA already imported."""
    code = (
        "import sys, time\n"
        f"for name in {HA_PRELOADED!r}: __import__(name)\n"
        "print('-- integration --', file=sys.stderr, flush=True)\n"
        "start = time.perf_counter()\n"
        f"for name in {INTEGRATION_MODULES!r}: __import__(name)\n"
        "seconds = time.perf_counter() - start\n"
        # The same fixed work in every process: how fast this one ran.
        "start = time.perf_counter()\n"
        "x = sum(i * i for i in range(200_000))\n"
        "print(seconds, time.perf_counter() - start)\n"
    )
    seconds: list[float] = []
    calibration: list[float] = []
    top: list[tuple[int, str]] = []
    for run in range(runs + 1):
        args = [sys.executable, "-c", code]
        if run == 0:
            # The first run also lists what the import spends its time on, and
            # makes sure the bytecode is cached like in a normal start.
            args[1:1] = ["-X", "importtime"]
        done = subprocess.run(
            args, cwd=REPO, capture_output=True, text=True, check=True
        )
        if run == 0:
            own = done.stderr.partition("-- integration --")[2]
            for line in own.splitlines():
                if not line.startswith("import time:"):
                    continue
                fields = line.removeprefix("import time:").split("|")
                with contextlib.suppress(ValueError):
                    top.append((int(fields[0]), fields[2].strip()))
            continue
        taken, work = done.stdout.split()
        seconds.append(float(taken))
        calibration.append(float(work))
    top.sort(reverse=True)
    return {
        "runs": runs,
        "median_ms": statistics.median(seconds) * 1000,
        "min_ms": min(seconds) * 1000,
        "max_ms": max(seconds) * 1000,
        # The fixed work's time: a process on this machine may run at half
        # the speed of another, which the import's spread follows.
        "work_min_ms": min(calibration) * 1000,
        "work_max_ms": max(calibration) * 1000,
        "slowest_modules_self_ms": {name: us / 1000 for us, name in top[:6]},
    }


async def bench_setup_entry(
    hass: HomeAssistant, server: MisskeyServer, credential: str, count: int
) -> dict[str, Any]:
    """Set up and remove ``count`` new entries one after the other, listening and not.

    Also times the platforms' set-up (Home Assistant registering and writing
    the entities), so the figure splits into what the entities cost, the
    first reading (a round trip to the server, which here runs in the same
    process and so adds its own work) and the rest, the integration's own.
    Each Misskey entry alternates with an entry of a do-nothing integration
    that adds the same entities (tests/bench_reference): the floor that Home
    Assistant sets, measured under the same conditions.
    """
    config_entries = hass.config_entries
    forward = config_entries.async_forward_entry_setups
    first_refresh = MisskeyDataUpdateCoordinator.async_config_entry_first_refresh
    platforms: list[float] = []
    readings: list[float] = []

    async def timed_forward(entry: ConfigEntry, domains: Iterable[Platform]) -> None:
        start = time.perf_counter()
        await forward(entry, domains)
        platforms.append(time.perf_counter() - start)

    async def timed_first_refresh(coordinator: MisskeyDataUpdateCoordinator) -> None:
        start = time.perf_counter()
        await first_refresh(coordinator)
        readings.append(time.perf_counter() - start)

    def reference_entry(number: int) -> MockConfigEntry:
        entry = account_entry(server.url, credential, number, server.user.id)
        return MockConfigEntry(
            domain=REFERENCE_DOMAIN, title=entry.title, unique_id=entry.unique_id
        )

    makers: dict[str, Callable[[int], MockConfigEntry]] = {
        "": functools.partial(
            account_entry, server.url, credential, account_id=server.user.id
        ),
        "reference_": reference_entry,
    }
    results: dict[str, Any] = {"entries": count}
    with (
        patch.object(config_entries, "async_forward_entry_setups", timed_forward),
        patch.object(
            MisskeyDataUpdateCoordinator,
            "async_config_entry_first_refresh",
            timed_first_refresh,
        ),
    ):
        for listen in (True, False):
            readings.clear()
            times: dict[str, dict[str, list[float]]] = {
                prefix: {"setup": [], "settled": [], "platforms": [], "entities": []}
                for prefix in makers
            }
            for number in range(1, count + 1):
                # Each goes first every other time.
                order = list(makers)[:: 1 if number % 2 else -1]
                for prefix in order:
                    platforms.clear()
                    figures = times[prefix]
                    await _time_setup(hass, makers[prefix](number), listen, figures)
                    figures["platforms"].extend(platforms)
            for prefix, figures in times.items():
                key = prefix + ("" if listen else "quiet_")
                results |= {
                    f"{key}setup_median_ms": statistics.median(figures["setup"]) * 1000,
                    f"{key}setup_p95_ms": percentile(figures["setup"], 95) * 1000,
                    f"{key}settled_median_ms": statistics.median(figures["settled"])
                    * 1000,
                    f"{key}platforms_median_ms": statistics.median(figures["platforms"])
                    * 1000,
                    f"{key}entities": max(figures["entities"]),
                }
            results[f"{'' if listen else 'quiet_'}reading_median_ms"] = (
                statistics.median(readings) * 1000
            )
    return results


async def _time_setup(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    listen: bool,
    figures: dict[str, list[float]],
) -> None:
    """Set up a new entry, time it, count its entities and remove it."""
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_LISTEN: listen})
    start = time.perf_counter()
    if not await hass.config_entries.async_setup(entry.entry_id):
        raise RuntimeError(f"set-up failed: {entry.state}")
    figures["setup"].append(time.perf_counter() - start)
    await hass.async_block_till_done()
    figures["settled"].append(time.perf_counter() - start)
    figures["entities"].append(
        len(er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id))
    )
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()


# --- memory -------------------------------------------------------------------


def make_file(path: Path, size: int) -> None:
    """Write ``size`` random (incompressible) bytes."""
    block = os.urandom(MB)
    with path.open("wb") as file:
        for offset in range(0, size, MB):
            file.write(block[: min(MB, size - offset)])
            block = block[1:] + block[:1]


async def serve_for_memory(path: str) -> None:
    """Run the Misskey server (and the file at /bench/file) for a memory case.

    Prints the URL, the credential and the file URL as JSON, then runs until its
    standard input closes, and prints what it received.
    """
    server = MisskeyServer()
    # A role that may upload the file: the default one allows 30 MiB of
    # images, video, audio and text, and the file is random bytes.
    assert server.policies is not None
    server.policies |= {"maxFileSizeMb": 1024, "uploadableFileTypes": ["*/*"]}

    async def download(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    server.app.router.add_get("/bench/file", download)
    url = await server.start()
    print(  # noqa: T201 - what the benchmark reads
        json.dumps(
            {
                "url": url,
                "credential": authorize(server),
                "file_url": f"{url}/bench/file",
            }
        ),
        flush=True,
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print(  # noqa: T201 - what the benchmark reads
        json.dumps(
            {
                "notes": len(server.notes),
                "files": [
                    {"size": f.size, "sha256": f.sha256} for f in server.files.values()
                ],
            }
        ),
        flush=True,
    )
    await server.close()


async def memory_case(
    source: str, path: str, url: str, credential: str, file_url: str
) -> dict[str, Any]:
    """Post a note with the file (``source`` path or url); measure this process."""
    config_dir = str(Path(path).parent)
    async with running_hass(config_dir) as hass:
        hass.config.allowlist_external_urls = {file_url}
        entry = account_entry(url, credential)
        await set_up(hass, entry)
        attachment = {"path": path} if source == "path" else {"url": file_url}

        async def post(text: str) -> dict[str, Any]:
            response = await hass.services.async_call(
                DOMAIN,
                "post",
                {"text": text, "media": [attachment]},
                blocking=True,
                return_response=True,
            )
            assert isinstance(response, dict)
            return response

        # A small warm-up post loads what the first upload imports and allocates.
        gc.collect()
        first = memory_status()
        try:
            await post(f"warm-up {source}")
        except HomeAssistantError as err:
            if getattr(err, "translation_key", None) == "attachments_unsupported":
                return {"error": "media upload not available"}
            raise
        gc.collect()
        hwm_reset = reset_high_water_mark()
        base = memory_status()
        start = time.perf_counter()
        note = await post(f"memory {source}")
        elapsed = time.perf_counter() - start
        peak = memory_status()
        gc.collect()
        tracemalloc.start()
        await post(f"tracemalloc {source}")
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return {
        "rss_before": base["VmRSS"],
        "hwm_after": peak["VmHWM"],
        "rss_growth": peak["VmHWM"] - base["VmRSS"],
        "hwm_reset": hwm_reset,
        "rss_at_start": first["VmRSS"],
        "tracemalloc_peak": traced_peak,
        "seconds": elapsed,
        "file_ids": note.get("file_ids"),
    }


def bench_memory(size_mb: int, workdir: Path) -> dict[str, Any]:
    """Run each memory case in a fresh process against a server in another one."""
    size = size_mb * MB
    path = workdir / "attachment.bin"
    make_file(path, size)
    result: dict[str, Any] = {"file_mb": size_mb, "cases": {}}
    for source in ("path", "url"):
        server = subprocess.Popen(
            [
                sys.executable,
                # Home Assistant's own import order warns about this; not ours.
                "-W",
                "ignore:install_as_voluptuous:RuntimeWarning",
                "-m",
                "tests.bench",
                "--serve-for-memory",
                str(path),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdin is not None
        assert server.stdout is not None
        try:
            info = json.loads(server.stdout.readline())
            case = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.bench",
                    "--memory-case",
                    source,
                    str(path),
                    info["url"],
                    info["credential"],
                    info["file_url"],
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=False,
                timeout=240,
            )
            server.stdin.close()
            received = json.loads(server.stdout.readline() or "{}")
        finally:
            server.stdin.close() if not server.stdin.closed else None
            server.wait(timeout=30)
        if case.returncode != 0:
            lines = case.stderr.strip().splitlines() or ["no output"]
            result["cases"][source] = {"error": lines[-1][:200]}
            continue
        figures = json.loads(case.stdout.strip().splitlines()[-1])
        if "error" not in figures:
            figures["received_sizes"] = sorted(
                {f["size"] for f in received.get("files", [])}
            )
            figures["growth_of_file"] = figures["rss_growth"] / size
        result["cases"][source] = figures
    path.unlink()
    return result


# --- running --------------------------------------------------------------------


def bench_listening(args: argparse.Namespace) -> dict[str, Any]:
    """Run the listening sections (tests/bench_listen.py), each in a fresh process.

    A test instance of Home Assistant does not start twice in one process.
    """
    sections = [
        ("latency", [str(args.latency_rounds)]),
        ("idle", [str(args.idle_accounts), str(args.idle_seconds)]),
        *(
            (
                "outage",
                [str(args.outage_accounts), str(args.outage_mentions), str(seconds)],
            )
            for seconds in args.outage_seconds
        ),
    ]
    results: dict[str, Any] = {}
    for section, section_args in sections:
        if section not in args.only:
            continue
        done = subprocess.run(
            [
                sys.executable,
                "-W",
                "ignore",
                "-m",
                "tests.bench_listen",
                section,
                *section_args,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(done.stdout)
        if section == "outage":
            results.setdefault("outage", []).append(figures)
        else:
            results[section] = figures
    if "sources" in args.only:
        # tests/bench_sources.py: 10 idle sources, and a hashtag note's latency.
        for section, value in (
            ("idle", args.idle_seconds),
            ("latency", args.latency_rounds),
        ):
            done = subprocess.run(
                [
                    sys.executable,
                    "-W",
                    "ignore",
                    "-m",
                    "tests.bench_sources",
                    section,
                    str(value),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[f"sources_{section}"] = json.loads(done.stdout)
    return results


def bench_assist(rounds: int) -> dict[str, Any]:
    """Time Assist's own cost (tests/bench_assist.py), in a fresh process."""
    done = subprocess.run(
        [
            *(sys.executable, "-W", "ignore", "-m", "tests.bench_assist"),
            *("assist", str(rounds)),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def print_assist(results: dict[str, Any]) -> None:
    """Print the Assist figures, if measured."""
    if assist := results.get("assist"):
        print(  # noqa: T201
            f"Assist, direct note on the server -> answer on the server (median of"
            f" {assist['rounds']}): {assist['total_ms']:.2f} ms, of which the agent"
            f" {assist['agent_ms']:.3f} ms; integration and Home Assistant's"
            f" conversation framework {assist['integration_ms']:.2f} ms"
            f" (p90 {assist['integration_p90_ms']:.2f} ms; goal < 5 ms)"
        )


def print_listening(results: dict[str, Any]) -> None:
    """Print the listening figures, if measured."""
    lines: list[str] = []
    if latency := results.get("latency"):
        lines.append(
            f"Latency, mention sent -> event entity (median of {latency['rounds']}):"
            f" {latency['entity_ms']:.2f} ms; bare WebSocket client"
            f" {latency['bare_ms']:.2f} ms; ratio x{latency['ratio']:.2f}"
            f" (p90 {latency['entity_p90_ms']:.2f} / {latency['bare_p90_ms']:.2f} ms;"
            f" {latency['duplicates']} doubled)"
        )
    if idle := results.get("idle"):
        lines.append(
            f"Idle, {idle['accounts']} accounts for {idle['seconds']:.0f} s:"
            f" {idle['cpu_core_percent']:.3f} % of a core in all"
            f" ({idle['cpu_per_account_ms_per_min']:.1f} ms CPU per account a minute);"
            f" memory per account {idle['rss_per_account_kb']:.0f} KB RSS,"
            f" {idle['traced_per_account_kb']:.0f} KB allocated"
        )
    if idle := results.get("sources_idle"):
        lines.append(
            f"Sources, one account idle for {idle['seconds']:.0f} s with"
            f" {idle['sources']} sources against none:"
            f" {idle['cpu_per_source_ms_per_min']:.2f} ms CPU per source a minute"
            f" ({idle['cpu_on_s'] * 1000:.1f} against {idle['cpu_off_s'] * 1000:.1f} ms);"
            f" memory {idle['rss_delta_kb']:.0f} KB RSS, {idle['traced_kb']:.0f} KB"
            f" allocated; {idle['reconnects']} reconnects while adding them"
        )
    if latency := results.get("sources_latency"):
        lines.append(
            f"Latency, hashtag note sent -> source event entity (median of"
            f" {latency['rounds']}): {latency['entity_ms']:.2f} ms; bare WebSocket"
            f" client on the hashtag channel {latency['bare_ms']:.2f} ms; ratio"
            f" x{latency['ratio']:.2f} (p90 {latency['entity_p90_ms']:.2f} /"
            f" {latency['bare_p90_ms']:.2f} ms; {latency['duplicates']} doubled)"
        )
    lines.extend(
        f"Outage of {outage['outage_s']:.0f} s, {outage['accounts']} accounts,"
        f" {outage['mentions']} mentions: delivered {outage['delivered']},"
        f" lost {outage['lost']}, doubled {outage['doubled']},"
        f" in order {outage['in_order']}; first event after the server was back"
        f" {outage['until_first_median_s']:.1f} s (median,"
        f" max {outage['until_first_max_s']:.1f} s), all in"
        f" {outage['until_all_s']:.1f} s; connection attempts a minute"
        f" {outage['attempts_per_minute_median']:.1f} (median,"
        f" max {outage['attempts_per_minute_max']:.1f})"
        for outage in results.get("outage", [])
    )
    for line in lines:
        print(line)  # noqa: T201


async def bench_in_hass(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run the sections that share one Home Assistant instance."""
    results: dict[str, Any] = {}
    server = MisskeyServer(args.variant)
    await server.start()
    try:
        credential = authorize(server)
        async with running_hass(str(workdir)) as hass:
            entry = account_entry(server.url, credential, account_id=server.user.id)
            await set_up(hass, entry)
            # First: the server's answers slow down as it holds more notes.
            if "startup" in args.only:
                results["setup_entry"] = await bench_setup_entry(
                    hass, server, credential, args.entries
                )
            if "overhead" in args.only:
                results["overhead"] = await bench_overhead(
                    hass, entry, server, args.rounds
                )
            if "burst" in args.only:
                results["burst"] = await bench_burst(
                    hass, entry, server, args.burst, args.burst_calls, args.burst_per
                )
    finally:
        await server.close()
    return results


def print_table(results: dict[str, Any]) -> None:
    """Print the figures as one table."""
    rows: list[tuple[str, str, str]] = []
    if overhead := results.get("overhead"):
        rows.append(
            (
                "Posting overhead",
                f"{overhead['rounds']} notes each, until the server has it",
                "vs bare / vs reference",
            )
        )
        for name, way in overhead["ways"].items():
            to_reference = way["ratio_to_reference"]
            rows.append(
                (
                    f"  {name}",
                    f"median {way['median_ms']:.3f} ms, p95 {way['p95_ms']:.3f} ms",
                    f"x{way['ratio']:.2f}"
                    + (
                        f" / x{to_reference:.2f}"
                        if to_reference
                        and way["compared_to"] != next(iter(overhead["ways"]))
                        else ""
                    ),
                )
            )
    if memory := results.get("memory"):
        rows.append(("Upload memory", f"{memory['file_mb']} MB attachment", ""))
        for source, case in memory["cases"].items():
            if "error" in case:
                rows.append((f"  from {source}", f"not measured: {case['error']}", ""))
                continue
            rows.append(
                (
                    f"  from {source}",
                    (
                        f"RSS +{case['rss_growth'] / MB:.1f} MB, "
                        f"tracemalloc peak {case['tracemalloc_peak'] / MB:.2f} MB, "
                        f"{case['seconds']:.1f} s"
                    ),
                    f"{case['growth_of_file']:.1%} of file",
                )
            )
    elif "memory_skipped" in results:
        rows.append(("Upload memory", f"not measured: {results['memory_skipped']}", ""))
    if burst := results.get("burst"):
        ok = burst["lost"] == 0 and burst["duplicated"] == 0
        rows.append(
            (
                "Burst",
                (
                    f"{burst['notes']} notes at once (the 3 ways in turn),"
                    f" server limit {burst['limit']}"
                ),
                "OK" if ok else "FAIL",
            )
        )
        rows.append(
            (
                "  posted / duplicated / lost",
                (
                    f"{burst['posted']} / {burst['duplicated']} / {burst['lost']}"
                    f" ({burst['raised']} raised, {burst['missing']} missing;"
                    f" {burst['requests']} requests,"
                    f" {burst['requests_per_note']:.2f} per note)"
                ),
                "",
            )
        )
        rows.append(
            (
                "  total time",
                f"{burst['seconds']:.1f} s (ideal {burst['ideal_seconds']:.1f} s)",
                f"x{burst['ratio']:.2f}" if burst["ratio"] else "",
            )
        )
        rows.append(
            (
                "  the same burst, no limit",
                f"{burst['unlimited_seconds'] * 1000:.0f} ms",
                "",
            )
        )
    if imported := results.get("import"):
        rows.append(
            (
                "Import (HA already imported)",
                (
                    f"median {imported['median_ms']:.1f} ms"
                    f" ({imported['min_ms']:.1f} to {imported['max_ms']:.1f} ms,"
                    f" {imported['runs']} processes; a fixed work took"
                    f" {imported['work_min_ms']:.0f} to {imported['work_max_ms']:.0f} ms)"
                ),
                "",
            )
        )
    if setup := results.get("setup_entry"):
        for key, what in (("", "listening"), ("quiet_", "not listening")):
            ref = f"reference_{key}"
            rows.append(
                (
                    f"async_setup_entry, {what}",
                    (
                        f"median {setup[f'{key}setup_median_ms']:.1f} ms,"
                        f" p95 {setup[f'{key}setup_p95_ms']:.1f} ms, of which the"
                        f" platforms ({setup[f'{key}entities']} entities)"
                        f" {setup[f'{key}platforms_median_ms']:.1f} ms, the first"
                        f" reading {setup[f'{key}reading_median_ms']:.1f} ms"
                        f" (settled {setup[f'{key}settled_median_ms']:.1f} ms;"
                        f" {setup['entries']} entries)"
                    ),
                    "",
                )
            )
            rows.append(
                (
                    f"  the same entities, no integration ({what})",
                    (
                        f"median {setup[f'{ref}setup_median_ms']:.1f} ms,"
                        f" p95 {setup[f'{ref}setup_p95_ms']:.1f} ms"
                        f" ({setup[f'{ref}entities']} entities; Misskey adds"
                        f" {setup[f'{key}setup_median_ms'] - setup[f'{ref}setup_median_ms']:.1f} ms)"
                    ),
                    "",
                )
            )
    if not rows:
        return
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    line = "+".join("-" * (w + 2) for w in width)
    print(f"+{line}+")  # noqa: T201
    for row in rows:
        print(  # noqa: T201
            "| "
            + " | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True))
            + " |"
        )
    print(f"+{line}+")  # noqa: T201


SECTIONS = (
    "overhead",
    "memory",
    "burst",
    "startup",
    "latency",
    "idle",
    "outage",
    "sources",
    "assist",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description="Benchmark the Misskey integration."
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--rounds", type=int, default=1000, help="notes per way")
    parser.add_argument("--burst", type=int, default=200, help="notes in the burst")
    parser.add_argument(
        "--burst-calls", type=int, default=50, help="notes the server allows..."
    )
    parser.add_argument(
        "--burst-per", type=float, default=2.0, help="...per this many seconds"
    )
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default=MISSKEY,
        help="the Misskey (or fork) the server plays for overhead, burst, startup",
    )
    parser.add_argument("--size-mb", type=int, default=100, help="attachment size")
    parser.add_argument("--entries", type=int, default=30, help="entries set up")
    parser.add_argument("--imports", type=int, default=30, help="import processes")
    parser.add_argument(
        "--latency-rounds", type=int, default=300, help="mentions timed for latency"
    )
    parser.add_argument(
        "--assist-rounds", type=int, default=200, help="commands timed for assist"
    )
    parser.add_argument("--idle-accounts", type=int, default=20, help="idle accounts")
    parser.add_argument(
        "--idle-seconds", type=float, default=60, help="how long they stay idle"
    )
    parser.add_argument(
        "--outage-accounts", type=int, default=10, help="accounts during the outage"
    )
    parser.add_argument(
        "--outage-mentions", type=int, default=100, help="mentions during the outage"
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        nargs="+",
        default=[30, 180],
        help="how long each outage lasts",
    )
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), metavar="SECTION"
    )
    parser.add_argument(
        "--output", type=Path, default=ARTIFACTS / "bench.json", help="JSON file"
    )
    parser.add_argument("--serve-for-memory", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--memory-case", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.entries, args.imports = 100, 5, 3
        args.latency_rounds, args.idle_seconds, args.outage_seconds = 100, 10, [5]
        args.assist_rounds = 50
    return args


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``python -m tests.bench``."""
    args = parse_args(argv)
    if args.serve_for_memory:
        asyncio.run(serve_for_memory(args.serve_for_memory))
        return
    if args.memory_case:
        print(json.dumps(asyncio.run(memory_case(*args.memory_case))))  # noqa: T201
        return
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="misskey-bench-"))
    results: dict[str, Any] = {}
    try:
        if {"overhead", "burst", "startup"} & set(args.only):
            results |= asyncio.run(bench_in_hass(args, workdir))
        if "startup" in args.only:
            results["import"] = bench_import(args.imports)
        if "memory" in args.only:
            results["memory"] = bench_memory(args.size_mb, workdir)
        results |= bench_listening(args)
        if "assist" in args.only:
            results["assist"] = bench_assist(args.assist_rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results["seconds"] = time.perf_counter() - started
    print_table(results)
    print_listening(results)
    print_assist(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    shown = (
        args.output.resolve().relative_to(REPO)
        if args.output.resolve().is_relative_to(REPO)
        else args.output
    )
    print(f"Figures in {shown} ({results['seconds']:.0f} s)")  # noqa: T201


if __name__ == "__main__":
    main()

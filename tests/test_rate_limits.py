"""The client's gate: a 429 holds the account's calls, which then go out paced.

Against the test server's limiter over HTTP, which limits each account as the
variant's does (Misskey counts refused calls too; Sharkey's bucket drips).
The assertions count and order the requests the server received; how fast a
burst gets through is measured by scripts/bench.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator
from typing import Any
from unittest.mock import patch

import aiohttp
import pytest

from custom_components.misskey.api import (
    MisskeyCannotConnectError,
    MisskeyClient,
    MisskeyClientClosedError,
    MisskeyRateLimitError,
    MisskeyTimeoutError,
    Note,
)
from custom_components.misskey.api.gate import MAX_IN_FLIGHT
from homeassistant.util.async_ import get_scheduled_timer_handles

from .conftest import authorize
from .listening import WAIT, until
from .misskey_server import MISSKEY_13, VARIANTS, MisskeyServer, Request

all_variants = pytest.mark.parametrize("variant", VARIANTS)


@pytest.fixture
async def session(misskey: MisskeyServer) -> AsyncGenerator[aiohttp.ClientSession]:
    """Return an aiohttp session (the server's fixture enables sockets)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(session: aiohttp.ClientSession, misskey: MisskeyServer) -> MisskeyClient:
    """Return a client signed in as the server's user."""
    return MisskeyClient(session, misskey.url, authorize(misskey), request_timeout=5)


@pytest.fixture(autouse=True)
def fast_probes() -> Generator[None]:
    """Try again after a 429 that says nothing of when (Misskey 12) in 0.25 s, not 2 s."""
    with patch("custom_components.misskey.api.gate.PROBE_AFTER", (0.25, 0.5, 1)):
        yield


async def post(client: MisskeyClient, count: int, max_wait: float = 10) -> list[Note]:
    """Post ``count`` notes at once; return them in order."""
    return await asyncio.gather(
        *(
            client.create_note({"text": f"note {n}"}, max_wait=max_wait)
            for n in range(count)
        )
    )


def refused(requests: list[Request]) -> list[Request]:
    """Return the requests the server answered with 429."""
    return [r for r in requests if r.refused_until is not None]


@all_variants
async def test_burst_is_held_then_paced(
    client: MisskeyClient, misskey: MisskeyServer, variant: str
) -> None:
    """A 429 holds the account's other calls until the server's moment; none stampede."""
    # A window far longer than the first calls take to arrive, even on a
    # loaded machine: they overrun it (Sharkey's bucket drips every 1/3 s).
    misskey.limit("notes/create", 3, 1)
    notes = await post(client, 8)

    assert [n.text for n in notes] == [f"note {n}" for n in range(8)]
    assert sorted(n["text"] for n in misskey.notes.values()) == sorted(
        f"note {n}" for n in range(8)
    )
    requests = misskey.calls("notes/create")
    no = refused(requests)
    t0 = requests[0].at
    trace = " ".join(
        f"{r.body['text'][5:]}@{r.at - t0:.3f}"
        + (f"<{r.refused_until - t0:.3f}" if r.refused_until else "")
        for r in requests
    )
    # Only calls already on their way when the first 429 came back were
    # refused; after it, the calls went as the window freed.
    assert 1 <= len(no) <= MAX_IN_FLIGHT, trace
    assert len(requests) == 8 + len(no)
    # Nothing reached the server between the last 429 and the moment it named.
    after = requests[requests.index(no[-1]) + 1]
    assert after.at >= max(r.refused_until or 0 for r in no), trace


@pytest.mark.parametrize("variant", [MISSKEY_13])
async def test_no_word_of_when(
    client: MisskeyClient, misskey: MisskeyServer, variant: str
) -> None:
    """Misskey 12's bare 429: one call tries again after a while, not every call."""
    misskey.fail_next("notes/create", "rate_limit", count=2)
    notes = await post(client, 3)

    assert len(notes) == 3
    requests = misskey.calls("notes/create")
    # The three calls went at once; the first two were refused. They came
    # back one after the other, the first after a while.
    assert [r.refused_until is not None for r in requests] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert requests[3].at - requests[0].at >= 0.25


@pytest.mark.parametrize("variant", [MISSKEY_13])
async def test_no_word_of_when_tries_less_often(
    client: MisskeyClient, misskey: MisskeyServer, variant: str
) -> None:
    """Misskey 12: each refused try waits longer before the next (0.25, 0.5, 1 s here)."""
    misskey.fail_next("notes/create", "rate_limit", count=3)
    await client.create_note({"text": "patient"}, max_wait=10)

    requests = misskey.calls("notes/create")
    assert [r.refused_until is not None for r in requests] == [True, True, True, False]
    # Counted from the first refusal, which was answered after it arrived.
    assert requests[1].at - requests[0].at >= 0.25
    assert requests[2].at - requests[0].at >= 0.5
    assert requests[3].at - requests[0].at >= 1


async def test_other_endpoints_are_not_held(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """Misskey limits each endpoint: a 429 on notes/create holds nothing else."""
    misskey.limit("notes/create", 1, 3600)
    await client.create_note({"text": "first"})
    with pytest.raises(MisskeyRateLimitError):
        await client.create_note({"text": "second"})

    account = await client.account()
    assert account.username == "alice"
    assert len(misskey.calls("i")) == 1


async def test_call_of_its_own_fails_at_once_while_held(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """A call that does not wait learns at once, without a request, that it would be refused."""
    misskey.fail_next("notes/create", "rate_limit", retry_after=30)
    with pytest.raises(MisskeyRateLimitError) as first:
        await client.create_note({"text": "first"})
    with pytest.raises(MisskeyRateLimitError) as second:
        await client.create_note({"text": "second"})

    assert first.value.retry_after is not None
    assert second.value.retry_after is not None
    assert 25 < second.value.retry_after <= first.value.retry_after
    assert second.value.code == "RATE_LIMIT_EXCEEDED"
    assert len(misskey.calls("notes/create")) == 1


async def test_accounts_are_independent(
    session: aiohttp.ClientSession, misskey: MisskeyServer, client: MisskeyClient
) -> None:
    """Two accounts (two clients) do not hold each other."""
    alice = misskey.user
    misskey.user = bob = misskey.add_user("bob")
    bob_client = MisskeyClient(session, misskey.url, authorize(misskey))
    misskey.user = alice
    misskey.limit("notes/create", 2, 3600)

    await post(client, 2)
    with pytest.raises(MisskeyRateLimitError):
        await client.create_note({"text": "alice, refused"}, max_wait=1)
    await bob_client.create_note({"text": "bob"})
    await bob_client.create_note({"text": "bob again"})

    by_user = [(n["userId"], n["text"]) for n in misskey.notes.values()]
    assert by_user == [
        (alice.id, "note 0"),
        (alice.id, "note 1"),
        (bob.id, "bob"),
        (bob.id, "bob again"),
    ]
    # Alice's third note was refused once, then not sent again; Bob's went.
    assert len(refused(misskey.calls("notes/create"))) == 1
    assert len(misskey.calls("notes/create")) == 5


async def test_waiting_ends_after_max_wait(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """A call that would wait longer than it may in all gets the 429; nothing twice."""
    misskey.limit("notes/create", 1, 0.3)
    results = await asyncio.gather(
        *(client.create_note({"text": f"note {n}"}, max_wait=0.45) for n in range(3)),
        return_exceptions=True,
    )

    # One note a window: the third would have waited two windows (the second
    # one, more than 0.45 s on a slow machine).
    posted = [r for r in results if isinstance(r, Note)]
    errors = [r for r in results if not isinstance(r, Note)]
    assert 1 <= len(posted) <= 2
    assert len(errors) == 3 - len(posted)
    for err in errors:
        assert isinstance(err, MisskeyRateLimitError)
        assert err.retry_after is not None
        assert err.retry_after >= 0
    assert [n["text"] for n in misskey.notes.values()] == [n.text for n in posted]
    requests = misskey.calls("notes/create")
    assert len(requests) == len(posted) + len(refused(requests))


async def test_a_hold_longer_than_max_wait_fails_at_once(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """Calls do not wait out a hold that ends after their own deadline."""
    misskey.limit("notes/create", 1, 3600)
    results = await asyncio.gather(
        *(client.create_note({"text": f"note {n}"}, max_wait=60) for n in range(6)),
        return_exceptions=True,
    )

    assert sum(isinstance(r, Note) for r in results) == 1
    errors = [r for r in results if isinstance(r, MisskeyRateLimitError)]
    assert len(errors) == 5
    assert all(e.retry_after is not None and e.retry_after > 3000 for e in errors)
    requests = misskey.calls("notes/create")
    assert 1 < len(requests) <= MAX_IN_FLIGHT + 1


async def test_cancelled_calls_give_back_their_turn(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """Calls cancelled while they wait leave the account's gate as it was."""
    misskey.limit("notes/create", 1, 0.3)
    tasks = [
        asyncio.create_task(client.create_note({"text": f"note {n}"}, max_wait=10))
        for n in range(MAX_IN_FLIGHT + 2)
    ]
    await until(lambda: misskey.notes and refused(misskey.calls("notes/create")))
    waiting = [task for task in tasks if not task.done()]
    for task in waiting:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    async with asyncio.timeout(WAIT):
        note = await client.create_note({"text": "after"}, max_wait=10)
    texts = [n["text"] for n in misskey.notes.values()]
    assert texts[-1] == note.text == "after"
    assert len(set(texts)) == len(texts)
    after = [r for r in misskey.calls("notes/create") if r.body["text"] == "after"]
    assert all(r.refused_until is not None for r in after[:-1])


async def test_turn_comes_before_the_call(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """For an endpoint named, the call (which may open a file or download) waits its turn."""
    misskey.fail_next("notes/create", "rate_limit", retry_after=0.3)
    loop = asyncio.get_running_loop()
    started: list[float] = []

    async def call() -> Any:
        started.append(loop.time())
        return await client.request("notes/create", {"text": "x"}, authenticated=True)

    await client.retry_rate_limited(call, 10, endpoint="notes/create")

    assert len(started) == 2
    assert started[1] - started[0] >= 0.29
    assert [r.refused_until is not None for r in misskey.calls("notes/create")] == [
        True,
        False,
    ]


async def test_timeout_is_not_retried(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """A call without an answer may have been carried out: never sent again."""
    client.request_timeout = 0.2
    misskey.fail_next("notes/create", "hang")
    with pytest.raises(MisskeyTimeoutError):
        await client.create_note({"text": "maybe"}, max_wait=10)
    assert len(misskey.calls("notes/create")) == 1

    # The next call gets an answer, however slow the machine.
    client.request_timeout = WAIT
    await client.create_note({"text": "next"}, max_wait=10)
    assert len(misskey.calls("notes/create")) == 2


def gate_timers() -> list[asyncio.TimerHandle]:
    """Return the timers the gate's lanes have scheduled and not cancelled."""
    return [
        handle
        for handle in get_scheduled_timer_handles(asyncio.get_running_loop())
        if not handle.cancelled() and "Lane._pump" in repr(handle)
    ]


async def test_close_ends_waiting_calls(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """Closing the client (its entry unloaded) ends the calls waiting out a 429 at once.

    They raise MisskeyClientClosedError, a MisskeyCannotConnectError: nothing
    was sent, so no note may have been posted. Later calls fail alike without
    a request, and the gate leaves no timer behind.
    """
    misskey.fail_next("notes/create", "rate_limit", count=3, retry_after=30)
    tasks = [
        asyncio.create_task(client.create_note({"text": f"note {n}"}, max_wait=60))
        for n in range(3)
    ]
    await until(gate_timers)

    client.close()
    # Far sooner than the 30 s the server asked to wait.
    async with asyncio.timeout(5):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, MisskeyClientClosedError) for r in results), results
    assert all(isinstance(r, MisskeyCannotConnectError) for r in results)
    assert not gate_timers()
    with pytest.raises(MisskeyClientClosedError):
        await client.account()
    assert len(misskey.calls("notes/create")) == 3
    assert not misskey.calls("i")
    assert not misskey.notes

"""Tests for the Misskey client, against the test server over HTTP."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta
import time
from typing import Any

import aiohttp
import pytest

from custom_components.misskey.api import (
    DEFAULT_MAX_NOTE_TEXT_LENGTH,
    Meta,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyClient,
    MisskeyConnectionError,
    MisskeyError,
    MisskeyFileTooLargeError,
    MisskeyInvalidParamError,
    MisskeyNoSuchAppError,
    MisskeyNoSuchSessionError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    MisskeyResponseError,
    MisskeyServerError,
    MisskeySessionPendingError,
    MisskeyTimeoutError,
    Note,
    credential_from_access_token,
    normalize_url,
)

from .conftest import authorize
from .misskey_server import (
    FIREFISH,
    FOUNDKEY,
    MISSKEY,
    MISSKEY_13,
    SHARKEY,
    VARIANTS,
    MisskeyServer,
)

all_variants = pytest.mark.parametrize("variant", VARIANTS)


@pytest.fixture
async def session(misskey: MisskeyServer) -> AsyncGenerator[aiohttp.ClientSession]:
    """Return an aiohttp session (the server's fixture enables sockets)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def credential(misskey: MisskeyServer) -> str:
    """Return a working ``i`` for the server's user."""
    return authorize(misskey)


@pytest.fixture
def client(
    session: aiohttp.ClientSession, misskey: MisskeyServer, credential: str
) -> MisskeyClient:
    """Return a client signed in as the server's user."""
    return MisskeyClient(session, misskey.url + "/", credential, request_timeout=5)


def error_json(code: str, **fields: Any) -> dict[str, Any]:
    """Return Misskey's error body."""
    return {"error": {"message": "Something.", "code": code, **fields}}


async def expect_error[E: MisskeyError](cls: type[E], call: Any, *secrets: str) -> E:
    """Await ``call``, check it raised ``cls``, and that no secret is in the message."""
    with pytest.raises(cls) as err:
        await call
    for secret in secrets:
        assert secret not in str(err.value)
        assert secret not in repr(err.value)
    return err.value


# --- helpers ------------------------------------------------------------------


def test_credential_from_access_token() -> None:
    """``i`` is sha256 of access token + app secret (FIPS 180-2 vector for "abc")."""
    assert credential_from_access_token("a", "bc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert credential_from_access_token("", "") == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("misskey.io", "https://misskey.io"),
        (" https://misskey.io/ ", "https://misskey.io"),
        ("https://misskey.io/@someone", "https://misskey.io"),
        ("HTTP://Misskey.IO:8443/notes/x", "http://misskey.io:8443"),
        ("misskey.io:8443", "https://misskey.io:8443"),
        ("http://127.0.0.1:3000/", "http://127.0.0.1:3000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://日本.jp", "https://xn--wgv71a.jp"),
        # Handles, as a profile shows them: the account's server.
        ("@me@misskey.io", "https://misskey.io"),
        ("me@misskey.io", "https://misskey.io"),
        (" @me_2@Misskey.IO/ ", "https://misskey.io"),
        ("@alice@127.0.0.1:3000", "https://127.0.0.1:3000"),
    ],
)
def test_normalize_url(raw: str, expected: str) -> None:
    """An instance is its scheme, host and port."""
    assert normalize_url(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "http://[::1",
        "ftp://misskey.io",
        "https://user:password@misskey.io",
        "https://mis key.io",
        "https://",
        "https://exa$mple.com",
        # A handle without a server, or a URL's user name.
        "@me",
        "@me@",
        "@@misskey.io",
        "https://me@misskey.io",
    ],
)
def test_normalize_url_refuses(raw: str) -> None:
    """What is not an http(s) instance address is a ValueError."""
    with pytest.raises(ValueError):
        normalize_url(raw)


# --- successful calls ------------------------------------------------------------


@all_variants
async def test_meta(
    client: MisskeyClient, misskey: MisskeyServer, variant: str
) -> None:
    """The instance's meta gives its name, version and limits."""
    meta = await client.meta()
    assert client.url == misskey.url
    assert meta.name == "Test Misskey"
    assert meta.version == misskey.version
    assert meta.uri == misskey.url
    assert meta.max_note_text_length == {MISSKEY_13: 500, SHARKEY: 6000}.get(
        variant, 3000
    )
    assert meta.max_file_size == misskey.max_file_size
    assert meta.raw["description"] == "A Misskey server for tests."
    assert ("maxCwLength" in meta.raw) is (variant == SHARKEY)


async def test_meta_without_limits(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """An instance that does not say its limits gets Misskey's defaults."""
    misskey.fail_next(
        "meta", "json", status=200, body={"version": "12.0.0", "uri": misskey.url}
    )
    meta = await client.meta()
    assert meta.max_note_text_length == DEFAULT_MAX_NOTE_TEXT_LENGTH
    assert meta.max_file_size is None
    assert meta.name is None


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"version": 13},
        {"version": "1.0"},
        {"name": "A blog", "version": "6.4"},
    ],
)
async def test_meta_of_something_else(
    client: MisskeyClient, misskey: MisskeyServer, body: Any
) -> None:
    """A server whose meta is not Misskey's is a MisskeyResponseError."""
    misskey.fail_next("meta", "json", status=200, body=body)
    await expect_error(MisskeyResponseError, client.meta())


@all_variants
async def test_app_authentication(
    session: aiohttp.ClientSession, misskey: MisskeyServer, variant: str
) -> None:
    """app/create, auth/session/generate and userkey, with their session errors."""
    client = MisskeyClient(session, misskey.url)
    app = await client.create_app("Home Assistant", "Posts", ["read:account"], None)
    assert misskey.apps[app.id].secret == app.secret
    assert app.secret not in repr(app)

    auth_session = await client.generate_session(app.secret)
    assert auth_session.url == f"{misskey.url}/auth/{auth_session.token}"

    err = await expect_error(
        MisskeySessionPendingError,
        client.user_key(app.secret, auth_session.token),
        app.secret,
    )
    assert err.code == "PENDING_SESSION"
    if variant == SHARKEY:
        # Sharkey's hard limit on anonymous calls: wait for a new second.
        misskey.rate_limits.clear()

    misskey.accept_session(auth_session.token)
    user_key = await client.user_key(app.secret, auth_session.token)
    assert user_key.account.username == "alice"
    assert user_key.account.id == misskey.user.id
    assert user_key.account.followers_count == 0
    assert user_key.access_token not in repr(user_key)
    (token,) = misskey.tokens
    assert credential_from_access_token(user_key.access_token, app.secret) == token.hash

    # The session is gone after its one successful use.
    err = await expect_error(
        MisskeyNoSuchSessionError,
        client.user_key(app.secret, auth_session.token),
        app.secret,
        user_key.access_token,
    )
    assert err.code == "NO_SUCH_SESSION"
    # FoundKey says 404, the others 400; the code decides.
    assert err.status == (404 if variant == FOUNDKEY else 400)

    for call in (
        client.generate_session("x" * 32),
        client.user_key("x" * 32, auth_session.token),
    ):
        err = await expect_error(MisskeyNoSuchAppError, call)
        assert err.code == "NO_SUCH_APP"
        assert err.status == (404 if variant == FOUNDKEY else 400)
        assert (err.error_id is None) is (variant == FOUNDKEY)


async def test_account_user_and_note(
    client: MisskeyClient, misskey: MisskeyServer
) -> None:
    """i, users/show and notes/create with what Misskey answers."""
    misskey.user.followers_count = 3
    account = await client.account()
    assert (account.id, account.username, account.host, account.name) == (
        misskey.user.id,
        "alice",
        None,
        "Alice",
    )
    assert account.followers_count == 3
    assert account.raw["email"] == "alice@example.invalid"
    assert "alice@example.invalid" not in repr(account)

    bob = misskey.add_user("bob", name="Bob")
    assert (await client.user("bob")).id == bob.id
    err = await expect_error(MisskeyApiError, client.user("nobody"))
    assert err.code == "NO_SUCH_USER"
    assert type(err) is MisskeyApiError

    note = await client.create_note({"text": "Hello", "visibility": "home"})
    assert note.text == "Hello"
    assert note.visibility == "home"
    assert note.url == f"{misskey.url}/notes/{note.id}"
    assert note.file_ids == []
    assert note.local_only is False
    assert note.raw["userId"] == misskey.user.id


async def test_account_actions(client: MisskeyClient, misskey: MisskeyServer) -> None:
    """users/show by ID, users/notes, mutes and i/update with what Misskey answers."""
    bob = misskey.add_user("bob", is_locked=True)
    user = await client.user_by_id(bob.id)
    assert (user.username, user.is_locked, user.moved_to) == ("bob", True, None)
    assert await client.latest_note(misskey.user.id) is None
    note = await client.create_note({"text": "Hello"})
    latest = await client.latest_note(misskey.user.id)
    assert latest is not None
    assert latest.id == note.id
    assert latest.created == datetime.fromisoformat(note.created_at)

    until = datetime.now(UTC) + timedelta(hours=1)
    await client.mute(bob.id, until)
    assert misskey.mutes == {(misskey.user.id, bob.id): int(until.timestamp() * 1000)}
    await client.unmute(bob.id)
    assert misskey.mutes == {}

    account = await client.update_profile({"isCat": True, "fields": []})
    assert (account.is_cat, account.fields) == (True, [])
    assert account.policies is not None
    assert account.policies.max_file_size_mb == 30


@pytest.mark.parametrize(
    ("version", "old"),
    [
        ("12.26.0", True),
        ("12.107.1", True),
        ("12.108.0", False),
        ("13.0.0-preview6", False),
        ("2026.3.2", False),
        ("1.0.5-rc", False),
        ("4.17.0", False),  # CherryPick
        ("unknown", False),
    ],
)
def test_before_12_108(version: str, old: bool) -> None:
    """Only Misskey 10 to 12.107 has the old profile and mute API; forks number anew."""
    meta = Meta(
        name=None,
        version=version,
        uri=None,
        max_note_text_length=3000,
        max_file_size=None,
        raw={},
    )
    assert meta.before_12_108 is old


def test_note_without_time() -> None:
    """A note whose createdAt is missing or garbled has no creation time."""
    for created_at in ("", "yesterday"):
        note = Note.from_json({"id": "x", "createdAt": created_at}, "https://a.example")
        assert note.created is None


async def test_no_content(client: MisskeyClient, misskey: MisskeyServer) -> None:
    """204 is None."""
    misskey.fail_next("meta", "status", status=204)
    assert await client.request("meta") is None


# --- errors -------------------------------------------------------------------------


@all_variants
async def test_wrong_credential(
    session: aiohttp.ClientSession, misskey: MisskeyServer, variant: str
) -> None:
    """A wrong credential is an authentication error, whether 401 or 403."""
    credential = "f" * 64
    client = MisskeyClient(session, misskey.url, credential)
    for call in (client.account(), client.create_note({"text": "x"})):
        err = await expect_error(MisskeyAuthenticationError, call, credential)
        assert err.code == "AUTHENTICATION_FAILED"
        assert err.status == (403 if variant in (MISSKEY_13, FIREFISH) else 401)


@all_variants
async def test_revoked_credential(
    client: MisskeyClient, misskey: MisskeyServer, credential: str
) -> None:
    """A revoked credential is an authentication error."""
    await client.account()
    misskey.revoke()
    await expect_error(MisskeyAuthenticationError, client.account(), credential)


@all_variants
async def test_raw_access_token(
    session: aiohttp.ClientSession, misskey: MisskeyServer, variant: str
) -> None:
    """Misskey 12 refuses the raw access token; that is why ``i`` is the hash."""
    authorize(misskey)
    client = MisskeyClient(session, misskey.url, misskey.tokens[0].token)
    if variant == MISSKEY_13:
        await expect_error(MisskeyAuthenticationError, client.account())
    else:
        assert (await client.account()).id == misskey.user.id


async def test_credential_required(
    session: aiohttp.ClientSession, misskey: MisskeyServer
) -> None:
    """No credential: the server says CREDENTIAL_REQUIRED; the client does not even ask."""
    client = MisskeyClient(session, misskey.url)
    err = await expect_error(MisskeyAuthenticationError, client.request("i"))
    assert (err.status, err.code) == (401, "CREDENTIAL_REQUIRED")

    calls = len(misskey.requests)
    err = await expect_error(MisskeyAuthenticationError, client.account())
    assert err.code == "CREDENTIAL_REQUIRED"
    assert len(misskey.requests) == calls


@all_variants
async def test_permission_denied(
    session: aiohttp.ClientSession, misskey: MisskeyServer, variant: str
) -> None:
    """A call outside the app's permissions: 403 kind permission, or 400 on Misskey 12."""
    credential = authorize(misskey, ["write:notes"])
    client = MisskeyClient(session, misskey.url, credential)
    err = await expect_error(MisskeyPermissionDeniedError, client.account(), credential)
    assert err.code == "PERMISSION_DENIED"
    assert err.status == (400 if variant == MISSKEY_13 else 403)


@all_variants
async def test_rate_limited(
    client: MisskeyClient, misskey: MisskeyServer, variant: str
) -> None:
    """429 with when to retry, as each variant says it; Misskey 12 says neither when nor why."""
    misskey.fail_next("notes/create", "rate_limit", retry_after=2)
    err = await expect_error(MisskeyRateLimitError, client.create_note({"text": "x"}))
    assert err.status == 429
    assert err.code == "RATE_LIMIT_EXCEEDED"
    if variant == MISSKEY_13:
        assert err.retry_after is None
        assert err.info == {}
    else:
        # Sharkey's X-RateLimit-Reset, or Misskey's resetMs (to the
        # millisecond, where Retry-After is whole seconds).
        assert err.retry_after is not None
        assert 1.9 < err.retry_after <= 2.001
    assert not misskey.notes


@pytest.mark.parametrize(
    ("headers", "info", "retry_after", "clear_after", "limit"),
    [
        # Misskey: the moment in info.resetMs, within Retry-After's rounding.
        ({"Retry-After": "2"}, {"resetMs": 1500, "total": 30}, 1.5, None, 30),
        # A clock far from the server's: Retry-After alone.
        ({"Retry-After": "2"}, {"resetMs": 30_000, "total": 30}, 2, None, 30),
        # Sharkey: X-RateLimit-Reset to the millisecond; its resetMs is a
        # duration, not a moment.
        (
            {
                "Retry-After": "1",
                "X-RateLimit-Reset": "0.435",
                "X-RateLimit-Clear": "30.000",
            },
            {"resetMs": 435, "fullResetMs": 30000},
            0.435,
            30,
            None,
        ),
        # Nothing usable.
        ({"Retry-After": "soon"}, {"total": "30"}, None, None, None),
    ],
)
async def test_rate_limit_fields(
    client: MisskeyClient,
    misskey: MisskeyServer,
    headers: dict[str, str],
    info: dict[str, Any],
    retry_after: float | None,
    clear_after: float | None,
    limit: int | None,
) -> None:
    """When to retry, when the limit is clear, and its size, from each variant's fields."""
    if "resetMs" in info and "fullResetMs" not in info:
        # A moment (epoch ms), that many ms from now.
        info = info | {"resetMs": int(time.time() * 1000) + info["resetMs"]}
    misskey.fail_next(
        "meta",
        "json",
        status=429,
        headers=headers,
        body=error_json("RATE_LIMIT_EXCEEDED", info=info),
    )
    err = await expect_error(MisskeyRateLimitError, client.meta())
    if retry_after is None:
        assert err.retry_after is None
    else:
        assert err.retry_after == pytest.approx(retry_after, abs=0.05)
    assert err.clear_after == clear_after
    assert err.limit == limit


@pytest.mark.parametrize(
    "headers", [{}, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}]
)
async def test_rate_limited_until_reset(
    session: aiohttp.ClientSession,
    misskey: MisskeyServer,
    credential: str,
    headers: dict[str, str],
) -> None:
    """Without a usable Retry-After, info.resetMs (when the limit resets) tells."""
    reset_ms = int((time.time() + 30) * 1000)
    misskey.fail_next(
        "meta",
        "json",
        status=429,
        headers=headers,
        body=error_json("RATE_LIMIT_EXCEEDED", info={"resetMs": reset_ms}),
    )
    client = MisskeyClient(session, misskey.url, credential)
    err = await expect_error(MisskeyRateLimitError, client.meta())
    assert err.retry_after is not None
    assert 25 < err.retry_after <= 30

    # A reset in the past means now.
    misskey.fail_next(
        "meta",
        "json",
        status=429,
        body=error_json("RATE_LIMIT_EXCEEDED", info={"resetMs": 1000}),
    )
    client = MisskeyClient(session, misskey.url, credential)
    err = await expect_error(MisskeyRateLimitError, client.meta())
    assert err.retry_after == 0


async def test_sharkey_limits_anonymous_calls(
    session: aiohttp.ClientSession, misskey: MisskeyServer
) -> None:
    """Sharkey: userkey answers 400, 400, then 429 until its bucket drips."""
    misskey.variant = SHARKEY
    misskey.limit("auth/session/userkey", 2, 1)
    # The three calls count as made at once, however long each takes here.
    stopped = time.monotonic()
    misskey.clock = lambda: stopped
    client = MisskeyClient(session, misskey.url)
    app = await client.create_app("Home Assistant", "Posts", ["read:account"])
    auth_session = await client.generate_session(app.secret)
    for _ in range(2):
        await expect_error(
            MisskeySessionPendingError, client.user_key(app.secret, auth_session.token)
        )
    err = await expect_error(
        MisskeyRateLimitError, client.user_key(app.secret, auth_session.token)
    )
    # Two a second is a bucket of two that drips every 500 ms.
    assert err.retry_after == 0.5
    assert err.info["resetSec"] == 1
    assert err.clear_after == 1


async def test_invalid_param(client: MisskeyClient, misskey: MisskeyServer) -> None:
    """INVALID_PARAM tells which parameter and why."""
    err = await expect_error(
        MisskeyInvalidParamError, client.create_note({"text": "x", "cw": ""})
    )
    assert err.param == "#/properties/cw"
    assert err.reason is not None
    assert "100 characters" in err.reason
    assert err.error_id == "3d81ceae-475f-4600-b2a8-2bc116157532"

    misskey.fail_next("meta", "json", status=400, body=error_json("INVALID_PARAM"))
    err = await expect_error(MisskeyInvalidParamError, client.meta())
    assert (err.param, err.reason) == (None, None)


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            500,
            error_json("INTERNAL_ERROR", kind="server"),
            MisskeyServerError,
            "INTERNAL_ERROR",
        ),
        (
            400,
            error_json("SOMETHING_BROKE", kind="server"),
            MisskeyServerError,
            "SOMETHING_BROKE",
        ),
        (503, error_json("UNAVAILABLE"), MisskeyServerError, "UNAVAILABLE"),
        (401, error_json("TOKEN_EXPIRED"), MisskeyAuthenticationError, "TOKEN_EXPIRED"),
        (413, error_json("TOO_BIG"), MisskeyFileTooLargeError, "TOO_BIG"),
        (429, error_json("SLOW_DOWN"), MisskeyRateLimitError, "SLOW_DOWN"),
        (
            400,
            error_json("YOU_HAVE_BEEN_BLOCKED"),
            MisskeyApiError,
            "YOU_HAVE_BEEN_BLOCKED",
        ),
        # Firefish's unwrapped shape, and the web framework's own.
        (
            403,
            {"code": "AUTHENTICATION_FAILED", "message": "x"},
            MisskeyAuthenticationError,
            "AUTHENTICATION_FAILED",
        ),
        (
            400,
            {
                "statusCode": 400,
                "code": "FST_ERR_CTP_INVALID_JSON_BODY",
                "error": "Bad Request",
                "message": "x",
            },
            MisskeyApiError,
            "FST_ERR_CTP_INVALID_JSON_BODY",
        ),
        # Errors without a Misskey error object: the status decides.
        (401, {"detail": "no"}, MisskeyAuthenticationError, None),
        (413, None, MisskeyFileTooLargeError, None),
        (429, None, MisskeyRateLimitError, None),
        (502, None, MisskeyServerError, None),
    ],
)
async def test_error_classes(
    client: MisskeyClient,
    misskey: MisskeyServer,
    credential: str,
    status: int,
    body: Any,
    cls: type[MisskeyApiError],
    code: str | None,
) -> None:
    """Each error maps to its class by code, else by status and kind."""
    if body is None:
        misskey.fail_next("i", "status", status=status)
    else:
        misskey.fail_next("i", "json", status=status, body=body)
    err = await expect_error(cls, client.account(), credential)
    assert type(err) is cls
    assert (err.status, err.code) == (status, code)
    assert str(err).startswith(code or f"HTTP_{status}")


@pytest.mark.parametrize(
    ("kind", "status", "cls"),
    [
        ("html", 500, MisskeyResponseError),  # the fault's 200
        ("html", 404, MisskeyResponseError),
        ("html", 403, MisskeyResponseError),
        ("html", 502, MisskeyServerError),
        ("status", 401, MisskeyAuthenticationError),
        ("status", 404, MisskeyResponseError),
        ("status", 200, MisskeyResponseError),
    ],
)
async def test_not_misskey_answers(
    client: MisskeyClient,
    misskey: MisskeyServer,
    credential: str,
    kind: str,
    status: int,
    cls: type[MisskeyError],
) -> None:
    """A proxy's HTML page or an empty answer is never taken for data."""
    misskey.fail_next("i", kind, status=status)
    await expect_error(cls, client.account(), credential)


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("i", {"id": "x"}),
        ("i", ["alice"]),
        ("users/show", {"username": "bob"}),
        ("notes/create", {}),
        ("notes/create", {"createdNote": "x"}),
        ("notes/create", {"createdNote": {"text": "x"}}),
        ("app/create", {"id": "x"}),
        ("auth/session/generate", {"token": "x"}),
        ("auth/session/userkey", {"user": {}}),
        ("users/notes", {"id": "x"}),
        ("users/notes", [{"text": "no id"}]),
        ("i/update", {"name": "x"}),
        ("notes/drafts/list", {}),
        ("notes/drafts/create", {"createdDraft": {"text": "no id"}}),
    ],
)
async def test_answers_without_fields(
    client: MisskeyClient, misskey: MisskeyServer, endpoint: str, body: Any
) -> None:
    """JSON that lacks what the endpoint returns is a MisskeyResponseError."""
    misskey.fail_next(endpoint, "json", status=200, body=body)
    calls = {
        "i": client.account,
        "users/show": lambda: client.user("bob"),
        "notes/create": lambda: client.create_note({"text": "x"}),
        "app/create": lambda: client.create_app("n", "d", []),
        "auth/session/generate": lambda: client.generate_session("s"),
        "auth/session/userkey": lambda: client.user_key("s", "t"),
        "users/notes": lambda: client.latest_note("x"),
        "i/update": lambda: client.update_profile({}),
        "notes/drafts/list": client.drafts,
        "notes/drafts/create": lambda: client.create_scheduled_draft(
            {}, datetime.now(UTC)
        ),
    }
    err = await expect_error(MisskeyResponseError, calls[endpoint]())
    assert endpoint in str(err)


async def test_timeout(
    session: aiohttp.ClientSession, misskey: MisskeyServer, credential: str
) -> None:
    """No answer in time is a MisskeyTimeoutError (the call may have happened)."""
    client = MisskeyClient(session, misskey.url, credential, request_timeout=0.05)
    misskey.fail_next("notes/create", "hang")
    err = await expect_error(
        MisskeyTimeoutError, client.create_note({"text": "x"}), credential
    )
    assert not isinstance(err, MisskeyCannotConnectError)
    assert isinstance(err, MisskeyConnectionError)


async def test_connection_refused(
    session: aiohttp.ClientSession, misskey: MisskeyServer, credential: str
) -> None:
    """Nothing listening is MisskeyCannotConnectError: nothing was sent."""
    url = misskey.url
    # Down, its port kept: nothing else can answer there.
    await misskey.go_down()
    client = MisskeyClient(session, url, credential)
    await expect_error(MisskeyCannotConnectError, client.account(), credential)


async def test_dropped_connection(
    client: MisskeyClient, misskey: MisskeyServer, credential: str
) -> None:
    """A connection closed without an answer: a connection error, outcome unknown."""
    misskey.fail_next("notes/create", "drop")
    err = await expect_error(
        MisskeyConnectionError, client.create_note({"text": "x"}), credential
    )
    assert not isinstance(err, (MisskeyCannotConnectError, MisskeyTimeoutError))


@pytest.mark.parametrize("variant", [MISSKEY, FIREFISH])
async def test_no_credential_in_any_error(
    client: MisskeyClient, misskey: MisskeyServer, credential: str
) -> None:
    """No error the client raises repeats the credential, even when the server does."""
    misskey.fail_next(
        "i",
        "json",
        status=400,
        body=error_json("WEIRD", info={"param": "i", "reason": f"bad {credential}"}),
    )
    err = await expect_error(MisskeyApiError, client.account())
    assert credential not in str(err)
    assert credential not in repr(err)

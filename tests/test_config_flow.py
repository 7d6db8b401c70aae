"""Tests for the Misskey config flow, against the test server over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from dataclasses import dataclass
from datetime import timedelta
import html
from http import HTTPStatus
import json
from pathlib import Path
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.misskey.api import MisskeyClient, UserKey
from custom_components.misskey.auth_callback import (
    PENDING_AUTHORIZATIONS,
    async_expect_authorization,
)
from custom_components.misskey.config_flow import app_name
from custom_components.misskey.const import (
    APP_PERMISSIONS,
    AUTHORIZE_CALLBACK_PATH,
    CONF_APP_NAME,
    CONF_CREDENTIAL,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    CONF_PERMISSIONS,
    DOMAIN,
)
from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import (
    EVENT_DATA_ENTRY_FLOW_PROGRESSED,
    FlowResultType,
)
from homeassistant.helpers.network import NoURLAvailableError
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
import homeassistant.util.dt as dt_util

from .conftest import settle
from .listening import WAIT, until
from .misskey_server import MisskeyServer, Request

pytestmark = pytest.mark.usefixtures("fast_authorization")

TRANSLATIONS = Path(__file__).resolve().parents[1] / (
    "custom_components/misskey/translations"
)


async def start_flow(hass: HomeAssistant, url: str) -> ConfigFlowResult:
    """Enter the server's URL and return the external step."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP, result
    return result


@dataclass
class Polls:
    """The config flow's polls of auth/session/userkey: begun, and answered."""

    started: int = 0
    ended: int = 0


@pytest.fixture
def polls() -> Generator[Polls]:
    """Count the polls as the flow makes them (the server may see them later, or never)."""
    polls = Polls()
    user_key = MisskeyClient.user_key

    async def counted(client: MisskeyClient, app_secret: str, token: str) -> UserKey:
        polls.started += 1
        try:
            return await user_key(client, app_secret, token)
        finally:
            polls.ended += 1

    with patch.object(MisskeyClient, "user_key", counted):
        yield polls


async def finish(hass: HomeAssistant, flow_id: str) -> ConfigFlowResult:
    """Do what the open dialog does when the flow says the external step is done."""
    await settle(hass)
    return await hass.config_entries.flow.async_configure(flow_id)


async def test_full_flow_by_polling(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """Allowing access on Misskey ends in an entry whose credential works."""
    await hass.config.async_update(location_name="Cottage")
    result = await start_flow(hass, misskey.url + "/")
    (session,) = misskey.pending_sessions()
    app = misskey.apps[session.app_id]
    assert result["step_id"] == "authorize"
    assert result["url"] == f"{misskey.url}/auth/{session.token}"
    # Misskey lists it by this name: which Home Assistant, and when.
    assert app.name == f"Home Assistant (Cottage, {dt_util.now():%Y-%m-%d %H:%M})"
    assert app.permission == APP_PERMISSIONS
    assert app.callback_url is None

    assert misskey.accept_session(session.token) is None
    result = await finish(hass, result["flow_id"])

    host = misskey.url.removeprefix("http://")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"@alice@{host}"
    assert result["result"].unique_id == f"{misskey.user.id}@{host}"
    assert result["data"] == {
        CONF_URL: misskey.url,
        CONF_CREDENTIAL: misskey.tokens[0].hash,
        # What the server stored for the app, so that later versions know.
        CONF_PERMISSIONS: APP_PERMISSIONS,
        # Which app to delete on Misskey once another replaces it.
        CONF_APP_NAME: app.name,
    }
    assert result["result"].minor_version == 3
    # A new account's notes stay off the public timelines; the options change it.
    assert result["options"] == {
        CONF_DEFAULT_VISIBILITY: "home",
        CONF_DEFAULT_LOCAL_ONLY: False,
    }
    # The raw access token is not kept.
    assert misskey.tokens[0].token not in str(result["data"])
    # Misskey deleted the session after the one successful userkey.
    assert not misskey.sessions


async def test_full_flow_by_callback(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    hass_client: ClientSessionGenerator,
    polls: Polls,
) -> None:
    """The frontend's URL becomes the callback; following it finishes the flow at once."""
    assert await async_setup_component(hass, "config", {})
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client()
    headers = {"HA-Frontend-Base": "http://homeassistant.local:8123"}
    with patch("custom_components.misskey.config_flow.AUTHORIZE_POLL_INTERVAL", 3600):
        resp = await client.post(
            "/api/config/config_entries/flow", json={"handler": DOMAIN}, headers=headers
        )
        flow_id = (await resp.json())["flow_id"]
        resp = await client.post(
            f"/api/config/config_entries/flow/{flow_id}",
            json={CONF_URL: misskey.url},
            headers=headers,
        )
        step = await resp.json()
        assert step["type"] == "external"
        (session,) = misskey.pending_sessions()
        app = misskey.apps[session.app_id]
        assert (
            app.callback_url
            == f"http://homeassistant.local:8123{AUTHORIZE_CALLBACK_PATH}"
        )
        # The first poll answered, the poller waits; the next would be an hour away.
        await until(lambda: polls.ended == 1)
        calls = len(misskey.calls("auth/session/userkey"))
        progressed = asyncio.Event()
        hass.bus.async_listen(
            EVENT_DATA_ENTRY_FLOW_PROGRESSED, callback(lambda event: progressed.set())
        )

        redirect = URL(misskey.accept_session(session.token))
        assert redirect.query["token"] == session.token
        # Misskey's page sends the browser here; it carries no Home Assistant login.
        resp = await client.get(redirect.path_qs, headers={"Authorization": ""})
        assert resp.status == HTTPStatus.OK
        assert page_message("en", "authorization_page_allowed") in await resp.text()
        async with asyncio.timeout(WAIT):
            await progressed.wait()

    assert len(misskey.calls("auth/session/userkey")) == calls + 1
    resp = await client.post(
        f"/api/config/config_entries/flow/{flow_id}", headers=headers
    )
    result = await resp.json()
    assert result["type"] == "create_entry"
    assert result["title"].startswith("@alice@")


@pytest.mark.parametrize("matches", [True, False])
async def test_callback_url_without_frontend_header(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    hass_client: ClientSessionGenerator,
    matches: bool,
) -> None:
    """Without the frontend's header, Home Assistant's URL for the request is used.

    Where it has none, Misskey gets no callback and polling alone finishes.
    """
    assert await async_setup_component(hass, "config", {})
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client()
    base = "http://192.0.2.10:8123"
    resp = await client.post(
        "/api/config/config_entries/flow", json={"handler": DOMAIN}
    )
    flow_id = (await resp.json())["flow_id"]
    with patch(
        "custom_components.misskey.config_flow.get_url",
        return_value=base,
        side_effect=None if matches else NoURLAvailableError,
    ):
        await client.post(
            f"/api/config/config_entries/flow/{flow_id}", json={CONF_URL: misskey.url}
        )
    (session,) = misskey.pending_sessions()
    expected = f"{base}{AUTHORIZE_CALLBACK_PATH}" if matches else None
    assert misskey.apps[session.app_id].callback_url == expected
    hass.config_entries.flow.async_abort(flow_id)


async def test_abort_before_authorizing(hass: HomeAssistant) -> None:
    """A flow closed on the URL form leaves nothing running."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    hass.config_entries.flow.async_abort(result["flow_id"])
    assert not hass.config_entries.flow.async_progress()


async def test_callback_with_unknown_token(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """The callback page wakes nothing for a token no flow waits for."""
    assert await async_setup_component(hass, DOMAIN, {})
    browser = await hass_client_no_auth()
    resp = await browser.get(f"{AUTHORIZE_CALLBACK_PATH}?token=nope")
    assert resp.status == HTTPStatus.BAD_REQUEST
    resp = await browser.get(AUTHORIZE_CALLBACK_PATH)
    assert resp.status == HTTPStatus.BAD_REQUEST


def page_message(language: str, key: str) -> str:
    """Return a message of the callback page as a translation file has it."""
    translations = json.loads(
        (TRANSLATIONS / f"{language}.json").read_text(encoding="utf-8")
    )
    return html.escape(translations["exceptions"][key]["message"])


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [
        ("ja", "ja"),
        ("ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7", "ja"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        # Nothing we have first: the best one we have.
        ("fr-FR, fr;q=0.9, ja;q=0.5", "ja"),
        ("ja;q=0, en;q=0.1", "en"),
        # Nothing we have at all: Home Assistant's own language.
        ("fr", "ja"),
        ("", "ja"),
    ],
)
@pytest.mark.parametrize(
    ("known", "status", "key"),
    [
        (True, HTTPStatus.OK, "authorization_page_allowed"),
        (False, HTTPStatus.BAD_REQUEST, "authorization_page_invalid"),
    ],
)
async def test_callback_page_in_the_browser_language(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    accept_language: str,
    language: str,
    known: bool,
    status: HTTPStatus,
    key: str,
) -> None:
    """The page after Allow speaks the language the browser asks for."""
    # Home Assistant's language may be a regional one.
    await hass.config.async_update(language="ja-JP")
    assert await async_setup_component(hass, DOMAIN, {})
    woken: list[bool] = []
    async_expect_authorization(hass, "token", lambda: woken.append(True))
    browser = await hass_client_no_auth()

    resp = await browser.get(
        f"{AUTHORIZE_CALLBACK_PATH}?token={'token' if known else 'nope'}",
        headers={"Accept-Language": accept_language},
    )

    assert resp.status == status
    assert resp.headers["Content-Language"] == language
    page = await resp.text()
    assert f"<html lang='{language}'>" in page
    assert page_message(language, key) in page
    assert woken == ([True] if known else [])


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://misskey.io", {CONF_URL: "invalid_url"}),
        ("not a url!", {CONF_URL: "invalid_url"}),
        ("   ", {CONF_URL: "invalid_url"}),
    ],
)
async def test_invalid_url(
    hass: HomeAssistant, url: str, error: dict[str, str]
) -> None:
    """Other schemes and garbage are refused on the form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == error


@pytest.mark.parametrize(
    ("endpoint", "fault", "kwargs", "error"),
    [
        ("meta", "html", {}, "not_misskey"),
        ("meta", "status", {"status": 404}, "not_misskey"),
        ("meta", "rate_limit", {}, "rate_limited"),
        ("meta", "server_error", {}, "cannot_connect"),
        ("meta", "hang", {"delay": 30}, "cannot_connect"),
        ("app/create", "rate_limit", {}, "rate_limited"),
        ("app/create", "server_error", {}, "cannot_connect"),
        ("app/create", "status", {"status": 400}, "unknown"),
        ("auth/session/generate", "drop", {}, "cannot_connect"),
    ],
)
async def test_server_errors_on_the_form(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    endpoint: str,
    fault: str,
    kwargs: dict[str, object],
    error: str,
) -> None:
    """A server that is not Misskey, or fails, gives a form error; a retry then works."""
    misskey.fail_next(endpoint, fault, **kwargs)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    # A short timeout only where the server hangs: elsewhere it would make an
    # answer that is merely slow (a loaded machine) a failure.
    timeout = 0.2 if fault == "hang" else 10
    with patch("custom_components.misskey.api.transport.DEFAULT_TIMEOUT", timeout):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: misskey.url}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: misskey.url}
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_not_misskey_json(hass: HomeAssistant, misskey: MisskeyServer) -> None:
    """A JSON answer without Misskey's fields is not Misskey."""
    misskey.version = None  # type: ignore[assignment]
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: misskey.url}
    )
    assert result["errors"] == {"base": "not_misskey"}


async def test_cannot_connect(hass: HomeAssistant, misskey: MisskeyServer) -> None:
    """Nothing listening gives cannot_connect."""
    url = misskey.url
    # Down, its port kept: nothing else can answer there.
    await misskey.go_down()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: url}
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def submit(hass: HomeAssistant, flow_id: str, url: str) -> ConfigFlowResult:
    """Type an address into the user step."""
    return await hass.config_entries.flow.async_configure(flow_id, {CONF_URL: url})


async def test_no_scheme_and_no_https_says_type_http(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """A server without TLS typed without scheme: the error says to type http://.

    Plain http is not tried behind the user's back; the address the error
    suggests then works.
    """
    address = misskey.url.removeprefix("http://")
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await submit(hass, result["flow_id"], address)

    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect_https"}
    assert result["description_placeholders"]["http_url"] == misskey.url
    assert misskey.calls("meta") == []

    result = await submit(
        hass, result["flow_id"], result["description_placeholders"]["http_url"]
    )
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    assert len(misskey.calls("meta")) == 1
    hass.config_entries.flow.async_abort(result["flow_id"])


@pytest.mark.parametrize("template", ["{}", "https://{}"])
async def test_no_scheme_and_nothing_listening(
    hass: HomeAssistant, refused_port: int, template: str
) -> None:
    """Only an address typed without scheme gets the http:// hint."""
    address = f"127.0.0.1:{refused_port}"
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await submit(hass, result["flow_id"], template.format(address))

    assert result["type"] is FlowResultType.FORM
    if template == "{}":
        assert result["errors"] == {"base": "cannot_connect_https"}
        assert result["description_placeholders"]["http_url"] == f"http://{address}"
    else:
        assert result["errors"] == {"base": "cannot_connect"}
        assert "http_url" not in result["description_placeholders"]


@pytest.mark.parametrize("language", ["en", "ja"])
async def test_https_hint_is_translated(hass: HomeAssistant, language: str) -> None:
    """The hint names the http:// address to type, in every language."""
    translations = await async_get_translations(hass, language, "config", [DOMAIN])
    message = translations[f"component.{DOMAIN}.config.error.cannot_connect_https"]
    assert "http://" in message
    assert "{http_url}" in message


@pytest.mark.parametrize("language", ["en", "ja"])
async def test_address_example_is_a_placeholder(
    hass: HomeAssistant, language: str
) -> None:
    """The field's description gets its example URL from the form (hassfest's rule)."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    translations = await async_get_translations(hass, language, "config", [DOMAIN])
    description = translations[
        f"component.{DOMAIN}.config.step.user.data_description.url"
    ]
    assert "://misskey" not in description
    shown = description.format(**result["description_placeholders"])
    assert "https://misskey.example.com" in shown
    hass.config_entries.flow.async_abort(result["flow_id"])


@pytest.mark.parametrize("handle", ["@alice@{}", "alice@{}", " @alice@{}/ "])
async def test_handle_takes_its_host(
    hass: HomeAssistant, misskey: MisskeyServer, handle: str
) -> None:
    """A handle copied from a profile names the server; it has no scheme either."""
    address = misskey.url.removeprefix("http://")
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await submit(hass, result["flow_id"], handle.format(address))

    # The handle's host, tried over https: the test server has no TLS.
    assert result["errors"] == {"base": "cannot_connect_https"}
    assert result["description_placeholders"]["http_url"] == misskey.url

    result = await submit(hass, result["flow_id"], f"http://alice@{address}")
    # With a scheme, alice@ is a URL's user name, which is refused.
    assert result["errors"] == {CONF_URL: "invalid_url"}


async def test_authorization_timeout(
    hass: HomeAssistant, misskey: MisskeyServer, polls: Polls
) -> None:
    """Nobody allows access: the flow ends with a clear reason and stops polling."""
    with patch(
        "custom_components.misskey.config_flow.AUTHORIZE_TIMEOUT",
        timedelta(seconds=0.1),
    ):
        result = await start_flow(hass, misskey.url)
        result = await finish(hass, result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "authorize_timeout"
    # It polled (a poll cut off by the timeout may never reach the server),
    # and stopped: no poll after that, and none reached the server but those.
    started = polls.started
    assert started >= 1
    await settle(hass)
    assert polls.started == started
    assert len(misskey.calls("auth/session/userkey")) <= started


async def test_abandoned_flow_stops_polling(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    hass_client_no_auth: ClientSessionGenerator,
    polls: Polls,
) -> None:
    """Closing the dialog stops the polling and the callback no longer works."""
    assert await async_setup_component(hass, DOMAIN, {})
    result = await start_flow(hass, misskey.url)
    (session,) = misskey.pending_sessions()
    hass.config_entries.flow.async_abort(result["flow_id"])
    await settle(hass)
    # The poller has ended. A poll already on the wire may still reach the
    # server; none may follow it, even when the user allows access after all.
    started = polls.started
    misskey.accept_session(session.token)
    browser = await hass_client_no_auth()
    resp = await browser.get(f"{AUTHORIZE_CALLBACK_PATH}?token={session.token}")
    assert resp.status == HTTPStatus.BAD_REQUEST
    await settle(hass)
    assert polls.started == started
    assert len(misskey.calls("auth/session/userkey")) <= started
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_polling_survives_rate_limits_and_outages(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """429 (with Retry-After), 500 and hangs while waiting do not end the flow."""
    misskey.fail_next("auth/session/userkey", "rate_limit", retry_after=0.05)
    misskey.fail_next("auth/session/userkey", "server_error")
    misskey.fail_next("auth/session/userkey", "drop")
    result = await start_flow(hass, misskey.url)
    (session,) = misskey.pending_sessions()
    misskey.accept_session(session.token)
    result = await finish(hass, result["flow_id"])
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(misskey.calls("auth/session/userkey")) == 4


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("forget_session", "authorize_failed"),
        ("status", "unknown"),
    ],
)
async def test_authorization_fails(
    hass: HomeAssistant, misskey: MisskeyServer, fault: str, reason: str
) -> None:
    """A session Misskey no longer knows, or a strange answer, ends the flow."""
    if fault == "status":
        misskey.fail_next("auth/session/userkey", "status", status=400)
    result = await start_flow(hass, misskey.url)
    if fault == "forget_session":
        misskey.sessions.clear()
    result = await finish(hass, result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        ("revoked", "invalid_auth"),
        ("no_read_account", "missing_permission"),
        ("server_error", "cannot_connect"),
        ("html", "unknown"),
    ],
)
async def test_account_check_fails(
    hass: HomeAssistant, misskey: MisskeyServer, problem: str, reason: str
) -> None:
    """The new credential is checked with ``i`` before the entry is made."""
    result = await start_flow(hass, misskey.url)
    (session,) = misskey.pending_sessions()
    misskey.accept_session(session.token)
    await settle(hass)
    if problem == "revoked":
        misskey.revoke()
    elif problem == "no_read_account":
        misskey.tokens[0].permission.remove("read:account")
    else:
        misskey.fail_next("i", problem)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_already_configured(
    hass: HomeAssistant, misskey: MisskeyServer, mock_config_entry: MockConfigEntry
) -> None:
    """The same account on the same instance is set up once."""
    mock_config_entry.add_to_hass(hass)
    result = await start_flow(hass, misskey.url)
    (session,) = misskey.pending_sessions()
    misskey.accept_session(session.token)
    result = await finish(hass, result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.parametrize("source", ["reauth", "reconfigure"])
async def test_reauth_and_reconfigure(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    mock_config_entry: MockConfigEntry,
    source: str,
) -> None:
    """Authorizing again replaces the credential and keeps the entry.

    The dialog names the app the new one replaces, to delete on Misskey.
    """
    mock_config_entry.add_to_hass(hass)
    old = mock_config_entry.data[CONF_CREDENTIAL]
    if source == "reauth":
        result = await mock_config_entry.start_reauth_flow(hass)
        step_id = "reauth_confirm"
    else:
        result = await mock_config_entry.start_reconfigure_flow(hass)
        step_id = "reconfigure"
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step_id
    # An entry made before apps had names: they were all "Home Assistant".
    assert (
        result["description_placeholders"]
        | {
            "instance": misskey.url.removeprefix("http://"),
            "app": "Home Assistant",
            "apps_url": f"{misskey.url}/settings/apps",
        }
        == result["description_placeholders"]
    )

    misskey.fail_next("meta", "server_error")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    (session,) = misskey.pending_sessions()
    misskey.accept_session(session.token)
    result = await finish(hass, result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == f"{source}_successful"
    assert mock_config_entry.data[CONF_CREDENTIAL] != old
    assert mock_config_entry.data[CONF_CREDENTIAL] == misskey.tokens[-1].hash
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1
    new_app = mock_config_entry.data[CONF_APP_NAME]
    assert new_app == misskey.apps[session.app_id].name
    assert new_app.startswith("Home Assistant (")

    # The next time, the dialog names the app this one made.
    if source == "reauth":
        result = await mock_config_entry.start_reauth_flow(hass)
    else:
        result = await mock_config_entry.start_reconfigure_flow(hass)
    assert result["description_placeholders"]["app"] == new_app


async def test_reauth_with_another_account(
    hass: HomeAssistant, misskey: MisskeyServer, mock_config_entry: MockConfigEntry
) -> None:
    """Allowing access as someone else does not replace the entry's account."""
    mock_config_entry.add_to_hass(hass)
    old = dict(mock_config_entry.data)
    bob = misskey.add_user("bob")
    result = await mock_config_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    (session,) = misskey.pending_sessions()
    misskey.accept_session(session.token, bob)
    result = await finish(hass, result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert dict(mock_config_entry.data) == old


async def test_allow_while_a_poll_is_on_the_wire(
    hass: HomeAssistant, misskey: MisskeyServer
) -> None:
    """Allow's callback that comes while a poll is under way is not lost.

    The poll was answered "pending" just before the user pressed Allow; the
    callback arrives before the flow read that answer. The next poll must go
    at once, not a poll interval (here an hour) later.
    """
    assert await async_setup_component(hass, DOMAIN, {})
    loop = asyncio.get_running_loop()

    def allow_during_the_first_poll(request: Request) -> None:
        if request.endpoint != "auth/session/userkey" or misskey.on_request is None:
            return
        misskey.on_request = None
        token = request.body["token"]
        # After this request is answered, before the flow reads the answer.
        loop.call_soon(
            lambda: (
                misskey.accept_session(token),
                hass.data[PENDING_AUTHORIZATIONS][token](),
            )
        )

    misskey.on_request = allow_during_the_first_poll
    with patch("custom_components.misskey.config_flow.AUTHORIZE_POLL_INTERVAL", 3600):
        result = await start_flow(hass, misskey.url)
        await until(lambda: not misskey.sessions)
        result = await finish(hass, result["flow_id"])
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(misskey.calls("auth/session/userkey")) == 2


@pytest.mark.parametrize(
    ("location", "name"),
    [
        ("Cottage", "Home Assistant (Cottage, 2026-12-24 18:05)"),
        # Misskey keeps 128 characters of a name: a long location is cut.
        ("x" * 200, f"Home Assistant ({'x' * 79}…, 2026-12-24 18:05)"),
        ("  Two\n lines ", "Home Assistant (Two lines, 2026-12-24 18:05)"),
        ("", "Home Assistant (2026-12-24 18:05)"),
    ],
)
async def test_app_name(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, location: str, name: str
) -> None:
    """Each new app says which Home Assistant made it, and when, in its time zone."""
    await hass.config.async_update(location_name=location, time_zone="Asia/Tokyo")
    freezer.move_to("2026-12-24T09:05:30+00:00")
    assert app_name(hass) == name
    assert len(app_name(hass)) <= 128

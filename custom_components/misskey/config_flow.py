"""Config flow for Misskey: Misskey's app authentication in the browser."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import contextlib
import logging
import re
from typing import Any, Final

import probatio
from yarl import URL

from homeassistant.components import http
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlowWithReload,
)
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import UnknownFlow
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.helpers.selector import (
    BooleanSelector,
    ConversationAgentSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
import homeassistant.util.dt as dt_util

from .api import (
    App,
    AuthSession,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyClient,
    MisskeyConnectionError,
    MisskeyError,
    MisskeyNoSuchAppError,
    MisskeyNoSuchSessionError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    MisskeyResponseError,
    MisskeyServerError,
    MisskeySessionPendingError,
    UserKey,
    credential_from_access_token,
    instance_host,
    normalize_url,
    scheme_assumed,
)
from .auth_callback import async_expect_authorization, async_register_callback_view
from .const import (
    APP_DESCRIPTION,
    APP_NAME,
    APP_NAME_MAX_LOCATION,
    APP_PERMISSIONS,
    APPS_PAGE_PATH,
    ASSIST_SCOPES,
    AUTHORIZE_CALLBACK_PATH,
    AUTHORIZE_POLL_INTERVAL,
    AUTHORIZE_TIMEOUT,
    CONF_APP_NAME,
    CONF_ASSIST_ACCOUNTS,
    CONF_ASSIST_AGENT,
    CONF_ASSIST_SCOPE,
    CONF_CATCH_UP_WINDOW,
    CONF_CREDENTIAL,
    CONF_DEFAULT_LOCAL_ONLY,
    CONF_DEFAULT_VISIBILITY,
    CONF_LISTEN,
    CONF_PERMISSIONS,
    DEFAULT_ASSIST_SCOPE,
    DEFAULT_CATCH_UP_WINDOW,
    DEFAULT_LISTEN,
    DEFAULT_LOCAL_ONLY,
    DEFAULT_VISIBILITIES,
    DEFAULT_VISIBILITY,
    DOMAIN,
    MAX_CATCH_UP_WINDOW,
    SUBENTRY_SOURCE,
)
from .source_flow import SourceSubentryFlow

_LOGGER = logging.getLogger(__name__)

# The frontend's address, which it sends with flow requests. Spelled out here, as
# core's plex does: importing it from config_entry_oauth2_flow would load the
# Bluetooth libraries (~50 ms at start-up) for one string.
HEADER_FRONTEND_BASE = "HA-Frontend-Base"

STEP_USER_SCHEMA = probatio.Schema({probatio.Required(CONF_URL): str})
OPTIONS_SCHEMA = probatio.Schema(
    {
        probatio.Required(
            CONF_DEFAULT_VISIBILITY, default=DEFAULT_VISIBILITY
        ): SelectSelector(
            SelectSelectorConfig(
                options=DEFAULT_VISIBILITIES,
                mode=SelectSelectorMode.DROPDOWN,
                translation_key="visibility",
            )
        ),
        probatio.Required(
            CONF_DEFAULT_LOCAL_ONLY, default=DEFAULT_LOCAL_ONLY
        ): BooleanSelector(),
        probatio.Required(CONF_LISTEN, default=DEFAULT_LISTEN): BooleanSelector(),
        probatio.Required(
            CONF_CATCH_UP_WINDOW, default=DEFAULT_CATCH_UP_WINDOW
        ): NumberSelector(
            NumberSelectorConfig(
                min=0,
                max=MAX_CATCH_UP_WINDOW,
                step=1,
                mode=NumberSelectorMode.BOX,
                unit_of_measurement="min",
            )
        ),
        probatio.Optional(CONF_ASSIST_ACCOUNTS, default=list): TextSelector(
            TextSelectorConfig(multiple=True)
        ),
        probatio.Optional(CONF_ASSIST_AGENT): ConversationAgentSelector(),
        probatio.Required(
            CONF_ASSIST_SCOPE, default=DEFAULT_ASSIST_SCOPE
        ): SelectSelector(
            SelectSelectorConfig(
                options=ASSIST_SCOPES,
                mode=SelectSelectorMode.LIST,
                translation_key=CONF_ASSIST_SCOPE,
            )
        ),
    }
)
# An account allowed to talk to Assist, as events spell it: @user@host, the
# host always there (a local user's is the instance's), maybe with a port.
ASSIST_ACCOUNT: Final = (
    r"@\w[\w.-]*@(?:[\w-]+(?:\.[\w-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
)


def app_name(hass: HomeAssistant) -> str:
    """Return the name of a new app: this Home Assistant's, and when it was made.

    Misskey lists every app the account allowed, and keeps each valid until
    the user deletes it; the name tells them apart there.
    """
    when = dt_util.now().strftime("%Y-%m-%d %H:%M")
    location = " ".join((hass.config.location_name or "").split())
    if len(location) > APP_NAME_MAX_LOCATION:
        location = location[: APP_NAME_MAX_LOCATION - 1] + "…"
    return f"{APP_NAME} ({location}, {when})" if location else f"{APP_NAME} ({when})"


class MisskeyConfigFlow(ConfigFlow, domain=DOMAIN):
    """Connect a Misskey account."""

    VERSION = 1
    MINOR_VERSION = 3

    _url: str
    _app: App
    _app_name: str
    _auth_session: AuthSession

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> MisskeyOptionsFlow:
        """Return the options flow: listening for the account's events."""
        return MisskeyOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return the subentries of an account: the sources it follows."""
        return {SUBENTRY_SOURCE: SourceSubentryFlow}

    def __init__(self) -> None:
        """Start with no authorization under way."""
        self._authorization: asyncio.Task[UserKey] | None = None
        self._wake = asyncio.Event()
        self._forget_token: Callable[[], None] | None = None

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the instance."""
        errors: dict[str, str] = {}
        # Translations may not contain URLs (hassfest): the example is a placeholder.
        placeholders = {"example_url": "https://misskey.example.com"}
        if user_input is not None:
            try:
                url = normalize_url(user_input[CONF_URL])
            except ValueError:
                errors[CONF_URL] = "invalid_url"
            else:
                error = await self._async_begin_authorization(
                    url, https_assumed=scheme_assumed(user_input[CONF_URL])
                )
                if error is None:
                    return await self.async_step_authorize()
                errors["base"] = error
                if error == "cannot_connect_https":
                    placeholders["http_url"] = str(URL(url).with_scheme("http"))
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                STEP_USER_SCHEMA, user_input
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Authorize again when Misskey no longer accepts the credential."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Explain, then open Misskey's authorization page again."""
        return await self._async_step_confirm(
            "reauth_confirm", self._get_reauth_entry(), user_input
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Authorize again, for example to grant new permissions."""
        return await self._async_step_confirm(
            "reconfigure", self._get_reconfigure_entry(), user_input
        )

    async def _async_step_confirm(
        self, step_id: str, entry: ConfigEntry, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Say which app the new one replaces, then authorize again."""
        url: str = entry.data[CONF_URL]
        errors: dict[str, str] = {}
        if user_input is not None:
            if not (error := await self._async_begin_authorization(url)):
                return await self.async_step_authorize()
            errors["base"] = error
        return self.async_show_form(
            step_id=step_id,
            errors=errors,
            description_placeholders={
                "instance": instance_host(url),
                # Entries made before 1.3 do not know; their apps had this name.
                "app": entry.data.get(CONF_APP_NAME, APP_NAME),
                "apps_url": f"{url}{APPS_PAGE_PATH}",
            },
        )

    async def _async_begin_authorization(
        self, url: str, *, https_assumed: bool = False
    ) -> str | None:
        """Make an app and a session on the instance; return an error key on failure.

        ``https_assumed``: the user typed no scheme. When nothing answers over
        https then, the error says to type http:// for a server without TLS;
        plain http is never tried behind the user's back.
        """
        client = MisskeyClient(async_get_clientsession(self.hass), url)
        try:
            await client.meta()
        except MisskeyRateLimitError:
            return "rate_limited"
        except MisskeyConnectionError:
            if https_assumed:
                return "cannot_connect_https"
            return "cannot_connect"
        except MisskeyServerError:
            return "cannot_connect"
        except MisskeyResponseError, MisskeyApiError:
            return "not_misskey"
        self._app_name = app_name(self.hass)
        try:
            self._app = await client.create_app(
                self._app_name, APP_DESCRIPTION, APP_PERMISSIONS, self._callback_url()
            )
            self._auth_session = await client.generate_session(self._app.secret)
        except MisskeyRateLimitError:
            return "rate_limited"
        except MisskeyConnectionError, MisskeyServerError:
            return "cannot_connect"
        except MisskeyError:
            _LOGGER.exception("Unexpected answer from %s", url)
            return "unknown"
        self._url = url
        return None

    def _callback_url(self) -> str | None:
        """Return where Misskey sends the browser after Allow, if we know our URL.

        The frontend tells the URL the browser uses; without it, polling alone
        finishes the flow.
        """
        if (request := http.current_request.get()) is None:
            return None
        if base := request.headers.get(HEADER_FRONTEND_BASE):
            return f"{base.rstrip('/')}{AUTHORIZE_CALLBACK_PATH}"
        try:
            base = get_url(self.hass, require_current_request=True)
        except NoURLAvailableError:
            return None
        return f"{base}{AUTHORIZE_CALLBACK_PATH}"

    async def async_step_authorize(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Send the user to Misskey's authorization page and wait for Allow."""
        if self._authorization is None:
            async_register_callback_view(self.hass)
            self._forget_token = async_expect_authorization(
                self.hass, self._auth_session.token, self._wake.set
            )
            self._authorization = self.hass.async_create_background_task(
                self._async_wait_for_authorization(),
                f"{DOMAIN} authorization of {self.flow_id}",
            )
            self._authorization.add_done_callback(self._async_authorization_done)
        if not self._authorization.done():
            return self.async_external_step(
                step_id="authorize",
                url=self._auth_session.url,
                description_placeholders={"instance": instance_host(self._url)},
            )
        return self.async_external_step_done(next_step_id="finish")

    async def _async_wait_for_authorization(self) -> UserKey:
        """Ask Misskey until the user has allowed access.

        Misskey's sessions never expire and Cancel changes nothing on the
        server, so only our own timeout ends an unanswered authorization.
        """
        client = MisskeyClient(async_get_clientsession(self.hass), self._url)
        async with asyncio.timeout(AUTHORIZE_TIMEOUT.total_seconds()):
            while True:
                delay = AUTHORIZE_POLL_INTERVAL
                # Before the poll: Allow's callback may come while it is on the wire.
                self._wake.clear()
                try:
                    return await client.user_key(
                        self._app.secret, self._auth_session.token
                    )
                except MisskeySessionPendingError:
                    pass
                except MisskeyRateLimitError as err:
                    # Sharkey limits anonymous calls hard; a poller must back off.
                    delay = max(delay, err.retry_after or 0)
                except MisskeyConnectionError, MisskeyServerError:
                    _LOGGER.debug("Waiting for %s to answer", self._url)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()

    def _async_authorization_done(self, task: asyncio.Task[UserKey]) -> None:
        """Move the flow on, as the open dialog would not know to."""
        if task.cancelled():
            return
        self.hass.async_create_task(
            self._async_advance(), f"{DOMAIN} advance {self.flow_id}"
        )

    async def _async_advance(self) -> None:
        with contextlib.suppress(UnknownFlow):
            await self.hass.config_entries.flow.async_configure(self.flow_id)

    async def async_step_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Turn the access token into the credential and create or update the entry."""
        assert self._authorization is not None
        try:
            user_key = self._authorization.result()
        except TimeoutError:
            return self.async_abort(reason="authorize_timeout")
        except MisskeyNoSuchSessionError, MisskeyNoSuchAppError:
            return self.async_abort(reason="authorize_failed")
        except MisskeyError:
            _LOGGER.exception("Unexpected answer from %s", self._url)
            return self.async_abort(reason="unknown")

        credential = credential_from_access_token(
            user_key.access_token, self._app.secret
        )
        client = MisskeyClient(
            async_get_clientsession(self.hass), self._url, credential
        )
        try:
            account = await client.account()
        except MisskeyAuthenticationError:
            return self.async_abort(reason="invalid_auth")
        except MisskeyPermissionDeniedError:
            return self.async_abort(reason="missing_permission")
        except MisskeyConnectionError, MisskeyServerError, MisskeyRateLimitError:
            return self.async_abort(reason="cannot_connect")
        except MisskeyError:
            _LOGGER.exception("Unexpected answer from %s", self._url)
            return self.async_abort(reason="unknown")

        host = instance_host(self._url)
        await self.async_set_unique_id(f"{account.id}@{host}")
        data = {
            CONF_URL: self._url,
            CONF_CREDENTIAL: credential,
            CONF_PERMISSIONS: self._app.permission,
            CONF_APP_NAME: self._app_name,
        }
        if self.source == SOURCE_REAUTH:
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            return self.async_update_reload_and_abort(
                self._get_reauth_entry(), data_updates=data
            )
        if self.source == SOURCE_RECONFIGURE:
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), data_updates=data
            )
        self._abort_if_unique_id_configured()
        # Notes stay off the public timelines until the user chooses otherwise
        # in the options; the set-up asks nothing more.
        return self.async_create_entry(
            title=f"@{account.username}@{host}",
            data=data,
            options={
                CONF_DEFAULT_VISIBILITY: DEFAULT_VISIBILITY,
                CONF_DEFAULT_LOCAL_ONLY: DEFAULT_LOCAL_ONLY,
            },
        )

    def async_remove(self) -> None:
        """Stop waiting when the flow ends or the user walks away."""
        if self._forget_token is not None:
            self._forget_token()
        if self._authorization is not None and not self._authorization.done():
            self._authorization.cancel()


class MisskeyOptionsFlow(OptionsFlowWithReload):
    """What a note is by default; whether to listen for events, how far to catch up."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the options; the account reloads with the new ones."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            accounts = [
                account.strip()
                for account in user_input.get(CONF_ASSIST_ACCOUNTS, [])
                if account.strip()
            ]
            if bad := [a for a in accounts if not re.fullmatch(ASSIST_ACCOUNT, a)]:
                errors[CONF_ASSIST_ACCOUNTS] = "invalid_assist_account"
                placeholders["account"] = bad[0]
            elif accounts and not user_input[CONF_LISTEN]:
                errors["base"] = "assist_needs_listen"
            if not errors:
                options: dict[str, Any] = {
                    CONF_DEFAULT_VISIBILITY: user_input[CONF_DEFAULT_VISIBILITY],
                    CONF_DEFAULT_LOCAL_ONLY: user_input[CONF_DEFAULT_LOCAL_ONLY],
                    CONF_LISTEN: user_input[CONF_LISTEN],
                    CONF_CATCH_UP_WINDOW: int(user_input[CONF_CATCH_UP_WINDOW]),
                }
                # Assist's options only while someone may talk to it: with
                # nobody listed, it is off and they mean nothing.
                if accounts:
                    options[CONF_ASSIST_ACCOUNTS] = accounts
                    options[CONF_ASSIST_SCOPE] = user_input[CONF_ASSIST_SCOPE]
                    if agent := user_input.get(CONF_ASSIST_AGENT):
                        options[CONF_ASSIST_AGENT] = agent
                return self.async_create_entry(data=options)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, user_input or self.config_entry.options
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

"""The form that adds a source to an account: which kind, then which one.

Antennas, lists and channels are picked from the account's own (by ID,
named as on Misskey); a hashtag is typed, an account is looked up by
``@user@host``. A kind the server lacks (Misskey 12 has no channels) is not
offered.
"""

from __future__ import annotations

from typing import Any, Final

import probatio

from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
)

from .api import (
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyConnectionError,
    MisskeyError,
    MisskeyRateLimitError,
    MisskeyResponseError,
    MisskeyServerError,
    instance_host,
)
from .const import (
    CONF_KIND,
    CONF_USER_ID,
    KIND_ACCOUNT,
    KIND_ANTENNA,
    KIND_CHANNEL,
    KIND_HASHTAG,
    KIND_LIST,
    MAX_SOURCES,
    PERMISSION_READ_CHANNELS,
    SOURCE_KINDS,
    SUBENTRY_SOURCE,
)
from .notification import acct
from .permissions import has_permission
from .post import parse_acct
from .sources import normalize_hashtag, source_unique_id

# How long the form waits out a rate limit before saying the server is busy.
FORM_RATE_LIMIT_WAIT: Final = 10.0

# Where the account's own antennas, lists and channels are listed.
_CHOICES: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    KIND_ANTENNA: (("antennas/list", {}),),
    KIND_LIST: (("users/lists/list", {}),),
    KIND_CHANNEL: (
        ("channels/followed", {"limit": 100}),
        ("channels/my-favorites", {}),
    ),
}


class SourceSubentryFlow(ConfigSubentryFlow):
    """Add an antenna, list, channel, hashtag or account the account follows."""

    def __init__(self) -> None:
        """Start with nothing read from Misskey."""
        # (ID, name) of the account's antennas, lists and channels; a kind
        # the server lacks has none.
        self._choices: dict[str, list[tuple[str, str]] | None] | None = None

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask which kind of source."""
        entry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        if entry.runtime_data.listener is None:
            # Sources are heard by the listener only.
            return self.async_abort(reason="not_listening")
        sources = len(entry.get_subentries_of_type(SUBENTRY_SOURCE))
        if sources >= MAX_SOURCES:
            return self.async_abort(
                reason="too_many_sources",
                description_placeholders={"max": str(MAX_SOURCES)},
            )
        if self._choices is None:
            try:
                self._choices = await self._async_read_choices()
            except MisskeyAuthenticationError:
                return self._async_abort_refused()
            except MisskeyError:
                return self.async_abort(reason="cannot_connect")
        if user_input is not None:
            kind = user_input[CONF_KIND]
            step = getattr(self, f"async_step_{kind}")
            result: SubentryFlowResult = await step()
            return result
        kinds = [
            kind
            for kind in SOURCE_KINDS
            if kind not in _CHOICES or self._choices.get(kind) is not None
        ]
        return self.async_show_form(
            step_id="user",
            data_schema=probatio.Schema(
                {
                    probatio.Required(CONF_KIND): SelectSelector(
                        SelectSelectorConfig(
                            options=kinds,
                            mode=SelectSelectorMode.LIST,
                            translation_key="source_kind",
                        )
                    )
                }
            ),
        )

    def _async_abort_refused(self) -> SubentryFlowResult:
        """Misskey refused the credential: say so, and ask for a new one."""
        self._get_entry().async_start_reauth(self.hass)
        return self.async_abort(reason="authentication_failed")

    async def _async_read_choices(self) -> dict[str, list[tuple[str, str]] | None]:
        """Read the account's antennas, lists and channels; None for a kind the server lacks."""
        entry = self._get_entry()
        client = entry.runtime_data.client
        choices: dict[str, list[tuple[str, str]] | None] = {}
        for kind, endpoints in _CHOICES.items():
            if kind == KIND_CHANNEL and not has_permission(
                entry, PERMISSION_READ_CHANNELS
            ):
                # Its repair issue asks for a new authorization.
                choices[kind] = None
                continue
            items: dict[str, str] = {}
            lacking = False
            for endpoint, params in endpoints:
                try:
                    # Sharkey allows antennas/list 3 times a second: a
                    # form opened again at once waits its turn.
                    found = await client.retry_rate_limited(
                        lambda e=endpoint, p=params: client.named_items(e, p),
                        FORM_RATE_LIMIT_WAIT,
                    )
                except (
                    MisskeyConnectionError,
                    MisskeyServerError,
                    MisskeyRateLimitError,
                    MisskeyAuthenticationError,
                    MisskeyAccountSuspendedError,
                ):
                    raise
                except MisskeyResponseError as err:
                    if err.status is None or err.status < 400:
                        # An answer, but not a list (a proxy's page): the
                        # server is not answering as Misskey now.
                        raise
                    # No such endpoint: not offered.
                    lacking = True
                    break
                except MisskeyApiError:
                    # No such endpoint (or not allowed): not offered.
                    lacking = True
                    break
                items.update(found)
            choices[kind] = None if lacking else list(items.items())
        return choices

    async def async_step_antenna(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Pick one of the account's antennas."""
        return await self._async_step_pick(KIND_ANTENNA, user_input)

    async def async_step_list(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Pick one of the account's lists."""
        return await self._async_step_pick(KIND_LIST, user_input)

    async def async_step_channel(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Pick one of the channels the account follows or likes."""
        return await self._async_step_pick(KIND_CHANNEL, user_input)

    async def _async_step_pick(
        self, kind: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        assert self._choices is not None
        items = self._choices.get(kind)
        if not items:
            return self.async_abort(reason=f"no_{kind}")
        if user_input is not None:
            target = user_input[kind]
            names = dict(items)
            if target in names:
                return self._async_create(kind, target, names[target], {kind: target})
        return self.async_show_form(
            step_id=kind,
            data_schema=probatio.Schema(
                {
                    probatio.Required(kind): SelectSelector(
                        SelectSelectorConfig(
                            options=[
                                SelectOptionDict(value=item_id, label=name)
                                for item_id, name in items
                            ],
                            mode=SelectSelectorMode.DROPDOWN,
                        )
                    )
                }
            ),
        )

    async def async_step_hashtag(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for a hashtag, with or without #."""
        errors: dict[str, str] = {}
        if user_input is not None:
            if (tag := normalize_hashtag(user_input[KIND_HASHTAG])) is None:
                errors[KIND_HASHTAG] = "invalid_hashtag"
            else:
                return self._async_create(
                    KIND_HASHTAG, tag, f"#{tag}", {KIND_HASHTAG: tag}
                )
        return self.async_show_form(
            step_id=KIND_HASHTAG,
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema({probatio.Required(KIND_HASHTAG): TextSelector()}),
                user_input,
            ),
            errors=errors,
        )

    async def async_step_account(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for an account as @user@host, and find it."""
        errors: dict[str, str] = {}
        entry = self._get_entry()
        client = entry.runtime_data.client
        if user_input is not None:
            parsed = parse_acct(user_input[KIND_ACCOUNT], instance_host(client.url))
            if parsed is None:
                errors[KIND_ACCOUNT] = "invalid_account"
            else:
                username, host = parsed
                try:
                    user = await client.user(username, host)
                except MisskeyAuthenticationError:
                    return self._async_abort_refused()
                except MisskeyApiError as err:
                    if isinstance(
                        err, (MisskeyServerError, MisskeyRateLimitError)
                    ) or err.code not in (None, "NO_SUCH_USER"):
                        errors["base"] = "cannot_connect"
                    else:
                        errors[KIND_ACCOUNT] = "no_such_account"
                except MisskeyError:
                    errors["base"] = "cannot_connect"
                else:
                    name = acct(user.raw, instance_host(client.url))
                    return self._async_create(
                        KIND_ACCOUNT,
                        user.id,
                        name,
                        {KIND_ACCOUNT: name, CONF_USER_ID: user.id},
                    )
        return self.async_show_form(
            step_id=KIND_ACCOUNT,
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema({probatio.Required(KIND_ACCOUNT): TextSelector()}),
                user_input,
            ),
            errors=errors,
        )

    def _async_create(
        self, kind: str, target: str, title: str, data: dict[str, Any]
    ) -> SubentryFlowResult:
        """Add the source; Home Assistant aborts with already_configured if the account has it."""
        return self.async_create_entry(
            title=title,
            data={CONF_KIND: kind, **data},
            unique_id=source_unique_id(kind, target),
        )

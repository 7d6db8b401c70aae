"""What users read when Misskey refuses or fails: translated Home Assistant errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .api import (
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyClient,
    MisskeyError,
    MisskeyInvalidParamError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
)
from .const import DOMAIN, RATE_LIMIT_MAX_WAIT
from .limits import AccountLimits


class OutageLog:
    """Logs a problem once per outage: a warning, then debug, and a line when it ends.

    Whatever keeps failing while it retries (the connection, a source's
    catch-up, Assist's answers) says so once, not at every try.
    """

    __slots__ = ("_logger", "failing")

    def __init__(self, logger: logging.Logger) -> None:
        """Log to ``logger``; nothing is failing yet."""
        self._logger = logger
        self.failing = False

    def problem(
        self, message: str, *args: object, exc_info: BaseException | None = None
    ) -> None:
        """Log the first problem of an outage as a warning, later ones at debug."""
        if self.failing:
            self._logger.debug(message, *args)
            return
        self.failing = True
        self._logger.warning(message, *args, exc_info=exc_info)

    def recovered(self, message: str, *args: object) -> None:
        """End the outage, if there was one, with ``message`` at info."""
        if self.failing:
            self.failing = False
            self._logger.info(message, *args)


def describe_error(err: BaseException) -> str:
    """Return what went wrong in a few words, for the log; Misskey's errors never hold the credential."""
    if isinstance(err, MisskeyError):
        return str(err)
    return f"{type(err).__name__}: {err}"


class CredentialRefusedError(HomeAssistantError):
    """Misskey refused the credential: the account has to be authorized again."""


class reauth_on_refusal:  # used as a function: with reauth_on_refusal(...)
    """Start re-authentication when what runs inside finds the credential refused.

    A class, not a generator: every post goes through it.
    """

    __slots__ = ("entry", "hass")

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Watch for refusals on behalf of ``entry``."""
        self.hass = hass
        self.entry = entry

    def __enter__(self) -> None:
        """Run what is inside."""

    def __exit__(self, _: object, error: BaseException | None, __: object) -> None:
        """Ask for a new authorization if Misskey refused the credential."""
        if isinstance(error, CredentialRefusedError):
            self.entry.async_start_reauth(self.hass)


def credential_refused() -> CredentialRefusedError:
    """Return what users read when Misskey no longer accepts the credential."""
    return CredentialRefusedError(
        translation_domain=DOMAIN, translation_key="authentication_failed"
    )


def permission_refused(limits: AccountLimits, permission: str) -> HomeAssistantError:
    """Return what users read when Misskey refuses a permission the account lacks.

    The credential itself works, so this starts no re-authentication: the
    message says to Reconfigure the account and names the permission.
    """
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="missing_permission",
        translation_placeholders={"account": limits.title, "permission": permission},
    )


def validation_error(key: str, **placeholders: Any) -> ServiceValidationError:
    """Return a translated error about what the user asked for."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


def require_permission(limits: AccountLimits, permission: str) -> None:
    """Refuse an action the account has not allowed, before asking Misskey."""
    if permission not in limits.permissions:
        raise validation_error(
            "missing_permission", account=limits.title, permission=permission
        )


def suspended_error(limits: AccountLimits) -> HomeAssistantError:
    """Return what users read when the account's moderators suspended it."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="account_suspended",
        translation_placeholders={"account": limits.title},
    )


def rate_limited_error(key: str, err: MisskeyRateLimitError) -> HomeAssistantError:
    """Return what users read when a rate limit would hold a call too long."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"retry_after": str(round(err.retry_after or 0))},
    )


async def async_call[T](
    client: MisskeyClient,
    limits: AccountLimits,
    call: Callable[[], Awaitable[T]],
    failed_key: str,
    *,
    permission: str | None = None,
    known: Mapping[str, str] | None = None,
    **placeholders: str,
) -> T:
    """Make a call an action needs, waiting out rate limits, and translate errors.

    Only for calls that can be repeated safely (posting has its own rules):
    a 429 means Misskey did nothing. Misskey's named refusals in ``known``
    become those translation keys; a refused permission names it, as
    re-authentication is only for a credential Misskey no longer accepts.
    """
    try:
        return await client.retry_rate_limited(call, RATE_LIMIT_MAX_WAIT)
    except MisskeyAuthenticationError as err:
        raise credential_refused() from err
    except MisskeyAccountSuspendedError as err:
        raise suspended_error(limits) from err
    except MisskeyPermissionDeniedError as err:
        raise permission_refused(limits, permission or "?") from err
    except MisskeyRateLimitError as err:
        raise rate_limited_error("action_rate_limited", err) from err
    except MisskeyInvalidParamError as err:
        raise invalid_parameter(err) from err
    except MisskeyApiError as err:
        if known and (key := known.get(err.code or "")):
            raise validation_error(key, **placeholders) from err
        raise _failed(failed_key, err, placeholders) from err
    except MisskeyError as err:
        raise _failed(failed_key, err, placeholders) from err


def invalid_parameter(err: MisskeyInvalidParamError) -> ServiceValidationError:
    """Return what users read when Misskey refused a parameter."""
    return validation_error(
        "invalid_parameter",
        param=(err.param or "?").removeprefix("#/properties/"),
        reason=err.reason or err.message or "",
    )


def cannot_connect(err: MisskeyError) -> HomeAssistantError:
    """Return what users read when nothing reached Misskey."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="cannot_connect",
        translation_placeholders={"error": str(err)},
    )


def _failed(
    key: str, err: MisskeyError, placeholders: Mapping[str, str]
) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={**placeholders, "error": str(err)},
    )

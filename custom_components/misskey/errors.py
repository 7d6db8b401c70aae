"""What users read when Misskey refuses or fails: translated Home Assistant errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .api import (
    MisskeyAccountSuspendedError,
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyError,
    MisskeyInvalidParamError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
)
from .const import DOMAIN, RATE_LIMIT_MAX_WAIT
from .coordinator import MisskeyDataUpdateCoordinator


def validation_error(key: str, **placeholders: Any) -> ServiceValidationError:
    """Return a translated error about what the user asked for."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={k: str(v) for k, v in placeholders.items()},
    )


async def async_call[T](
    coordinator: MisskeyDataUpdateCoordinator,
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
        return await coordinator.client.retry_rate_limited(call, RATE_LIMIT_MAX_WAIT)
    except MisskeyAuthenticationError as err:
        coordinator.config_entry.async_start_reauth(coordinator.hass)
        raise HomeAssistantError(
            translation_domain=DOMAIN, translation_key="authentication_failed"
        ) from err
    except MisskeyAccountSuspendedError as err:
        raise suspended_error(coordinator) from err
    except MisskeyPermissionDeniedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="missing_permission",
            translation_placeholders={
                "account": coordinator.config_entry.title,
                "permission": permission or "?",
            },
        ) from err
    except MisskeyRateLimitError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="action_rate_limited",
            translation_placeholders={"retry_after": str(round(err.retry_after or 0))},
        ) from err
    except MisskeyInvalidParamError as err:
        raise validation_error(
            "invalid_parameter",
            param=(err.param or "?").removeprefix("#/properties/"),
            reason=err.reason or err.message or "",
        ) from err
    except MisskeyApiError as err:
        if known and (key := known.get(err.code or "")):
            raise validation_error(key, **placeholders) from err
        raise _failed(failed_key, err, placeholders) from err
    except MisskeyError as err:
        raise _failed(failed_key, err, placeholders) from err


def suspended_error(coordinator: MisskeyDataUpdateCoordinator) -> HomeAssistantError:
    """Return what users read when the account's moderators suspended it."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="account_suspended",
        translation_placeholders={"account": coordinator.config_entry.title},
    )


def _failed(
    key: str, err: MisskeyError, placeholders: Mapping[str, str]
) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={**placeholders, "error": str(err)},
    )

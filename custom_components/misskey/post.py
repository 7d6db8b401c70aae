"""Posting a note: the options users give, Misskey's parameters, and errors users read."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import logging
from typing import Any

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .api import (
    MisskeyApiError,
    MisskeyAuthenticationError,
    MisskeyCannotConnectError,
    MisskeyError,
    MisskeyInvalidParamError,
    MisskeyPermissionDeniedError,
    MisskeyRateLimitError,
    MisskeyServerError,
    Note,
)
from .const import (
    ATTR_CW,
    ATTR_LOCAL_ONLY,
    ATTR_VISIBILITY,
    DOMAIN,
    MAX_CW_LENGTH,
    RATE_LIMIT_MAX_WAIT,
)
from .coordinator import MisskeyDataUpdateCoordinator

_LOGGER = logging.getLogger(__name__)

# notes/create errors users can act on; the rest are reported with Misskey's own words.
NAMED_NOTE_ERRORS = frozenset(
    {
        "NO_SUCH_REPLY_TARGET",
        "NO_SUCH_RENOTE_TARGET",
        "NO_SUCH_CHANNEL",
        "NO_SUCH_FILE",
        "CANNOT_CREATE_ALREADY_EXPIRED_POLL",
        "CONTAINS_PROHIBITED_WORDS",
        "CONTAINS_TOO_MANY_MENTIONS",
        "YOU_HAVE_BEEN_BLOCKED",
        "MAX_LENGTH",
    }
)


def compose_text(message: str | None, title: str | None) -> str | None:
    """Put the title on a bold first line, as Misskey notes have no title."""
    if title and message:
        return f"**{title}**\n{message}"
    return (title and f"**{title}**") or message


def note_params(text: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return notes/create's parameters for the options users give."""
    params: dict[str, Any] = {}
    if text is not None:
        params["text"] = text
    if (cw := options.get(ATTR_CW)) is not None:
        params["cw"] = cw
    if (visibility := options.get(ATTR_VISIBILITY)) is not None:
        params["visibility"] = visibility
    if (local_only := options.get(ATTR_LOCAL_ONLY)) is not None:
        params["localOnly"] = local_only
    return params


def validate_note(
    coordinator: MisskeyDataUpdateCoordinator, params: Mapping[str, Any]
) -> None:
    """Refuse, before sending anything, what Misskey would refuse."""
    text: str | None = params.get("text")
    if not (text and text.strip()) and not (
        params.get("fileIds") or params.get("poll") or params.get("renoteId")
    ):
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="empty_note"
        )
    # Misskey counts code points, as Python's len does.
    limit = coordinator.meta.max_note_text_length
    if text is not None and len(text) > limit:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="text_too_long",
            translation_placeholders={"length": str(len(text)), "max": str(limit)},
        )
    cw: str | None = params.get("cw")
    if cw is not None and not 1 <= len(cw) <= MAX_CW_LENGTH:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="cw_too_long",
            translation_placeholders={
                "length": str(len(cw)),
                "max": str(MAX_CW_LENGTH),
            },
        )


async def async_create_note(
    coordinator: MisskeyDataUpdateCoordinator, params: Mapping[str, Any]
) -> Note:
    """Post a note, waiting out rate limits; never post twice.

    A 429 means Misskey did nothing, so the same call is safe to repeat. A
    timeout or a broken connection leaves the outcome unknown: that is
    reported, never retried.
    """
    validate_note(coordinator, params)
    waited = 0.0
    while True:
        try:
            return await coordinator.client.create_note(params)
        except MisskeyRateLimitError as err:
            wait = err.retry_after if err.retry_after is not None else 1.0
            if waited + wait > RATE_LIMIT_MAX_WAIT:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="rate_limited",
                    translation_placeholders={"retry_after": str(round(wait))},
                ) from err
            _LOGGER.debug("Rate limited; posting again in %s s", wait)
            await asyncio.sleep(wait)
            waited += wait
        except MisskeyError as err:
            raise _post_error(coordinator, err) from err


def _post_error(
    coordinator: MisskeyDataUpdateCoordinator, err: MisskeyError
) -> HomeAssistantError:
    """Return what a user reads when Misskey did not take a note."""
    if isinstance(err, (MisskeyAuthenticationError, MisskeyPermissionDeniedError)):
        coordinator.config_entry.async_start_reauth(coordinator.hass)
        key = (
            "authentication_failed"
            if isinstance(err, MisskeyAuthenticationError)
            else "permission_denied"
        )
        return HomeAssistantError(translation_domain=DOMAIN, translation_key=key)
    if isinstance(err, MisskeyInvalidParamError):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_parameter",
            translation_placeholders={
                "param": (err.param or "?").removeprefix("#/properties/"),
                "reason": err.reason or err.message or "",
            },
        )
    if isinstance(err, MisskeyApiError) and err.code in NAMED_NOTE_ERRORS:
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key=f"note_{err.code.lower()}",
        )
    if isinstance(err, MisskeyServerError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="server_error",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, MisskeyApiError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="post_rejected",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, MisskeyCannotConnectError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"error": str(err)},
        )
    # A timeout, a dropped connection or a garbled answer after the request left.
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="post_outcome_unknown",
        translation_placeholders={"error": str(err)},
    )

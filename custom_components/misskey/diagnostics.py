"""Diagnostics of a Misskey account, with every secret redacted."""

from __future__ import annotations

from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_CREDENTIAL
from .coordinator import MisskeyConfigEntry
from .permissions import missing_permissions

# The credential under every name Misskey and its forks use, and the e-mail
# address that `i` returns to its owner.
TO_REDACT: Final = {
    CONF_CREDENTIAL,
    "token",
    "accessToken",
    "secret",
    "appSecret",
    "email",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: MisskeyConfigEntry
) -> dict[str, Any]:
    """Return the instance's meta and the account as Misskey sent them."""
    coordinator = entry.runtime_data.coordinator
    listener = entry.runtime_data.listener
    meta = coordinator.meta
    return {
        "entry": async_redact_data(dict(entry.data), TO_REDACT),
        "instance": {
            "url": coordinator.client.url,
            "name": meta.name,
            "version": meta.version,
            # Forks that say who they are do it in one of these.
            "software": meta.raw.get("softwareName") or meta.raw.get("repositoryUrl"),
            "max_note_text_length": meta.max_note_text_length,
            "max_file_size": meta.max_file_size,
            "meta": async_redact_data(dict(meta.raw), TO_REDACT),
        },
        "account": async_redact_data(dict(coordinator.data.raw), TO_REDACT),
        "options": dict(entry.options),
        "missing_permissions": missing_permissions(entry),
        # None when listening is off.
        "listener": listener.diagnostics() if listener is not None else None,
    }

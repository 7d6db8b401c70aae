"""What the account allowed Home Assistant to do, and the repair when it is not enough."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import APP_PERMISSIONS, CONF_PERMISSIONS, DOMAIN, LEGACY_PERMISSIONS


def granted_permissions(entry: ConfigEntry) -> list[str]:
    """Return the permissions the account granted when it was last authorized."""
    granted: list[str] = entry.data.get(CONF_PERMISSIONS, LEGACY_PERMISSIONS)
    return granted


def missing_permissions(entry: ConfigEntry) -> list[str]:
    """Return the permissions this version asks for that the account has not granted."""
    granted = set(granted_permissions(entry))
    return [name for name in APP_PERMISSIONS if name not in granted]


def has_permission(entry: ConfigEntry, permission: str) -> bool:
    """Return whether the account granted ``permission``."""
    return permission in granted_permissions(entry)


@callback
def async_record_refused_permission(
    hass: HomeAssistant, entry: ConfigEntry, permission: str
) -> None:
    """Record that Misskey refused a permission the entry thought granted.

    The repair issue then asks for a new authorization, as for an account
    set up before the permission was asked for.
    """
    granted = granted_permissions(entry)
    if permission in granted:
        hass.config_entries.async_update_entry(
            entry,
            data={
                **entry.data,
                CONF_PERMISSIONS: [name for name in granted if name != permission],
            },
        )
    async_update_permissions_issue(hass, entry)


def _issue_id(entry: ConfigEntry) -> str:
    return f"missing_permissions_{entry.entry_id}"


@callback
def async_update_permissions_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Ask the user to authorize again while permissions are missing; else clear it.

    Misskey has no way to widen an app's permissions, so only a new
    authorization (the reconfigure flow) grants them.
    """
    if missing := missing_permissions(entry):
        ir.async_create_issue(
            hass,
            DOMAIN,
            _issue_id(entry),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="missing_permissions",
            translation_placeholders={
                "account": entry.title,
                "permissions": ", ".join(missing),
            },
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, _issue_id(entry))


@callback
def async_remove_permissions_issue(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Forget the issue of an account that is removed."""
    ir.async_delete_issue(hass, DOMAIN, _issue_id(entry))

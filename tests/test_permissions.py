"""Accounts set up before new permissions were asked for get a repair issue."""

from __future__ import annotations

from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.misskey.const import (
    APP_PERMISSIONS,
    CONF_PERMISSIONS,
    DOMAIN,
    LEGACY_PERMISSIONS,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir

from .misskey_server import MisskeyServer
from .test_config_flow import finish


def permissions_issue(
    issue_registry: ir.IssueRegistry, entry: MockConfigEntry
) -> ir.IssueEntry | None:
    """Return the entry's repair issue, if it has one."""
    return issue_registry.async_get_issue(
        DOMAIN, f"missing_permissions_{entry.entry_id}"
    )


async def test_old_entry_gets_issue_until_reconfigured(
    hass: HomeAssistant,
    misskey: MisskeyServer,
    legacy_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An old account keeps working, says what it lacks, and is fixed by reconfigure."""
    entry = legacy_config_entry
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.minor_version == 3
    assert entry.data[CONF_PERMISSIONS] == LEGACY_PERMISSIONS
    issue = permissions_issue(issue_registry, entry)
    assert issue is not None
    assert issue.translation_key == "missing_permissions"
    assert not issue.is_fixable
    assert issue.severity is ir.IssueSeverity.WARNING
    missing = [p for p in APP_PERMISSIONS if p not in LEGACY_PERMISSIONS]
    assert issue.translation_placeholders == {
        "account": entry.title,
        "permissions": ", ".join(missing),
    }

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    (session,) = misskey.pending_sessions()
    # The new app asks for everything this version needs.
    assert misskey.apps[session.app_id].permission == APP_PERMISSIONS
    misskey.accept_session(session.token)
    result = await finish(hass, result["flow_id"])
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.data[CONF_PERMISSIONS] == APP_PERMISSIONS
    assert permissions_issue(issue_registry, entry) is None


async def test_new_entry_has_no_issue(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An account that granted everything has nothing to repair."""
    assert permissions_issue(issue_registry, init_integration) is None


async def test_issue_removed_with_entry(
    hass: HomeAssistant,
    legacy_config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Removing the account removes its issue."""
    legacy_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(legacy_config_entry.entry_id)
    await hass.async_block_till_done()
    assert permissions_issue(issue_registry, legacy_config_entry) is not None

    await hass.config_entries.async_remove(legacy_config_entry.entry_id)
    await hass.async_block_till_done()
    assert permissions_issue(issue_registry, legacy_config_entry) is None


async def test_future_entry_version_is_refused(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> None:
    """An entry written by a newer major version is not loaded."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        unique_id=mock_config_entry.unique_id,
        data=dict(mock_config_entry.data),
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.MIGRATION_ERROR

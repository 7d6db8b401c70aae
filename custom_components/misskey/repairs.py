"""Repairs that a flow fixes: removing a source Misskey no longer has."""

from __future__ import annotations

from homeassistant.components.repairs import (
    ConfirmRepairFlow,
    RepairsFlow,
    RepairsFlowResult,
)
from homeassistant.core import HomeAssistant


class RemoveSourceRepairFlow(ConfirmRepairFlow):
    """Remove the subentry of a source that is gone (an antenna deleted on Misskey)."""

    def __init__(self, entry_id: str, subentry_id: str) -> None:
        """Remember which source to remove."""
        super().__init__()
        self._entry_id = entry_id
        self._subentry_id = subentry_id

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> RepairsFlowResult:
        """Remove the source once the user confirms; the issue goes with it."""
        if user_input is not None:
            entry = self.hass.config_entries.async_get_entry(self._entry_id)
            if entry is not None and self._subentry_id in entry.subentries:
                self.hass.config_entries.async_remove_subentry(entry, self._subentry_id)
            return self.async_create_entry(data={})
        return await super().async_step_confirm(user_input)


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """Return the flow that fixes an issue of this integration."""
    assert data is not None
    return RemoveSourceRepairFlow(str(data["entry_id"]), str(data["subentry_id"]))

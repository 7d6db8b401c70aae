"""How the logbook shows what Assist did for a Misskey account."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook import LOGBOOK_ENTRY_MESSAGE, LOGBOOK_ENTRY_NAME
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_ASSIST


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the commands Assist ran in someone's name."""

    @callback
    def async_describe_assist(event: Event) -> dict[str, str]:
        # Words only the users wrote: the logbook's own are not translated.
        data: Mapping[str, Any] = event.data
        return {
            LOGBOOK_ENTRY_NAME: f"{data.get('account')} ← {data.get('user')}",
            LOGBOOK_ENTRY_MESSAGE: f"“{data.get('text')}” → “{data.get('answer')}”",
        }

    async_describe_event(DOMAIN, EVENT_ASSIST, async_describe_assist)

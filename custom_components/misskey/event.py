"""Event entities of a Misskey account: what other people do with it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import (
    ATTR_TEXT,
    DOMAIN,
    EVENT_DIRECT,
    EVENT_FOLLOW,
    EVENT_FOLLOW_REQUEST_RECEIVED,
    EVENT_MENTION,
    EVENT_POLL_ENDED,
    EVENT_QUOTE,
    EVENT_REACTION,
    EVENT_RENOTE,
    EVENT_REPLY,
)
from .coordinator import MisskeyDataUpdateCoordinator
from .entity import MisskeyEntity

if TYPE_CHECKING:
    from .data import MisskeyConfigEntry
    from .listener import MisskeyListener
    from .notification import MisskeyEvent

# Events arrive from the listener, not from updates.
PARALLEL_UPDATES = 0

# A note's text may be longer than the 16 KiB of attributes the recorder keeps
# of a state (it then keeps none): history gets its start, automations all of it.
ATTR_TEXT_EXCERPT: Final = "text_excerpt"
EXCERPT_LENGTH: Final = 200


@dataclass(frozen=True, kw_only=True)
class MisskeyEventEntityDescription(EventEntityDescription):
    """Describes an event entity of the account."""

    event_types: list[str]


# Grouped by what a person does about them: answer someone who talks to the
# account, read a message meant for it alone, greet a new follower, enjoy
# that a note was liked or shared.
EVENTS: tuple[MisskeyEventEntityDescription, ...] = (
    MisskeyEventEntityDescription(
        key="mentions",
        translation_key="mentions",
        event_types=[EVENT_MENTION, EVENT_REPLY],
    ),
    MisskeyEventEntityDescription(
        key="direct_messages",
        translation_key="direct_messages",
        event_types=[EVENT_DIRECT],
    ),
    MisskeyEventEntityDescription(
        key="new_followers",
        translation_key="new_followers",
        event_types=[EVENT_FOLLOW, EVENT_FOLLOW_REQUEST_RECEIVED],
    ),
    MisskeyEventEntityDescription(
        key="note_activity",
        translation_key="note_activity",
        event_types=[EVENT_REACTION, EVENT_RENOTE, EVENT_QUOTE, EVENT_POLL_ENDED],
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: MisskeyConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the event entities of an account that listens; remove them if it does not."""
    data = entry.runtime_data
    if data.listener is None:
        registry = er.async_get(hass)
        for description in EVENTS:
            if entity_id := registry.async_get_entity_id(
                "event", DOMAIN, f"{entry.unique_id}_{description.key}"
            ):
                registry.async_remove(entity_id)
        return
    async_add_entities(
        MisskeyEventEntity(data.coordinator, data.listener, description)
        for description in EVENTS
    )


class MisskeyEventEntity(MisskeyEntity, EventEntity):
    """Fires when one of its kinds of notification arrives."""

    entity_description: MisskeyEventEntityDescription
    _unrecorded_attributes = frozenset({ATTR_TEXT})

    def __init__(
        self,
        coordinator: MisskeyDataUpdateCoordinator,
        listener: MisskeyListener,
        description: MisskeyEventEntityDescription,
    ) -> None:
        """Make the entity for the account's listener."""
        super().__init__(coordinator, description.key)
        self.entity_description = description
        self._listener = listener

    async def async_added_to_hass(self) -> None:
        """Listen for the account's events."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self._listener.async_add_event_listener(self._async_handle_event)
        )
        self.async_on_remove(
            self._listener.async_add_connection_listener(self.async_write_ha_state)
        )

    @callback
    def _async_handle_event(self, event: MisskeyEvent) -> None:
        if event.event_type not in self.entity_description.event_types:
            return
        self._trigger_event(event.event_type, with_excerpt(event.attributes))
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Return whether events can arrive: reconnecting only delays them.

        Not whether the account's last read worked: that is the sensors' business.
        """
        return self._listener.available


def with_excerpt(attributes: dict[str, Any]) -> dict[str, Any]:
    """Add the start of the text, which the recorder keeps instead of the text."""
    text = attributes.get(ATTR_TEXT)
    if not isinstance(text, str):
        return attributes
    excerpt = text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"
    return {**attributes, ATTR_TEXT_EXCERPT: excerpt}

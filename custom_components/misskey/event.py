"""Event entities of a Misskey account: what other people do with it, and its sources' notes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import (
    ATTR_TEXT,
    DOMAIN,
    EVENT_DIRECT,
    EVENT_FOLLOW,
    EVENT_FOLLOW_REQUEST_RECEIVED,
    EVENT_MENTION,
    EVENT_NOTE,
    EVENT_POLL_ENDED,
    EVENT_QUOTE,
    EVENT_REACTION,
    EVENT_RENOTE,
    EVENT_REPLY,
)
from .coordinator import MisskeyDataUpdateCoordinator
from .entity import MisskeyEntity
from .sources import Source, entry_sources

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
    listener = data.listener
    added: set[str] = set()

    @callback
    def add_sources(sources: list[Source]) -> None:
        """Add the event entity of each source, in its subentry."""
        for source in sources:
            if source.subentry_id in added:
                continue
            added.add(source.subentry_id)
            async_add_entities(
                [MisskeySourceEventEntity(data.coordinator, listener, source)],
                config_subentry_id=source.subentry_id,
            )

    add_sources(list(entry_sources(entry).values()))
    # Sources added later join the open connection: no reload adds them.
    entry.async_on_unload(listener.async_add_sources_added_listener(add_sources))


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


class MisskeySourceEventEntity(MisskeyEntity, EventEntity):
    """Fires when a note arrives from one source: an antenna, list, channel, hashtag or account.

    The source is a device of its own, so that it shows in the source's
    subentry and its entity is named after it.
    """

    _attr_event_types = [EVENT_NOTE]
    _attr_translation_key = "source"
    _attr_name = None
    _unrecorded_attributes = frozenset({ATTR_TEXT})

    def __init__(
        self,
        coordinator: MisskeyDataUpdateCoordinator,
        listener: MisskeyListener,
        source: Source,
    ) -> None:
        """Make the entity of one source."""
        super().__init__(coordinator, f"source_{source.subentry_id}")
        entry = coordinator.config_entry
        self._source = source
        self._listener = listener
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, f"{entry.unique_id}_{source.subentry_id}")},
            name=source.name,
            manufacturer=coordinator.meta.name or "Misskey",
            model=f"Misskey {source.kind}",
            entry_type=DeviceEntryType.SERVICE,
        )

    async def async_added_to_hass(self) -> None:
        """Listen for the source's notes."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self._listener.async_add_source_listener(
                self._source.subentry_id, self._async_handle_note
            )
        )
        self.async_on_remove(
            self._listener.async_add_connection_listener(self.async_write_ha_state)
        )

    @callback
    def _async_handle_note(self, attributes: dict[str, Any]) -> None:
        self._trigger_event(EVENT_NOTE, with_excerpt(attributes))
        self.async_write_ha_state()

    @property
    def available(self) -> bool:
        """Return whether notes can arrive: reconnecting only delays them; a gone source never."""
        return self._listener.available and not self._listener.source_gone(
            self._source.subentry_id
        )


def with_excerpt(attributes: dict[str, Any]) -> dict[str, Any]:
    """Add the start of the text, which the recorder keeps instead of the text."""
    text = attributes.get(ATTR_TEXT)
    if not isinstance(text, str):
        return attributes
    excerpt = text if len(text) <= EXCERPT_LENGTH else text[: EXCERPT_LENGTH - 1] + "…"
    return {**attributes, ATTR_TEXT_EXCERPT: excerpt}

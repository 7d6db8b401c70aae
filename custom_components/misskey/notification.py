"""What a Misskey notification or chat message becomes in Home Assistant: an event."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import homeassistant.util.dt as dt_util

from .api import Notification
from .const import (
    EVENT_DIRECT,
    EVENT_FOLLOW,
    EVENT_FOLLOW_REQUEST_RECEIVED,
    EVENT_MENTION,
    EVENT_POLL_ENDED,
    EVENT_QUOTE,
    EVENT_REACTION,
    EVENT_RENOTE,
    EVENT_REPLY,
    REMEMBERED_IDS,
)

# Misskey's notification types this integration turns into events; the others
# (achievements, logins, exports...) are not about other people.
EVENT_TYPES_BY_NOTIFICATION: Final = {
    "mention": EVENT_MENTION,
    "reply": EVENT_REPLY,
    "renote": EVENT_RENOTE,
    "quote": EVENT_QUOTE,
    "follow": EVENT_FOLLOW,
    "receiveFollowRequest": EVENT_FOLLOW_REQUEST_RECEIVED,
    "reaction": EVENT_REACTION,
    "pollEnded": EVENT_POLL_ENDED,
}


# The only events about a person, not a note.
_WITHOUT_NOTE: Final = frozenset({EVENT_FOLLOW, EVENT_FOLLOW_REQUEST_RECEIVED})


class MisskeyEvent:
    """An event of the account, with the attributes its entity shows."""

    __slots__ = ("attributes", "event_type", "id", "note")

    def __init__(
        self,
        id: str,
        event_type: str,
        attributes: dict[str, Any],
        note: Mapping[str, Any] | None = None,
    ) -> None:
        """Hold the event: the notification's (or chat message's) ID, type and attributes.

        ``note`` is the note as Misskey sent it, for consumers that need more
        than the entity shows (Assist reads the note it replies to).
        """
        self.id = id
        self.event_type = event_type
        self.attributes = attributes
        self.note = note


def acct(user: Mapping[str, Any], instance: str) -> str:
    """Return ``@username@host``, with the instance's host for a local user."""
    return f"@{user.get('username')}@{user.get('host') or instance}"


def note_fields(note: Mapping[str, Any], instance_url: str) -> dict[str, Any]:
    """Return what every event about a note says of it (the account's and the sources')."""
    return {
        "note_id": note.get("id"),
        "note_url": f"{instance_url}/notes/{note.get('id')}",
        "text": note.get("text"),
        "cw": note.get("cw"),
        "visibility": note.get("visibility"),
    }


def event_from_notification(
    notification: Notification, instance_url: str, instance: str
) -> MisskeyEvent | None:
    """Return the event of a notification, or None for types that make none.

    A mention or reply in a note only its recipients see (visibility
    ``specified``) is a direct message.
    """
    event_type = EVENT_TYPES_BY_NOTIFICATION.get(notification.type)
    if event_type is None:
        return None
    note = notification.note
    # What an event is about must be there: a note with its ID, or who followed.
    if (note is None or "id" not in note) and event_type not in _WITHOUT_NOTE:
        return None
    if notification.user is None and event_type in _WITHOUT_NOTE:
        return None
    if (
        event_type in (EVENT_MENTION, EVENT_REPLY)
        and note is not None
        and note.get("visibility") == "specified"
    ):
        event_type = EVENT_DIRECT
    attributes: dict[str, Any] = {}
    if note is not None:
        attributes |= note_fields(note, instance_url)
    if (user := notification.user) is not None:
        attributes |= {"user": acct(user, instance), "user_id": user.get("id")}
    if notification.reaction is not None:
        attributes["reaction"] = notification.reaction
    attributes["created_at"] = notification.created_at
    return MisskeyEvent(notification.id, event_type, attributes, note)


def event_from_chat_message(
    message: Mapping[str, Any], own_id: str, instance: str
) -> MisskeyEvent | None:
    """Return the direct-message event of a chat message someone else sent.

    Misskey 2026 sends ``newChatMessage`` with ``fromUser``; Misskey 12
    sends ``messagingMessage`` with ``user``, to both sides.
    """
    user = message.get("fromUser") or message.get("user")
    if not isinstance(user, Mapping) or user.get("id") == own_id or "id" not in message:
        return None
    return MisskeyEvent(
        str(message["id"]),
        EVENT_DIRECT,
        {
            "chat_message_id": message["id"],
            "text": message.get("text"),
            "user": acct(user, instance),
            "user_id": user.get("id"),
            "created_at": message.get("createdAt"),
        },
    )


def created_at(created: str) -> datetime:
    """Return when a notification or note was made; now if the server did not say."""
    return dt_util.parse_datetime(created) or dt_util.utcnow()


class RecentIds:
    """The IDs of the last items delivered, to recognise one that comes twice.

    By the stream and by the catch-up that follows a reconnection, say: the
    oldest are forgotten past ``REMEMBERED_IDS``.
    """

    __slots__ = ("_ids", "_order")

    def __init__(self) -> None:
        """Remember nothing yet."""
        self._order: deque[str] = deque(maxlen=REMEMBERED_IDS)
        self._ids: set[str] = set()

    def __contains__(self, item_id: object) -> bool:
        """Return whether ``item_id`` was delivered lately."""
        return item_id in self._ids

    def add(self, item_id: str) -> None:
        """Remember ``item_id`` (not remembered yet), forgetting the oldest if full."""
        if len(self._order) == self._order.maxlen:
            self._ids.discard(self._order[0])
        self._order.append(item_id)
        self._ids.add(item_id)

"""What a source is: an antenna, list, channel, hashtag or account the account follows.

A source is a subentry of the account. Here is what Misskey calls it: the
streaming channel its notes arrive on, the timeline that pages what was
missed, the errors that say it is gone, and what one of its notes becomes
in Home Assistant. source_listener.py joins the channels on the account's
connection and catches up; the source's event entity fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import (
    CONF_KIND,
    CONF_USER_ID,
    DOMAIN,
    KIND_ACCOUNT,
    KIND_ANTENNA,
    KIND_CHANNEL,
    KIND_HASHTAG,
    KIND_LIST,
    SUBENTRY_SOURCE,
)
from .notification import acct, note_fields

# Misskey's errors of a timeline whose antenna, list, channel or user is gone.
GONE_CODES: Final = frozenset(
    {"NO_SUCH_ANTENNA", "NO_SUCH_LIST", "NO_SUCH_CHANNEL", "NO_SUCH_USER"}
)
# The channel that brings the notes of followed accounts.
HOME_TIMELINE: Final = "homeTimeline"

# Where an account source's notes come from.
DELIVERY_STREAM: Final = "streaming"
DELIVERY_HOME_TIMELINE: Final = "home_timeline"
DELIVERY_POLLING: Final = "polling"


class Source:
    """One thing the account follows, as its subentry says. Read-only.

    A plain class: Home Assistant imports this module at every start (the
    source form needs it), and a dataclass costs more to define.
    """

    __slots__ = ("kind", "name", "subentry_id", "target")

    def __init__(self, subentry_id: str, kind: str, target: str, name: str) -> None:
        """Describe the source of a subentry.

        ``target`` is the antenna's, list's or channel's ID, the tag (without
        #), or the user's ID.
        """
        self.subentry_id = subentry_id
        self.kind = kind
        self.target = target
        self.name = name

    @property
    def channel(self) -> tuple[str, dict[str, Any]] | None:
        """Return the streaming channel and its parameters; None for an account."""
        if self.kind == KIND_ANTENNA:
            return "antenna", {"antennaId": self.target}
        if self.kind == KIND_LIST:
            return "userList", {"listId": self.target}
        if self.kind == KIND_CHANNEL:
            return "channel", {"channelId": self.target}
        if self.kind == KIND_HASHTAG:
            # Alternatives of tags that must all be there: one tag here.
            return "hashtag", {"q": [[self.target]]}
        return None

    @property
    def timeline(self) -> tuple[str, dict[str, Any]]:
        """Return the endpoint that pages the source's notes, and its parameters."""
        if self.kind == KIND_ANTENNA:
            return "antennas/notes", {"antennaId": self.target}
        if self.kind == KIND_LIST:
            return "notes/user-list-timeline", {"listId": self.target}
        if self.kind == KIND_CHANNEL:
            return "channels/timeline", {"channelId": self.target}
        if self.kind == KIND_HASHTAG:
            return "notes/search-by-tag", {"tag": self.target}
        # Replies too: a family member answering someone is still news.
        return "users/notes", {"userId": self.target, "withReplies": True}

    def matches(self, note: Mapping[str, Any]) -> bool:
        """Return whether a note of the home timeline is this account's.

        Not its notes in channels, which the home timeline brings when the
        account follows the channel: ``users/notes`` leaves them out too.
        """
        return (
            self.kind == KIND_ACCOUNT
            and note.get("userId") == self.target
            and not note.get("channelId")
        )


def source_unique_id(kind: str, target: str) -> str:
    """Return what tells sources apart: a tag in any case is one source."""
    return f"{kind}_{target.lower() if kind == KIND_HASHTAG else target}"


def source_from_subentry(subentry: ConfigSubentry) -> Source:
    """Return the source a subentry describes."""
    kind: str = subentry.data[CONF_KIND]
    target = (
        subentry.data[CONF_USER_ID] if kind == KIND_ACCOUNT else subentry.data[kind]
    )
    return Source(subentry.subentry_id, kind, str(target), subentry.title)


def entry_sources(entry: ConfigEntry) -> dict[str, Source]:
    """Return the entry's sources by subentry ID."""
    return {
        subentry.subentry_id: source_from_subentry(subentry)
        for subentry in entry.get_subentries_of_type(SUBENTRY_SOURCE)
    }


def normalize_hashtag(text: str) -> str | None:
    """Return the tag typed with or without ``#``; None if it is no tag."""
    tag = text.strip().removeprefix("#")
    if not tag or any(ch.isspace() or ch == "#" for ch in tag):
        return None
    return tag


def note_attributes(
    note: Mapping[str, Any], instance_url: str, instance: str
) -> dict[str, Any]:
    """Return what a note of a source shows on its event entity."""
    user = note.get("user")
    files = note.get("files")
    tags = note.get("tags")
    return {
        **note_fields(note, instance_url),
        "user": acct(user, instance) if isinstance(user, Mapping) else None,
        "user_id": note.get("userId"),
        "created_at": note.get("createdAt"),
        "files": [
            {
                "url": item.get("url"),
                "type": item.get("type"),
                "name": item.get("name"),
                "is_sensitive": bool(item.get("isSensitive")),
            }
            for item in (files if isinstance(files, list) else [])
            if isinstance(item, Mapping)
        ],
        "reply_to": note.get("replyId"),
        "renote_of": note.get("renoteId"),
        "tags": [str(tag) for tag in tags] if isinstance(tags, list) else [],
    }


def source_gone_issue_id(entry_id: str, subentry_id: str) -> str:
    """Return the repair issue of a source that is gone."""
    return f"source_gone_{entry_id}_{subentry_id}"


@callback
def async_raise_source_gone(
    hass: HomeAssistant, entry: ConfigEntry, source: Source
) -> None:
    """Offer to remove a source Misskey no longer has (an antenna deleted...)."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        source_gone_issue_id(entry.entry_id, source.subentry_id),
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="source_gone",
        translation_placeholders={
            "source": source.name,
            "kind": source.kind,
            "account": entry.title,
        },
        data={"entry_id": entry.entry_id, "subentry_id": source.subentry_id},
    )


@callback
def async_clear_source_gone(
    hass: HomeAssistant, entry: ConfigEntry, subentry_id: str
) -> None:
    """Forget the repair issue of a source that was removed."""
    ir.async_delete_issue(
        hass, DOMAIN, source_gone_issue_id(entry.entry_id, subentry_id)
    )


@callback
def async_forget_sources(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Forget the repair issues of the sources of an account that is removed."""
    for subentry_id in entry.subentries:
        async_clear_source_gone(hass, entry, subentry_id)

"""Antennas, user lists, channels, hashtags and follows of the test Misskey server.

It follows Misskey 2026.3.2's server: the list endpoints (``antennas/list``,
``users/lists/list``, ``channels/followed``, ``channels/my-favorites``), the
timelines (``antennas/notes``, ``notes/user-list-timeline``,
``channels/timeline``, ``notes/search-by-tag``) paged by ``sinceId`` (oldest
first) or ``untilId`` (newest first), and the streaming channels ``antenna``,
``userList``, ``channel``, ``hashtag`` and ``homeTimeline``
(``stream/channels/*.ts``): a join Misskey refuses (an antenna that is not the
user's) gets no answer at all, an accepted one ``connected`` when ``pong``
was asked; each note is sent as ``{"type": "channel", "body": {"id", "type":
"note", "body": note}}``.

Compared with the real servers (/work/captures/*/sources.json, made by
/work/captures/sources_probe.py): pages by ``sinceId`` alone are oldest first
and leave the anchor out on all three; Sharkey and Misskey 12 answer
``connected`` to the join of an antenna that does not exist (Misskey 2026
stays silent); the home timeline brings the notes of followed channels;
antennas hit the user's own notes and channel notes; Sharkey limits these
endpoints (``notes/search-by-tag`` to 2 calls a second); Misskey 12 has no
channels (``channels/*`` answer a bare 404).
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .misskey_server import MisskeyServer, User
    from .misskey_stream import StreamConnection

# Misskey's tag syntax (mfm's hashtag): letters, digits, marks and _ after #.
_TAG_RE = re.compile(r"(?<![\w#])#([^\s#.,!?'\"()\[\]{}<>]+)")


def note_tags(text: str | None) -> list[str]:
    """Return the tags of a note's text, lower case, as Misskey stores them."""
    return list(dict.fromkeys(tag.lower() for tag in _TAG_RE.findall(text or "")))


@dataclass
class Antenna:
    """An antenna of a user: notes with any group of keywords, or by listed users."""

    id: str
    user_id: str
    name: str
    # Any of the groups; every keyword of a group (Misskey's keywords).
    keywords: list[list[str]] = field(default_factory=list)
    # src "users": these usernames (``alice`` or ``alice@host``).
    users: list[str] = field(default_factory=list)
    note_ids: list[str] = field(default_factory=list)


@dataclass
class UserList:
    """A user list: whose notes it has."""

    id: str
    user_id: str
    name: str
    user_ids: set[str] = field(default_factory=set)


@dataclass
class Channel:
    """A channel; who follows it and who has it as favourite."""

    id: str
    name: str
    user_id: str
    followers: set[str] = field(default_factory=set)
    favorites: set[str] = field(default_factory=set)


class SourcesHub:
    """What a user may follow besides other users, and their streaming channels."""

    def __init__(self, server: MisskeyServer) -> None:
        """Add the endpoints to the server."""
        from .misskey_server import MISSKEY_13, SHARKEY  # noqa: PLC0415

        self.server = server
        self.antennas: dict[str, Antenna] = {}
        self.lists: dict[str, UserList] = {}
        self.channel_info: dict[str, Channel] = {}
        # (follower ID, followee ID).
        self.following: set[tuple[str, str]] = set()
        endpoints: dict[str, tuple[bool, str | None, Callable[..., Any]]] = {
            "antennas/list": (True, "read:account", self._antennas_list),
            "antennas/notes": (True, "read:account", self._antennas_notes),
            "antennas/delete": (True, "write:account", self._antennas_delete),
            "users/lists/list": (True, "read:account", self._lists_list),
            "notes/user-list-timeline": (True, "read:account", self._list_timeline),
            "notes/search-by-tag": (False, None, self._search_by_tag),
        }
        if server.variant == SHARKEY:
            # Sharkey's own limits on these endpoints (Misskey 2026 has none).
            for endpoint, calls, per in (
                ("notes/search-by-tag", 2, 1),
                ("antennas/notes", 10, 5),
                ("notes/user-list-timeline", 10, 5),
                ("channels/timeline", 10, 5),
                ("antennas/list", 3, 1),
            ):
                server.limit(endpoint, calls, per)
        if server.variant != MISSKEY_13:
            endpoints |= {
                "channels/followed": (True, "read:channels", self._channels_followed),
                "channels/my-favorites": (
                    True,
                    "read:channels",
                    self._channels_favorites,
                ),
                "channels/timeline": (False, None, self._channels_timeline),
            }
        server._endpoints |= endpoints

    # --- what tests do -------------------------------------------------------

    def add_antenna(
        self,
        user: User,
        name: str,
        *,
        keywords: list[list[str]] | None = None,
        users: list[str] | None = None,
    ) -> Antenna:
        """Make an antenna of the user."""
        from .misskey_server import new_id  # noqa: PLC0415

        antenna = Antenna(new_id(), user.id, name, keywords or [], users or [])
        self.antennas[antenna.id] = antenna
        return antenna

    def add_list(self, user: User, name: str, members: list[User]) -> UserList:
        """Make a list of the user."""
        from .misskey_server import new_id  # noqa: PLC0415

        user_list = UserList(new_id(), user.id, name, {m.id for m in members})
        self.lists[user_list.id] = user_list
        return user_list

    def add_channel(
        self,
        owner: User,
        name: str,
        *,
        followers: list[User] = (),  # type: ignore[assignment]
        favorites: list[User] = (),  # type: ignore[assignment]
    ) -> Channel:
        """Make a channel, followed or liked by some users."""
        from .misskey_server import new_id  # noqa: PLC0415

        channel = Channel(
            new_id(),
            name,
            owner.id,
            {u.id for u in followers},
            {u.id for u in favorites},
        )
        self.channel_info[channel.id] = channel
        self.server.channels.add(channel.id)
        return channel

    def follow(self, follower: User, followee: User) -> None:
        """Make ``follower`` follow ``followee``."""
        self.following.add((follower.id, followee.id))

    # --- what happens to each note -------------------------------------------

    async def note_created(self, note: dict[str, Any], author: User) -> None:
        """Tag the note, file it in antennas, and send it on the channels it belongs to."""
        if tags := note_tags(note["text"]):
            # Misskey sends tags only when there are some.
            note["tags"] = tags
        if (channel := self.channel_info.get(note["channelId"] or "")) is not None:
            note["channel"] = {
                "id": channel.id,
                "name": channel.name,
                "color": "#86b300",
                "isSensitive": False,
                "allowRenoteToExternal": True,
                "userId": channel.user_id,
            }
        for antenna in self.antennas.values():
            if self._antenna_hit(antenna, note, author):
                antenna.note_ids.append(note["id"])
        for connection in list(self.server.streams.connections):
            if connection.user is None or connection.stalled or connection.ws.closed:
                continue
            for channel_id, (name, params) in list(connection.channels.items()):
                if self._belongs(connection.user, name, params, note):
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await connection.ws.send_json(
                            {
                                "type": "channel",
                                "body": {
                                    "id": channel_id,
                                    "type": "note",
                                    "body": note,
                                },
                            }
                        )

    def _visible(self, me: User, note: dict[str, Any]) -> bool:
        if note["userId"] == me.id or note["visibility"] in ("public", "home"):
            return True
        if note["visibility"] == "followers":
            return (me.id, note["userId"]) in self.following
        return me.id in note.get("visibleUserIds", [])

    def _antenna_hit(
        self, antenna: Antenna, note: dict[str, Any], author: User
    ) -> bool:
        owner = self.server.users[antenna.user_id]
        if not self._visible(owner, note):
            return False
        if antenna.users:
            # src "users": their notes, with the keywords if there are any.
            acct = author.username + (f"@{author.host}" if author.host else "")
            if acct.lower() not in (u.lower().lstrip("@") for u in antenna.users):
                return False
            if not any(antenna.keywords):
                return True
        text = (note["text"] or "").lower()
        return any(
            all(word.lower() in text for word in group)
            for group in antenna.keywords
            if group
        )

    def _belongs(
        self, me: User, name: str, params: dict[str, Any], note: dict[str, Any]
    ) -> bool:
        if not self._visible(me, note):
            return False
        if name == "antenna":
            antenna = self.antennas.get(params.get("antennaId", ""))
            return antenna is not None and note["id"] in antenna.note_ids
        if name == "userList":
            user_list = self.lists.get(params.get("listId", ""))
            return (
                user_list is not None
                and note["channelId"] is None
                and note["userId"] in user_list.user_ids
            )
        if name == "channel":
            return note["channelId"] is not None and note["channelId"] == params.get(
                "channelId"
            )
        if name == "hashtag":
            tags = note.get("tags", [])
            return any(
                all(tag.lower() in tags for tag in group)
                for group in params.get("q", [])
            )
        if name == "homeTimeline":
            # Notes of followed channels come too (seen on Misskey 2026 and Sharkey).
            channel = self.channel_info.get(note["channelId"] or "")
            if channel is not None:
                return me.id in channel.followers
            return note["userId"] == me.id or (me.id, note["userId"]) in self.following
        return False

    # --- joining channels ------------------------------------------------------

    async def connect(
        self,
        connection: StreamConnection,
        name: str,
        channel_id: str,
        params: dict[str, Any],
        pong: bool,
    ) -> None:
        """Join a channel as Misskey does: a refused join is never answered."""
        from .misskey_server import MISSKEY, MISSKEY_13  # noqa: PLC0415

        user = connection.user
        assert user is not None
        token = connection.token
        valid = False
        if name == "antenna":
            antenna = self.antennas.get(params.get("antennaId"))  # type: ignore[arg-type]
            # Sharkey and Misskey 12 join any antenna ID; nothing ever comes.
            valid = self.server.variant != MISSKEY or (
                antenna is not None and antenna.user_id == user.id
            )
        elif name == "userList":
            user_list = self.lists.get(params.get("listId"))  # type: ignore[arg-type]
            valid = user_list is not None and user_list.user_id == user.id
        elif name == "channel":
            # Misskey 12 has no such channel (its server throws).
            valid = self.server.variant != MISSKEY_13 and isinstance(
                params.get("channelId"), str
            )
        elif name == "hashtag":
            q = params.get("q")
            valid = (
                isinstance(q, list)
                and all(isinstance(g, list) and g for g in q)
                and all(isinstance(t, str) for g in q for t in g)
            )
        elif name == "homeTimeline":
            valid = token is None or "read:account" in token.permission
        if not valid:
            return
        connection.channels[channel_id] = (name, params)
        if pong:
            await connection.ws.send_json(
                {"type": "connected", "body": {"id": channel_id}}
            )

    # --- endpoints -----------------------------------------------------------------

    def _page(
        self,
        notes: list[dict[str, Any]],
        body: dict[str, Any],
        me: User | None,
    ) -> list[dict[str, Any]]:
        """Return a page: oldest first with ``sinceId`` alone, else newest first."""
        from .misskey_server import invalid_param  # noqa: PLC0415

        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise invalid_param("limit", "must be <= 100")
        since_id, until_id = body.get("sinceId"), body.get("untilId")
        for key, value in (("sinceId", since_id), ("untilId", until_id)):
            if value is not None and not isinstance(value, str):
                raise invalid_param(key, "must be string")
        items = sorted(
            (
                n
                for n in notes
                if (me is None and n["visibility"] in ("public", "home"))
                or (me is not None and self._visible(me, n))
            ),
            key=lambda n: n["id"],
        )
        items = [
            n
            for n in items
            if (since_id is None or n["id"] > since_id)
            and (until_id is None or n["id"] < until_id)
        ]
        return items[:limit] if since_id and not until_id else items[::-1][:limit]

    def _antenna(self, body: dict[str, Any], user: User | None) -> Antenna:
        from .misskey_server import ApiError  # noqa: PLC0415

        assert user is not None
        antenna = self.antennas.get(body.get("antennaId") or "")
        if antenna is None or antenna.user_id != user.id:
            raise ApiError(
                "NO_SUCH_ANTENNA",
                "No such antenna.",
                error_id="850926e0-fd3b-49b6-b69a-b28a5dbd82fe",
            )
        return antenna

    async def _antennas_list(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        assert user is not None
        return [
            {
                "id": a.id,
                "createdAt": "2026-01-01T00:00:00.000Z",
                "name": a.name,
                "keywords": a.keywords,
                "excludeKeywords": [],
                "src": "users" if a.users else "all",
                "userListId": None,
                "users": a.users,
                "caseSensitive": False,
                "localOnly": False,
                "excludeBots": False,
                "withReplies": False,
                "withFile": False,
                "isActive": True,
                "hasUnreadNote": False,
                "notify": False,
            }
            for a in self.antennas.values()
            if a.user_id == user.id
        ]

    async def _antennas_notes(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        antenna = self._antenna(body, user)
        notes = [
            self.server.notes[i] for i in antenna.note_ids if i in self.server.notes
        ]
        return self._page(notes, body, user)

    async def _antennas_delete(self, body: dict[str, Any], user: User | None) -> None:
        antenna = self._antenna(body, user)
        del self.antennas[antenna.id]

    async def _lists_list(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        assert user is not None
        return [
            {
                "id": lst.id,
                "createdAt": "2026-01-01T00:00:00.000Z",
                "name": lst.name,
                "userIds": sorted(lst.user_ids),
                "isPublic": False,
            }
            for lst in self.lists.values()
            if lst.user_id == user.id
        ]

    async def _list_timeline(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        from .misskey_server import ApiError  # noqa: PLC0415

        assert user is not None
        user_list = self.lists.get(body.get("listId") or "")
        if user_list is None or user_list.user_id != user.id:
            raise ApiError(
                "NO_SUCH_LIST",
                "No such list.",
                error_id="8fb1fbd5-e476-4c37-9fb0-43d55b63a2ff",
            )
        notes = [
            n
            for n in self.server.notes.values()
            if n["userId"] in user_list.user_ids and n["channelId"] is None
        ]
        return self._page(notes, body, user)

    def _pack_channel(self, channel: Channel, user: User) -> dict[str, Any]:
        return {
            "id": channel.id,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "lastNotedAt": None,
            "name": channel.name,
            "description": None,
            "userId": channel.user_id,
            "bannerUrl": None,
            "pinnedNoteIds": [],
            "color": "#86b300",
            "isArchived": False,
            "usersCount": len(channel.followers),
            "notesCount": 0,
            "isSensitive": False,
            "allowRenoteToExternal": True,
            "isFollowing": user.id in channel.followers,
            "isFavorited": user.id in channel.favorites,
        }

    async def _channels_followed(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        assert user is not None
        return [
            self._pack_channel(c, user)
            for c in self.channel_info.values()
            if user.id in c.followers
        ][: body.get("limit", 5)]

    async def _channels_favorites(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        assert user is not None
        return [
            self._pack_channel(c, user)
            for c in self.channel_info.values()
            if user.id in c.favorites
        ]

    async def _channels_timeline(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        from .misskey_server import ApiError  # noqa: PLC0415

        channel_id = body.get("channelId")
        if channel_id not in self.channel_info:
            raise ApiError(
                "NO_SUCH_CHANNEL",
                "No such channel.",
                error_id="4d0eeeba-a02c-4c3c-9966-ef60d38d2e7f",
            )
        notes = [n for n in self.server.notes.values() if n["channelId"] == channel_id]
        return self._page(notes, body, user)

    async def _search_by_tag(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        from .misskey_server import invalid_param  # noqa: PLC0415

        tag = body.get("tag")
        if not isinstance(tag, str) or not tag:
            raise invalid_param("tag", "must be string")
        notes = [
            n for n in self.server.notes.values() if tag.lower() in n.get("tags", [])
        ]
        return self._page(notes, body, user)

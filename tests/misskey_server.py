"""A Misskey server for tests and demos, on loopback, over real HTTP.

It follows what Misskey's own server does for every endpoint the integration
calls (see shared/reference/misskey-api.md): the legacy app authentication with
sessions that stay pending until a signed-in user allows them, credentials that
match by hash or raw token, permissions per app, the error body and statuses,
``notes/create`` validation, and the variants of older Misskey and its forks.
Switches inject rate limits, server errors, hangs and HTML answers.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import functools
import hashlib
import html
import itertools
import json
import math
import re
import secrets
import socket
import string
import time
from typing import Any
import uuid

from aiohttp import BodyPartReader, web

from .misskey_sources import SourcesHub
from .misskey_stream import NOTIFICATION_TYPES, StreamHub, now_iso

ALNUM = string.ascii_letters + string.digits

# Error ids Misskey sends, from its source.
ERROR_IDS = {
    "AUTHENTICATION_FAILED": "b0a7f5f8-dc2f-4171-b91f-de88ad238e14",
    "CREDENTIAL_REQUIRED": "1384574d-a912-4b81-8601-c7b1c4085df1",
    "PERMISSION_DENIED": "1370e5b7-d4eb-4566-bb1d-7748ee6a1838",
    "RATE_LIMIT_EXCEEDED": "d5826d14-3982-4d2e-8011-b9e9f02499ef",
    "INVALID_PARAM": "3d81ceae-475f-4600-b2a8-2bc116157532",
    "UNKNOWN_API_ENDPOINT": "2ca3b769-540a-4f08-9dd5-b5a825b6d0f1",
    "INTERNAL_ERROR": "5d37dbcb-891e-41ca-a3d6-e690c97775ac",
    "NO_SUCH_APP": "92f93e63-428e-4f2f-a5a4-39e1407fe998",
    "NO_SUCH_SESSION": "1384574d-a912-4b81-8601-c7b1c4085df1",
    "PENDING_SESSION": "8c8a4145-02cc-4cca-8e66-29ba60445a8e",
    "NO_SUCH_REPLY_TARGET": "749ee0f6-d3da-459a-bf02-282e2da4292c",
    "NO_SUCH_RENOTE_TARGET": "b5c90186-4ab0-49c8-9bba-a1f76c282ba4",
    "NO_SUCH_CHANNEL": "b1653923-5453-4edc-b786-7c4f39bb0bbb",
    "NO_SUCH_FILE": "b6992544-63e7-67f0-fa7f-32444b1b5306",
    "CANNOT_CREATE_ALREADY_EXPIRED_POLL": "04da457d-b083-4055-9082-955525eda5a5",
    "CONTAINS_PROHIBITED_WORDS": "aa6e01d3-a85c-669d-758a-76aab43af334",
    "CONTAINS_TOO_MANY_MENTIONS": "4de0363a-3046-481b-9b0f-feff3e211025",
    "YOU_HAVE_BEEN_BLOCKED": "b390d7e1-8a5e-46ed-b625-06271cafd3d3",
    "NO_SUCH_USER": "4362f8dc-731f-4ad8-a694-be5a88922a24",
    "MAX_LENGTH": "3ac74a84-8fd5-4bb0-870f-01804f82ce16",
    "MAX_CW_LENGTH": "7004c478-bda3-4b4f-acb2-4316398c9d52",
    "MAX_FILE_SIZE_EXCEEDED": "b9d8c348-33f0-4673-b9a9-5d4da058977a",
    "ACCESS_DENIED": "5eb8d909-2540-4970-90b8-dd6f86088121",
    "ALREADY_MUTING": "7e7359cb-160c-4956-b08f-4d1c653cd007",
    "NOT_MUTING": "5467d020-daa9-4553-81e1-135c0c35a96d",
    "MUTEE_IS_YOURSELF": "a4619cb2-5f23-484b-9301-94c903074e10",
    "UNALLOWED_FILE_TYPE": "4becd248-7f2c-48c4-a9f0-75edc4f9a1ea",
    "YOUR_ACCOUNT_SUSPENDED": "a8c724b3-6e9c-4b46-b1a8-bc3ed6258370",
    "NO_SUCH_AVATAR": "539f3a45-f215-4f81-a9a8-31293640207f",
    "NO_SUCH_BANNER": "0d8f5629-f210-41c2-9433-735831a58595",
    "AVATAR_NOT_AN_IMAGE": "f419f9f8-2f4d-46b1-9fb4-49d3a2fd7191",
    "BANNER_NOT_AN_IMAGE": "75aedb19-2afd-4e6d-87fc-67941256fa60",
    "RESTRICTED_BY_ROLE": "8feff0ba-5ab5-585b-31f4-4df816663fad",
    "YOUR_NAME_CONTAINS_PROHIBITED_WORDS": "0b3f9f6a-2f4d-4b1f-9fb4-49d3a2fd7191",
    "TOO_MANY_DRAFTS": "9ee33bbe-fde3-4c71-9b51-e50492c6b9c8",
    "TOO_MANY_SCHEDULED_NOTES": "22ae69eb-09e3-4541-a850-773cfa45e693",
    "SCHEDULED_AT_REQUIRED": "15e28a55-e74c-4d65-89b7-8880cdaaa87d",
    "SCHEDULED_AT_MUST_BE_IN_FUTURE": "e4bed6c9-017e-4934-aed0-01c22cc60ec1",
    "SCHEDULE_NOTE_MAX": "168707c3-e7da-4031-989e-f42aa3a274b2",
    "CANNOT_CREATE_ALREADY_EXPIRED_SCHEDULE": "8a9bfb90-fc7e-4878-a3e8-d97faaf5fb07",
}

KIND_STATUS = {"client": 400, "permission": 403, "server": 500}

# The errors Misskey 2026 and Sharkey answer with a WWW-Authenticate header.
WWW_AUTHENTICATE_ERRORS = {
    "AUTHENTICATION_FAILED": "invalid_token",
    "PERMISSION_DENIED": "insufficient_scope",
    "RATE_LIMIT_EXCEEDED": "invalid_request",
}

# How Misskey's authorization page names the permissions (its en-US locale).
PERMISSION_LABELS = {
    "read:account": "View your account information",
    "write:account": "Edit your account information",
    "write:notes": "Compose or delete notes",
    "read:drive": "Access your Drive files and folders",
    "write:drive": "Edit or delete your Drive files and folders",
}

# The variants of shared/reference/misskey-api.md.
MISSKEY = "misskey"  # current Misskey (2025.x, 2026.x)
MISSKEY_13 = "misskey13"  # Misskey 12.x up to 13.13; plays the 12.26 server seen
FIREFISH = "firefish"
FOUNDKEY = "foundkey"
SHARKEY = "sharkey"
# CherryPick 4.17.0, a fork of Misskey 2025.10.2, from its source (never run
# here): every endpoint, error and streaming message the integration uses is
# Misskey 2025.10.2's, unchanged or with added optional parameters (notes/create:
# event, scheduledDelete, deliveryTargets, disableRightClick). It differs in
# what meta and i say: its own version (and basedMisskeyVersion), a base role
# with scheduledNoteLimit 3 and a few policies more, and its WWW-Authenticate
# realm. So it answers as the misskey variant, but for those.
CHERRYPICK = "cherrypick"
VARIANTS = (MISSKEY, MISSKEY_13, FIREFISH, FOUNDKEY, SHARKEY, CHERRYPICK)

# The role policies `i` answers (a fresh server's base role, seen for a user
# on Misskey 2026.3.2 and on Sharkey 2025.2); Misskey 12 has no roles.
DEFAULT_POLICIES: dict[str, dict[str, Any]] = {
    MISSKEY: {
        "gtlAvailable": True,
        "ltlAvailable": True,
        "canPublicNote": True,
        "mentionLimit": 20,
        "canInvite": False,
        "canSearchNotes": False,
        "driveCapacityMb": 100,
        "maxFileSizeMb": 30,
        "alwaysMarkNsfw": False,
        "canUpdateBioMedia": True,
        "pinLimit": 5,
        "rateLimitFactor": 1,
        "chatAvailability": "available",
        "uploadableFileTypes": [
            "text/*",
            "application/json",
            "image/*",
            "video/*",
            "audio/*",
        ],
        "noteDraftLimit": 10,
        "scheduledNoteLimit": 1,
        "watermarkAvailable": True,
    },
    # CherryPick 4.17.0's RoleService.DEFAULT_POLICIES, of the same keys and
    # the ones it adds.
    CHERRYPICK: {
        "gtlAvailable": True,
        "ltlAvailable": True,
        "btlAvailable": True,
        "canPublicNote": True,
        "canEditNote": True,
        "mentionLimit": 20,
        "canInvite": False,
        "canSearchNotes": False,
        "canUseAutoTranslate": False,
        "driveCapacityMb": 100,
        "maxFileSizeMb": 30,
        "alwaysMarkNsfw": False,
        "canUpdateBioMedia": True,
        "pinLimit": 5,
        "rateLimitFactor": 1,
        "chatAvailability": "available",
        "uploadableFileTypes": [
            "text/*",
            "application/json",
            "image/*",
            "video/*",
            "audio/*",
        ],
        "noteDraftLimit": 10,
        "scheduledNoteLimit": 3,
        "watermarkAvailable": True,
        "canSetFederationAvatarShape": True,
    },
    SHARKEY: {
        "gtlAvailable": True,
        "btlAvailable": False,
        "ltlAvailable": True,
        "canPublicNote": True,
        "scheduleNoteMax": 5,
        "mentionLimit": 20,
        "canInvite": False,
        "canSearchNotes": False,
        "driveCapacityMb": 100,
        "alwaysMarkNsfw": False,
        "canUpdateBioMedia": True,
        "pinLimit": 5,
        "rateLimitFactor": 1,
        "canImportNotes": True,
    },
}
# Languages i/update takes (a few of Misskey's langmap).
LANGS = ("ja-JP", "en-US", "en-GB", "de-DE", "fr-FR", "ko-KR", "zh-CN", "ja", "en")
# Misskey finds a file's type from its bytes, never from what the client
# says: some of the signatures it knows (at an offset), then three names for
# files it cannot tell, else application/octet-stream.
MAGIC_TYPES = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF8", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (4, b"ftyp", "video/mp4"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
)
TYPES_BY_EXTENSION = {
    "txt": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
}

VISIBILITIES = ("public", "home", "followers", "specified")
REACTION_ACCEPTANCES = (
    None,
    "likeOnly",
    "likeOnlyForRemote",
    "nonSensitiveOnly",
    "nonSensitiveOnlyForLocalLikeOnlyForRemote",
)

_ids = itertools.count(1)


def reserve_port(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Bind a socket to ``port`` (0: a free one) without listening, and return it.

    While it is open, connections to the port are refused (nothing listens)
    and no other socket of this or another program is given the port, as a
    port closed and left free could be: a server started later on the same
    machine would answer there. SO_REUSEADDR lets a server that means to
    listen on the port bind it meanwhile.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


# Where every anonymous call comes from: rate limits count them together.
LOOPBACK = "127.0.0.1"


def _base36(value: int, width: int) -> str:
    digits = ""
    while value:
        value, digit = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
    return digits.rjust(width, "0")


def new_id() -> str:
    """Return an id shaped like Misskey's aidx, which sorts by time as a string.

    Eight base-36 digits of milliseconds since 2000, then a counter (Misskey's
    node and noise parts), so IDs made in the same millisecond still sort.
    """
    ms = int(time.time() * 1000) - 946_684_800_000
    return _base36(ms, 8) + _base36(next(_ids) % 36**4, 4) + secrets.token_hex(2)


class ApiError(Exception):
    """An error the API answers with."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        kind: str = "client",
        status: int | None = None,
        info: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        error_id: str | None = None,
    ) -> None:
        """Describe the error as Misskey would."""
        super().__init__(code)
        self.code = code
        # Misskey's id for the error, where one code has several.
        self.error_id = error_id
        self.message = message
        self.kind = kind
        self.status = status or KIND_STATUS[kind]
        self.info = info
        self.headers = headers or {}
        # For a 429: seconds until the limit lets a call through again, and
        # for the server's own limiter the moment itself (its clock).
        self.retry_after: float | None = None
        self.free_at: float | None = None


def invalid_param(param: str, reason: str) -> ApiError:
    """Return Misskey's INVALID_PARAM error."""
    return ApiError(
        "INVALID_PARAM",
        "Invalid param.",
        info={"param": f"#/properties/{param}", "reason": reason},
    )


@dataclass
class User:
    """A signed-in user of the server."""

    id: str
    username: str
    name: str | None = None
    host: str | None = None
    native_token: str = field(
        default_factory=lambda: "".join(secrets.choice(ALNUM) for _ in range(16))
    )
    email: str | None = None
    followers_count: int = 0
    following_count: int = 0
    notes_count: int = 0
    deleted: bool = False
    is_locked: bool = False
    blocked_by: set[str] = field(default_factory=set)
    description: str | None = None
    location: str | None = None
    birthday: str | None = None
    lang: str | None = None
    fields: list[dict[str, str]] = field(default_factory=list)
    is_bot: bool = False
    is_cat: bool = False
    is_silenced: bool = False
    is_suspended: bool = False
    moved_to: str | None = None
    is_moderator: bool = False
    avatar_id: str | None = None
    banner_id: str | None = None

    def pack(self, *, detail: bool = False) -> dict[str, Any]:
        """Return the user object Misskey sends."""
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "username": self.username,
            "host": self.host,
            "avatarUrl": f"https://example.invalid/files/{self.avatar_id}"
            if self.avatar_id
            else f"https://example.invalid/avatar/{self.id}.png",
            "avatarBlurhash": None,
            "isBot": self.is_bot,
            "isCat": self.is_cat,
            "onlineStatus": "online",
        }
        if detail:
            data |= {
                "url": None,
                "movedTo": self.moved_to,
                "followersCount": self.followers_count,
                "followingCount": self.following_count,
                "notesCount": self.notes_count,
                "createdAt": "2024-01-01T00:00:00.000Z",
                "bannerUrl": f"https://example.invalid/files/{self.banner_id}"
                if self.banner_id
                else None,
                "isLocked": self.is_locked,
                "isSilenced": self.is_silenced,
                "isSuspended": self.is_suspended,
                "description": self.description,
                "location": self.location,
                "birthday": self.birthday,
                "lang": self.lang,
                "fields": [dict(item) for item in self.fields],
            }
        return data


@dataclass
class App:
    """An app made by app/create."""

    id: str
    name: str
    description: str
    permission: list[str]
    callback_url: str | None
    secret: str


@dataclass
class Session:
    """An authorization session of auth/session/generate."""

    token: str
    app_id: str
    user_id: str | None = None


@dataclass
class AccessToken:
    """A legacy app's access token for one user."""

    token: str
    hash: str
    app_id: str
    user_id: str
    permission: list[str]


@dataclass
class DriveFile:
    """An uploaded file."""

    id: str
    user_id: str
    name: str
    size: int
    sha256: str
    comment: str | None
    is_sensitive: bool
    type: str


@dataclass
class ReceivedFile:
    """The file part of an upload: only its size, hash and first bytes are kept."""

    filename: str | None
    content_type: str
    size: int
    sha256: str
    head: bytes = b""

    def detected_type(self, name: str) -> str:
        """Return the type Misskey gives the file stored as ``name``."""
        for offset, magic, mime in MAGIC_TYPES:
            if self.head[offset:].startswith(magic):
                return mime
        extension = name.rpartition(".")[2] if "." in name else ""
        return TYPES_BY_EXTENSION.get(extension, "application/octet-stream")


@dataclass
class Request:
    """What the server received, for tests to check."""

    endpoint: str
    body: dict[str, Any]
    headers: dict[str, str]
    # For multipart requests: the part names in the order they came, and the file.
    parts: list[str] = field(default_factory=list)
    file: ReceivedFile | None = None
    # When it arrived (time.monotonic()), and for a 429, when the server said
    # its limit would let a call through again.
    at: float = field(default_factory=time.monotonic)
    refused_until: float | None = None


@dataclass
class Fault:
    """An answer injected in place of the real one."""

    # "rate_limit", "server_error", "hang", "html", "drop", "status", "json";
    # "slow": the answer, made after ``delay`` seconds.
    kind: str
    retry_after: float = 1
    delay: float = 3600
    status: int = 500
    # For "json": answer this body with ``status`` and these headers, as a
    # misbehaving proxy or an unusual fork might.
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    after: bool = False  # carry the call out first, then fail (the outcome is unknown)


@dataclass
class _Bucket:
    """Sharkey's leaky bucket: calls in it, and when it last dripped (ms)."""

    counter: int = 0
    timestamp: float = 0


class MisskeyServer:
    """A Misskey instance on 127.0.0.1."""

    def __init__(
        self, variant: str = MISSKEY, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        """Make an empty server with one signed-in user."""
        assert variant in VARIANTS
        # The software it plays, and the API that software answers with.
        self.software = variant
        self.variant = MISSKEY if variant == CHERRYPICK else variant
        self._host = host
        self._port = port
        self.url = ""
        self.users: dict[str, User] = {}
        self.apps: dict[str, App] = {}
        self.sessions: dict[str, Session] = {}
        self.tokens: list[AccessToken] = []
        self.notes: dict[str, dict[str, Any]] = {}
        self.custom_emojis: set[str] = {"blobcat"}
        # (note ID, user ID) -> the user's reaction to the note.
        self.reactions: dict[tuple[str, str], str] = {}
        self.files: dict[str, DriveFile] = {}
        self.channels: set[str] = set()
        self.requests: list[Request] = []
        # Called with each API request as it arrives, before it is answered.
        self.on_request: Callable[[Request], None] | None = None
        # How far the server's clock is ahead of the test's (behind: negative),
        # as a real server's may be: notifications tell its time.
        self.clock_skew = 0.0
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.rate_limits: dict[str, tuple[int, float]] = {}
        # The limiters' clock (time.monotonic): a test may stop it, so that
        # calls in a row count as made at once however slow the machine.
        self.clock: Callable[[], float] = time.monotonic
        # Per endpoint and account: Misskey's last attempts, Sharkey's bucket.
        self._rate_hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._buckets: dict[tuple[str, str], _Bucket] = defaultdict(_Bucket)
        self.prohibited_words: list[str] = []
        # meta.prohibitedWordsForNameOfUser (i/update answers 422).
        self.prohibited_name_words: list[str] = []
        # The role every user has; None on servers without roles.
        self.policies: dict[str, Any] | None = (
            json.loads(json.dumps(DEFAULT_POLICIES[self.software]))
            if self.software in DEFAULT_POLICIES
            else None
        )
        # (muter, mutee) -> when the mute ends (epoch ms), None for good.
        self.mutes: dict[tuple[str, str], int | None] = {}
        # Misskey's drafts (scheduled ones too) and Sharkey's scheduled notes.
        self.drafts: dict[str, dict[str, Any]] = {}
        self.scheduled_notes: dict[str, dict[str, Any]] = {}
        self.max_mentions: int | None = None
        self.public_becomes_home = False
        self.max_note_text_length = {SHARKEY: 6000, MISSKEY_13: 500}.get(variant, 3000)
        self.max_file_size = 256 * 1024 * 1024
        # Misskey's is fixed; Sharkey's follows its config and meta says it.
        self.max_cw_length = 500 if variant == SHARKEY else 100
        self.version = {
            MISSKEY: "2026.3.2",
            MISSKEY_13: "12.26.0",
            FIREFISH: "1.0.5-rc",
            FOUNDKEY: "13.0.0-preview6",
            SHARKEY: "2025.2.3",
            CHERRYPICK: "4.17.0",
        }[variant]
        self.name = "Test Misskey"
        self.maintainer_name: str | None = None
        self.maintainer_email: str | None = None
        self.user = self.add_user("alice", name="Alice", email="alice@example.invalid")
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        # While down: the port, kept so that nothing else listens there.
        self._reserved: socket.socket | None = None
        self.closing = asyncio.Event()
        self.app = web.Application(client_max_size=1024**2)
        self.app.router.add_route("*", "/api/{endpoint:.+}", self._handle_api)
        self.app.router.add_get("/auth/{token}", self._auth_page)
        self.app.router.add_post("/auth/{token}/accept", self._auth_accept)
        self.app.router.add_post("/auth/{token}/deny", self._auth_deny)
        self.streams = StreamHub(self)
        self.app.router.add_get("/streaming", self.streams.handle)
        self.app.router.add_get("/", self._home_page)
        self.app.router.add_get("/notes/{id}", self._note_page)
        self._endpoints: dict[
            str, tuple[bool, str | None, Callable[..., Awaitable[Any]]]
        ] = {
            "meta": (False, None, self._meta),
            "app/create": (False, None, self._app_create),
            "auth/session/generate": (False, None, self._session_generate),
            "auth/session/userkey": (False, None, self._session_userkey),
            "i": (True, "read:account", self._i),
            "notes/create": (True, "write:notes", self._notes_create),
            "users/show": (False, None, self._users_show),
            "drive/files/create": (True, "write:drive", self._drive_files_create),
            "drive/files/delete": (True, "write:drive", self._drive_files_delete),
            "i/notifications": (True, "read:notifications", self._i_notifications),
            "notifications/mark-all-as-read": (
                True,
                "write:notifications",
                self._mark_all_as_read,
            ),
            "following/create": (True, "write:following", self._following_create),
            "notes/delete": (True, "write:notes", self._notes_delete),
            "notes/show": (False, None, self._notes_show),
            "notes/reactions/create": (
                True,
                "write:reactions",
                self._reactions_create,
            ),
            "users/notes": (False, None, self._users_notes),
            "mute/create": (True, "write:mutes", self._mute_create),
            "mute/delete": (True, "write:mutes", self._mute_delete),
            "i/update": (True, "write:account", self._i_update),
        }
        if self.variant != MISSKEY_13:
            self._endpoints["emoji"] = (False, None, self._emoji)
        if self.variant == MISSKEY:
            self._endpoints["chat/messages/create-to-user"] = (
                True,
                "write:chat",
                self._chat_create,
            )
        elif self.variant == MISSKEY_13:
            self._endpoints["messaging/messages/create"] = (
                True,
                "write:messaging",
                self._messaging_create,
            )
        if self.variant == MISSKEY:
            self._endpoints |= {
                "notes/drafts/create": (True, "write:account", self._drafts_create),
                "notes/drafts/list": (True, "read:account", self._drafts_list),
            }
            self.limit("notes/drafts/create", 300, 3600)
        if self.variant == SHARKEY:
            # The build seen has it; a name Misskey does not know guards it.
            self._endpoints["notes/schedule/create"] = (
                True,
                "write:notes-schedule",
                self._schedule_create,
            )
            self.limit("notes/schedule/create", 300, 3600)
        if self.variant in (MISSKEY, SHARKEY):
            self.limit("i/update", 20, 3600)
            self.limit("mute/create", 20, 3600)
        # Antennas, lists, channels, hashtags and follows (tests/misskey_sources.py).
        self.sources = SourcesHub(self)
        # Endpoints that take multipart/form-data (with the file) instead of JSON.
        self._multipart_endpoints = {"drive/files/create"}
        if self.variant in (MISSKEY, SHARKEY):
            self.limit("i/notifications", 30, 30)
        if self.variant == MISSKEY:
            # notes/delete's minInterval of one second.
            self.limit("notes/delete", 1, 1)
        if self.variant == SHARKEY:
            # Sharkey limits anonymous calls hard: two session polls a second,
            # then 429 with Retry-After: 1.
            self.limit("auth/session/userkey", 2, 1)
            # And WebSocket upgrades per IP.
            self.limit("streaming", 32, 300)

    # --- running -----------------------------------------------------------

    async def start(self) -> str:
        """Listen on loopback and return the instance URL."""
        self.closing = asyncio.Event()
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=1
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self._host, self._port)
        await self._site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}"
        return self.url

    async def go_down(self) -> None:
        """Stop answering, as a server that restarts: sockets cut, port closed.

        The port stays reserved (see reserve_port) until come_back() or
        close(): connections to it are refused, and no other server, of
        this test run or of another program, can take it meanwhile.
        """
        assert self._site is not None and self._runner is not None
        await self._site.stop()
        self._site = None
        self._reserved = reserve_port(self._host, self.port)
        self.streams.drop()
        # Kept-alive HTTP connections die with the server too.
        server = self._runner.server
        assert server is not None
        for handler in list(server.connections):
            handler.force_close()

    async def come_back(self) -> None:
        """Listen again on the same port."""
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self._host, self.port)
        # Bound while the reservation still holds the port (both reuse it),
        # so that there is no moment when another socket could take it.
        await self._site.start()
        self._release_port()

    @property
    def port(self) -> int:
        """Return the port the server listens on (or will again, when down)."""
        return int(self.url.rsplit(":", 1)[1])

    def _release_port(self) -> None:
        if self._reserved is not None:
            self._reserved.close()
            self._reserved = None

    async def close(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            self.closing.set()
            await self.streams.close()
            await self._runner.cleanup()
            self._runner = None
        self._release_port()

    # --- what tests do as the user or the admin ---------------------------

    def add_user(
        self, username: str, *, user_id: str | None = None, **kwargs: Any
    ) -> User:
        """Add a local user; ``user_id`` fixes its ID (for snapshots), else a new one."""
        user = User(id=user_id or new_id(), username=username, **kwargs)
        self.users[user.id] = user
        return user

    def accept_session(self, token: str, user: User | None = None) -> str | None:
        """Allow a session as a signed-in user, as the authorization page does.

        Returns where Misskey's page then sends the browser, or None without a
        callback URL.
        """
        session = self.sessions[token]
        session.user_id = (user or self.user).id
        app = self.apps[session.app_id]
        if app.callback_url:
            # Misskey concatenates, whatever the callback URL already holds.
            return app.callback_url + "?token=" + token
        return None

    def revoke(self, user: User | None = None) -> None:
        """Revoke every access token of the user, as the settings page does."""
        user_id = (user or self.user).id
        self.tokens = [t for t in self.tokens if t.user_id != user_id]

    def fail_next(
        self, endpoint: str, kind: str, count: int = 1, **kwargs: Any
    ) -> None:
        """Answer the next ``count`` calls to ``endpoint`` with a fault."""
        for _ in range(count):
            self.faults[endpoint].append(Fault(kind, **kwargs))

    def limit(self, endpoint: str, calls: int, per: float) -> None:
        """Limit an endpoint to ``calls`` per ``per`` seconds for each account.

        As the variant's limiter does: Misskey's counts every attempt, refused
        ones too, in a sliding window; Sharkey's bucket holds ``calls`` and
        drains one every ``per / calls`` seconds.
        """
        self.rate_limits[endpoint] = (calls, per)

    def calls(self, endpoint: str) -> list[Request]:
        """Return the requests made to an endpoint."""
        return [r for r in self.requests if r.endpoint == endpoint]

    def pending_sessions(self) -> list[Session]:
        """Return the sessions nobody has allowed yet."""
        return [s for s in self.sessions.values() if s.user_id is None]

    # --- HTTP ---------------------------------------------------------------

    def _error_response(self, err: ApiError) -> web.Response:
        status = err.status
        fields: dict[str, Any] = {
            "message": err.message,
            "code": err.code,
            "id": err.error_id or ERROR_IDS.get(err.code, str(uuid.uuid4())),
            "kind": err.kind,
        }
        if err.info is not None:
            fields["info"] = err.info
        if self.variant == MISSKEY_13:
            if err.code == "AUTHENTICATION_FAILED":
                status = 403
            elif err.code == "PERMISSION_DENIED":
                status, fields["kind"] = 400, "client"
        elif self.variant == FOUNDKEY:
            del fields["id"], fields["kind"]
            if err.code in ("NO_SUCH_APP", "NO_SUCH_SESSION"):
                status = 404
        elif self.variant == FIREFISH and err.code == "AUTHENTICATION_FAILED":
            status = 403
        body = fields if self.variant == FIREFISH else {"error": fields}
        headers = dict(err.headers)
        if self.variant in (MISSKEY, SHARKEY) and (
            error := WWW_AUTHENTICATE_ERRORS.get(err.code)
        ):
            # Seen on Misskey 2026.3.2 and Sharkey 2025.2 (Misskey 12: none).
            realm = "CherryPick" if self.software == CHERRYPICK else "Misskey"
            headers["WWW-Authenticate"] = (
                f'Bearer realm="{realm}", error="{error}", '
                f'error_description="{err.message}"'
            )
        return web.json_response(body, status=status, headers=headers)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        if endpoint not in self._endpoints:
            if self.variant == MISSKEY_13:
                return web.Response(text="Not Found", status=404)
            if request.method == "POST":
                # Fastify's own answer: Misskey's error is only for GET.
                return web.json_response(
                    {
                        "message": f"Route POST:/api/{endpoint} not found",
                        "error": "Not Found",
                        "statusCode": 404,
                    },
                    status=404,
                )
            return self._error_response(
                ApiError("UNKNOWN_API_ENDPOINT", "Unknown API endpoint.", status=404)
            )
        if request.method != "POST":
            return web.Response(status=405)
        parts: list[str] = []
        received: ReceivedFile | None = None
        if endpoint in self._multipart_endpoints:
            # Like Misskey, receive the whole file before any check; a request
            # with no file part gets fastify-multipart's empty 400.
            if request.content_type != "multipart/form-data":
                return web.Response(status=400)
            try:
                body, parts, received = await self._read_multipart(request)
            except ConnectionError:
                # The client gave up mid-upload; nobody reads this answer.
                return web.Response(status=400)
            if received is None:
                return web.Response(status=400)
        else:
            # The 1 MiB client_max_size caps JSON bodies.
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
        if not isinstance(body, dict):
            return web.json_response(
                {
                    "statusCode": 400,
                    "code": "FST_ERR_CTP_INVALID_JSON_BODY",
                    "error": "Bad Request",
                    "message": "Body is not valid JSON but content-type is set to 'application/json'",
                },
                status=400,
            )
        record = Request(endpoint, body, dict(request.headers), parts, received)
        self.requests.append(record)
        if self.on_request is not None:
            self.on_request(record)
        fault = self.faults[endpoint].popleft() if self.faults[endpoint] else None
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            fault = None
        if fault is not None and not fault.after:
            if fault.kind == "rate_limit":
                record.refused_until = record.at + fault.retry_after
            return await self._fault_response(request, fault)
        limit_headers: dict[str, str] = {}
        if self.variant == SHARKEY:
            # Sharkey sends its bucket's headers on every answer; an endpoint
            # without a limit has an empty bucket that never fills (seen on `i`).
            limit_headers = {
                "X-RateLimit-Clear": "0.000",
                "X-RateLimit-Remaining": "9007199254740991",
            }
        try:
            if endpoint in self.rate_limits:
                # Misskey authenticates first and limits each account
                # (anonymous calls by address: all come from loopback here).
                user, _ = self._authenticate(request, body)
                limit_headers = self.check_rate_limit(
                    endpoint, user.id if user is not None else LOOPBACK
                )
            needs_credential, permission, handler = self._endpoints[endpoint]
            user = self._check_access(request, body, needs_credential, permission)
            if received is not None:
                result = await handler(body, user, received)
            else:
                result = await handler(body, user)
        except ApiError as err:
            if err.free_at is not None:
                record.refused_until = err.free_at
            elif err.retry_after is not None:
                record.refused_until = time.monotonic() + err.retry_after
            err.headers = limit_headers | err.headers
            return self._error_response(err)
        if fault is not None:
            return await self._fault_response(request, fault)
        if result is None:
            response = web.Response(status=204)
        elif isinstance(result, str):
            # Misskey sends a string answer as JSON, but labelled as text.
            response = web.Response(text=json.dumps(result), content_type="text/plain")
        else:
            response = web.json_response(result)
        response.headers.update(limit_headers)
        return response

    async def _fault_response(
        self, request: web.Request, fault: Fault
    ) -> web.StreamResponse:
        if fault.kind == "rate_limit":
            return self._error_response(self._rate_limit_error(fault.retry_after))
        if fault.kind == "server_error":
            return self._error_response(
                ApiError("INTERNAL_ERROR", "Internal error occurred.", kind="server")
            )
        if fault.kind == "html":
            return web.Response(
                text="<!DOCTYPE html><html><body>Bad gateway</body></html>",
                status=fault.status if fault.status != 500 else 200,
                content_type="text/html",
            )
        if fault.kind == "status":
            return web.Response(status=fault.status)
        if fault.kind == "json":
            return web.json_response(
                fault.body, status=fault.status, headers=fault.headers
            )
        if fault.kind == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(fault.delay):
                await self.closing.wait()
        return web.Response(status=504)

    @staticmethod
    async def _read_multipart(
        request: web.Request,
    ) -> tuple[dict[str, Any], list[str], ReceivedFile | None]:
        """Read the fields, then the file, hashing it as it streams in.

        Misskey (fastify-multipart's ``request.file()``) only sees the fields
        that come before the file part; later ones are read and dropped.
        """
        reader = await request.multipart()
        body: dict[str, Any] = {}
        parts: list[str] = []
        received: ReceivedFile | None = None
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader)
            parts.append(part.name or "")
            if received is not None:
                await part.release()
            elif part.filename is None:
                body[part.name or ""] = (await part.read(decode=True)).decode()
            else:
                digest = hashlib.sha256()
                size = 0
                head = b""
                while chunk := await part.read_chunk(256 * 1024):
                    digest.update(chunk)
                    if len(head) < 16:
                        head += chunk[: 16 - len(head)]
                    size += len(chunk)
                received = ReceivedFile(
                    filename=part.filename,
                    content_type=part.headers.get(
                        "Content-Type", "application/octet-stream"
                    ),
                    size=size,
                    sha256=digest.hexdigest(),
                    head=head,
                )
        return body, parts, received

    def _rate_limit_error(
        self, retry_after: float, total: int | None = None, clear: float | None = None
    ) -> ApiError:
        """Return the variant's 429; ``retry_after`` s until a call may go again.

        Misskey: Retry-After in whole seconds (rounded up) and info with the
        moment the window frees (``resetMs``, epoch ms) and its size. Sharkey:
        X-RateLimit-* headers to the millisecond, info in durations. Misskey
        12: neither headers nor info.
        """
        headers: dict[str, str] = {}
        info: dict[str, Any] | None = None
        if self.variant == SHARKEY:
            reset_ms = math.ceil(retry_after * 1000)
            clear_ms = math.ceil((retry_after if clear is None else clear) * 1000)
            headers = {
                "X-RateLimit-Clear": f"{clear_ms / 1000:.3f}",
                "X-RateLimit-Remaining": "0",
                "Retry-After": str(math.ceil(reset_ms / 1000)),
                "X-RateLimit-Reset": f"{reset_ms / 1000:.3f}",
            }
            info = {
                "blocked": True,
                "remaining": 0,
                "resetSec": math.ceil(reset_ms / 1000),
                "resetMs": reset_ms,
                "fullResetSec": math.ceil(clear_ms / 1000),
                "fullResetMs": clear_ms,
            }
        elif self.variant != MISSKEY_13:
            reset_ms = int((time.time() + retry_after) * 1000)
            headers = {
                "Retry-After": str(max(math.ceil(reset_ms / 1000 - time.time()), 0))
            }
            info = {"remaining": 0, "reset": reset_ms // 1000, "resetMs": reset_ms}
            if total is not None:
                info["total"] = total
        err = ApiError(
            "RATE_LIMIT_EXCEEDED",
            "Rate limit exceeded. Please try again later.",
            status=429,
            info=info,
            headers=headers,
        )
        err.retry_after = retry_after
        return err

    def check_rate_limit(self, endpoint: str, actor: str = LOOPBACK) -> dict[str, str]:
        """Count a call of ``actor`` (a user ID, or the address of anonymous calls).

        Returns the headers Sharkey sends on limited endpoints.
        """
        if endpoint not in self.rate_limits:
            return {}
        key = (endpoint, actor)
        calls, per = self.rate_limits[endpoint]
        if calls <= 0:
            # Nothing allowed (a role whose rate-limit factor shuts it).
            err = self._rate_limit_error(per, clear=per)
            err.free_at = self.clock() + per
            raise err
        if self.variant == SHARKEY:
            return self._leaky_bucket(key, calls, per)
        # Misskey's limiter (the ``ratelimiter`` package) keeps the last
        # ``calls`` attempts, refused ones included, and refuses while all of
        # them are younger than ``per``.
        hits = self._rate_hits[key]
        now = self.clock()
        while hits and now - hits[0] >= per:
            hits.popleft()
        full = len(hits) >= calls
        hits.append(now)
        while len(hits) > calls:
            hits.popleft()
        if full:
            err = self._rate_limit_error(hits[0] + per - now, total=calls)
            # The very moment the limiter frees (not when the answer is made:
            # a test compares it with when the next call arrived).
            err.free_at = hits[0] + per
            raise err
        return {}

    def _leaky_bucket(
        self, key: tuple[str, str], calls: int, per: float
    ) -> dict[str, str]:
        """Sharkey's limiter (SkRateLimiterService), for a legacy ``calls`` per ``per``."""
        duration = per * 1000
        first_drip = max(round(duration / calls), 1)
        drip_size = max(round(calls / (duration / first_drip)), 1)
        drip = max(round(duration / (calls / drip_size)), 1)
        bucket = self._buckets[key]
        now = self.clock() * 1000
        drips = math.floor((now - bucket.timestamp) / drip) * drip_size
        if (drained := min(drips, bucket.counter)) > 0:
            bucket.counter -= drained
            # (Sharkey moves the timestamp by every drip, even past an empty bucket.)
            bucket.timestamp += drips * drip
        blocked = bucket.counter >= calls
        if not blocked:
            if bucket.timestamp == 0:
                bucket.timestamp = now
            bucket.counter += 1
        overflow = max(bucket.counter + 1 - calls, 0)
        reset_ms = max(
            drip * math.ceil(overflow / drip_size) - (now - bucket.timestamp), 0
        )
        clear_ms = math.ceil(bucket.counter / drip_size) * drip
        if blocked:
            err = self._rate_limit_error(reset_ms / 1000, clear=clear_ms / 1000)
            err.free_at = (now + reset_ms) / 1000
            raise err
        return {
            "X-RateLimit-Clear": f"{clear_ms / 1000:.3f}",
            "X-RateLimit-Remaining": str(max(calls - bucket.counter, 0)),
        }

    def _check_access(
        self,
        request: web.Request,
        body: dict[str, Any],
        needs_credential: bool,
        permission: str | None,
    ) -> User | None:
        user, token = self._authenticate(request, body)
        if needs_credential and user is None:
            raise ApiError("CREDENTIAL_REQUIRED", "Credential required.", status=401)
        if permission and token is not None and permission not in token.permission:
            raise ApiError(
                "PERMISSION_DENIED",
                "Your app does not have the necessary permissions to use this endpoint.",
                kind="permission",
            )
        return user

    def _authenticate(
        self, request: web.Request, body: dict[str, Any]
    ) -> tuple[User | None, AccessToken | None]:
        credential: Any = body.get("i")
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer ") and self.variant != MISSKEY_13:
            credential = header.removeprefix("Bearer ")
        if credential is None:
            return None, None
        if not isinstance(credential, str):
            raise invalid_param("i", "must be string")
        return self.authenticate_credential(credential)

    def authenticate_credential(
        self, credential: str, *, streaming: bool = False
    ) -> tuple[User, AccessToken | None]:
        """Return the user of a credential, and its app token; raise if refused."""
        if len(credential) == 16:
            for user in self.users.values():
                if user.native_token == credential:
                    return self._active(user, streaming=streaming), None
        else:
            for token in self.tokens:
                # Misskey 12 and 13 refuse the raw access token; later ones take both.
                raw_ok = self.variant != MISSKEY_13 and token.token == credential
                if token.hash == credential.lower() or raw_ok:
                    user = self.users[token.user_id]
                    return self._active(user, streaming=streaming), token
        raise ApiError(
            "AUTHENTICATION_FAILED",
            "Authentication failed. Please ensure your token is correct.",
            status=401,
        )

    def _active(self, user: User, *, streaming: bool = False) -> User:
        if user.deleted:
            raise ApiError("USER_IS_DELETED", "User is deleted.", kind="permission")
        if user.is_suspended:
            # Seen on running servers: Misskey 2026 and Sharkey refuse the
            # suspended (the upgrade too: a bare 403), Misskey 12 the API only.
            if self.variant in (MISSKEY, SHARKEY):
                raise ApiError(
                    "YOUR_ACCOUNT_SUSPENDED",
                    "Your account has been suspended.",
                    kind="permission",
                )
            if not streaming:
                raise ApiError(
                    "ACCESS_DENIED",
                    "Access denied.",
                    info={"reason": "Your account has been suspended."},
                    error_id="56f35758-7dd5-468b-8439-5d6fb8ec9b8e",
                )
        return user

    # --- endpoints -----------------------------------------------------------

    async def _meta(self, body: dict[str, Any], user: User | None) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "maintainerName": self.maintainer_name,
            "maintainerEmail": self.maintainer_email,
            "version": self.version,
            "name": self.name,
            "shortName": None,
            "uri": self.url,
            "description": "A Misskey server for tests.",
            "langs": [],
            "disableRegistration": True,
            "maxNoteTextLength": self.max_note_text_length,
            "maxFileSize": self.max_file_size,
            "features": {"registration": False, "miauth": True},
        }
        if self.variant == SHARKEY:
            meta |= {"maxCwLength": self.max_cw_length, "maxAltTextLength": 20000}
        if self.software == CHERRYPICK:
            meta["basedMisskeyVersion"] = "2025.10.2"
        return meta

    async def _app_create(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        for param in ("name", "description", "permission"):
            if param not in body:
                raise invalid_param(param, f"must have required property '{param}'")
        name, description, permission = (
            body["name"],
            body["description"],
            body["permission"],
        )
        callback_url = body.get("callbackUrl")
        if not isinstance(name, str) or not isinstance(description, str):
            raise invalid_param("name", "must be string")
        if not isinstance(permission, list) or not all(
            isinstance(p, str) for p in permission
        ):
            raise invalid_param("permission", "must be array")
        if callback_url is not None and not isinstance(callback_url, str):
            raise invalid_param("callbackUrl", "must be string")
        # Misskey's columns are this long; longer values fail in the database.
        if (
            len(name) > 128
            or len(description) > 512
            or len(callback_url or "") > 512
            or any(len(p) > 64 for p in permission)
        ):
            raise ApiError("INTERNAL_ERROR", "Internal error occurred.", kind="server")
        app = App(
            id=new_id(),
            name=name,
            description=description,
            permission=list(dict.fromkeys(permission)),
            callback_url=callback_url,
            secret="".join(secrets.choice(ALNUM) for _ in range(32)),
        )
        self.apps[app.id] = app
        return {
            "id": app.id,
            "name": app.name,
            "callbackUrl": app.callback_url,
            "permission": app.permission,
            "secret": app.secret,
        }

    def _app_by_secret(self, body: dict[str, Any]) -> App:
        secret = body.get("appSecret")
        if not isinstance(secret, str):
            raise invalid_param("appSecret", "must be string")
        for app in self.apps.values():
            if app.secret == secret:
                return app
        raise ApiError("NO_SUCH_APP", "No such app.")

    async def _session_generate(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        app = self._app_by_secret(body)
        session = Session(token=str(uuid.uuid4()), app_id=app.id)
        self.sessions[session.token] = session
        return {"token": session.token, "url": f"{self.url}/auth/{session.token}"}

    async def _session_userkey(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        app = self._app_by_secret(body)
        token = body.get("token")
        if not isinstance(token, str):
            raise invalid_param("token", "must be string")
        session = self.sessions.get(token)
        if session is None or session.app_id != app.id:
            raise ApiError("NO_SUCH_SESSION", "No such session.")
        if session.user_id is None:
            raise ApiError("PENDING_SESSION", "This session is not completed yet.")
        access = next(
            (
                t
                for t in self.tokens
                if t.app_id == app.id and t.user_id == session.user_id
            ),
            None,
        )
        if access is None:
            raw = "".join(secrets.choice(ALNUM) for _ in range(32))
            access = AccessToken(
                token=raw,
                hash=hashlib.sha256((raw + app.secret).encode()).hexdigest(),
                app_id=app.id,
                user_id=session.user_id,
                permission=list(app.permission),
            )
            self.tokens.append(access)
        del self.sessions[token]
        return {
            "accessToken": access.token,
            "user": self._pack_user(self.users[session.user_id]),
        }

    def _pack_user(self, user: User, me: User | None = None) -> dict[str, Any]:
        """Return the detailed user, with how ``me`` relates to it."""
        data = user.pack(detail=True)
        if self.variant == MISSKEY_13:
            # Misskey 12 has no account moves and no profile language.
            del data["movedTo"], data["lang"]
        if me is not None and me.id != user.id:
            data |= {
                "isFollowing": (me.id, user.id) in self.sources.following,
                "isFollowed": False,
                "isBlocking": me.id in user.blocked_by,
                "isBlocked": user.id in me.blocked_by,
                "isMuted": self.muting(me, user),
            }
        return data

    def _pack_me(self, user: User) -> dict[str, Any]:
        """Return what `i` and i/update answer: the user with private fields."""
        unread = self.streams.unread_count(user)
        data = self._pack_user(user) | {
            "email": user.email,
            "emailVerified": True,
            "avatarId": user.avatar_id,
            "bannerId": user.banner_id,
            "isModerator": user.is_moderator,
            "isAdmin": False,
            "hasUnreadNotification": unread > 0,
        }
        if self.variant != MISSKEY_13:
            data["unreadNotificationsCount"] = unread
        if self.policies is not None:
            data["policies"] = dict(self.policies)
        return data

    def muting(self, muter: User, mutee: User) -> bool:
        """Return whether ``muter`` mutes ``mutee`` now."""
        key = (muter.id, mutee.id)
        if key not in self.mutes:
            return False
        expires_at = self.mutes[key]
        return expires_at is None or expires_at > time.time() * 1000

    def _policy(self, name: str) -> Any:
        return None if self.policies is None else self.policies.get(name)

    def _invalid(self, param: str, keyword: str, reason: str) -> ApiError:
        """Return INVALID_PARAM as ajv (2023+) or cafy (Misskey 12) words it."""
        if self.variant == MISSKEY_13:
            # cafy's words, seen on 12.26.
            legacy = {
                "maxLength": "invalid-range",
                "minLength": "invalid-range",
                "maxItems": "invalid-range",
                "minItems": "invalid-range",
                "maximum": "invalid-range",
                "pattern": "not-match-pattern",
                "enum": "not-match-pattern",
            }.get(keyword, reason)
            return ApiError(
                "INVALID_PARAM",
                "Invalid param.",
                info={"param": param, "reason": legacy},
            )
        return ApiError(
            "INVALID_PARAM",
            "Invalid param.",
            info={"param": f"#/properties/{param}/{keyword}", "reason": reason},
        )

    async def _i(self, body: dict[str, Any], user: User | None) -> dict[str, Any]:
        assert user is not None
        return self._pack_me(user)

    async def _users_show(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        # Misskey 2023+ and Sharkey answer an unknown user with 404, older ones 400.
        not_found = ApiError(
            "NO_SUCH_USER",
            "No such user.",
            status=404 if self.variant in (MISSKEY, SHARKEY) else 400,
        )
        if "userId" in body:
            user_id = body["userId"]
            if not isinstance(user_id, str):
                raise invalid_param("userId", "must be string")
            if user_id not in self.users:
                raise not_found
            return self._pack_user(self.users[user_id], user)
        username, host = body.get("username"), body.get("host")
        if not isinstance(username, str):
            raise invalid_param("username", "must be string")
        for candidate in self.users.values():
            if (
                candidate.username.lower() == username.lower()
                and candidate.host == host
            ):
                return self._pack_user(candidate, user)
        raise not_found

    async def _users_notes(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        user_id = body.get("userId")
        if not isinstance(user_id, str):
            raise invalid_param("userId", "must have required property 'userId'")
        if user_id not in self.users:
            raise ApiError("NO_SUCH_USER", "No such user.")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise self._invalid("limit", "maximum", "must be <= 100")
        legacy = self.variant == MISSKEY_13
        # Misskey 12 always has replies (includeReplies) and renotes; current
        # Misskey leaves out replies and channel notes unless asked.
        with_replies = legacy or body.get("withReplies", False)
        with_renotes = legacy or body.get("withRenotes", True)
        with_channel_notes = legacy or body.get("withChannelNotes", False)
        is_self = user is not None and user.id == user_id
        notes = [
            note
            for note in reversed(self.notes.values())
            if note["userId"] == user_id
            and (with_replies or note["replyId"] is None)
            and (with_renotes or note["renoteId"] is None or note["text"])
            and (with_channel_notes or note["channelId"] is None)
            and (is_self or note["visibility"] in ("public", "home"))
        ]
        return notes[:limit]

    async def _drive_files_create(
        self, body: dict[str, Any], user: User | None, received: ReceivedFile
    ) -> dict[str, Any]:
        assert user is not None
        # Misskey casts multipart fields of boolean parameters with JSON.parse.
        flags: dict[str, bool] = {}
        for param in ("isSensitive", "force"):
            try:
                value = json.loads(body.get(param, "false"))
            except ValueError:
                value = None
            if not isinstance(value, bool):
                raise invalid_param(param, "must be boolean")
            flags[param] = value
        comment = body.get("comment")
        comment_limit = 20000 if self.variant == SHARKEY else 512
        if comment is not None and len(comment) > comment_limit:
            raise invalid_param(
                "comment", f"must NOT have more than {comment_limit} characters"
            )
        name = body.get("name")
        if name in (None, "undefined"):
            name = received.filename or "untitled"
        if received.size > self.max_file_size:
            raise ApiError(
                "MAX_FILE_SIZE_EXCEEDED",
                "Cannot upload the file because it exceeds the maximum file size.",
                status=413,
            )
        detected_type = received.detected_type(name)
        if not user.is_moderator:
            # Misskey's DriveService checks the role after the whole file
            # arrived: first the type it found, then the size.
            allowed_types = self._policy("uploadableFileTypes")
            if allowed_types is not None and not any(
                pattern in ("*", "*/*")
                or (
                    detected_type.startswith(pattern[:-1])
                    if pattern.endswith("/*")
                    else detected_type == pattern
                )
                for pattern in allowed_types
            ):
                raise ApiError(
                    "UNALLOWED_FILE_TYPE",
                    "Cannot upload the file because it is an unallowed file type.",
                )
            max_mb = self._policy("maxFileSizeMb")
            if max_mb is not None and received.size > max_mb * 1024 * 1024:
                raise ApiError(
                    "MAX_FILE_SIZE_EXCEEDED",
                    "Cannot upload the file because it exceeds the maximum file size.",
                    status=413,
                )
        if not flags["force"]:
            for existing in self.files.values():
                if existing.user_id == user.id and existing.sha256 == received.sha256:
                    return self._pack_file(existing)
        drive_file = DriveFile(
            id=new_id(),
            user_id=user.id,
            name=name,
            size=received.size,
            sha256=received.sha256,
            comment=comment,
            is_sensitive=flags["isSensitive"],
            type=detected_type,
        )
        self.files[drive_file.id] = drive_file
        return self._pack_file(drive_file) | {
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "userId": user.id,
            "folderId": None,
        }

    async def _drive_files_delete(
        self, body: dict[str, Any], user: User | None
    ) -> None:
        assert user is not None
        file_id = body.get("fileId")
        if file_id is None:
            raise invalid_param("fileId", "must have required property 'fileId'")
        if not isinstance(file_id, str):
            raise invalid_param("fileId", "must be string")
        drive_file = self.files.get(file_id)
        if drive_file is None:
            raise ApiError("NO_SUCH_FILE", "No such file.")
        if drive_file.user_id != user.id:
            raise ApiError("ACCESS_DENIED", "Access denied.")
        del self.files[file_id]

    async def _notes_create(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        assert user is not None
        note = self._validate_note(body, user)
        self.notes[note["id"]] = note
        user.notes_count += 1
        await self._note_events(note, user)
        await self.sources.note_created(note, user)
        return {"createdNote": note}

    # --- what other users do, and what reaches the account's stream ---------

    _MENTION_RE = re.compile(r"(?<![\w@])@(\w+)(?:@([\w.:-]+))?")

    def mentioned_users(self, note: dict[str, Any]) -> list[User]:
        """Return the local users a note mentions, as Misskey's extractMentionedUsers does.

        The author of the replied note counts as mentioned, and so do the
        recipients of a specified note.
        """
        own_host = self.url.removeprefix("http://").removeprefix("https://")
        users: list[User] = []
        for username, host in self._MENTION_RE.findall(note["text"] or ""):
            if host and host.lower() != own_host:
                continue
            users.extend(
                u
                for u in self.users.values()
                if u.host is None and u.username.lower() == username.lower()
            )
        if note["replyId"] is not None:
            users.append(self.users[self.notes[note["replyId"]]["userId"]])
        users.extend(
            self.users[user_id]
            for user_id in note.get("visibleUserIds", [])
            if user_id in self.users
        )
        return list({u.id: u for u in users}.values())

    async def _note_events(self, note: dict[str, Any], author: User) -> None:
        """Publish what Misskey's NoteCreateService publishes, in its order."""
        mentioned = self.mentioned_users(note)
        if note["visibility"] == "specified":
            # Mentioned users can see a specified note.
            note["visibleUserIds"] = list(
                dict.fromkeys([*note["visibleUserIds"], *(u.id for u in mentioned)])
            )
        # NotificationManager: one notification per user, reply or quote
        # winning over mention, none for the author.
        reasons: dict[str, str] = {}
        for user in mentioned:
            await self.streams.publish_main(user.id, "mention", note)
            reasons.setdefault(user.id, "mention")
            self._unread_note_hints(user, note)
        if note["replyId"] is not None:
            target = self.notes[note["replyId"]]["userId"]
            reasons[target] = "reply"
            await self.streams.publish_main(target, "reply", note)
        if note["renoteId"] is not None:
            target = self.notes[note["renoteId"]]["userId"]
            quote = bool(note["text"] or note["fileIds"] or note.get("poll"))
            reasons[target] = "quote" if quote else "renote"
            if target != author.id:
                await self.streams.publish_main(target, "renote", note)
        for user_id, reason in reasons.items():
            if user_id != author.id:
                await self.streams.notify(
                    self.users[user_id], reason, author, note=note
                )

    def _unread_note_hints(self, user: User, note: dict[str, Any]) -> None:
        """Sharkey and Misskey 12 hint at unread mentions with the note ID, 2 s later."""
        if self.variant not in (SHARKEY, MISSKEY_13):
            return
        hints = ["unreadMention"]
        if note["visibility"] == "specified":
            # Sharkey sends only this one for a specified note.
            hints = (
                ["unreadSpecifiedNote"]
                if self.variant == SHARKEY
                else [
                    "unreadMention",
                    "unreadSpecifiedNote",
                ]
            )
        for hint in hints:
            self.streams.later(
                self.streams.unread_delay,
                functools.partial(self.streams.publish_main, user.id, hint, note["id"]),
            )

    async def _i_notifications(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        assert user is not None
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise invalid_param("limit", "must be <= 100")
        for key in ("sinceId", "untilId"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise invalid_param(key, "must be string")
        mark_as_read = body.get("markAsRead", True)
        if not isinstance(mark_as_read, bool):
            raise invalid_param("markAsRead", "must be boolean")
        filters: dict[str, list[str] | None] = {}
        for key in ("includeTypes", "excludeTypes"):
            types = body.get(key)
            if types is not None and (
                not isinstance(types, list)
                or any(t not in NOTIFICATION_TYPES for t in types)
            ):
                raise invalid_param(
                    f"{key}/items", "must be equal to one of the allowed values"
                )
            filters[key] = types
        page = self.streams.page(
            user,
            since_id=body.get("sinceId"),
            until_id=body.get("untilId"),
            limit=limit,
            include=filters["includeTypes"],
            exclude=filters["excludeTypes"],
        )
        if mark_as_read:
            await self.streams.read_all(user)
        return page

    async def _mark_all_as_read(self, body: dict[str, Any], user: User | None) -> None:
        assert user is not None
        await self.streams.read_all(user)

    async def _following_create(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        assert user is not None
        followee = self.users.get(body.get("userId") or "")
        if followee is None:
            raise ApiError("NO_SUCH_USER", "No such user.")
        if followee is user:
            raise ApiError("FOLLOWEE_IS_YOURSELF", "Followee is yourself.")
        if followee.is_locked:
            await self.streams.publish_main(
                followee.id, "receiveFollowRequest", user.pack(detail=True)
            )
            await self.streams.notify(followee, "receiveFollowRequest", user)
            return followee.pack()
        followee.followers_count += 1
        user.following_count += 1
        self.sources.follow(user, followee)
        await self.streams.publish_main(user.id, "follow", followee.pack(detail=True))
        # Misskey sends the follower as UserLite; Sharkey more of it.
        await self.streams.publish_main(
            followee.id, "followed", user.pack(detail=self.variant == SHARKEY)
        )
        await self.streams.notify(followee, "follow", user)
        return followee.pack()

    def _note_for(self, body: dict[str, Any]) -> dict[str, Any]:
        note_id = body.get("noteId")
        if not isinstance(note_id, str):
            raise invalid_param("noteId", "must have required property 'noteId'")
        note = self.notes.get(note_id)
        if note is None:
            raise ApiError("NO_SUCH_NOTE", "No such note.")
        return note

    async def _notes_show(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        """Show a note; a specified one only to its author and recipients.

        To anyone else Misskey sends it hidden (``isHidden``, no text, as
        seen on Misskey 2026.3), Sharkey says it does not exist.
        """
        note = self._note_for(body)
        if note["visibility"] != "specified" or (
            user is not None
            and (user.id == note["userId"] or user.id in note["visibleUserIds"])
        ):
            return note
        if self.variant == SHARKEY:
            raise ApiError("NO_SUCH_NOTE", "No such note.")
        return note | {
            "text": None,
            "cw": None,
            "fileIds": [],
            "files": [],
            "isHidden": True,
        }

    async def _notes_delete(self, body: dict[str, Any], user: User | None) -> None:
        assert user is not None
        note = self._note_for(body)
        if note["userId"] != user.id:
            raise ApiError("ACCESS_DENIED", "Access denied.")
        del self.notes[note["id"]]
        user.notes_count -= 1

    async def _reactions_create(self, body: dict[str, Any], user: User | None) -> None:
        assert user is not None
        note = self._note_for(body)
        reaction = body.get("reaction")
        if not isinstance(reaction, str):
            raise invalid_param("reaction", "must be string")
        if note["renoteId"] and not (note["text"] or note["fileIds"]):
            raise ApiError("CANNOT_REACT_TO_RENOTE", "You cannot react to Renote.")
        # Misskey drops the variation selector; a custom emoji of the server is
        # :name: or :name@.: (ReactionService's isCustomEmojiRegexp, Misskey 12
        # too); an unknown one or any other string becomes a heart.
        reaction = reaction.replace("\ufe0f", "")
        custom = re.fullmatch(r":([\w+-]+)(?:@\.)?:", reaction)
        if (custom and custom[1] not in self.custom_emojis) or (
            not custom and reaction.isascii()
        ):
            reaction = "❤"
        elif custom:
            reaction = f":{custom[1]}@.:"
        key = (note["id"], user.id)
        if self.reactions.get(key) == reaction:
            if self.variant == MISSKEY_13:
                # Misskey 12 takes the same reaction again without a word.
                return
            raise ApiError("ALREADY_REACTED", "You are already reacting to that note.")
        # Another reaction replaces the earlier one.
        if (earlier := self.reactions.get(key)) is not None:
            note["reactions"][earlier] -= 1
        self.reactions[key] = reaction
        note["reactions"][reaction] = note["reactions"].get(reaction, 0) + 1
        author = self.users[note["userId"]]
        if author is not user:
            await self.streams.notify(
                author, "reaction", user, note=note, reaction=reaction
            )

    async def _emoji(self, body: dict[str, Any], user: User | None) -> dict[str, Any]:
        name = body.get("name")
        if not isinstance(name, str):
            raise invalid_param("name", "must be string")
        if name not in self.custom_emojis:
            # Misskey's findOneOrFail: a 500 that names its cause.
            raise ApiError(
                "INTERNAL_ERROR",
                "Internal error occurred. Please contact us if the error persists.",
                kind="server",
                info={
                    "e": {
                        "message": 'Could not find any entity of type "MiEmoji"',
                        "code": "EntityNotFoundError",
                        "id": str(uuid.uuid4()),
                    }
                },
            )
        return {
            "id": new_id(),
            "aliases": [],
            "name": name,
            "category": None,
            "host": None,
            "url": f"https://example.invalid/emoji/{name}.png",
        }

    async def end_poll(self, note_id: str) -> None:
        """End a poll now: its author is notified, as Misskey's poll job does."""
        note = self.notes[note_id]
        await self.streams.notify(self.users[note["userId"]], "pollEnded", note=note)

    async def _chat_create(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        assert user is not None
        recipient = self.users.get(body.get("toUserId") or "")
        if recipient is None:
            raise ApiError("NO_SUCH_USER", "No such user.")
        message = {
            "id": new_id(),
            "createdAt": now_iso(),
            "text": body.get("text"),
            "fromUserId": user.id,
            "toUserId": recipient.id,
            "fileId": None,
            "file": None,
            "reactions": [],
        }

        async def unread() -> None:
            # Only while the conversation is unread, three seconds later.
            await self.streams.publish_main(
                recipient.id,
                "newChatMessage",
                message | {"fromUser": user.pack(), "isRead": False},
            )

        self.streams.later(self.streams.chat_delay, unread)
        return message

    async def _messaging_create(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        assert user is not None
        recipient = self.users.get(body.get("userId") or "")
        if recipient is None:
            raise ApiError("NO_SUCH_USER", "No such user.")
        message = {
            "id": new_id(),
            "createdAt": now_iso(),
            "text": body.get("text"),
            "userId": user.id,
            "user": user.pack(),
            "recipientId": recipient.id,
            "recipient": recipient.pack(),
            "groupId": None,
            "fileId": None,
            "file": None,
            "isRead": False,
            "reads": [],
        }
        # Misskey 12 sends it to both sides at once, and hints 2 s later.
        await self.streams.publish_main(user.id, "messagingMessage", message)
        await self.streams.publish_main(recipient.id, "messagingMessage", message)
        self.streams.later(
            self.streams.unread_delay,
            functools.partial(
                self.streams.publish_main,
                recipient.id,
                "unreadMessagingMessage",
                message,
            ),
        )
        return message

    def _validate_note(self, body: dict[str, Any], user: User) -> dict[str, Any]:  # noqa: C901
        text = body.get("text")
        cw = body.get("cw")
        if text is not None:
            if not isinstance(text, str):
                raise invalid_param("text", "must be string")
            if len(text) > self.max_note_text_length:
                if self.variant == SHARKEY:
                    raise ApiError(
                        "MAX_LENGTH", "You tried posting a note which is too long."
                    )
                raise invalid_param(
                    "text",
                    f"must NOT have more than {self.max_note_text_length} characters",
                )
            if len(text) < 1:
                raise invalid_param("text", "must NOT have fewer than 1 characters")
        if cw is not None:
            if not isinstance(cw, str):
                raise invalid_param("cw", "must be string")
            if len(cw) > self.max_cw_length and self.variant == SHARKEY:
                raise ApiError(
                    "MAX_CW_LENGTH",
                    "You tried posting a content warning which is too long.",
                )
            if not 1 <= len(cw) <= self.max_cw_length:
                raise invalid_param(
                    "cw", f"must NOT have more than {self.max_cw_length} characters"
                )
        visibility = body.get("visibility", "public")
        if visibility not in VISIBILITIES:
            raise invalid_param(
                "visibility", "must be equal to one of the allowed values"
            )
        visible_user_ids = body.get("visibleUserIds", [])
        if not isinstance(visible_user_ids, list) or not all(
            isinstance(u, str) for u in visible_user_ids
        ):
            raise invalid_param("visibleUserIds", "must be array")
        local_only = body.get("localOnly", False)
        if not isinstance(local_only, bool):
            raise invalid_param("localOnly", "must be boolean")
        reaction_acceptance = body.get("reactionAcceptance")
        if reaction_acceptance not in REACTION_ACCEPTANCES:
            raise invalid_param(
                "reactionAcceptance", "must be equal to one of the allowed values"
            )
        file_ids = body.get("fileIds", [])
        if not isinstance(file_ids, list) or not all(
            isinstance(f, str) for f in file_ids
        ):
            raise invalid_param("fileIds", "must be array")
        if "fileIds" in body and not 1 <= len(file_ids) <= 16:
            raise invalid_param(
                "fileIds",
                "must NOT have more than 16 items"
                if file_ids
                else "must NOT have fewer than 1 items",
            )
        if len(set(file_ids)) != len(file_ids):
            raise invalid_param("fileIds", "must NOT have duplicate items")
        poll = body.get("poll")
        if poll is not None:
            self._validate_poll(poll)
        renote_id = body.get("renoteId")
        if not (renote_id or file_ids or poll):
            if text is None:
                raise invalid_param("text", "must have required property 'text'")
            if not text.strip():
                raise invalid_param("text", 'must match pattern "[^\\s]+"')
        for key, code in (
            ("replyId", "NO_SUCH_REPLY_TARGET"),
            ("renoteId", "NO_SUCH_RENOTE_TARGET"),
        ):
            target = body.get(key)
            if target is not None and target not in self.notes:
                raise ApiError(code, "No such note.")
            if target is not None and self.notes[target]["userId"] in user.blocked_by:
                raise ApiError(
                    "YOU_HAVE_BEEN_BLOCKED", "You have been blocked by this user."
                )
        channel_id = body.get("channelId")
        if channel_id is not None and channel_id not in self.channels:
            raise ApiError("NO_SUCH_CHANNEL", "No such channel.")
        for file_id in file_ids:
            drive_file = self.files.get(file_id)
            if drive_file is None or drive_file.user_id != user.id:
                raise ApiError("NO_SUCH_FILE", "Some files are not found.")
        for word in self.prohibited_words:
            if word in (text or "") or word in (cw or ""):
                raise ApiError(
                    "CONTAINS_PROHIBITED_WORDS",
                    "Cannot post because it contains prohibited words.",
                )
        if (
            self.max_mentions is not None
            and (text or "").count("@") > self.max_mentions
        ):
            raise ApiError(
                "CONTAINS_TOO_MANY_MENTIONS",
                "Cannot post because it exceeds the allowed number of mentions.",
            )
        mention_limit = self._policy("mentionLimit")
        if mention_limit is not None:
            # Only users the server finds count, each once.
            own_host = self.url.removeprefix("http://")
            mentioned = {
                user.id
                for name, host in re.findall(
                    r"(?<![0-9A-Za-z])@(\w+)(?:@([\w.-]*\w(?::\d+)?))?", text or ""
                )
                for user in self.users.values()
                if user.username.lower() == name.lower()
                and (user.host or "")
                == ("" if host.lower() == own_host else host.lower())
            }
            if len(mentioned) > mention_limit:
                raise ApiError(
                    "CONTAINS_TOO_MANY_MENTIONS",
                    "Cannot post because it exceeds the allowed number of mentions.",
                )
        # A role that may not post publicly gets home instead, quietly
        # (channel notes keep theirs).
        if visibility == "public" and (
            self.public_becomes_home
            or (self._policy("canPublicNote") is False and channel_id is None)
        ):
            visibility = "home"
        note_id = new_id()
        note: dict[str, Any] = {
            "id": note_id,
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "userId": user.id,
            "user": user.pack(),
            "text": text,
            "cw": cw,
            "visibility": visibility,
            "localOnly": local_only,
            "reactionAcceptance": reaction_acceptance,
            "renoteCount": 0,
            "repliesCount": 0,
            "reactions": {},
            "fileIds": file_ids,
            "files": [self._pack_file(self.files[f]) for f in file_ids],
            "replyId": body.get("replyId"),
            "renoteId": renote_id,
            "channelId": channel_id,
        }
        if visibility == "specified":
            note["visibleUserIds"] = visible_user_ids
        if poll is not None:
            note["poll"] = {
                "multiple": bool(poll.get("multiple", False)),
                "expiresAt": poll.get("expiresAt"),
                "choices": [
                    {"text": c, "votes": 0, "isVoted": False} for c in poll["choices"]
                ],
                "expiredAfter": poll.get("expiredAfter"),
            }
        if self.variant == MISSKEY_13:
            del note["localOnly"], note["reactionAcceptance"]
        return note

    @staticmethod
    def _validate_poll(poll: Any) -> None:
        if not isinstance(poll, dict):
            raise invalid_param("poll", "must be object")
        choices = poll.get("choices")
        if not isinstance(choices, list) or not 2 <= len(choices) <= 10:
            raise invalid_param(
                "poll/properties/choices", "must NOT have fewer than 2 items"
            )
        if len(set(choices)) != len(choices):
            raise invalid_param(
                "poll/properties/choices", "must NOT have duplicate items"
            )
        for choice in choices:
            if not isinstance(choice, str) or not 1 <= len(choice) <= 50:
                raise invalid_param(
                    "poll/properties/choices/items",
                    "must NOT have more than 50 characters",
                )
        expires_at = poll.get("expiresAt")
        if expires_at is not None:
            if not isinstance(expires_at, int):
                raise invalid_param("poll/properties/expiresAt", "must be integer")
            if expires_at < time.time() * 1000:
                raise ApiError(
                    "CANNOT_CREATE_ALREADY_EXPIRED_POLL", "Poll is already expired."
                )
        expired_after = poll.get("expiredAfter")
        if expired_after is not None and (
            not isinstance(expired_after, int) or expired_after < 1
        ):
            raise invalid_param("poll/properties/expiredAfter", "must be >= 1")

    async def _mute_create(self, body: dict[str, Any], user: User | None) -> None:
        assert user is not None
        mutee = self._user_param(body)
        if mutee.id == user.id:
            raise ApiError("MUTEE_IS_YOURSELF", "Mutee is yourself.")
        if self.muting(user, mutee):
            raise ApiError("ALREADY_MUTING", "You are already muting that user.")
        expires_at = body.get("expiresAt")
        if self.variant == MISSKEY_13:
            # It does not know expiresAt, ignores it, and mutes for good.
            expires_at = None
        elif expires_at is not None:
            if not isinstance(expires_at, int):
                raise self._invalid("expiresAt", "type", "must be integer,null")
            if expires_at <= time.time() * 1000:
                # Accepted, and nothing is muted.
                return
        self.mutes[(user.id, mutee.id)] = expires_at

    async def _mute_delete(self, body: dict[str, Any], user: User | None) -> None:
        assert user is not None
        mutee = self._user_param(body)
        if not self.muting(user, mutee):
            raise ApiError("NOT_MUTING", "You are not muting that user.")
        del self.mutes[(user.id, mutee.id)]

    def _user_param(self, body: dict[str, Any]) -> User:
        user_id = body.get("userId")
        if not isinstance(user_id, str):
            raise invalid_param("userId", "must have required property 'userId'")
        if user_id not in self.users:
            raise ApiError("NO_SUCH_USER", "No such user.")
        return self.users[user_id]

    async def _i_update(  # noqa: C901
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        assert user is not None
        legacy = self.variant == MISSKEY_13
        texts = {
            "name": 50,
            "description": 500 if legacy else 1500,
            "location": 50,
        }
        for param, limit in texts.items():
            value = body.get(param)
            if value is None:
                continue
            if not isinstance(value, str):
                raise self._invalid(param, "type", "must be string,null")
            if len(value) > limit:
                raise self._invalid(
                    param, "maxLength", f"must NOT have more than {limit} characters"
                )
            if not value:
                raise self._invalid(
                    param, "minLength", "must NOT have fewer than 1 characters"
                )
        birthday = body.get("birthday")
        pattern = r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$"
        if birthday is not None and not (
            isinstance(birthday, str) and re.match(pattern, birthday)
        ):
            raise self._invalid(
                "birthday", "pattern", f'must match pattern "{pattern}"'
            )
        lang = body.get("lang")
        if lang is not None and lang not in LANGS:
            raise self._invalid(
                "lang", "enum", "must be equal to one of the allowed values"
            )
        for flag in ("isLocked", "isBot", "isCat"):
            if flag in body and not isinstance(body[flag], bool):
                raise self._invalid(flag, "type", "must be boolean")
        fields = body.get("fields")
        if fields is not None:
            low, high = (1, 4) if legacy else (0, 16)
            if not isinstance(fields, list):
                raise self._invalid("fields", "type", "must be array")
            if len(fields) > high:
                raise self._invalid(
                    "fields", "maxItems", f"must NOT have more than {high} items"
                )
            if len(fields) < low:
                raise self._invalid(
                    "fields", "minItems", f"must NOT have fewer than {low} items"
                )
            if not all(
                isinstance(f, dict)
                and isinstance(f.get("name"), str)
                and isinstance(f.get("value"), str)
                for f in fields
            ):
                raise self._invalid("fields", "required", "must have name and value")
        name = body.get("name")
        if name is not None and not legacy:
            name = name.strip() or None
        if name is not None and any(w in name for w in self.prohibited_name_words):
            raise ApiError(
                "YOUR_NAME_CONTAINS_PROHIBITED_WORDS",
                "Your new name contains prohibited words.",
                status=422,
            )
        images: dict[str, DriveFile | None] = {}
        for param, what in (("avatarId", "AVATAR"), ("bannerId", "BANNER")):
            if param not in body:
                continue
            file_id = body[param]
            if file_id is None:
                images[param] = None
                continue
            if not legacy and self._policy("canUpdateBioMedia") is False:
                raise ApiError(
                    "RESTRICTED_BY_ROLE", "This feature is restricted by your role."
                )
            drive_file = self.files.get(file_id)
            if drive_file is None or drive_file.user_id != user.id:
                raise ApiError(f"NO_SUCH_{what}", f"No such {what.lower()} file.")
            if not drive_file.type.startswith("image/"):
                raise ApiError(
                    f"{what}_NOT_AN_IMAGE",
                    f"The file specified as an {what.lower()} is not an image.",
                )
            images[param] = drive_file
        if "name" in body:
            user.name = name
        for param in ("description", "location", "birthday"):
            if param in body:
                setattr(user, param, body[param])
        if "lang" in body and not legacy:
            user.lang = lang
        for flag, attribute in (
            ("isLocked", "is_locked"),
            ("isBot", "is_bot"),
            ("isCat", "is_cat"),
        ):
            if flag in body:
                setattr(user, attribute, body[flag])
        if fields is not None:
            # Blank pairs are dropped; Misskey 12 neither trims nor drops
            # anything but empty strings.
            pairs = [
                (f["name"], f["value"])
                if legacy
                else (f["name"].strip(), f["value"].strip())
                for f in fields
            ]
            user.fields = [
                {"name": name, "value": value}
                for name, value in pairs
                if name and value
            ]
        if "avatarId" in images:
            avatar = images["avatarId"]
            user.avatar_id = avatar.id if avatar else None
        if "bannerId" in images:
            banner = images["bannerId"]
            user.banner_id = banner.id if banner else None
        return self._pack_me(user)

    def _check_draft_note(self, body: dict[str, Any], user: User) -> None:
        """Check what notes/drafts/create and notes/schedule/create check of the note."""
        text, cw = body.get("text"), body.get("cw")
        if text is not None and (
            not isinstance(text, str) or len(text) > self.max_note_text_length
        ):
            raise self._invalid(
                "text",
                "maxLength",
                f"must NOT have more than {self.max_note_text_length} characters",
            )
        if cw is not None and (not isinstance(cw, str) or not 1 <= len(cw) <= 100):
            raise self._invalid(
                "cw", "maxLength", "must NOT have more than 100 characters"
            )
        if body.get("visibility", "public") not in VISIBILITIES:
            raise self._invalid(
                "visibility", "enum", "must be equal to one of the allowed values"
            )
        for file_id in body.get("fileIds", []):
            drive_file = self.files.get(file_id)
            if drive_file is None or drive_file.user_id != user.id:
                raise ApiError("NO_SUCH_FILE", "Some files are not found.")
        for key, code in (
            ("replyId", "NO_SUCH_REPLY_TARGET"),
            ("renoteId", "NO_SUCH_RENOTE_TARGET"),
        ):
            if (target := body.get(key)) is not None and target not in self.notes:
                raise ApiError(code, "No such note.")
        channel_id = body.get("channelId")
        if channel_id is not None and channel_id not in self.channels:
            raise ApiError("NO_SUCH_CHANNEL", "No such channel.")

    async def _drafts_create(
        self, body: dict[str, Any], user: User | None
    ) -> dict[str, Any]:
        assert user is not None
        mine = [d for d in self.drafts.values() if d["userId"] == user.id]
        # The limits are checked before the parameters, as Misskey does.
        if len(mine) >= self._policy("noteDraftLimit"):
            raise ApiError("TOO_MANY_DRAFTS", "You cannot create drafts any more.")
        scheduled = body.get("isActuallyScheduled", False)
        if scheduled and sum(
            1 for d in mine if d["isActuallyScheduled"]
        ) >= self._policy("scheduledNoteLimit"):
            raise ApiError(
                "TOO_MANY_SCHEDULED_NOTES",
                "You cannot create scheduled notes any more.",
            )
        scheduled_at = body.get("scheduledAt")
        if scheduled_at is not None and not isinstance(scheduled_at, int):
            raise self._invalid("scheduledAt", "type", "must be integer,null")
        if scheduled:
            if scheduled_at is None:
                raise ApiError(
                    "SCHEDULED_AT_REQUIRED",
                    "scheduledAt is required when isActuallyScheduled is true.",
                )
            if scheduled_at < time.time() * 1000:
                raise ApiError(
                    "SCHEDULED_AT_MUST_BE_IN_FUTURE",
                    "scheduledAt must be in the future.",
                )
        self._check_draft_note(body, user)
        draft: dict[str, Any] = {
            "id": new_id(),
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "scheduledAt": scheduled_at,
            "isActuallyScheduled": bool(scheduled),
            "userId": user.id,
            "user": user.pack(),
            "text": body.get("text"),
            "cw": body.get("cw"),
            "visibility": body.get("visibility", "public"),
            "localOnly": body.get("localOnly", False),
            "reactionAcceptance": body.get("reactionAcceptance"),
            "visibleUserIds": body.get("visibleUserIds", []),
            "hashtag": None,
            "fileIds": body.get("fileIds", []),
            "files": [self._pack_file(self.files[f]) for f in body.get("fileIds", [])],
            "replyId": body.get("replyId"),
            "renoteId": body.get("renoteId"),
            "channelId": body.get("channelId"),
            "poll": body.get("poll"),
        }
        self.drafts[draft["id"]] = draft
        return {"createdDraft": draft}

    async def _drafts_list(
        self, body: dict[str, Any], user: User | None
    ) -> list[dict[str, Any]]:
        assert user is not None
        limit = body.get("limit", 30)
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            raise self._invalid("limit", "maximum", "must be <= 100")
        scheduled = body.get("scheduled")
        drafts = [
            draft
            for draft in reversed(self.drafts.values())
            if draft["userId"] == user.id
            and (scheduled is None or draft["isActuallyScheduled"] == scheduled)
        ]
        return drafts[:limit]

    async def _schedule_create(self, body: dict[str, Any], user: User | None) -> str:
        assert user is not None
        schedule = body.get("scheduleNote")
        if not isinstance(schedule, dict):
            raise self._invalid(
                "scheduleNote", "required", "must have required property 'scheduleNote'"
            )
        mine = [n for n in self.scheduled_notes.values() if n["userId"] == user.id]
        if len(mine) >= self._policy("scheduleNoteMax"):
            raise ApiError("SCHEDULE_NOTE_MAX", "Schedule note max.")
        text = body.get("text")
        if text is not None and (not isinstance(text, str) or not text):
            raise self._invalid(
                "text", "minLength", "must NOT have fewer than 1 characters"
            )
        if "fileIds" in body and not 1 <= len(body["fileIds"]) <= 16:
            raise self._invalid(
                "fileIds", "minItems", "must NOT have fewer than 1 items"
            )
        self._check_draft_note(body, user)
        scheduled_at = schedule.get("scheduledAt")
        if not isinstance(scheduled_at, int) or scheduled_at < time.time() * 1000:
            raise ApiError(
                "CANNOT_CREATE_ALREADY_EXPIRED_SCHEDULE",
                "Schedule is already expired.",
            )
        note_id = new_id()
        self.scheduled_notes[note_id] = {
            "id": note_id,
            "userId": user.id,
            "scheduledAt": time.strftime(
                "%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(scheduled_at / 1000)
            ),
            "note": {
                "text": text,
                "cw": body.get("cw"),
                "visibility": body.get("visibility", "public"),
                "files": body.get("fileIds", []),
                # Sharkey's build posts it federated, whatever was asked.
                "localOnly": False,
            },
        }
        return ""

    @staticmethod
    def _pack_file(drive_file: DriveFile) -> dict[str, Any]:
        return {
            "id": drive_file.id,
            "name": drive_file.name,
            "type": drive_file.type,
            "md5": None,
            "size": drive_file.size,
            "isSensitive": drive_file.is_sensitive,
            "comment": drive_file.comment,
            "url": f"https://example.invalid/files/{drive_file.id}",
        }

    # --- pages ----------------------------------------------------------------

    def _page(self, title: str, body: str, status: int = 200) -> web.Response:
        return web.Response(
            text=(
                "<!DOCTYPE html><html><head><meta charset='utf-8'>"
                f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}</title>"
                "<style>body{font-family:sans-serif;background:#f4f5f0;color:#333;display:flex;"
                "justify-content:center;padding:40px}main{background:#fff;border-radius:12px;"
                "padding:28px 36px;max-width:460px;box-shadow:0 2px 10px #0002}"
                "h1{font-size:1.3em;color:#86b300}button{font-size:1em;padding:8px 22px;"
                "border-radius:999px;border:0;margin-right:8px;cursor:pointer}"
                ".allow{background:#86b300;color:#fff}.cancel{background:#ddd}"
                "li{margin:4px 0}.wrap{width:460px}header{display:flex;align-items:center;"
                "gap:10px;margin:0 0 14px 4px;font-weight:bold}header .logo{width:28px;"
                "height:28px;border-radius:8px;background:#86b300;color:#fff;display:flex;"
                "align-items:center;justify-content:center}header small{color:#888;"
                "font-weight:normal}code{color:#888;font-size:.85em}</style></head>"
                f"<body><div class='wrap'><header><span class='logo'>M</span>"
                f"{html.escape(self.name)} <small>{html.escape(self.url)}</small></header>"
                f"<main>{body}</main></div></body></html>"
            ),
            status=status,
            content_type="text/html",
        )

    async def _home_page(self, request: web.Request) -> web.Response:
        notes = "".join(
            f"<li><a href='/notes/{n['id']}'>{html.escape(n['text'] or '(no text)')}</a></li>"
            for n in reversed(self.notes.values())
        )
        return self._page(
            self.name,
            f"<h1>{html.escape(self.name)}</h1><p>Signed in as @{self.user.username}.</p>"
            f"<h2>Notes</h2><ul id='notes'>{notes or '<li>No notes yet.</li>'}</ul>",
        )

    async def _note_page(self, request: web.Request) -> web.Response:
        note = self.notes.get(request.match_info["id"])
        if note is None:
            return self._page("Not found", "<h1>Not found</h1>", 404)
        cw = f"<p><b>CW:</b> {html.escape(note['cw'])}</p>" if note["cw"] else ""
        user = note["user"]
        # The note it replies to, above it, as Misskey shows a thread.
        parent = self.notes.get(note["replyId"] or "")
        thread = (
            "<div class='note-parent' style='border-left:3px solid #ddd;"
            "padding-left:12px;margin-bottom:12px;color:#555'>"
            f"<b>{html.escape(parent['user']['name'] or parent['user']['username'])}</b>"
            f" <small>@{html.escape(parent['user']['username'])}</small>"
            f"<p style='white-space:pre-wrap'>{self._mfm(parent['text'])}</p>"
            f"<p><small>{self._audience(parent)} · {parent['createdAt']}</small></p>"
            "</div>"
            if parent is not None
            else ""
        )
        return self._page(
            "Note",
            f"{thread}<h1>{html.escape(user['name'] or user['username'])} "
            f"<small>@{html.escape(user['username'])}</small></h1>{cw}"
            f"<p class='note-text' style='white-space:pre-wrap'>{self._mfm(note['text'])}</p>"
            f"<p><small>{self._audience(note)} · {note['createdAt']}</small></p>"
            "<p><a href='/'>All notes</a></p>",
        )

    @staticmethod
    def _mfm(text: str | None) -> str:
        """Return a note's text as HTML, with MFM's bold, the one markup the integration writes."""
        return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text or ""))

    def _audience(self, note: dict[str, Any]) -> str:
        """Return who sees a note: its visibility, and a specified note's recipients."""
        if note["visibility"] != "specified":
            return str(note["visibility"])
        names = ", ".join(
            f"@{self.users[u].username}"
            for u in note["visibleUserIds"]
            if u in self.users
        )
        return html.escape(f"specified (only {names})")

    async def _auth_page(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["token"])
        if session is None:
            return self._page("Misskey", "<h1>Invalid session</h1>", 404)
        app = self.apps[session.app_id]
        if session.user_id is not None:
            return self._page("Misskey", "<h1>Already allowed</h1>")
        permissions = "".join(
            f"<li>{html.escape(PERMISSION_LABELS.get(p, p))} <code>{html.escape(p)}</code></li>"
            for p in app.permission
        )
        return self._page(
            "Misskey",
            f"<h1>Allow {html.escape(app.name)} to access your account?</h1>"
            f"<p>{html.escape(app.description)}</p>"
            f"<p>Signed in as <b>@{html.escape(self.user.username)}</b>. The app asks for:</p>"
            f"<ul>{permissions}</ul>"
            f"<form method='post' action='/auth/{session.token}/accept' style='display:inline'>"
            "<button class='allow' id='allow'>Allow</button></form>"
            f"<form method='post' action='/auth/{session.token}/deny' style='display:inline'>"
            "<button class='cancel' id='cancel'>Cancel</button></form>",
        )

    async def _auth_accept(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token not in self.sessions:
            return self._page("Misskey", "<h1>Invalid session</h1>", 404)
        callback = self.accept_session(token)
        if callback is not None:
            raise web.HTTPFound(callback)
        return self._page(
            "Misskey",
            "<h1>Access allowed</h1><p>Return to the app.</p>",
        )

    async def _auth_deny(self, request: web.Request) -> web.Response:
        # Misskey does nothing server-side: the session stays pending.
        return self._page(
            "Misskey", "<h1>Cancelled</h1><p>The app was not allowed.</p>"
        )

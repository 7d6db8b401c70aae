"""Constants for the Misskey integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "misskey"

CONF_CREDENTIAL: Final = "i"
CONF_PERMISSIONS: Final = "permissions"
# The name of the app the credential belongs to, which the user deletes on
# Misskey once a new one replaced it (absent before entry version 1.3).
CONF_APP_NAME: Final = "app_name"

# Each set-up, re-authentication and Reconfigure registers a new app on
# Misskey, and Misskey keeps each valid until the user deletes it: the name
# says which Home Assistant made it, and when ("Home Assistant (Home,
# 2026-12-24 18:00)"). Misskey stores at most 128 characters of it.
APP_NAME: Final = "Home Assistant"
APP_NAME_MAX_LOCATION: Final = 80
# Where Misskey lists them (Settings → Service integration → Manage access
# tokens), on every version.
APPS_PAGE_PATH: Final = "/settings/apps"
APP_DESCRIPTION: Final = "Posts notes from Home Assistant automations and scripts."
# Servers store permission names they do not know and never match them, so one
# list serves every version and fork.
PERMISSION_READ_ACCOUNT: Final = "read:account"
PERMISSION_WRITE_NOTES: Final = "write:notes"
PERMISSION_WRITE_DRIVE: Final = "write:drive"
PERMISSION_READ_NOTIFICATIONS: Final = "read:notifications"
PERMISSION_WRITE_REACTIONS: Final = "write:reactions"
PERMISSION_WRITE_ACCOUNT: Final = "write:account"
PERMISSION_WRITE_MUTES: Final = "write:mutes"
PERMISSION_WRITE_NOTES_SCHEDULE: Final = "write:notes-schedule"
PERMISSION_READ_CHANNELS: Final = "read:channels"
APP_PERMISSIONS: Final = [
    # The account, its sensors and its live events (streaming channel main).
    PERMISSION_READ_ACCOUNT,
    PERMISSION_WRITE_NOTES,
    # Attachments, avatars and banners.
    PERMISSION_WRITE_DRIVE,
    # Catching up on events missed while away, and polling without streaming.
    PERMISSION_READ_NOTIFICATIONS,
    PERMISSION_WRITE_REACTIONS,
    # Profile updates and scheduled notes (Misskey's drafts).
    PERMISSION_WRITE_ACCOUNT,
    PERMISSION_WRITE_MUTES,
    # Scheduled notes of the Sharkey builds that have notes/schedule/create.
    # Misskey does not know the name: its authorization page shows it as it
    # is, and it never matches anything there.
    PERMISSION_WRITE_NOTES_SCHEDULE,
    # The followed and favourite channels a source may follow.
    PERMISSION_READ_CHANNELS,
]
# What accounts set up before entry version 1.2 were granted.
LEGACY_PERMISSIONS: Final = [
    PERMISSION_READ_ACCOUNT,
    PERMISSION_WRITE_NOTES,
    PERMISSION_WRITE_DRIVE,
]

AUTHORIZE_CALLBACK_PATH: Final = "/api/misskey/authorized"
# The languages of translations/, for pages served outside the frontend.
TRANSLATION_LANGUAGES: Final = ("en", "ja")
AUTHORIZE_POLL_INTERVAL: Final = 3.0
AUTHORIZE_TIMEOUT: Final = timedelta(minutes=10)

ATTR_ALT_TEXT: Final = "alt_text"
ATTR_CHANNEL: Final = "channel"
ATTR_CHOICES: Final = "choices"
ATTR_CW: Final = "cw"
ATTR_DURATION: Final = "duration"
ATTR_ENDS_AT: Final = "ends_at"
ATTR_FILE_NAME: Final = "name"
ATTR_LOCAL_ONLY: Final = "local_only"
ATTR_MEDIA: Final = "media"
ATTR_MEDIA_CONTENT_ID: Final = "media_content_id"
ATTR_MULTIPLE: Final = "multiple"
ATTR_PATH: Final = "path"
ATTR_POLL: Final = "poll"
ATTR_REACTION_ACCEPTANCE: Final = "reaction_acceptance"
ATTR_RECIPIENTS: Final = "recipients"
ATTR_RENOTE: Final = "renote"
ATTR_REPLY_TO: Final = "reply_to"
ATTR_SENSITIVE: Final = "sensitive"
ATTR_TEXT: Final = "text"
ATTR_URL: Final = "url"
ATTR_VISIBILITY: Final = "visibility"

SERVICE_POST: Final = "post"
SERVICE_GET_ACCOUNT: Final = "get_account"
SERVICE_MUTE_ACCOUNT: Final = "mute_account"
SERVICE_UNMUTE_ACCOUNT: Final = "unmute_account"
SERVICE_UPDATE_PROFILE: Final = "update_profile"

ATTR_ACCOUNT: Final = "account"
ATTR_SCHEDULED_AT: Final = "scheduled_at"
ATTR_DESCRIPTION: Final = "description"
ATTR_LOCATION: Final = "location"
ATTR_BIRTHDAY: Final = "birthday"
ATTR_LANG: Final = "lang"
ATTR_IS_LOCKED: Final = "is_locked"
ATTR_IS_BOT: Final = "is_bot"
ATTR_IS_CAT: Final = "is_cat"
ATTR_FIELDS: Final = "fields"
ATTR_VALUE: Final = "value"
ATTR_AVATAR: Final = "avatar"
ATTR_BANNER: Final = "banner"
ATTR_DELETE_AVATAR: Final = "delete_avatar"
ATTR_DELETE_BANNER: Final = "delete_banner"


VISIBILITIES: Final = ["public", "home", "followers", "specified"]
# reaction_acceptance's options (snake_case, as translation keys must be) and the
# reactionAcceptance Misskey takes for each (null for all). Misskey's own spellings
# (likeOnly) are accepted as well: automations written for earlier versions send them.
REACTION_ACCEPTANCES: Final[dict[str, str | None]] = {
    "all": None,
    "like_only": "likeOnly",
    "like_only_for_remote": "likeOnlyForRemote",
    "non_sensitive_only": "nonSensitiveOnly",
    "non_sensitive_only_for_local_like_only_for_remote": (
        "nonSensitiveOnlyForLocalLikeOnlyForRemote"
    ),
}
MAX_POLL_CHOICES: Final = 10
MAX_POLL_CHOICE_LENGTH: Final = 50

UPDATE_INTERVAL: Final = timedelta(minutes=15)

# The longest mute misskey.mute_account sets, as core's Mastodon integration
# allows: 10 years (a far larger one overflows the date it ends).
MAX_MUTE_DURATION: Final = timedelta(days=3650)

# A 429 holds the account's calls to that endpoint until the server's moment;
# a call waits at most this long in all.
RATE_LIMIT_MAX_WAIT: Final = 60.0
MAX_CW_LENGTH: Final = 100
# notes/create takes up to 16 files; drive/files/create's comment (alt text)
# up to 512 characters unless meta says otherwise (Sharkey's maxAltTextLength).
MAX_ATTACHMENTS: Final = 16
MAX_ALT_TEXT_LENGTH: Final = 512

# Posting (options of the entry): what a note is when the call does not say.
# New accounts post home; accounts set up before entry version 1.3 keep the
# public notes they posted until then (async_migrate_entry writes it).
CONF_DEFAULT_VISIBILITY: Final = "default_visibility"
CONF_DEFAULT_LOCAL_ONLY: Final = "default_local_only"
DEFAULT_VISIBILITY: Final = "home"
LEGACY_DEFAULT_VISIBILITY: Final = "public"
DEFAULT_LOCAL_ONLY: Final = False
# A default for notes without recipients: specified would make them visible to
# the account alone.
DEFAULT_VISIBILITIES: Final = ["public", "home", "followers"]

# Listening (options of the entry).
CONF_LISTEN: Final = "listen"
CONF_CATCH_UP_WINDOW: Final = "catch_up_window"
DEFAULT_LISTEN: Final = True
# Notifications missed while away are delivered only if younger than this
# (minutes), so an old "lights off" never fires.
DEFAULT_CATCH_UP_WINDOW: Final = 15
MAX_CATCH_UP_WINDOW: Final = 1440

# The streaming connection: our pings notice a dead connection within 1.5
# heartbeats; reconnects back off as Misskey's own client does (misskey-js's
# reconnecting-websocket): from about 1 s up to 10 s, with jitter, then stay.
STREAM_HEARTBEAT: Final = 30.0
# Misskey 12 never answers the upgrade of a credential it refuses.
STREAM_CONNECT_TIMEOUT: Final = 15.0
RECONNECT_MIN_DELAY: Final = 1.0
RECONNECT_MAX_DELAY: Final = 10.0
# A connection that lasted this long was healthy: the next delay starts over.
RECONNECT_RESET_AFTER: Final = 30.0
# The longest a server's Retry-After on the upgrade is waited out.
RECONNECT_MAX_RETRY_AFTER: Final = 600.0
# Without WebSockets: i/notifications allows 30 calls in 30 s; one call every
# 30 s leaves nearly all of it to the user's own apps. Streaming is tried
# again now and then, in case the proxy was fixed.
POLL_INTERVAL: Final = timedelta(seconds=30)
STREAM_RETRY_INTERVAL: Final = timedelta(minutes=30)
# At most this many pages of 100 are caught up after an absence.
CATCH_UP_MAX_PAGES: Final = 10
CATCH_UP_PAGE: Final = 100
# Enough to recognise every notification or note that can arrive twice: by
# the stream and by the catch-up that follows a reconnection.
REMEMBERED_IDS: Final = 512

# Notification event types, in Misskey's own words (snake_case).
EVENT_MENTION: Final = "mention"
EVENT_REPLY: Final = "reply"
EVENT_RENOTE: Final = "renote"
EVENT_QUOTE: Final = "quote"
EVENT_FOLLOW: Final = "follow"
EVENT_FOLLOW_REQUEST_RECEIVED: Final = "follow_request_received"
EVENT_REACTION: Final = "reaction"
EVENT_POLL_ENDED: Final = "poll_ended"
# A specified note addressed to the account, or a chat message.
EVENT_DIRECT: Final = "direct"

SERVICE_REACT: Final = "react"
SERVICE_DELETE_NOTE: Final = "delete_note"
ATTR_NOTE: Final = "note"
ATTR_REACTION: Final = "reaction"

# i/update's limits (Misskey before 12.108: a description of 500 and 1 to 4 fields).
MAX_NAME_LENGTH: Final = 50
MAX_LOCATION_LENGTH: Final = 50
MAX_DESCRIPTION_LENGTH: Final = 1500
MAX_DESCRIPTION_LENGTH_BEFORE_12_108: Final = 500
MAX_PROFILE_FIELDS: Final = 16
MAX_PROFILE_FIELDS_BEFORE_12_108: Final = 4

# Sources (subentries of an account): what others post that the account follows.
SUBENTRY_SOURCE: Final = "source"
CONF_KIND: Final = "kind"
KIND_ANTENNA: Final = "antenna"
KIND_LIST: Final = "list"
KIND_CHANNEL: Final = "channel"
KIND_HASHTAG: Final = "hashtag"
KIND_ACCOUNT: Final = "account"
SOURCE_KINDS: Final = (
    KIND_ANTENNA,
    KIND_LIST,
    KIND_CHANNEL,
    KIND_HASHTAG,
    KIND_ACCOUNT,
)
# Where a source's account lives; the user typed @user@host.
CONF_USER_ID: Final = "user_id"
EVENT_NOTE: Final = "note"
# Misskey joins at most 32 channels per connection: main and the home
# timeline take two.
MAX_SOURCES: Final = 30
# A followed account's notes come on the home timeline; another's are asked
# for this often (users/notes), which costs its server little.
SOURCE_POLL_INTERVAL: Final = timedelta(minutes=3)

# Assist (options of the entry): who may talk to the house, to which agent, how.
CONF_ASSIST_ACCOUNTS: Final = "assist_accounts"
CONF_ASSIST_AGENT: Final = "assist_agent"
CONF_ASSIST_SCOPE: Final = "assist_scope"
ASSIST_SCOPE_DIRECT: Final = "direct"
ASSIST_SCOPE_MENTIONS: Final = "mentions"
ASSIST_SCOPES: Final = [ASSIST_SCOPE_DIRECT, ASSIST_SCOPE_MENTIONS]
DEFAULT_ASSIST_SCOPE: Final = ASSIST_SCOPE_DIRECT
EVENT_ASSIST: Final = f"{DOMAIN}_assist"
# A command older than this (by the note's time) is not run: "open the garage"
# caught up after an outage may no longer be wanted.
ASSIST_MAX_AGE: Final = timedelta(minutes=2)
# Commands per sender and window; beyond, one "slow down" answer per window.
ASSIST_RATE_COMMANDS: Final = 5
ASSIST_RATE_WINDOW: Final = 60.0
# How long the agent may think before the sender is told it did not answer.
ASSIST_AGENT_TIMEOUT: Final = 30.0
# A conversation continues by a reply to one of its answers for this long
# after its last message (see assist.py).
ASSIST_CONVERSATION_TTL: Final = timedelta(hours=1)
ASSIST_STORAGE_VERSION: Final = 1
# Where the listener keeps the last notification delivered (see data.py).
LISTENER_STORAGE_VERSION: Final = 1

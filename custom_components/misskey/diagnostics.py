"""Diagnostics of a Misskey account, without secrets or personal data.

Users post diagnostics in public issues. What helps find a bug stays: the
server's software, version and limits, the account's IDs, counts, flags and
role policies. Secrets go, and so does what says who someone is or what they
wrote: the profile's words and pictures, birthday and whereabouts, e-mail
addresses, and the name and e-mail of the server's operator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant

from .const import CONF_APP_NAME, CONF_ASSIST_ACCOUNTS, CONF_CREDENTIAL
from .permissions import missing_permissions

if TYPE_CHECKING:
    from .data import MisskeyConfigEntry

# The credential under every name Misskey and its forks use.
SECRETS: Final = frozenset(
    {CONF_CREDENTIAL, "token", "accessToken", "secret", "appSecret"}
)

# What `i` tells of the account (Misskey, Sharkey, Firefish and other forks),
# at any depth. Its display name is redacted at the top only: roles and
# achievements have names too, and those help.
ACCOUNT_PERSONAL: Final = SECRETS | {
    # The profile's own words.
    "description",
    "fields",
    "verifiedLinks",
    "location",
    "birthday",
    "company",
    "jobTitle",
    "customStatus",
    "followedMessage",
    "onlineStatusAutoReplies",
    "emojis",  # the custom emojis of the name and description
    "memo",
    "moderationNote",
    "pinnedNotes",
    "pinnedPage",
    # Its pictures.
    "avatarUrl",
    "avatarBlurhash",
    "avatarDecorations",
    "bannerUrl",
    "bannerBlurhash",
    "backgroundUrl",
    "backgroundBlurhash",
    # Its accounts elsewhere.
    "alsoKnownAs",
    "movedTo",
    "movedToUri",
    "attributionDomains",
    "listenbrainz",
    # Its private settings.
    "mutedWords",
    "hardMutedWords",
    "mutedInstances",
    "securityKeysList",
}

# What meta tells of the server's operator.
META_PERSONAL: Final = SECRETS | {"maintainerName", "maintainerEmail"}


def _redact(data: Any, keys: frozenset[str]) -> Any:
    """Return ``data`` with the values of ``keys`` and of e-mail addresses redacted.

    Any string under a key that names an e-mail goes too (email, maintainerEmail,
    but not emailVerified, a flag). Empty values stay: that a profile has no
    birthday or fields is not personal, and can matter.
    """
    if isinstance(data, list):
        return [_redact(item, keys) for item in data]
    if not isinstance(data, Mapping):
        return data
    return {
        key: REDACTED if _personal(key, value, keys) else _redact(value, keys)
        for key, value in data.items()
    }


def _personal(key: str, value: Any, keys: frozenset[str]) -> bool:
    """Return whether a value is to be redacted."""
    if value is None or (isinstance(value, (str, list, Mapping)) and not value):
        return False
    return key in keys or (isinstance(value, str) and "email" in key.lower())


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: MisskeyConfigEntry
) -> dict[str, Any]:
    """Return the instance's meta and the account as Misskey sent them, redacted."""
    coordinator = entry.runtime_data.coordinator
    listener = entry.runtime_data.listener
    meta = coordinator.meta
    account = _redact(coordinator.data.raw, ACCOUNT_PERSONAL)
    if account.get("name"):
        account["name"] = REDACTED
    return {
        # The app's name holds Home Assistant's location name.
        "entry": _redact(entry.data, SECRETS | {CONF_APP_NAME}),
        "instance": {
            "url": coordinator.client.url,
            "name": meta.name,
            "version": meta.version,
            # Forks that say who they are do it in one of these.
            "software": meta.raw.get("softwareName") or meta.raw.get("repositoryUrl"),
            "max_note_text_length": meta.max_note_text_length,
            "max_file_size": meta.max_file_size,
            "meta": _redact(meta.raw, META_PERSONAL),
        },
        "account": account,
        # Who may talk to the house is personal (how many shows under assist).
        "options": _redact(entry.options, frozenset({CONF_ASSIST_ACCOUNTS})),
        "missing_permissions": missing_permissions(entry),
        # None when listening is off.
        "listener": listener.diagnostics() if listener is not None else None,
        "assist": (
            assist.diagnostics()
            if (assist := entry.runtime_data.assist) is not None
            else None
        ),
    }

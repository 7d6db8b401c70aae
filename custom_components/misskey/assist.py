"""Talk to the house: notes from trusted accounts go to Assist; the answer comes back in the thread.

A consumer of what the listener hears (it never touches the connection). For
each heard note it decides, at once and without I/O, whether the note is a
command: addressed as the scope says, from an account in the list, not the
account's own, not stale, not over the rate. A command then runs as a
background task of the entry, so the listener is never held up: the note's
text goes to the conversation agent, and its speech is posted as a reply that
only the sender sees. Everything that can go wrong gets an answer; nothing is
dropped in silence except what exceeds the rate after the one "slow down".

Imported (with Home Assistant's conversation integration) only by accounts
that list someone, so posting-only accounts never pay for it at start-up.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
import logging
import re
from typing import Any, Final

from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.helpers.translation import async_get_translations
from homeassistant.setup import async_setup_component
import homeassistant.util.dt as dt_util

from .api import MisskeyAuthenticationError, MisskeyError, instance_host
from .const import (
    ASSIST_AGENT_TIMEOUT,
    ASSIST_CONVERSATION_TTL,
    ASSIST_MAX_AGE,
    ASSIST_RATE_COMMANDS,
    ASSIST_RATE_WINDOW,
    ASSIST_SCOPE_DIRECT,
    ASSIST_SCOPE_MENTIONS,
    CONF_ASSIST_ACCOUNTS,
    CONF_ASSIST_AGENT,
    CONF_ASSIST_SCOPE,
    DEFAULT_ASSIST_SCOPE,
    DOMAIN,
    EVENT_ASSIST,
    EVENT_DIRECT,
    EVENT_MENTION,
    EVENT_REPLY,
    RATE_LIMIT_MAX_WAIT,
)
from .data import MisskeyConfigEntry, assist_store
from .errors import OutageLog
from .listener import MisskeyListener
from .notification import MisskeyEvent, created_at

_LOGGER = logging.getLogger(__name__)

# The answers users read, by their key under "exceptions" in strings.json
# (a category hassfest accepts and async_get_translations loads by language).
TOO_LATE: Final = "assist_too_late"
SLOW_DOWN: Final = "assist_slow_down"
AGENT_FAILED: Final = "assist_agent_failed"
AGENT_TIMEOUT: Final = "assist_agent_timeout"
NO_SPEECH: Final = "assist_no_speech"

# What can fail, each logged once per outage.
_AGENT: Final = "agent"
_POSTING: Final = "posting"
_STORAGE: Final = "storage"

# The event types each scope lets through: direct notes only, or any note
# that names the account (a reply names the author of the replied note).
_SCOPES: Final = {
    ASSIST_SCOPE_DIRECT: frozenset({EVENT_DIRECT}),
    ASSIST_SCOPE_MENTIONS: frozenset({EVENT_DIRECT, EVENT_MENTION, EVENT_REPLY}),
}
# A mention in the answer would make its user a recipient of the specified
# note; a zero-width space after the @ keeps it text (MFM finds no mention).
_ANSWER_MENTION: Final = r"(?<![0-9A-Za-z_])@(?=[0-9A-Za-z_])"


def normalize_account(account: str) -> str:
    """Return ``@user@host`` as compared: Misskey's user names and hosts ignore case."""
    return account.strip().casefold()


def strip_own_mentions(text: str, username: str, host: str) -> str:
    """Return ``text`` without the account's mentions of itself (``@me``, ``@me@host``).

    The agent hears the command, not who it was addressed to.
    """
    own = re.compile(
        rf"(?<![0-9A-Za-z_@.-])@{re.escape(username)}(?:@{re.escape(host)})?"
        r"(?![0-9A-Za-z_@-])",
        re.IGNORECASE,
    )
    return " ".join(own.sub(" ", text).split())


class MisskeyAssist:
    """Answers the account's trusted senders with a conversation agent."""

    def __init__(
        self, hass: HomeAssistant, entry: MisskeyConfigEntry, listener: MisskeyListener
    ) -> None:
        """Hold the entry's Assist options; nothing is read until a command comes."""
        self.hass = hass
        self._entry = entry
        self._listener = listener
        self._client = entry.runtime_data.client
        self._coordinator = entry.runtime_data.coordinator
        self._instance = instance_host(self._client.url)
        options = entry.options
        self._accounts = frozenset(
            normalize_account(a) for a in options.get(CONF_ASSIST_ACCOUNTS, [])
        )
        self._agent_id: str | None = options.get(CONF_ASSIST_AGENT) or None
        self._types = _SCOPES[options.get(CONF_ASSIST_SCOPE, DEFAULT_ASSIST_SCOPE)]
        self._store = assist_store(hass, entry.entry_id)
        self._loaded: asyncio.Task[None] | None = None
        # The answer notes of live conversations, and when each conversation
        # last had a message (a timestamp), as the Store keeps them.
        self._answers: dict[str, str] = {}
        self._active: dict[str, float] = {}
        # Per sender: when their last commands came (the loop's clock), and
        # whether they were told to slow down since the window was full.
        self._recent: dict[str, deque[float]] = {}
        self._warned: set[str] = set()
        # An outage of the agent, or of posting, is logged once, until a success.
        self._outages = {
            kind: OutageLog(_LOGGER) for kind in (_AGENT, _POSTING, _STORAGE)
        }
        self.commands = 0
        self.too_late = 0
        self.over_rate = 0
        self.last_error: str | None = None

    @callback
    def async_start(self) -> None:
        """Hear the account's notes (before the listener starts: catch-up counts too)."""
        self._entry.async_on_unload(
            self._listener.async_add_event_listener(self._async_heard)
        )

    # --- deciding (in the listener's call, without I/O) -------------------------

    @callback
    def _async_heard(self, event: MisskeyEvent) -> None:
        """Start answering the note if it is a command for the house."""
        note = event.note
        if note is None or event.event_type not in self._types:
            # Chat messages cannot be answered in a thread; reactions and the
            # like carry no command.
            return
        user = event.attributes.get("user")
        user_id = note.get("userId") or event.attributes.get("user_id")
        if user_id is None or user_id == self._coordinator.data.id:
            # Never the account's own notes: an answer must not start a loop.
            return
        if not isinstance(user, str) or normalize_account(user) not in self._accounts:
            return
        if not (text := note.get("text")):
            _LOGGER.debug("Note %s from %s has no text to act on", event.id, user)
            return
        if (rate := self._rate(user)) is None:
            return
        name = f"{DOMAIN} assist {note['id']}"
        if self._stale(note):
            self.too_late += 1
            coro = self._async_answer_only(note, user, TOO_LATE)
        elif rate == SLOW_DOWN:
            self.over_rate += 1
            coro = self._async_answer_only(note, user, SLOW_DOWN)
        else:
            self.commands += 1
            coro = self._async_command(note, user, text)
        self._entry.async_create_background_task(self.hass, coro, name)

    def _rate(self, user: str) -> str | None:
        """Count a note from ``user``: None to ignore it, SLOW_DOWN to say so, else "run".

        At most ASSIST_RATE_COMMANDS notes in any ASSIST_RATE_WINDOW seconds
        are answered; the next one is told to slow down, the rest are ignored
        until the window has room again.
        """
        now = self.hass.loop.time()
        recent = self._recent.setdefault(user, deque())
        while recent and now - recent[0] >= ASSIST_RATE_WINDOW:
            recent.popleft()
        if len(recent) < ASSIST_RATE_COMMANDS:
            recent.append(now)
            self._warned.discard(user)
            return "run"
        if user in self._warned:
            _LOGGER.debug("Ignored a note from %s: over the rate", user)
            return None
        self._warned.add(user)
        return SLOW_DOWN

    @staticmethod
    def _stale(note: Mapping[str, Any]) -> bool:
        """Return whether the note was written too long ago to act on it now."""
        # A note without its time is taken as made now.
        return (
            dt_util.utcnow() - created_at(str(note.get("createdAt") or ""))
            > ASSIST_MAX_AGE
        )

    # --- answering (a background task per note) ---------------------------------

    async def _async_command(
        self, note: Mapping[str, Any], user: str, text: str
    ) -> None:
        """Send the command to the agent; post its speech; record what was done."""
        await self._async_load()
        account = self._coordinator.data
        command = strip_own_mentions(text, account.username, self._instance)
        conversation_id = self._conversation_of(note.get("replyId"))
        language = note.get("lang") or self.hass.config.language
        context = Context()
        answer: str
        try:
            async with asyncio.timeout(ASSIST_AGENT_TIMEOUT):
                result = await self._async_converse(
                    command, conversation_id, context, language
                )
        except TimeoutError:
            self._problem(
                _AGENT, "agent did not answer within %s s", ASSIST_AGENT_TIMEOUT
            )
            answer = await self._async_text(AGENT_TIMEOUT, language)
        except Exception as err:  # noqa: BLE001 - any agent's fault gets an answer
            self._problem(_AGENT, "agent failed: %s", err, exc_info=err)
            answer = await self._async_text(AGENT_FAILED, language)
        else:
            self._recovered(_AGENT)
            conversation_id = result.conversation_id or conversation_id
            speech = result.response.speech.get("plain", {}).get("speech", "")
            answer = speech.strip() or await self._async_text(NO_SPEECH, language)
        answer_id = await self._async_reply(note, answer)
        if answer_id is not None and conversation_id is not None:
            await self._async_remember(answer_id, conversation_id)
        self.hass.bus.async_fire(
            EVENT_ASSIST,
            {
                "account": f"@{account.username}@{self._instance}",
                "user": user,
                "text": command,
                "answer": answer,
                "conversation_id": conversation_id,
                "note_id": note["id"],
            },
            context=context,
        )

    async def _async_converse(
        self,
        text: str,
        conversation_id: str | None,
        context: Context,
        language: str,
    ) -> conversation.ConversationResult:
        # The conversation integration is an after-dependency: set up when
        # configured (default_config), else here, at the first command.
        if conversation.DOMAIN not in self.hass.config.components:
            await async_setup_component(self.hass, conversation.DOMAIN, {})
        return await conversation.async_converse(
            self.hass,
            text,
            conversation_id,
            context,
            language=language,
            agent_id=self._agent_id,
        )

    async def _async_answer_only(
        self, note: Mapping[str, Any], user: str, key: str
    ) -> None:
        """Answer a note that is not run (too late, or over the rate)."""
        _LOGGER.debug("Not running note %s from %s: %s", note["id"], user, key)
        language = note.get("lang") or self.hass.config.language
        await self._async_reply(note, await self._async_text(key, language))

    async def _async_reply(self, note: Mapping[str, Any], text: str) -> str | None:
        """Post ``text`` in the note's thread for its author alone; return its ID.

        Through the account's client, so the rate-limit gate of notes/create
        applies as to every other note.
        """
        limit = self._coordinator.limits.max_note_text_length
        text = re.sub(_ANSWER_MENTION, "@\u200b", text)
        if len(text) > limit:
            text = text[: limit - 1] + "…"
        try:
            answer = await self._client.create_note(
                {
                    "text": text,
                    "replyId": note["id"],
                    "visibility": "specified",
                    "visibleUserIds": [note["userId"]],
                },
                max_wait=RATE_LIMIT_MAX_WAIT,
            )
        except MisskeyError as err:
            self._problem(_POSTING, "could not answer note %s: %s", note["id"], err)
            if isinstance(err, MisskeyAuthenticationError):
                # As for any post: the user is asked to re-authenticate.
                self._entry.async_start_reauth(self.hass)
            return None
        self._recovered(_POSTING)
        return answer.id

    def _problem(
        self,
        kind: str,
        message: str,
        *args: object,
        exc_info: BaseException | None = None,
    ) -> None:
        """Record the problem; log the first of an outage of ``kind`` as a warning."""
        self.last_error = message % args
        self._outages[kind].problem(
            "Assist of %s: %s", self._entry.title, self.last_error, exc_info=exc_info
        )

    def _recovered(self, kind: str) -> None:
        self._outages[kind].recovered(
            "Assist of %s: the %s works again", self._entry.title, kind
        )

    async def _async_text(self, key: str, language: str) -> str:
        """Return one of the answers, in the sender's language (English if not translated)."""
        texts = await async_get_translations(
            self.hass, language, "exceptions", {DOMAIN}
        )
        return texts[f"component.{DOMAIN}.exceptions.{key}.message"]

    # --- conversations ------------------------------------------------------------

    # An hour of silence ends a conversation: Home Assistant's own agent
    # forgets its chat log after minutes anyway, while an LLM agent may keep
    # one longer, and a reply to an answer of yesterday is more likely a new
    # question than a follow-up. It also bounds the Store.

    async def _async_load(self) -> None:
        """Read the conversations once, at the first command (not at start-up)."""
        if self._loaded is None:
            self._loaded = self.hass.async_create_task(self._async_read())
        await asyncio.shield(self._loaded)

    async def _async_read(self) -> None:
        try:
            stored = await self._store.async_load() or {}
        except Exception as err:  # noqa: BLE001 - an unreadable file starts over
            _LOGGER.warning(
                "Could not read the Assist conversations of %s (%s); "
                "replies to earlier answers start new conversations",
                self._entry.title,
                err,
            )
            stored = {}
        self._answers = dict(stored.get("answers", {}))
        self._active = dict(stored.get("active", {}))
        self._expire()

    def _conversation_of(self, reply_id: str | None) -> str | None:
        """Return the conversation an answer of ours belongs to, if still live."""
        self._expire()
        return self._answers.get(reply_id) if reply_id else None

    async def _async_remember(self, answer_id: str, conversation_id: str) -> None:
        """Write the answer down at once: a reload or restart may come next."""
        self._answers[answer_id] = conversation_id
        self._active[conversation_id] = dt_util.utcnow().timestamp()
        try:
            await self._store.async_save(self._stored())
        except Exception as err:  # noqa: BLE001 - the answer was posted all the same
            self._problem(_STORAGE, "could not write its conversations down: %s", err)

    def _expire(self) -> None:
        horizon = (dt_util.utcnow() - ASSIST_CONVERSATION_TTL).timestamp()
        self._active = {c: t for c, t in self._active.items() if t > horizon}
        self._answers = {a: c for a, c in self._answers.items() if c in self._active}

    def _stored(self) -> dict[str, Any]:
        return {"answers": self._answers, "active": self._active}

    def diagnostics(self) -> dict[str, Any]:
        """Return how Assist fares, for diagnostics (no texts, no accounts)."""
        return {
            "allowed_accounts": len(self._accounts),
            "agent": self._agent_id,
            "scope": sorted(self._types),
            "commands": self.commands,
            "answered_too_late": self.too_late,
            "over_rate": self.over_rate,
            "live_conversations": len(self._active),
            "last_error": self.last_error,
        }

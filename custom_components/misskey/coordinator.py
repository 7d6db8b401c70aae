"""Reads the signed-in account every 15 minutes, and with it what the account may do."""

from __future__ import annotations

import asyncio
import logging

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import (
    Account,
    Meta,
    MisskeyAccountSuspendedError,
    MisskeyAuthenticationError,
    MisskeyClient,
    MisskeyError,
    MisskeyPermissionDeniedError,
    Note,
)
from .const import DOMAIN, UPDATE_INTERVAL
from .limits import AccountLimits
from .permissions import granted_permissions

_LOGGER = logging.getLogger(__name__)


class MisskeyDataUpdateCoordinator(DataUpdateCoordinator[Account]):
    """Reads the signed-in account; holds the instance's meta."""

    config_entry: ConfigEntry
    meta: Meta

    def __init__(
        self, hass: HomeAssistant, entry: ConfigEntry, client: MisskeyClient
    ) -> None:
        """Read the entry's account with ``client``."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=UPDATE_INTERVAL,
        )
        self.client = client
        # The notesCount at which the last note's time was read.
        self._last_note_count: int | None = None
        self._limits: AccountLimits | None = None
        # The account as read with the meta at set-up, for the first update.
        self._first: Account | None = None

    @property
    def limits(self) -> AccountLimits:
        """Return what the account may do, as of its last reading (made once per reading)."""
        entry = self.config_entry
        granted = granted_permissions(entry)
        limits = self._limits
        if (
            limits is None
            or limits.account is not self.data
            or limits.granted is not granted
        ):
            limits = self._limits = AccountLimits(
                self.meta, self.data, granted, title=entry.title, url=self.client.url
            )
        return limits

    async def _async_setup(self) -> None:
        """Read the instance's meta (once: its limits rarely change) and the account, at once."""
        try:
            self.meta, self._first = await asyncio.gather(
                self.client.meta(), self._async_read_account(first=True)
            )
        except MisskeyError as err:
            raise self._error(err) from err

    async def _async_update_data(self) -> Account:
        """Read the account; a refused credential starts re-authentication."""
        if (account := self._first) is not None:
            # Read with the meta at set-up.
            self._first = None
            return account
        try:
            return await self._async_read_account()
        except MisskeyError as err:
            raise self._error(err) from err

    async def _async_read_account(self, *, first: bool = False) -> Account:
        """Read the account, and when it last posted.

        ``i`` does not say, so that takes a users/notes call, made only when
        notesCount changed (Misskey counts every new note there). The first
        time both go at once: the entry's unique ID starts with the account's.
        """
        if first:
            account_id = (self.config_entry.unique_id or "").partition("@")[0]
            account, note = await asyncio.gather(
                self.client.account(),
                self.client.latest_note(account_id),
                return_exceptions=True,
            )
            if isinstance(account, BaseException):
                raise account
            if not isinstance(note, BaseException) and account.id == account_id:
                return self._last_note(account, note)
        else:
            account = await self.client.account()
            # None before the first reading.
            previous: Account | None = self.data
            if (
                previous is not None
                and account.notes_count is not None
                and account.notes_count == self._last_note_count
            ):
                account.last_note_at = previous.last_note_at
                return account
        return self._last_note(account, await self.client.latest_note(account.id))

    def _last_note(self, account: Account, note: Note | None) -> Account:
        self._last_note_count = account.notes_count
        account.last_note_at = note.created if note else None
        return account

    def _error(self, err: MisskeyError) -> Exception:
        """Return what a failed reading means: re-authenticate, or try again later."""
        if isinstance(err, (MisskeyAuthenticationError, MisskeyPermissionDeniedError)):
            return ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="authentication_failed"
            )
        if isinstance(err, MisskeyAccountSuspendedError):
            return UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="account_suspended",
                translation_placeholders={"account": self.config_entry.title},
            )
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="update_failed",
            translation_placeholders={"error": str(err)},
        )


def unread_notifications(account: Account) -> int | None:
    """Return the unread notifications ``i`` tells of, if it tells."""
    count = account.raw.get("unreadNotificationsCount")
    if isinstance(count, int):
        return count
    # Misskey 12 only says whether there are any.
    return 0 if account.raw.get("hasUnreadNotification") is False else None

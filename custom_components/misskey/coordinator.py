"""Reads the signed-in account every 15 minutes, and with it what the account may do."""

from __future__ import annotations

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
        """Read the instance's limits once; they rarely change."""
        try:
            self.meta = await self.client.meta()
        except MisskeyError as err:
            raise _update_failed(err) from err

    async def _async_update_data(self) -> Account:
        """Read the account; a refused credential starts re-authentication."""
        try:
            return await self._async_add_last_note(await self.client.account())
        except (MisskeyAuthenticationError, MisskeyPermissionDeniedError) as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="authentication_failed",
            ) from err
        except MisskeyAccountSuspendedError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="account_suspended",
                translation_placeholders={"account": self.config_entry.title},
            ) from err
        except MisskeyError as err:
            raise _update_failed(err) from err

    async def _async_add_last_note(self, account: Account) -> Account:
        """Add when the account last posted.

        ``i`` does not say, so it takes a users/notes call, made only when
        notesCount changed: Misskey counts every new note there.
        """
        # None before the first update.
        previous: Account | None = self.data
        if (
            previous is not None
            and account.notes_count is not None
            and account.notes_count == self._last_note_count
        ):
            account.last_note_at = previous.last_note_at
            return account
        note = await self.client.latest_note(account.id)
        self._last_note_count = account.notes_count
        account.last_note_at = note.created if note else None
        return account


def _update_failed(err: MisskeyError) -> UpdateFailed:
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="update_failed",
        translation_placeholders={"error": str(err)},
    )

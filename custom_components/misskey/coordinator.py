"""Keeps the account and the instance's limits up to date."""

from __future__ import annotations

from dataclasses import dataclass, replace
import logging
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.aiohttp_client import async_get_clientsession
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
from .const import CONF_CREDENTIAL, DOMAIN, UPDATE_INTERVAL

if TYPE_CHECKING:
    from .listener import MisskeyListener

_LOGGER = logging.getLogger(__name__)

type MisskeyConfigEntry = ConfigEntry[MisskeyData]


@dataclass
class MisskeyData:
    """What a loaded account holds."""

    coordinator: MisskeyDataUpdateCoordinator
    # None when the user turned listening off.
    listener: MisskeyListener | None


class MisskeyDataUpdateCoordinator(DataUpdateCoordinator[Account]):
    """Reads the signed-in account; holds the client and the instance's meta."""

    config_entry: MisskeyConfigEntry
    meta: Meta

    def __init__(self, hass: HomeAssistant, entry: MisskeyConfigEntry) -> None:
        """Make the client for the entry's account."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=DOMAIN,
            update_interval=UPDATE_INTERVAL,
        )
        self.client = MisskeyClient(
            async_get_clientsession(hass),
            entry.data[CONF_URL],
            entry.data[CONF_CREDENTIAL],
        )
        # The notesCount at which the last note's time was read.
        self._last_note_count: int | None = None

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
            return replace(account, last_note_at=previous.last_note_at)
        note = await self.client.latest_note(account.id)
        self._last_note_count = account.notes_count
        return replace(account, last_note_at=note.created if note else None)


def _update_failed(err: MisskeyError) -> UpdateFailed:
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key="update_failed",
        translation_placeholders={"error": str(err)},
    )

"""What a loaded account holds: its client, the coordinator that reads it, its listener."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .api import MisskeyClient
from .const import ASSIST_STORAGE_VERSION, DOMAIN, LISTENER_STORAGE_VERSION
from .coordinator import MisskeyDataUpdateCoordinator

if TYPE_CHECKING:
    # Imported only by accounts that listen (see async_setup_entry).
    from .assist import MisskeyAssist
    from .listener import MisskeyListener

type MisskeyConfigEntry = ConfigEntry[MisskeyData]


class MisskeyData:
    """The runtime data of a loaded account."""

    __slots__ = ("assist", "client", "coordinator", "listener")

    def __init__(
        self,
        client: MisskeyClient,
        coordinator: MisskeyDataUpdateCoordinator,
        listener: MisskeyListener | None,
    ) -> None:
        """Hold what set-up made; ``listener`` is None when listening is off."""
        self.client = client
        self.coordinator = coordinator
        self.listener = listener
        # Set once the listener is made, for accounts that list Assist senders.
        self.assist: MisskeyAssist | None = None


# What an account keeps across restarts; here, so that removing the account
# forgets it without importing the listener or Assist.


def listener_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """Return where an account's listener keeps the last notification delivered."""
    return Store(hass, LISTENER_STORAGE_VERSION, f"{DOMAIN}.{entry_id}")


def assist_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """Return where an account keeps which answer belongs to which conversation."""
    return Store(hass, ASSIST_STORAGE_VERSION, f"{DOMAIN}.{entry_id}.assist")

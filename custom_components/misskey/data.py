"""What a loaded account holds: its client, the coordinator that reads it, its listener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

from .api import MisskeyClient
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

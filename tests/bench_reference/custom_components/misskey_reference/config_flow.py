"""Entries are made by the bench, never by a user."""

from homeassistant.config_entries import ConfigFlow

from . import DOMAIN


class ReferenceConfigFlow(ConfigFlow, domain=DOMAIN):
    """No steps."""

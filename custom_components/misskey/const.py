"""Constants for the Misskey integration."""

from datetime import timedelta
from typing import Final

DOMAIN: Final = "misskey"

CONF_CREDENTIAL: Final = "i"

APP_NAME: Final = "Home Assistant"
APP_DESCRIPTION: Final = "Posts notes from Home Assistant automations and scripts."
# write:drive is for attachments; read:account for the account check and sensors.
APP_PERMISSIONS: Final = ["read:account", "write:notes", "write:drive"]

AUTHORIZE_CALLBACK_PATH: Final = "/api/misskey/authorized"
AUTHORIZE_POLL_INTERVAL: Final = 3.0
AUTHORIZE_TIMEOUT: Final = timedelta(minutes=10)

ATTR_CW: Final = "cw"
ATTR_LOCAL_ONLY: Final = "local_only"
ATTR_VISIBILITY: Final = "visibility"

VISIBILITIES: Final = ["public", "home", "followers", "specified"]

UPDATE_INTERVAL: Final = timedelta(minutes=15)

# A 429 is retried after Retry-After, but never for longer than this in all.
RATE_LIMIT_MAX_WAIT: Final = 60.0
MAX_CW_LENGTH: Final = 100

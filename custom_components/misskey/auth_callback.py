"""The page Misskey sends the browser to once the user has allowed access."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from aiohttp import web

from homeassistant.components.http import KEY_HASS, HomeAssistantView
from homeassistant.core import HomeAssistant, callback
from homeassistant.util.hass_dict import HassKey

from .const import AUTHORIZE_CALLBACK_PATH, DOMAIN

# Session token -> wakes the flow that waits for it.
PENDING_AUTHORIZATIONS: HassKey[dict[str, Callable[[], None]]] = HassKey(
    f"{DOMAIN}_pending_authorizations"
)
_VIEW_REGISTERED: HassKey[bool] = HassKey(f"{DOMAIN}_callback_view")

_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Misskey</title></head>"
    "<body style='font-family:sans-serif;text-align:center;padding:40px'>"
    "<p>{message}</p><script>window.close()</script></body></html>"
)


@callback
def async_register_callback_view(hass: HomeAssistant) -> None:
    """Register the callback page once; the config flow may need it before setup."""
    if hass.data.get(_VIEW_REGISTERED):
        return
    hass.http.register_view(MisskeyAuthorizeCallbackView())
    hass.data[_VIEW_REGISTERED] = True


@callback
def async_expect_authorization(
    hass: HomeAssistant, token: str, wake: Callable[[], None]
) -> Callable[[], None]:
    """Let a callback with this session token wake a flow; return the undo."""
    pending = hass.data.setdefault(PENDING_AUTHORIZATIONS, {})
    pending[token] = wake

    @callback
    def forget() -> None:
        pending.pop(token, None)

    return forget


class MisskeyAuthorizeCallbackView(HomeAssistantView):
    """Receive ``?token=`` from Misskey's authorization page.

    It needs no login because the browser arrives from Misskey; it only wakes a
    flow that is waiting for exactly this token, and the flow still asks
    Misskey itself whether access was granted.
    """

    url = AUTHORIZE_CALLBACK_PATH
    name = "api:misskey:authorized"
    requires_auth = False

    async def get(self, request: web.Request) -> web.Response:
        """Wake the waiting flow and tell the user to return."""
        hass = request.app[KEY_HASS]
        token = request.query.get("token", "")
        wake = hass.data.get(PENDING_AUTHORIZATIONS, {}).get(token)
        if wake is None:
            return web.Response(
                text=_PAGE.format(
                    message="This authorization link is not valid or has expired."
                ),
                status=HTTPStatus.BAD_REQUEST,
                content_type="text/html",
            )
        wake()
        return web.Response(
            text=_PAGE.format(
                message="Access allowed. You can close this window and return to Home Assistant."
            ),
            content_type="text/html",
        )

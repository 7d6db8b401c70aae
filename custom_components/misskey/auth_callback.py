"""The page Misskey sends the browser to once the user has allowed access."""

from __future__ import annotations

from collections.abc import Callable
import html
from http import HTTPStatus

from aiohttp import hdrs, web

from homeassistant.components.http import KEY_HASS, HomeAssistantView
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util.hass_dict import HassKey

from .const import AUTHORIZE_CALLBACK_PATH, DOMAIN, TRANSLATION_LANGUAGES

# Session token -> wakes the flow that waits for it.
PENDING_AUTHORIZATIONS: HassKey[dict[str, Callable[[], None]]] = HassKey(
    f"{DOMAIN}_pending_authorizations"
)
_VIEW_REGISTERED: HassKey[bool] = HassKey(f"{DOMAIN}_callback_view")

_PAGE = (
    "<!DOCTYPE html><html lang='{language}'><head><meta charset='utf-8'>"
    "<meta name='viewport' content='width=device-width'><title>Misskey</title></head>"
    "<body style='font-family:sans-serif;text-align:center;padding:40px'>"
    "<p>{message}</p><script>window.close()</script></body></html>"
)


def preferred_language(accept_language: str, default: str) -> str:
    """Return the translation language the browser prefers, else ``default``.

    ``ja-JP`` matches ``ja``, and a tag we have exactly (``zh-Hant``) wins over
    its primary language; ``q=0`` means not acceptable.
    """
    by_lower = {language.lower(): language for language in TRANSLATION_LANGUAGES}
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        for candidate in (tag, tag.partition("-")[0]):
            if candidate in by_lower:
                return by_lower[candidate]
    return default


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
        """Wake the waiting flow and tell the user to return, in their language."""
        hass = request.app[KEY_HASS]
        token = request.query.get("token", "")
        wake = hass.data.get(PENDING_AUTHORIZATIONS, {}).get(token)
        if wake is not None:
            wake()
        # The browser arrives from Misskey without a Home Assistant login, so
        # its Accept-Language is all we know of the user's language.
        language = preferred_language(
            request.headers.get(hdrs.ACCEPT_LANGUAGE, ""),
            preferred_language(hass.config.language, "en"),
        )
        key = "authorization_page_allowed" if wake else "authorization_page_invalid"
        translations = await async_get_translations(
            hass, language, "exceptions", [DOMAIN]
        )
        message = translations[f"component.{DOMAIN}.exceptions.{key}.message"]
        return web.Response(
            text=_PAGE.format(language=language, message=html.escape(message)),
            status=HTTPStatus.OK if wake else HTTPStatus.BAD_REQUEST,
            content_type="text/html",
            headers={hdrs.CONTENT_LANGUAGE: language, hdrs.VARY: hdrs.ACCEPT_LANGUAGE},
        )

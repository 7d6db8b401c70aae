"""An instance's address as users type it, and the name of its host."""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from yarl import URL

_HOSTNAME: Final = r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*"
# A fediverse handle, @user@host or user@host; the host may have a port.
_HANDLE: Final = r"@?[A-Za-z0-9_.-]+@(?P<host>[^@/\s]+)/?"


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def scheme_assumed(raw: str) -> bool:
    """Tell whether normalize_url chose https because no scheme was typed."""
    return "://" not in raw


def normalize_url(raw: str) -> str:
    """Return the instance URL as scheme, host and port, or raise ValueError.

    ``misskey.io``, ``https://misskey.io/`` and ``https://misskey.io/@someone``
    all become ``https://misskey.io``, and so do the handles ``@me@misskey.io``
    and ``me@misskey.io`` that people copy from a profile: without a scheme,
    ``user@host`` can only be a handle. With one it is a URL's user name and
    password, which is refused.
    """
    text = raw.strip()
    if not text:
        raise ValueError("empty URL")
    if scheme_assumed(text):
        if handle := re.fullmatch(_HANDLE, text):
            text = handle["host"]
        elif text.startswith("@"):
            raise ValueError("a handle without its server")
        text = f"https://{text}"
    try:
        url = URL(text)
    except ValueError as err:
        raise ValueError("not a URL") from err
    if url.scheme not in ("http", "https"):
        raise ValueError("only http and https are supported")
    host = url.raw_host
    if not host or not (re.fullmatch(_HOSTNAME, host) or _is_ip_address(host)):
        raise ValueError("not a host name")
    if url.user is not None or url.password is not None:
        raise ValueError("credentials in the URL are not supported")
    return str(URL.build(scheme=url.scheme, host=host, port=url.explicit_port)).rstrip(
        "/"
    )


def instance_host(url: str) -> str:
    """Return the host (and a non-default port) that names an instance."""
    return URL(url).host_port_subcomponent or url

"""Which user-supplied URLs the service may fetch or call back: http(s) only, and only public
addresses unless `URL_FETCH_ALLOW_PRIVATE=true`.

Kept apart from `shared.url_fetch` (which needs httpcore) so the API can refuse a bad URL at
submission without shipping an HTTP client; the worker checks again at connect time.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from shared.errors import ServiceError


class UrlFetchError(ServiceError):
    """The URL can't be read: refused, unreachable, or answered with an error; retrying won't help."""

    status_code = 400
    code = "url_fetch_failed"


class UrlNotAllowed(UrlFetchError):
    code = "url_not_allowed"


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """Refuse what is wrong before any network use: not http(s), no host, or a literal private
    address. Names are resolved (and checked again) only when connecting. Returns the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlNotAllowed(f"only http and https URLs can be fetched, not {parts.scheme or 'no'} scheme")
    host = parts.hostname
    if not host:
        raise UrlNotAllowed(f"the URL {url!r} names no host")
    if allow_private:
        return url
    if host == "localhost" or host.endswith(".localhost"):
        raise UrlNotAllowed(f"the URL's host {host} is this machine; only public addresses are allowed")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return url
    if not address_allowed(str(literal)):
        raise UrlNotAllowed(f"the URL's address {host} is not public; only public addresses are allowed")
    return url

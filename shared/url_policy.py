"""Which user-supplied URLs the service may fetch or call back: http(s) only, and only public
addresses unless `URL_FETCH_ALLOW_PRIVATE=true`.

Kept apart from `gpu_worker.url_fetch` (which needs httpcore) so the API can refuse a bad URL at
submission without shipping an HTTP client; the worker checks again at connect time.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from shared.errors import ServiceError


class UrlFetchError(ServiceError, code="url_fetch_failed", status_code=400):
    """The URL can't be read: refused, unreachable, or answered with an error; retrying won't help."""


class Undeliverable(UrlFetchError):
    """An address no retry can reach: refused by this policy, or a name that doesn't exist."""


class UrlNotAllowed(Undeliverable, code="url_not_allowed"): ...


class HostNotFound(Undeliverable, code="host_not_found"): ...


NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d form


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and reaches: mapped (::ffff:a.b.c.d), 6to4 (2002::/16),
    NAT64 (64:ff9b::/96) or IPv4-compatible (::a.b.c.d); None for a plain IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_PREFIX or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_allowed(address: str) -> bool:
    """Public unicast only; an IPv6 form of an IPv4 address is judged by that IPv4 address, and the
    deprecated site-local range (fec0::/10, private by intent) is refused."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return inner.is_global and not inner.is_multicast
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """Refuse what is wrong before any network use: not http(s), no host, or a literal private
    address. Names are resolved (and checked again) only when connecting. Returns the URL."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):  # urlsplit would silently drop CR/LF/TAB
        raise UrlNotAllowed("the URL contains spaces or control characters; percent-encode them")
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

"""Outbound HTTP for user-supplied URLs (audio sources and callbacks), safe against SSRF.

A URL a user names could point the worker at the cloud metadata service, the emulator or anything
else on its private network. Checking the host name before the request is not enough (its DNS can
change between check and connect), so the check happens inside the connection: a network backend
resolves the name itself, refuses non-public addresses unless `URL_FETCH_ALLOW_PRIVATE=true`, and
connects to the address it checked. TLS still verifies the certificate against the host name.
Redirects are followed by hand (at most `MAX_REDIRECTS`), each hop checked the same way.
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpcore

from shared.errors import PayloadTooLarge, TransientError
from shared.url_policy import HostNotFound, UrlFetchError, UrlNotAllowed, address_allowed, check_url

_NO_SUCH_NAME = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)
MAX_REDIRECTS = 5
CHUNK_BYTES = 1 << 20
USER_AGENT = "whisper-diarization-service"


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves the host itself and connects only to an address it has checked."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            # No such name is final; a resolver that can't answer now (EAI_AGAIN) may later.
            kind = HostNotFound if error.errno in _NO_SUCH_NAME else UrlFetchError
            raise kind(f"can't resolve the host {host}: {error.strerror}") from error
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = [a for a in addresses if self.allow_private or address_allowed(a)]
        if not allowed:
            raise UrlNotAllowed(
                f"the host {host} resolves to a non-public address; only public ones are allowed"
            )
        return super().connect_tcp(allowed[0], port, timeout, local_address, socket_options)


def _pool(allow_private: bool) -> httpcore.ConnectionPool:
    return httpcore.ConnectionPool(
        ssl_context=ssl.create_default_context(),
        network_backend=_CheckedBackend(allow_private),
        max_connections=4,
    )


def _split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """`https://user:pass@host/...` → the URL without them and a Basic Authorization header
    (Deepgram accepts callback URLs with credentials)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    header = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return urlunsplit(parts._replace(netloc=netloc)), header


def _timeouts(seconds: float) -> dict[str, Any]:
    return {"timeout": {"connect": min(seconds, 10.0), "read": seconds, "write": seconds, "pool": seconds}}


@contextmanager
def _open(
    method: str,
    url: str,
    *,
    allow_private: bool,
    timeout: float,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[httpcore.Response]:
    """Send one request, following redirects (GET only), and yield the final streamed response."""
    with _pool(allow_private) as pool:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, allow_private=allow_private)
            target, auth = _split_credentials(url)
            sent = {"User-Agent": USER_AGENT, **auth, **(headers or {})}
            try:
                with pool.stream(
                    method, target, headers=list(sent.items()), content=body, extensions=_timeouts(timeout)
                ) as r:
                    location = dict((k.lower(), v) for k, v in r.headers).get(b"location")
                    if method == "GET" and r.status in (301, 302, 303, 307, 308) and location:
                        url = urljoin(url, location.decode("latin-1"))
                        continue
                    yield r
                    return
            except httpcore.TimeoutException as error:
                raise TransientError(f"{urlsplit(url).hostname} did not answer in time") from error
            except (httpcore.ConnectError, httpcore.NetworkError, httpcore.ProtocolError) as error:
                raise UrlFetchError(
                    f"can't reach {urlsplit(url).hostname}: {error or type(error).__name__}"
                ) from error
        raise UrlFetchError(f"more than {MAX_REDIRECTS} redirects")


def fetch_to_file(
    url: str, destination: Path, *, max_bytes: int, timeout: float, allow_private: bool
) -> Path:
    """Download `url` to `destination`, within `max_bytes` and `timeout` seconds for the whole
    transfer. 4xx answers and refusals are `UrlFetchError`; 5xx, 429 and timeouts are transient."""
    deadline = time.monotonic() + timeout
    destination.parent.mkdir(parents=True, exist_ok=True)
    with _open("GET", url, allow_private=allow_private, timeout=min(timeout, 60.0)) as response:
        if response.status >= 500 or response.status == 429:
            raise TransientError(f"fetching the audio URL failed: HTTP {response.status}")
        if not 200 <= response.status < 300:
            raise UrlFetchError(f"fetching the audio URL failed: HTTP {response.status}")
        length = dict((k.lower(), v) for k, v in response.headers).get(b"content-length", b"")
        if length.isdigit() and int(length) > max_bytes:
            raise PayloadTooLarge(f"the audio URL's file is {int(length)} bytes; the limit is {max_bytes}")
        size = 0
        with destination.open("wb") as out:
            for chunk in response.iter_stream():
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the audio URL's file is larger than the {max_bytes} byte limit")
                if time.monotonic() > deadline:
                    raise UrlFetchError(f"downloading the audio URL took longer than {timeout:g} s")
                out.write(chunk)
    if size == 0:
        raise UrlFetchError("the audio URL returned an empty body")
    return destination


def send(
    method: str,
    url: str,
    body: bytes,
    *,
    content_type: str,
    timeout: float,
    allow_private: bool,
    headers: dict[str, str] | None = None,
) -> int:
    """One POST/PUT of `body` (no redirects followed); returns the HTTP status."""
    headers = {"Content-Type": content_type, **(headers or {})}
    with _open(method, url, allow_private=allow_private, timeout=timeout, body=body, headers=headers) as r:
        r.read()
        return r.status

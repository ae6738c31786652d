"""Fetching user-supplied URLs against a real HTTP server on loopback: size limit, errors,
redirects, credentials in the URL, and the refusal of non-public addresses at connect time."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gpu_worker.url_fetch import UrlFetchError, UrlNotAllowed, fetch_to_file, send
from shared.errors import PayloadTooLarge
from shared.url_policy import address_allowed, check_url
from tests.fixtures_aws import Receiver


def fetch(url: str, tmp_path: Path, max_bytes: int = 1000, allow_private: bool = True) -> Path:
    return fetch_to_file(
        url, tmp_path / "audio", max_bytes=max_bytes, timeout=30.0, allow_private=allow_private
    )


def test_a_file_is_fetched_following_redirects(receiver: Receiver, tmp_path: Path) -> None:
    receiver.files["/a.wav"] = b"RIFF" + bytes(100)
    receiver.redirects["/old.wav"] = "/a.wav"
    assert fetch(f"{receiver.url}/old.wav", tmp_path).read_bytes() == b"RIFF" + bytes(100)


def test_limits_and_http_errors(receiver: Receiver, tmp_path: Path) -> None:
    receiver.files["/big.wav"] = bytes(2000)
    receiver.files["/empty.wav"] = b""
    with pytest.raises(PayloadTooLarge, match="1000"):
        fetch(f"{receiver.url}/big.wav", tmp_path)
    with pytest.raises(UrlFetchError, match="HTTP 404"):
        fetch(f"{receiver.url}/missing.wav", tmp_path)
    with pytest.raises(UrlFetchError, match="empty"):
        fetch(f"{receiver.url}/empty.wav", tmp_path)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_private_addresses_are_refused_at_connect_time(receiver: Receiver, tmp_path: Path, host: str) -> None:
    receiver.files["/a.wav"] = b"RIFF"
    port = receiver.server.server_address[1]
    with pytest.raises(UrlNotAllowed):
        fetch(f"http://{host}:{port}/a.wav", tmp_path, allow_private=False)
    assert receiver.received == []


@pytest.mark.parametrize("host", ["127.1", "0x7f000001"])
def test_a_host_that_only_resolves_to_loopback_is_refused_at_connect_time(
    receiver: Receiver, tmp_path: Path, host: str
) -> None:
    """Not an IP literal, so the cheap check at submission lets it through; the resolver makes it
    127.0.0.1, which the connect-time check refuses."""
    receiver.files["/a.wav"] = b"RIFF"
    url = f"http://{host}:{receiver.server.server_address[1]}/a.wav"
    assert check_url(url, allow_private=False) == url
    with pytest.raises(UrlNotAllowed, match="non-public"):
        fetch(url, tmp_path, allow_private=False)
    assert receiver.received == []


def test_credentials_in_a_callback_url_become_basic_auth(receiver: Receiver) -> None:
    port = receiver.server.server_address[1]
    status = send(
        "POST",
        f"http://user:p%40ss@127.0.0.1:{port}/hook",
        b"{}",
        content_type="application/json",
        timeout=10.0,
        allow_private=True,
    )
    assert status == 200
    (call,) = receiver.posts("/hook")
    assert call.headers["Authorization"] == "Basic " + base64.b64encode(b"user:p@ss").decode()


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::",  # 6to4 of 192.168.1.1
        "::127.0.0.1",  # IPv4-compatible
        "::10.0.0.1",
        "fec0::1",  # site-local
        "::ffff:10.0.0.1",  # IPv4-mapped (already refused)
    ],
)
def test_ipv6_forms_of_private_addresses_are_refused(address: str) -> None:
    assert not address_allowed(address)
    with pytest.raises(UrlNotAllowed, match="not public"):
        check_url(f"http://[{address}]/a.wav", allow_private=False)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "2606:4700::1111", "8.8.8.8"])
def test_ipv6_forms_of_public_addresses_stay_allowed(address: str) -> None:
    assert address_allowed(address)


@pytest.mark.parametrize(
    "url", ["https://example.com/a\r\nX: y", "https://exa mple.com/", "https://e.com/\t"]
)
def test_urls_with_control_characters_or_spaces_are_refused(url: str) -> None:
    with pytest.raises(UrlNotAllowed, match="control characters"):
        check_url(url, allow_private=True)

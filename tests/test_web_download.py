"""spyglass.data.web_download: which addresses and URLs web-download may reach."""

from __future__ import annotations

import pytest

from spyglass.data.web_download import AddressPolicy, WebDownloadError, check_target, check_uri
from spyglass.errors import Invalid
from spyglass.settings import Settings

REFUSED = [
    "127.0.0.1",
    "127.255.0.9",
    "::1",
    "0.0.0.0",
    "::",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "169.254.169.254",  # link-local: cloud metadata services
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",  # unique local
    "224.0.0.1",
    "239.255.255.250",
    "ff02::1",
    "240.0.0.1",  # reserved
    "198.18.0.1",  # benchmarking
    "192.0.2.1",  # documentation
    "2001:db8::1",
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
]
PERMITTED = ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_inside_addresses_are_refused(address: str) -> None:
    assert not AddressPolicy().permits(address)


@pytest.mark.parametrize("address", PERMITTED)
def test_public_addresses_are_permitted(address: str) -> None:
    assert AddressPolicy().permits(address)


def test_allowed_networks_open_exactly_themselves() -> None:
    policy = AddressPolicy.of(Settings(web_download_allowed_networks=("10.0.0.0/8", "::1", "127.0.0.1/32")))
    assert policy.permits("10.20.30.40")
    assert policy.permits("::1")
    assert policy.permits("127.0.0.1")
    assert policy.permits("::ffff:127.0.0.1")
    assert not policy.permits("127.0.0.2")
    assert not policy.permits("192.168.0.1")


def test_a_host_with_any_inside_address_is_refused() -> None:
    policy = AddressPolicy()
    assert policy.choose("example.com", ["93.184.216.34", "93.184.216.34"]) == "93.184.216.34"
    with pytest.raises(WebDownloadError, match=r"example.com resolves to 10.0.0.1, which is an address"):
        policy.choose("example.com", ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(WebDownloadError, match="has no address"):
        policy.choose("example.com", [])


@pytest.mark.parametrize(
    "uri",
    [
        None,
        42,
        "",
        "file:///etc/passwd",
        "ftp://example.com/a",
        "gopher://x/",
        "http://",
        "http:///path",
        "https://example.com:0/x",
        "http://example.com:99999/x",
        "http://example.com:port/x",
    ],
)
def test_only_http_urls_with_a_host_pass(uri: object) -> None:
    with pytest.raises(Invalid, match="does not pass filtering"):
        check_uri(uri)


def test_http_and_https_urls_pass() -> None:
    assert check_uri("https://user:pw@example.com:8443/a?b").hostname == "example.com"
    assert check_uri("http://[2606:4700::1111]/x").hostname == "2606:4700::1111"


@pytest.mark.parametrize(
    "uri", ["http://localhost/x", "http://127.0.0.1:8080/x", "http://[::1]/", "http://0/x"]
)
def test_target_check_resolves_names_before_refusing(uri: str) -> None:
    with pytest.raises(Invalid, match="may not reach"):
        check_target(uri, AddressPolicy())


def test_target_check_reports_names_that_do_not_resolve() -> None:
    with pytest.raises(Invalid, match="cannot resolve"):
        check_target("http://no-such-host.invalid/x", AddressPolicy())

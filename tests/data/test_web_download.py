"""spyglass.egress and spyglass.data.web_download: which addresses and URLs outbound requests may reach."""

from __future__ import annotations

import pytest

from spyglass.data.web_download import check_target, check_uri
from spyglass.egress import AddressPolicy, OutboundError
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
    # IPv6 forms that carry an IPv4 address are judged as that address.
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "::ffff:0:7f00:1",  # IPv4-translated (SIIT)
    "::ffff:0:169.254.169.254",
    "64:ff9b::7f00:1",  # NAT64 well-known prefix
    "64:ff9b::a9fe:a9fe",
    "2002:7f00:1::",  # 6to4
    "2002:a00:1:1::5",
    "2002:c058:6301::1",  # 6to4 of the 6to4 relay anycast
    # Ranges whose end cannot be judged, or deprecated ones still routed inside networks.
    "64:ff9b:1::808:808",  # NAT64 local-use
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo with public server and client
    "fec0::1",  # site-local
    "fefe::1",
    "192.88.99.1",  # 6to4 relay anycast
]
PERMITTED = [
    "8.8.8.8",
    "93.184.216.34",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "::8.8.8.8",
    "::ffff:0:808:808",
    "64:ff9b::808:808",  # judged as 8.8.8.8
    "2002:808:808::1",
]


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


@pytest.mark.parametrize(
    "address", ["::127.0.0.1", "::ffff:0:7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::", "2002:7f00:1:2::3"]
)
def test_an_embedded_ipv4_address_is_judged_by_the_allowed_networks(address: str) -> None:
    assert not AddressPolicy().permits(address)
    assert AddressPolicy.of(Settings(web_download_allowed_networks=("127.0.0.1/32",))).permits(address)
    assert not AddressPolicy.of(Settings(web_download_allowed_networks=("127.0.0.2/32",))).permits(address)


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"),
        ("64:ff9b:1::808:808", "64:ff9b:1::/48"),
        ("fec0::1", "fec0::/10"),
        ("192.88.99.1", "192.88.99.0/24"),
        ("2002:7f00:1::", "2002::/16"),
    ],
)
def test_refused_ranges_open_when_allowed(address: str, network: str) -> None:
    assert AddressPolicy.of(Settings(web_download_allowed_networks=(network,))).permits(address)


def test_a_host_with_any_inside_address_is_refused() -> None:
    policy = AddressPolicy()
    assert policy.choose("example.com", ["93.184.216.34", "93.184.216.34"]) == "93.184.216.34"
    with pytest.raises(OutboundError, match=r"^example.com resolves to an address") as refused:
        policy.choose("example.com", ["93.184.216.34", "10.0.0.1"])
    assert "10.0.0.1" not in str(refused.value)
    with pytest.raises(OutboundError, match="has no address"):
        policy.choose("example.com", [])


def test_a_refusal_names_the_literal_address_typed_but_never_a_resolution() -> None:
    with pytest.raises(OutboundError, match=r"^127.0.0.1 is an address Spyglass may not reach"):
        AddressPolicy().choose("127.0.0.1", ["127.0.0.1"])
    with pytest.raises(Invalid, match="localhost resolves to an address") as refused:
        check_target("http://localhost/x", AddressPolicy())
    assert "127.0.0.1" not in refused.value.message and "::1" not in refused.value.message


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
        "http://a..b/",
        "http://.example.com/",
        f"http://{'a' * 64}.example.com/",
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

"""The outbound address policy: where a URL given by a user may make Spyglass connect.

web-download (spyglass.data.web_download) and webhook deliveries (spyglass.audit.delivery) fetch
or post to URLs that users give. Such a URL must not make Spyglass reach the host it runs on or
the private network around it (metadata services, databases, admin APIs): server-side request
forgery. Loopback, private, link-local, shared, reserved, multicast and unspecified addresses are
refused unless they lie in `web_download_allowed_networks`. An IPv6 address that carries an IPv4
one (mapped, compatible, SIIT, NAT64 64:ff9b::/96, 6to4) is judged as that IPv4 address; the
tunnels whose end cannot be judged (Teredo, NAT64 local-use) are refused, as are deprecated
site-local and 6to4-relay addresses. A refusal never says what a name resolved to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from spyglass.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OutboundError(Exception):
    """An outbound request could not be made (refused, unreachable, failed); the message says why."""


# IPv6 prefixes whose last 32 bits are the IPv4 address a packet ends up at: such an address is
# judged as that IPv4 address. (`::` and `::1` lie in the first one too: judged as 0.0.0.0 and
# 0.0.0.1 they are refused as they would be themselves.)
_LAST_32_IS_IPV4 = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in (
        "::/96",  # IPv4-compatible (deprecated)
        "::ffff:0:0/96",  # IPv4-mapped
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b::/96",  # NAT64 well-known prefix
    )
)
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")  # bits 16-48 are the IPv4 address
# Refused even where the standard library calls them global: where they lead cannot be judged.
_UNJUDGEABLE = tuple(
    ipaddress.ip_network(prefix)
    for prefix in (
        "64:ff9b:1::/48",  # NAT64 local-use: the IPv4 address may sit anywhere in it (RFC 8215)
        "2001::/32",  # Teredo: the client's IPv4 address is obfuscated, a relay decides the rest
        "fec0::/10",  # site-local (deprecated), still routed inside some networks
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated): leads to whichever relay is nearest
    )
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to (mapped, compatible, SIIT, NAT64, 6to4), if any."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if any(ip in prefix for prefix in _LAST_32_IS_IPV4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses outbound requests (web-download, webhook deliveries) may connect to."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> AddressPolicy:
        networks = settings.web_download_allowed_networks
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def permits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if self._allows(ip):
            return True
        judged = embedded_ipv4(ip)
        if judged is not None:
            return self._allows(judged) or _outside(judged)
        return _outside(ip)

    def _allows(self, ip: Address) -> bool:
        return any(ip in network for network in self.allowed)

    def choose(self, host: str, addresses: Iterable[str]) -> str:
        """The address to connect to; refused when any address of the host is not permitted.

        The refusal names the address only when the user typed it: what a name resolves to
        inside the cloud is not theirs to learn."""
        found = list(dict.fromkeys(addresses))
        if not found:
            raise OutboundError(f"{host} has no address.")
        if not all(self.permits(address) for address in found):
            named = f"{host} is" if host in found else f"{host} resolves to"
            raise OutboundError(f"{named} an address Spyglass may not reach ({REFUSED_KINDS}).")
        return found[0]


REFUSED_KINDS = "loopback, private, link-local, multicast, reserved, unspecified or tunnelled inside"


def _outside(ip: Address) -> bool:
    """A public unicast address, outside the networks Spyglass runs in."""
    return ip.is_global and not ip.is_multicast and not any(ip in prefix for prefix in _UNJUDGEABLE)


def valid_host(hostname: str) -> bool:
    """A host name DNS can carry (IDNA: no empty label, none over 63 characters)."""
    try:
        hostname.encode("idna")
    except UnicodeError:
        return False
    return True
